"""rftbench.engine.step: the fused adversarial step."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rftbench.attacks import apgd_ce
from rftbench.engine import FusedStep, NonFiniteLossError, Precision, has_training_batchnorm
from rftbench_plugins.losses import ClassicAT, CrossEntropy, Trades
from rftbench_plugins.threats import LinfParams, LpThreat
from tests.plugins.evaluation import one_thread  # noqa: F401 - fixture

#: Many tiny ops: on a shared 2-core machine two torch threads make these tests ~10x slower.
pytestmark = pytest.mark.usefixtures("one_thread")


def threat(**kw):
    return LpThreat("linf", **LinfParams(eps="8/255", attack="pgd", steps=2, random_start=False, **kw).model_dump())


def mlp(bn: bool = False) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(48, 16)] + ([nn.BatchNorm1d(16)] if bn else []) + [nn.ReLU(), nn.Linear(16, 3)]
    return nn.Sequential(*layers)


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(1)
    return torch.rand(16, 3, 4, 4, generator=gen), torch.randint(0, 3, (16,), generator=gen)


FP32 = Precision("fp32", "cpu")


def grads(model):
    return [p.grad.clone() for p in model.parameters()]


def test_concatenated_forward_equals_two_forwards_without_batchnorm(batch):
    x, y = batch
    results = []
    for concat in (True, False):
        model = mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        step = FusedStep(model, Trades(1.0, "ce"), threat(), opt, FP32)
        step.concat = concat
        out = step(x, y, 8 / 255, update=False)
        results.append((out.loss, grads(model)))
    torch.testing.assert_close(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_batchnorm_in_train_mode_keeps_batches_apart(batch):
    model = mlp(bn=True).train()
    step = FusedStep(model, Trades(1.0, "ce"), threat(), torch.optim.SGD(model.parameters(), lr=0.1), FP32)
    assert has_training_batchnorm(model) and not step.concat
    model.eval()
    step.refresh()
    assert step.concat


def test_attack_runs_in_eval_mode_with_frozen_parameters(batch):
    x, y = batch
    model = mlp(bn=True).train()
    seen = []

    class Spy(LpThreat):
        def perturb(self, model, x, y, **kw):
            seen.append((model.training, any(p.requires_grad for p in model.parameters())))
            return super().perturb(model, x, y, **kw)

    spy = Spy("linf", **LinfParams(eps="8/255", attack="pgd", steps=1).model_dump())
    step = FusedStep(model, ClassicAT(), spy, torch.optim.SGD(model.parameters(), lr=0.1), FP32)
    step(x, y, 8 / 255)
    assert seen == [(False, False)]
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_zero_eps_skips_the_attack_and_equals_clean_training(batch):
    x, y = batch
    calls = []

    class Counting(LpThreat):
        def perturb(self, *a, **kw):
            calls.append(1)
            return super().perturb(*a, **kw)

    losses = []
    for loss in (ClassicAT(), CrossEntropy()):
        model = mlp()
        t = Counting("linf", **LinfParams(eps="8/255", attack="pgd", steps=1).model_dump())
        step = FusedStep(model, loss, t, torch.optim.SGD(model.parameters(), lr=0.0), FP32)
        losses.append(step(x, y, 0.0, update=False).loss)
    assert not calls
    torch.testing.assert_close(losses[0], losses[1])


def test_accumulation_matches_one_large_batch(batch):
    x, y = batch
    big = mlp()
    FusedStep(big, ClassicAT(), threat(), torch.optim.SGD(big.parameters(), lr=0.0), FP32)(x, y, 8 / 255, update=False)
    small = mlp()
    step = FusedStep(small, ClassicAT(), threat(), torch.optim.SGD(small.parameters(), lr=0.0), FP32, accumulation=2)
    step(x[:8], y[:8], 8 / 255, update=False)
    step(x[8:], y[8:], 8 / 255, update=False)
    for a, b in zip(grads(big), grads(small)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_update_steps_and_clears_gradients(batch):
    x, y = batch
    model = mlp()
    before = [p.clone() for p in model.parameters()]
    with torch.no_grad():  # the adversarial points of the step (PGD from x: deterministic), before the update
        expected_correct = int((model(threat().perturb(model, x, y)).argmax(1) == y).sum())
    step = FusedStep(model, ClassicAT(), threat(), torch.optim.SGD(model.parameters(), lr=0.1), FP32)
    out = step(x, y, 8 / 255)
    assert all(p.grad is None for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert out.n == 16 and int(out.correct) == expected_correct and 0 < expected_correct < 16


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_step_trains_and_keeps_fp32_weights(batch, precision):
    """Ten TRADES steps on one batch: every weight moves, stays fp32, and the loss falls."""
    x, y = batch
    model = mlp()
    before = [p.detach().clone() for p in model.parameters()]
    step = FusedStep(model, Trades(1.0, "ce"), threat(), torch.optim.SGD(model.parameters(), lr=0.5), Precision(precision, "cpu"))
    losses = [float(step(x, y, 8 / 255).loss) for _ in range(10)]
    assert all(map(math.isfinite, losses)) and all(p.dtype == torch.float32 for p in model.parameters())
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert losses[-1] < 0.8 * losses[0]


def test_trades_kl_attack_starts_at_x_plus_small_gaussian_noise(batch):
    """The default threat (APGD-CE, no random start) with TRADES' KL inner attack, as the original code."""
    x, y = batch
    model = mlp().eval()
    seen = {}

    class Spy(LpThreat):
        def perturb(self, model, x, y, **kw):
            seen.update(kw)
            return super().perturb(model, x, y, **kw)

    params = LinfParams(eps="8/255").model_dump()
    assert params["attack"] == "apgd-ce" and params["random_start"] is False
    loss = Trades(1.0, "kl")
    step = FusedStep(model, loss, Spy("linf", **params), torch.optim.SGD(model.parameters(), lr=0.0), FP32)
    torch.manual_seed(5)
    x_adv = step.attack(x, y, 8 / 255)
    noise = seen["x_init"] - x
    assert 0.0008 < float(noise.std()) < 0.0012 and abs(float(noise.mean())) < 2e-4
    torch.manual_seed(5)
    start = x + 0.001 * torch.randn(x.shape)
    expected = apgd_ce(model, x, y, norm="linf", eps=8 / 255, steps=params["steps"], x_init=start,
                       objective=loss.attack_objective(model, x, y))
    assert torch.equal(x_adv, expected)
    objective = loss.attack_objective(model, x, y)
    with torch.no_grad():
        assert float(objective(model(x_adv), y, None).mean()) > 1e-4
    assert Trades(1.0, "ce").attack_start(x) is None


def test_channels_last_inputs(batch):
    x, y = batch
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(16, 3)).to(memory_format=torch.channels_last)
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    step = FusedStep(model, ClassicAT(), threat(), torch.optim.SGD(model.parameters(), lr=0.1), FP32, channels_last=True)
    step(x, y, 8 / 255)
    assert seen and all(seen)


def test_non_finite_loss_raises(batch):
    x, y = batch
    model = mlp()
    with torch.no_grad():
        model[1].weight.fill_(float("nan"))
    step = FusedStep(model, CrossEntropy(), None, torch.optim.SGD(model.parameters(), lr=0.1), FP32)
    with pytest.raises(NonFiniteLossError, match="nan"):
        step(x, y, 0.0)
