"""Fast-AT attacks FGSM-RS and N-FGSM: paper formulas, budgets, sync-free, and training with Classic AT and TRADES."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from rftbench.attacks import fgsm_rs, get_attack, lp_norm, n_fgsm
from rftbench.engine import FusedStep, Precision
from rftbench_plugins.losses import ClassicAT, Trades
from rftbench_plugins.threats import L2Params, LinfParams, LpThreat
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture

FAST = {"fgsm-rs": fgsm_rs, "n-fgsm": n_fgsm}


@pytest.fixture(scope="module")
def task():
    """A small trained MLP, accurate on clean data and breakable at 8/255."""
    gen = torch.Generator().manual_seed(0)
    protos = torch.rand(4, 3, 8, 8, generator=gen)
    y = torch.randint(0, 4, (256,), generator=gen)
    x = (0.1 * protos[y] + 0.9 * torch.rand(256, 3, 8, 8, generator=gen)).clamp(0, 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    return model, x, y


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def input_grad(model, x, y):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(nn.functional.cross_entropy(model(x), y, reduction="sum"), x)
    return g


def test_fgsm_rs_is_wong_et_al(task):
    """δ ~ U(−ε, ε) clipped to the box, one step of 1.25ε, clamp to the ε-ball, clamp to the box."""
    model, x, y = task
    eps = 8 / 255
    ours = fgsm_rs(model, x, y, norm="linf", eps=eps, generator=torch.Generator().manual_seed(3))
    delta = (2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(3)) - 1) * eps
    delta = (x + delta).clamp(0, 1) - x
    delta = (delta + 1.25 * eps * input_grad(model, x + delta, y).sign()).clamp(-eps, eps)
    ref = (x + delta).clamp(0, 1)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


def test_n_fgsm_is_de_jorge_et_al(task):
    """η ~ U(−2ε, 2ε) clipped to the box, one step of ε from x + η, clipped to the box only (their train.py)."""
    model, x, y = task
    eps = 8 / 255
    ours = n_fgsm(model, x, y, norm="linf", eps=eps, generator=torch.Generator().manual_seed(3))
    eta = (2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(3)) - 1) * 2 * eps
    eta = (x + eta).clamp(0, 1) - x
    delta = eta + eps * input_grad(model, x + eta, y).sign()
    ref = x + ((x + delta).clamp(0, 1) - x)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)
    # the authors' optional --clip projects onto clip·ε
    clipped = n_fgsm(model, x, y, norm="linf", eps=eps, clip=1.0, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(clipped, (x + (ref - x).clamp(-eps, eps)).clamp(0, 1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("norm,eps", [("linf", 8 / 255), ("l2", 0.5)])
@pytest.mark.parametrize("early_stop", [False, True])
@pytest.mark.parametrize("restarts", [1, 3])
def test_budgets_box_and_strength(task, norm, eps, early_stop, restarts):
    """FGSM-RS stays in the ε-ball; N-FGSM in the 3ε-ball and (no projection) leaves the ε-ball; both hurt."""
    model, x, y = task
    clean = accuracy(model, x, y)
    for name, bound in (("fgsm-rs", eps), ("n-fgsm", 3 * eps)):
        x_adv = FAST[name](model, x, y, norm=norm, eps=eps, early_stop=early_stop, restarts=restarts)
        assert x_adv.dtype == torch.float32 and x_adv.shape == x.shape
        size = lp_norm(x_adv - x, norm)
        assert float(size.max()) <= bound * (1 + 1e-5), name
        assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
        assert accuracy(model, x_adv, y) < clean - 0.3, name
    assert float(lp_norm(n_fgsm(model, x, y, norm=norm, eps=eps) - x, norm).max()) > 1.5 * eps


def test_zero_budget_or_steps_and_no_random_start(task):
    model, x, y = task
    assert torch.equal(fgsm_rs(model, x, y, norm="linf", eps=0.0), x)
    assert torch.equal(n_fgsm(model, x, y, norm="linf", eps=0.1, steps=0), x)
    # without a random start both are FGSM from x: ±α·sign(grad) (α = 1.25ε for FGSM-RS, projected to ε)
    eps = 4 / 255
    g = input_grad(model, x, y).sign()
    torch.testing.assert_close(fgsm_rs(model, x, y, norm="linf", eps=eps, random_start=False), (x + eps * g).clamp(0, 1))
    torch.testing.assert_close(n_fgsm(model, x, y, norm="linf", eps=eps, random_start=False), (x + eps * g).clamp(0, 1))


def test_restarts_keep_the_highest_loss_per_point(task):
    model, x, y = task
    gen = torch.Generator().manual_seed(0)
    one = n_fgsm(model, x, y, norm="linf", eps=8 / 255, generator=torch.Generator().manual_seed(0))
    many = n_fgsm(model, x, y, norm="linf", eps=8 / 255, restarts=4, generator=gen)
    with torch.no_grad():
        l_one = nn.functional.cross_entropy(model(one), y, reduction="none")
        l_many = nn.functional.cross_entropy(model(many), y, reduction="none")
    assert bool((l_many >= l_one - 1e-6).all()) and float(l_many.mean()) > float(l_one.mean())


def test_per_step_path_is_sync_free(task, monkeypatch):
    """No ``.item()``, ``bool(tensor)`` or data-dependent branching in either attack, with or without early stop."""
    model, x, y = task

    def refuse(*_a, **_k):
        raise AssertionError("host sync in the attack")

    for name in FAST:
        with monkeypatch.context() as m:
            m.setattr(torch.Tensor, "item", refuse)
            m.setattr(torch.Tensor, "__bool__", refuse)
            m.setattr(torch.Tensor, "tolist", refuse)
            for early_stop in (False, True):
                FAST[name](model, x, y, norm="linf", eps=8 / 255, early_stop=early_stop, restarts=2)


def test_specs_parameters_and_defaults(builtins):
    for name in FAST:
        spec = builtins.get("attack", name)
        assert spec.plugin == "attacks" and spec.default_steps == 1 and spec.norms == ("linf", "l2")
        assert "arXiv" in spec.description
    assert builtins.get("attack", "fgsm-rs").validate_params({}).model_dump() == {"alpha": 1.25}
    assert builtins.get("attack", "n-fgsm").validate_params({}).model_dump() == {"k": 2.0, "alpha": 1.0, "clip": None}
    params = LinfParams(eps="8/255", attack="n-fgsm", attack_params={"k": 1})
    assert params.steps == 1 and params.random_start is True and params.attack_params == {"k": 1.0, "alpha": 1.0, "clip": None}
    with pytest.raises(ValidationError, match=r"attack 'n-fgsm': k: .*greater than or equal to 0"):
        LinfParams(eps="8/255", attack="n-fgsm", attack_params={"k": -1})
    with pytest.raises(ValidationError, match=r"attack 'fgsm-rs': beta: .*(its parameters: alpha)"):
        LinfParams(eps="8/255", attack="fgsm-rs", attack_params={"beta": 1})
    # the spec parameters reach the run function
    a = get_attack("fgsm-rs", "linf", params={"alpha": 0.5})
    assert a.run.keywords == {"alpha": 0.5}


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 3))


@pytest.mark.parametrize("attack", sorted(FAST))
@pytest.mark.parametrize("loss", ["classic_at", "trades-ce", "trades-kl"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_one_training_step_with_classic_at_and_trades(attack, loss, norm):
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(16, 3, 4, 4, generator=gen), torch.randint(0, 3, (16,), generator=gen)
    params = (LinfParams if norm == "linf" else L2Params)(eps="8/255" if norm == "linf" else 0.5, attack=attack, seed=0)
    threat = LpThreat(norm, **params.model_dump())
    objective = {"classic_at": ClassicAT(), "trades-ce": Trades(1.0, "ce"), "trades-kl": Trades(1.0, "kl")}[loss]
    model = mlp()
    before = [p.detach().clone() for p in model.parameters()]
    step = FusedStep(model, objective, threat, torch.optim.SGD(model.parameters(), lr=0.5), Precision("fp32", "cpu"))
    out = step(x, y, threat.eps)
    assert math.isfinite(float(out.loss)) and out.n == 16
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    # the adversarial batch the step trained on is the attack's: a different point from x, within its bound
    x_adv = step.attack(x, y, threat.eps)
    bound = threat.eps * (3 if attack == "n-fgsm" else 1)
    assert 0 < float(lp_norm(x_adv - x, norm).max()) <= bound * (1 + 1e-5)


def test_evaluating_with_n_fgsm_is_flagged_as_leaving_the_ball(builtins):
    """N-FGSM's points lie outside the ε-ball by design: an evaluation with it says so; FGSM-RS passes."""
    from torch.utils.data import TensorDataset

    from rftbench.evaluation import evaluate

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 3))
    data = TensorDataset(torch.rand(32, 3, 4, 4), torch.randint(0, 3, (32,)))
    for attack, flagged in (("n-fgsm", True), ("fgsm-rs", False)):
        result = evaluate(model, data, [{"name": "linf", "eps": "8/255", "attack": attack}], progress=False)
        checks = {f["check"] for f in result["flags"]}
        assert ("budget_violation" in checks) is flagged, (attack, result["flags"])


