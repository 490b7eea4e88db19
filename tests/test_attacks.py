"""rftbench.attacks: PGD, FGSM, APGD-CE, the registry, the ball geometry and the attack mode."""

from __future__ import annotations

import pytest
import torch
import torchattacks
from torch import nn

from rftbench.attacks import (
    apgd_ce,
    attack_mode,
    attacks_for,
    default_attack,
    fgsm,
    get_attack,
    lp_norm,
    pgd,
    project,
)
from rftbench.attacks.apgd import _checkpoints
from rftbench.errors import RftbenchError, UnknownNameError

ATTACK_FNS = {"pgd": pgd, "fgsm": fgsm, "apgd-ce": apgd_ce}


@pytest.fixture(scope="module")
def task():
    """A small MLP trained on noisy prototypes: accurate on clean data, breakable at 4/255."""
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


def test_pgd_matches_torchattacks_without_random_start(task):
    model, x, y = task
    ours = pgd(model, x, y, norm="linf", eps=8 / 255, steps=5, step_size=2 / 255, random_start=False)
    theirs = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=5, random_start=False)(x, y)
    assert torch.equal(ours, theirs)
    ours = pgd(model, x, y, norm="l2", eps=0.5, steps=5, step_size=0.1, random_start=False)
    theirs = torchattacks.PGDL2(model, eps=0.5, alpha=0.1, steps=5, random_start=False)(x, y)
    # torchattacks normalises the gradient of the batch-mean loss with a 1e-10 guard, which
    # nudges confidently classified points (tiny gradients); ours uses the per-example sum.
    torch.testing.assert_close(ours, theirs, atol=2e-3, rtol=0)
    assert (ours - theirs).abs().gt(1e-6).float().mean() < 0.05


@pytest.mark.parametrize("name", sorted(ATTACK_FNS))
@pytest.mark.parametrize("norm,eps", [("linf", 8 / 255), ("l2", 0.3)])
@pytest.mark.parametrize("early_stop", [False, True])
def test_attacks_stay_in_ball_and_box_and_lower_accuracy(task, name, norm, eps, early_stop):
    model, x, y = task
    x_adv = ATTACK_FNS[name](model, x, y, norm=norm, eps=eps, steps=5, early_stop=early_stop, restarts=2)
    assert x_adv.dtype == torch.float32 and x_adv.shape == x.shape
    assert float(lp_norm(x_adv - x, norm).max()) <= eps * (1 + 1e-5)
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    assert accuracy(model, x_adv, y) < accuracy(model, x, y) - 0.5


def test_apgd_is_at_least_as_strong_as_fgsm_and_matches_torchattacks(task):
    model, x, y = task
    apgd_acc = accuracy(model, apgd_ce(model, x, y, norm="linf", eps=4 / 255, steps=10), y)
    fgsm_acc = accuracy(model, fgsm(model, x, y, norm="linf", eps=4 / 255), y)
    reference = accuracy(model, torchattacks.APGD(model, eps=4 / 255, steps=10)(x, y), y)
    assert apgd_acc <= fgsm_acc
    assert abs(apgd_acc - reference) <= 0.02


@pytest.mark.parametrize("name", ["pgd", "apgd-ce"])
def test_early_stop_never_helps_the_defender(task, name):
    """A point's trajectory is the same until it breaks, so dropping broken points can only lower accuracy."""
    model, x, y = task
    kw = dict(norm="linf", eps=3 / 255, steps=10, random_start=False)
    full = accuracy(model, ATTACK_FNS[name](model, x, y, **kw), y)
    early = accuracy(model, ATTACK_FNS[name](model, x, y, early_stop=True, **kw), y)
    assert early <= full


