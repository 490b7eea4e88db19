"""One documented, typed contract per side door: batch evaluators (rftbench.threat) and the loss spec's ``adversarial``."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from rftbench import AttackSpec, LossSpec, hookimpl
from rftbench.config import MonitorConfig, load_config
from rftbench.errors import PluginRuntimeError
from rftbench.evaluation import evaluate
from rftbench.testing import check, plugin_manager
from rftbench.threat import BatchEvaluator, SetEvaluator, batch_evaluator
from tests.plugins.evaluation import one_thread  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("one_thread")

CALLS: list[tuple[str, int]] = []


class CountingEvaluator:
    """A third party's whole-set evaluator: every point counts as broken; says how it was called."""

    def __init__(self, threat):
        self.threat = threat

    def evaluate_batch(self, model, x, y, *, index):
        CALLS.append(("batch", len(y)))
        return {"correct": torch.zeros(len(y), dtype=torch.bool, device=x.device), "after/mine": torch.ones(len(y))}

    def evaluate_all(self, model, x, y, *, index, batch_size, device):
        CALLS.append(("all", len(y)))
        return {"correct": torch.zeros(len(y), dtype=torch.bool), "after/mine": torch.ones(len(y))}

    def report(self):
        return {"evaluated_by": "counting", "flags": []}


class NoCorrect(CountingEvaluator):
    def evaluate_batch(self, model, x, y, *, index):
        return {"ok": torch.zeros(len(y))}

    def evaluate_all(self, model, x, y, *, index, batch_size, device):
        return {"ok": torch.zeros(len(y))}


def _identity(model, x, y, **_):
    return x.clone()


def _old_style(model, x, y, **_):
    return x.clone()


_old_style.batch_runner = CountingEvaluator  # the side door that is no longer read


class ThirdParty:
    @hookimpl
    def rftbench_add_attacks(self):
        return [
            AttackSpec(name="counted", description="d", norms=("linf",), random_start=False, factory=lambda: _identity,
                       evaluator=CountingEvaluator),
            AttackSpec(name="no-correct", description="d", norms=("linf",), random_start=False, factory=lambda: _identity,
                       evaluator=NoCorrect),
            AttackSpec(name="not-an-evaluator", description="d", norms=("linf",), random_start=False,
                       factory=lambda: _identity, evaluator=lambda threat: object()),
            AttackSpec(name="old-style", description="d", norms=("linf",), random_start=False, factory=lambda: _old_style),
        ]

    @hookimpl
    def rftbench_add_losses(self):
        class Clean:  # says nothing about adversarial: the spec decides
            uses_clean, uses_adv = True, False

            def attack_objective(self, model, x, y):
                return None

            def __call__(self, y, *, clean=None, adv=None):
                return torch.nn.functional.cross_entropy(clean.float(), y)

        class Liar(Clean):
            adversarial = True

        return [LossSpec(name="quiet-clean", description="d", adversarial=False, factory=Clean),
                LossSpec(name="liar-clean", description="d", adversarial=False, factory=Liar)]


@pytest.fixture(scope="module")
def manager():
    return plugin_manager(ThirdParty())


def _problem(n=12):
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    x, y = torch.rand(n, 3, 4, 4, generator=gen), torch.randint(0, 3, (n,), generator=gen)
    return model, TensorDataset(x, y)


def test_an_attack_spec_evaluator_measures_every_evaluation_path(manager):
    model, data = _problem()
    threat = manager.get("threat_model", "linf").build(eps="4/255", attack="counted")
    runner = batch_evaluator(threat)
    assert isinstance(runner, CountingEvaluator) and isinstance(runner, SetEvaluator)
    CALLS.clear()
    result = evaluate(model, data, [{"name": "linf", "eps": "4/255", "attack": "counted"}], batch_size=5, manager=manager,
                      progress=False)
    record = result["threats"]["linf:4/255"]
    assert CALLS == [("all", 12)]  # the whole set at once, not per batch and not through perturb
    assert record["acc"] == 0.0 and record["after"]["mine"] == 1.0 and record["evaluated_by"] == "counting"
    # the in-training monitor: per batch, through the same rule
    from rftbench.engine.monitor import Monitor

    config = MonitorConfig(n=8, batch_size=4, threat={"name": "linf", "eps": "4/255", "attack": "counted"})
    CALLS.clear()
    point = Monitor(config, data, device=torch.device("cpu"), manager=manager).point(model)
    assert CALLS == [("batch", 4), ("batch", 4)] and point["robust_acc"] == 0.0