@pytest.mark.parametrize("loss,threat", [
    ("classic_at", "{name: linf, eps: 4/255, attack: fgsm-rs}"),
    ("trades", "{name: linf, eps: 4/255, attack: n-fgsm, attack_params: {k: 1.5}}"),
])
def test_a_run_trains_with_a_fast_attack_and_records_the_union(engine_manager, tmp_path, loss, threat):
    """Config → run → record: the resolved training threat says what ran; the suite's two Lp threats give a union."""
    from rftbench import run
    from tests.test_run import tiny

    suite = "[{name: linf, eps: 4/255, attack: pgd, steps: 2}, {name: l2, eps: 0.2, attack: pgd, steps: 2}]"
    record = run(overrides=tiny(tmp_path, loss=loss, threat=threat, epochs=1, evaluation=suite), manager=engine_manager)
    assert record.status == "complete"
    trained = record.config["threat"]
    assert trained["attack"] in FAST and trained["steps"] == 1 and trained["random_start"] is True
    if trained["attack"] == "n-fgsm":
        assert trained["attack_params"] == {"k": 1.5, "alpha": 1.0, "clip": None}
    union = record.metrics["union"]
    assert union["of"] == list(record.metrics["threats"]) and union["n"] == 32
    assert union["acc"] <= min([record.metrics["clean_acc"]] + [t["acc"] for t in record.metrics["threats"].values()])