def test_no_random_start_is_deterministic_and_generator_seeds_random_start(task):
    model, x, y = task
    a = apgd_ce(model, x, y, norm="linf", eps=4 / 255, steps=4)
    b = apgd_ce(model, x, y, norm="linf", eps=4 / 255, steps=4)
    assert torch.equal(a, b)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    c = pgd(model, x, y, norm="linf", eps=4 / 255, steps=2, generator=g())
    d = pgd(model, x, y, norm="linf", eps=4 / 255, steps=2, generator=g())
    e = pgd(model, x, y, norm="linf", eps=4 / 255, steps=2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(c, d) and not torch.equal(c, e)


def test_custom_objective_is_maximised(task):
    model, x, y = task

    def logit_of_class_0(logits, _y, index):
        return logits[:, 0].float()

    with torch.no_grad():
        before = model(x)[:, 0].mean()
        after = model(pgd(model, x, y, norm="linf", eps=8 / 255, steps=5, objective=logit_of_class_0))[:, 0].mean()
    assert after > before + 0.1


def test_perturbation_stays_fp32_under_bf16_autocast(task):
    model, x, y = task
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_adv = apgd_ce(model, x, y, norm="linf", eps=4 / 255, steps=3)
    assert x_adv.dtype == torch.float32
    assert float((x_adv - x).abs().max()) <= 4 / 255 + 1e-6


def test_zero_budget_returns_the_clean_images(task):
    model, x, y = task
    for fn in ATTACK_FNS.values():
        assert torch.equal(fn(model, x, y, norm="linf", eps=0.0, steps=3), x)


def test_attack_mode_freezes_and_restores(task):
    model, x, y = task
    model.zero_grad(set_to_none=True)
    model.train()
    model[1].weight.requires_grad_(False)
    with attack_mode(model):
        assert not model.training and not any(p.requires_grad for p in model.parameters())
        pgd(model, x, y, norm="linf", eps=4 / 255, steps=2)
    assert model.training and model[1].weight.requires_grad is False and model[1].bias.requires_grad
    assert all(p.grad is None for p in model.parameters())
    model[1].weight.requires_grad_(True)
    model.eval()


def test_l1_projection():
    delta = torch.randn(5, 3, 4, 4)
    out = project(delta, "l1", 2.0)
    assert torch.all(lp_norm(out, "l1") <= 2.0 + 1e-5)
    small = delta * 1e-3
    assert torch.equal(project(small, "l1", 2.0), small)
    # projection is idempotent and never increases any coordinate's size
    torch.testing.assert_close(project(out, "l1", 2.0), out)
    assert torch.all(out.abs() <= delta.abs() + 1e-7)


#: Step-size checkpoints of the reference code (pyautoattack ``autopgd_base.py``): windows of
#: max(int(.22N), 1) steps, shrinking by max(int(.03N), 1) to max(int(.06N), 1).
REFERENCE_CHECKPOINTS = {
    5: [1, 2, 3, 4, 5],
    7: [1, 2, 3, 4, 5, 6, 7],
    10: [2, 3, 4, 5, 6, 7, 8, 9, 10],
    20: [4, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
    100: [22, 41, 57, 70, 80, 87, 93, 99],
}


@pytest.mark.parametrize("steps", sorted(REFERENCE_CHECKPOINTS))
def test_apgd_checkpoints_follow_the_reference_code(steps):
    from pyautoattack.autopgd_base import APGDAttack

    ref = APGDAttack(nn.Identity(), n_iter=steps, eps=0.1, device="cpu")
    first, shrink, shortest = ref.n_iter_2, ref.size_decr, ref.n_iter_min
    expected = REFERENCE_CHECKPOINTS[steps]
    assert expected[0] == first and all(b - a >= shortest for a, b in zip(expected, expected[1:]))
    assert expected[1] - expected[0] == max(first - shrink, shortest)
    assert sorted(_checkpoints(steps)) == expected


class _Sin(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(z)


@pytest.fixture(scope="module")
def wiggly():
    """A model whose loss oscillates along the attack path, so that step halving happens often."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 16), _Sin(), nn.Linear(16, 4)).eval()
    with torch.no_grad():
        model[1].weight.mul_(8.0)
    x = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


@pytest.mark.parametrize("steps", sorted(REFERENCE_CHECKPOINTS))
@pytest.mark.parametrize("norm,eps", [("linf", 8 / 255), ("l2", 1.0)])
def test_apgd_best_points_are_those_of_pyautoattack(wiggly, steps, norm, eps):
    """The highest-loss point of each example, bit for bit, against the reference run from x."""
    from pyautoattack.autopgd_base import APGDAttack

    model, x, y = wiggly
    ref = APGDAttack(model, n_iter=steps, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps, device="cpu", seed=0)
    ref.init_hyperparam(x)
    best, robust, best_loss, _ = ref.attack_single_run(x, y, x_init=x.clone())
    ours = apgd_ce(model, x, y, norm=norm, eps=eps, steps=steps)
    assert torch.equal(ours, best)
    # with early stopping, the same points are broken
    broken = apgd_ce(model, x, y, norm=norm, eps=eps, steps=steps, early_stop=True)
    with torch.no_grad():
        assert torch.equal(model(broken).argmax(1) == y, robust)


def test_attacks_are_plugin_contributions(builtins):
    assert builtins.names("attack") == ["apgd-ce", "apgd-l1", "autoattack", "fgsm", "fgsm-rs", "n-fgsm", "pgd"]
    assert builtins.plugin_of("attack", "pgd") == "attacks"
    assert attacks_for("linf") == attacks_for("l2") == ["apgd-ce", "autoattack", "fgsm", "fgsm-rs", "n-fgsm", "pgd"]
    assert default_attack("linf") == "apgd-ce" and default_attack("l1") == "apgd-l1"
    assert get_attack("pgd").run is pgd and get_attack("apgd-ce", "linf").random_start is False
    with pytest.raises(UnknownNameError, match="Did you mean: pgd"):
        get_attack("pgdd")
    with pytest.raises(RftbenchError, match="does not support the l1 norm"):
        get_attack("pgd", "l1")


def test_a_plugin_attack_can_be_the_default_for_a_norm_nobody_covers(fresh_manager):
    from rftbench import AttackSpec, hookimpl
    import rftbench.attacks as attacks

    class Toy:
        @hookimpl
        def rftbench_add_attacks(self):
            return [AttackSpec(name="toy-l1", norms=("l1",), factory=lambda: lambda model, x, y, **kw: x.clone(),
                               description="copies")]

    assert attacks.default_attack("l1") is None
    fresh_manager.register(Toy(), "toy")
    assert attacks.default_attack("l1") == "toy-l1"
    assert attacks.get_attack("toy-l1", "l1").plugin == "toy"
