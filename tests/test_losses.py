"""plugins/losses.py: CE, Classic AT, TRADES (CE or KL inner maximisation) and MART."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rftbench.attacks import pgd
from rftbench_plugins.losses import ClassicAT, CrossEntropy, Mart, Trades


@pytest.fixture
def logits():
    gen = torch.Generator().manual_seed(0)
    clean = torch.randn(6, 4, generator=gen)
    adv = clean + 0.5 * torch.randn(6, 4, generator=gen)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    return clean, adv, y


def test_specs(builtins):
    assert set(builtins.names("loss")) >= {"ce", "classic_at", "trades", "mart"}
    assert builtins.get("loss", "ce").adversarial is False  # the spec is the one source (the objects do not say)
    assert all(builtins.get("loss", n).adversarial for n in ("classic_at", "trades", "mart"))
    assert not any(hasattr(builtins.get("loss", n).build(), "adversarial") for n in ("ce", "classic_at", "trades", "mart"))
    assert builtins.get("loss", "trades").validate_params({}).model_dump() == {"beta": 1.0, "inner": "ce"}
    assert builtins.get("loss", "mart").validate_params({}).beta == 6.0


def test_ce_and_classic_at(logits):
    clean, adv, y = logits
    assert torch.allclose(CrossEntropy()(y, clean=clean), F.cross_entropy(clean, y))
    assert torch.allclose(ClassicAT()(y, adv=adv), F.cross_entropy(adv, y))
    assert not ClassicAT.uses_clean and ClassicAT.uses_adv and CrossEntropy.uses_clean and not CrossEntropy.uses_adv


def test_trades_is_ce_plus_beta_kl(logits):
    clean, adv, y = logits
    p, q = clean.softmax(1), adv.softmax(1)
    kl = (p * (p.log() - q.log())).sum(1).mean()
    expected = F.cross_entropy(clean, y) + 6.0 * kl
    assert torch.allclose(Trades(beta=6.0, inner="ce")(y, clean=clean, adv=adv), expected, atol=1e-6)
    assert torch.allclose(Trades(beta=0.0, inner="ce")(y, clean=clean, adv=adv), F.cross_entropy(clean, y))
    # bf16 logits are upcast: the value matches fp32 within bf16 rounding of the inputs
    low = Trades(beta=6.0, inner="ce")(y, clean=clean.bfloat16(), adv=adv.bfloat16())
    assert low.dtype == torch.float32 and abs(low.item() - expected.item()) < 0.1


def test_trades_inner_objective():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).eval()
    x, y = torch.rand(5, 3, 2, 2), torch.randint(0, 3, (5,))
    assert Trades(1.0, "ce").attack_objective(model, x, y) is None
    objective = Trades(1.0, "kl").attack_objective(model, x, y)
    at_clean = objective(model(x), y, None).detach()
    assert at_clean.shape == (5,) and float(at_clean.abs().max()) < 1e-6  # KL(p‖p) = 0
    idx = torch.tensor([4, 0])
    torch.testing.assert_close(objective(model(x)[idx], y[idx], idx), at_clean[idx])
    x_adv = pgd(model, x, y, norm="linf", eps=0.1, steps=3, random_start=True, objective=objective)
    with torch.no_grad():
        assert float(objective(model(x_adv), y, None).mean()) > 1e-4


def _mart_reference(clean, adv, y, beta):
    """MART written out example by example, as in the paper's equation (eq. 9)."""
    total = 0.0
    for c, a, t in zip(clean, adv, y.tolist()):
        pa, pc = a.softmax(0), c.softmax(0)
        other = max((pa[k].item(), k) for k in range(len(pa)) if k != t)[1]
        bce = -math.log(pa[t].item()) - math.log(1.0001 - pa[other].item() + 1e-12)
        kl = sum(pc[k].item() * (math.log(pc[k].item()) - math.log(pa[k].item() + 1e-12)) for k in range(len(pc)))
        total += bce + beta * kl * (1.0000001 - pc[t].item())
    return total / len(y)


def test_mart_matches_its_definition(logits):
    clean, adv, y = logits
    got = Mart(beta=6.0)(y, clean=clean, adv=adv).item()
    assert got == pytest.approx(_mart_reference(clean, adv, y, 6.0), rel=1e-5)
    assert Mart(beta=6.0).attack_objective(None, None, None) is None


@pytest.mark.parametrize("loss", [CrossEntropy(), ClassicAT(), Trades(1.0, "ce"), Mart(6.0)])
def test_losses_are_differentiable(loss, logits):
    clean, adv, y = (t.clone().requires_grad_(True) if t.is_floating_point() else t for t in logits)
    out = loss(y, clean=clean, adv=adv)
    out.backward()
    assert out.dim() == 0 and torch.isfinite(out)
    grads = [t.grad for t in (clean, adv) if t.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("loss", [Trades(1.0, "ce"), Mart(6.0)])
def test_kl_gradient_stays_finite_where_the_clean_softmax_underflows(loss):
    """A logit gap above ~104 makes softmax(clean) exactly 0 in fp32: the KL through ``F.softmax`` as
    target had NaN gradients there (a finite loss, then NaN weights; met in a linear probe)."""
    clean = torch.tensor([[120.0, 0.0, -5.0], [0.0, 1.0, 2.0]], requires_grad=True)
    adv = torch.tensor([[110.0, 3.0, 0.0], [0.5, 1.0, 1.5]], requires_grad=True)
    y = torch.tensor([0, 2])
    assert float(clean.softmax(1)[0, 2]) == 0.0  # the case: an underflowed class
    out = loss(y, clean=clean, adv=adv)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(clean.grad).all() and torch.isfinite(adv.grad).all()
    # the same gradient as the textbook form where that form is finite (the second row alone)
    c2, a2 = clean[1:].detach().clone().requires_grad_(True), adv[1:].detach().clone().requires_grad_(True)
    p, q = c2.softmax(1), a2.softmax(1)
    if isinstance(loss, Trades):
        ref = F.cross_entropy(c2, y[1:]) + (p * (p.log() - q.log())).sum(1).mean()
        ref.backward()
        c3, a3 = clean[1:].detach().clone().requires_grad_(True), adv[1:].detach().clone().requires_grad_(True)
        loss(y[1:], clean=c3, adv=a3).backward()
        torch.testing.assert_close(c3.grad, c2.grad)
        torch.testing.assert_close(a3.grad, a2.grad)