def test_bad_fast_attack_parameters_are_a_named_error_before_training(engine_manager, capsys, tmp_path):
    from tests.cli_helpers import run_cli
    from tests.test_cli_run import sets

    code, _, err = run_cli(capsys, "run", *sets(tmp_path, threat="{name: linf, eps: 4/255, attack: n-fgsm, attack_params: {k: -1}}"))
    assert code == 2 and "error:" in err and "attack 'n-fgsm': k:" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "run", *sets(tmp_path, threat="{name: l1, eps: 10, attack: fgsm-rs}"))
    assert code == 2 and "attack 'fgsm-rs' does not support the l1 norm" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("*.json"))


@pytest.mark.parametrize("attack", sorted(FAST))
@pytest.mark.parametrize("loss", ["classic_at", "trades-kl"])
def test_a_fused_step_with_a_fast_attack_makes_no_sync(attack, loss):
    """The profiler-based sync counter (rftbench.engine.syncs) sees no host read in a fused fast-AT step, early stop included."""
    from rftbench.engine.syncs import count_syncs

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10))
    threat = LpThreat("linf", **LinfParams(eps="4/255", attack=attack, restarts=2).model_dump())
    objective = ClassicAT() if loss == "classic_at" else Trades(6.0, "kl")
    step = FusedStep(model, objective, threat, torch.optim.AdamW(model.parameters(), lr=1e-3), Precision("fp32", "cpu"),
                     check_finite=False)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 3, 8, 8, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    step(x, y, 4 / 255)  # warm-up (lazy optimiser state)
    _, count = count_syncs(step, x, y, 4 / 255)
    assert count.total == 0, count
    _, count = count_syncs(FAST[attack], model.eval(), x, y, norm="linf", eps=4 / 255, early_stop=True, restarts=2)
    assert count.total == 0, count


def test_the_methods_noise_wins_over_a_loss_start_point(task):
    """TRADES-KL's x + 0.001·N(0, 1) start (``x_init``) is used only without a random start."""
    model, x, y = task
    eps = 8 / 255
    x_init = x + 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    for fn in FAST.values():
        noisy = fn(model, x, y, norm="linf", eps=eps, x_init=x_init, generator=torch.Generator().manual_seed(2))
        assert torch.equal(noisy, fn(model, x, y, norm="linf", eps=eps, generator=torch.Generator().manual_seed(2)))
        from_init = fn(model, x, y, norm="linf", eps=eps, x_init=x_init, random_start=False)
        g = input_grad(model, x_init.clamp(0, 1), y).sign()
        step = 1.25 * eps if fn is fgsm_rs else eps
        expected = x_init.clamp(0, 1) + step * g
        if fn is fgsm_rs:
            expected = x + (expected - x).clamp(-eps, eps)
        torch.testing.assert_close(from_init, expected.clamp(0, 1), atol=1e-6, rtol=0)
