"""rftbench.testing: the helpers plugin authors test with find real contract violations."""

from __future__ import annotations

import pytest

from rftbench import AttackSpec, LossSpec, MetricSpec, ThreatModelSpec, hookimpl
from rftbench.errors import PluginError
from rftbench.testing import MICRO_REPRESENTATION, TINY_DATASET, check, plugin_manager


class Broken:
    """Contributions that each break their contract in one way."""

    @hookimpl
    def rftbench_add_losses(self):
        class Detached:
            adversarial, uses_clean, uses_adv = False, True, False

            def attack_objective(self, model, x, y):
                return None

            def __call__(self, y, *, clean=None, adv=None):
                return clean.detach().float().mean() * 0  # no gradient reaches the logits

        class Vector(Detached):
            def __call__(self, y, *, clean=None, adv=None):
                return clean.float().sum(1)  # per example, not a scalar

        return [LossSpec(name="detached", description="d", adversarial=False, factory=Detached),
                LossSpec(name="vector", description="d", adversarial=False, factory=Vector),
                LossSpec(name="liar", description="says adversarial", adversarial=True, factory=Detached)]

    @hookimpl
    def rftbench_add_threat_models(self):
        class OutOfBox:
            norm, eps = "linf", 0.1

            def label(self):
                return "out-of-box"

            def perturb(self, model, x, y, **kw):
                return x + 2.0

        class NoXInit(OutOfBox):
            def perturb(self, model, x, y, *, eps=None):  # the engine's objective= / x_init= are refused
                return x.clone()

        return [ThreatModelSpec(name="out-of-box", description="d", factory=OutOfBox),
                ThreatModelSpec(name="no-x-init", description="d", factory=NoXInit)]

    @hookimpl
    def rftbench_add_attacks(self):
        import torch

        def from_x(model, x, y, *, eps, steps, objective=None, **_):
            """Sign-gradient steps from x, whatever x_init says: a zero gradient at x leaves x unchanged."""
            x_adv = x.clone()
            for _ in range(max(steps, 1)):
                x_adv.requires_grad_(True)
                with torch.enable_grad():
                    logits = model(x_adv)
                    index = torch.arange(len(x), device=x.device)
                    loss = (objective(logits, y, index) if objective else torch.nn.functional.cross_entropy(logits, y, reduction="none")).sum()
                    (grad,) = torch.autograd.grad(loss, x_adv)
                x_adv = (x + (x_adv.detach() + eps / 4 * grad.sign() - x).clamp(-eps, eps)).clamp(0, 1)
            return x_adv

        return [AttackSpec(name="ignores-x-init", description="d", factory=lambda: from_x, norms=("linf",), random_start=False)]

    @hookimpl
    def rftbench_add_metrics(self):
        class NotJson:
            def label(self):
                return "not-json"

            def compute(self, ctx):
                return {"value": ctx.clean_logits[:1]}  # a tensor: records are JSON

        return [MetricSpec(name="not-json", description="d", factory=NotJson)]


@pytest.fixture(scope="module")
def manager():
    return plugin_manager(Broken())


def test_the_micro_cards_are_loaded_and_build(manager):
    assert manager.get("representation", MICRO_REPRESENTATION.id) == MICRO_REPRESENTATION
    assert manager.get("dataset", TINY_DATASET.id) == TINY_DATASET
    check("representation", MICRO_REPRESENTATION.id, manager=manager).assert_ok()


def test_builtins_conform(manager):
    for kind, name, params in [("loss", "trades", {"beta": 2}), ("threat_model", "linf", {"steps": 2}),
                               ("attack", "pgd", {}), ("schedule", "cosine", {}), ("metric", "aggregates", {})]:
        check(kind, name, params, manager=manager).assert_ok()


@pytest.mark.parametrize("kind, name, expected", [
    ("loss", "detached", "does not depend on the logits it says it uses"),
    ("loss", "vector", "__call__ must return a scalar tensor"),
    ("loss", "liar", "the spec says adversarial=True but the loss object says adversarial=False"),
    ("threat_model", "out-of-box", "perturb() left the [0, 1] image box"),
    ("metric", "not-json", "compute() must return a JSON-able mapping"),
    ("attack", "ignores-x-init", "the attack ignores x_init"),
    ("threat_model", "no-x-init", "perturb() must accept objective= and x_init="),
    ("loss", "nope", "cannot be looked up: Unknown loss 'nope'"),
])
def test_violations_are_reported(manager, kind, name, expected):
    report = check(kind, name, manager=manager)
    assert not report.ok and any(expected in v for v in report.violations), report
    with pytest.raises(AssertionError, match="violates its contract"):
        report.assert_ok()


def test_a_plugin_that_does_not_load_fails_its_tests():
    class Typo:
        @hookimpl
        def rftbench_add_losess(self):
            return []

    with pytest.raises(PluginError, match="rftbench_add_losess"):
        plugin_manager(Typo(), builtins=False)