def test_autoattack_goes_through_its_spec_evaluator(builtins):
    threat = builtins.get("threat_model", "linf").build(eps="4/255", attack="autoattack")
    from rftbench.attacks.autoattack import AutoAttack

    assert builtins.get("attack", "autoattack").evaluator is not None
    runner = batch_evaluator(threat)
    assert isinstance(runner, AutoAttack) and isinstance(runner, SetEvaluator)
    assert not hasattr(threat.attack.run, "batch_runner")  # no attribute side door left
    plain = builtins.get("threat_model", "linf").build(eps="4/255", attack="pgd")
    assert batch_evaluator(plain) is None


def test_corruptions_is_its_own_batch_evaluator(builtins):
    threat = builtins.get("threat_model", "corruptions").build()
    assert isinstance(threat, BatchEvaluator) and batch_evaluator(threat) is threat


def test_check_reports_broken_evaluators_and_the_old_side_door(manager):
    report = check("attack", "no-correct", manager=manager)
    assert any("evaluate_batch() must return a mapping with 'correct'" in v for v in report.violations), report
    assert any("evaluate_all() must return a mapping with 'correct'" in v for v in report.violations), report
    report = check("attack", "not-an-evaluator", manager=manager)
    assert any("not an object with evaluate_batch" in v for v in report.violations), report
    report = check("attack", "old-style", manager=manager)
    assert any("carries `batch_runner`, which is not read" in v for v in report.violations), report
    check("attack", "counted", manager=manager)  # runs (its accuracy is 0: a conforming evaluator)
    assert not [v for v in check("attack", "counted", manager=manager).violations if "evaluat" in v]


def test_the_loss_spec_is_the_one_source_of_adversarial(manager, tmp_path):
    from rftbench.prepare import build_components

    config = load_config(overrides=["representation=micro_resnet.testing", "dataset=digits_tiny", "loss=quiet-clean",
                                    f"output_dir={tmp_path}"], manager=manager)
    parts = build_components(config, manager)
    assert parts.adversarial is False and parts.threat is None  # the object has no attribute: the spec decided
    with pytest.raises(PluginRuntimeError, match=r"liar-clean.*spec says adversarial=False but the loss object says adversarial=True"):
        manager.get("loss", "liar-clean").build()


def test_the_step_reads_adversarial_from_its_argument_not_the_loss_object():
    from rftbench.engine import FusedStep, Precision

    class Spy:
        norm, eps, calls = "linf", 0.1, 0

        def perturb(self, model, x, y, **_):
            Spy.calls += 1
            return x.clone()

    class Loss:
        adversarial = True  # ignored by the step: its `adversarial` argument is the spec's
        uses_clean, uses_adv = True, True

        def attack_objective(self, model, x, y):
            return None

        def __call__(self, y, *, clean=None, adv=None):
            return torch.nn.functional.cross_entropy(clean.float(), y)

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x, y = torch.rand(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
    step = FusedStep(model, Loss(), Spy(), torch.optim.SGD(model.parameters(), lr=0.1), Precision("fp32", "cpu"),
                     adversarial=False)
    step(x, y, 0.1)
    assert Spy.calls == 0
    FusedStep(model, Loss(), Spy(), torch.optim.SGD(model.parameters(), lr=0.1), Precision("fp32", "cpu"))(x, y, 0.1)
    assert Spy.calls == 1
