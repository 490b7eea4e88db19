"""Fixtures for the evaluation tests: a tiny FGSM threat model plugin, linear models, tiny data."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.utils.data import TensorDataset

from rftbench import Epsilon, Params, ThreatModelSpec, hookimpl


@pytest.fixture
def manager(fresh_manager):
    """A fresh plugin manager with this module's fixture plugin registered (the evaluation test modules import it)."""
    import sys

    fresh_manager.register(sys.modules[__name__], "eval_fixtures")
    return fresh_manager


@pytest.fixture
def one_thread():
    """torch on one thread for the test, restored after: these tests run many tiny ops, which two
    threads on a shared, busy CPU make 10-40x slower (measured: 0.3 s vs 12.8 s for one test).
    Test modules use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class FGSMParams(Params):
    eps: Epsilon = Field(0.1, le=1.0)


class TinyFGSM:
    """One signed-gradient step, projected and clipped (enough to exercise the evaluator)."""

    norm = "linf"

    def __init__(self, eps: float):
        self.eps = eps

    def label(self) -> str:
        return f"tiny_fgsm:{self.eps:g}"

    def perturb(self, model, x, y, *, eps=None):
        eps = self.eps if eps is None else eps
        x = x.clone().requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(model(x), y)
            (grad,) = torch.autograd.grad(loss, x)
        return (x + eps * grad.sign()).clamp(0, 1).detach()


class BrokenFGSM(TinyFGSM):
    """Steps twice too far: the evaluator must flag the budget violation."""

    def label(self) -> str:
        return f"broken_fgsm:{self.eps:g}"

    def perturb(self, model, x, y, *, eps=None):
        return (x + 2 * self.eps).clamp(0, 1)


class NoisyFGSM(TinyFGSM):
    """FGSM from a random start in the ε-ball (torch's global RNG, which the evaluator seeds);
    ``SEEN`` keeps a digest of every adversarial batch, so tests can see what the randomness did."""

    SEEN: list[str] = []

    def label(self) -> str:
        return f"noisy_fgsm:{self.eps:g}"

    def perturb(self, model, x, y, *, eps=None):
        import hashlib

        eps = self.eps if eps is None else eps
        start = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        x_adv = torch.min(torch.max(super().perturb(model, start, y, eps=eps / 2), x - eps), x + eps).clamp(0, 1)
        NoisyFGSM.SEEN.append(hashlib.sha256(x_adv.numpy().tobytes()).hexdigest())
        return x_adv


class AAParams(Params):
    norm: str = "linf"
    eps: Epsilon = Field(8 / 255, le=100.0)
    version: str = "standard"
    n_iter: int | None = None
    n_queries: int | None = None


class AAThreat:
    """A threat model whose attack is rftbench's AutoAttack (the way the threats plugin wraps attacks)."""

    def __init__(self, norm, eps, version, n_iter, n_queries):
        from rftbench.attacks.autoattack import AutoAttack

        self.norm, self.eps = norm, eps
        self.attack = AutoAttack(norm, eps, version=version, n_iter=n_iter, n_queries=n_queries)

    def label(self):
        return f"aa_{self.norm}:{self.eps:g}"

    def perturb(self, model, x, y, *, eps=None):
        return self.attack.perturb(model, x, y, eps=eps)

    # rftbench.threat.SetEvaluator and Reporter: the threat model measures its batches through its AutoAttack
    # (the documented contract; an attribute holding an evaluator is not looked into).
    def evaluate_batch(self, model, x, y, *, index):
        return self.attack.evaluate_batch(model, x, y, index=index)

    def evaluate_all(self, model, x, y, *, index, batch_size, device):
        return self.attack.evaluate_all(model, x, y, index=index, batch_size=batch_size, device=device)

    def report(self):
        return self.attack.report()


@hookimpl
def rftbench_add_threat_models():
    return [
        ThreatModelSpec(name="aa_test", description="AutoAttack for tests.", params=AAParams, factory=AAThreat, norm="other"),
        ThreatModelSpec(name="tiny_fgsm", description="FGSM for tests.", params=FGSMParams, factory=TinyFGSM, norm="linf"),
        ThreatModelSpec(name="noisy_fgsm", description="FGSM from a random start, for tests.", params=FGSMParams, factory=NoisyFGSM,
                        norm="linf"),
        ThreatModelSpec(name="broken_fgsm", description="A broken attack for tests.", params=FGSMParams, factory=BrokenFGSM, norm="linf"),
    ]


class LinearModel(nn.Module):
    """Logits ``W x + b`` on flattened images in [0, 1]; exposes ``features`` and ``head`` like a Classifier."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.head = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(weight)
            self.head.bias.copy_(bias)

    def features(self, x):
        return x.flatten(1)

    def forward(self, x):
        return self.head(self.features(x))


def linear_problem(n: int = 64, classes: int = 3, shape=(1, 4, 4), seed: int = 0):
    """A random linear model and points in [0, 1] labelled by the model (all clean-correct)."""
    g = torch.Generator().manual_seed(seed)
    d = int(torch.tensor(shape).prod())
    weight = torch.randn(classes, d, generator=g)
    bias = torch.randn(classes, generator=g) * 0.1
    x = torch.rand(n, *shape, generator=g) * 0.8 + 0.1
    model = LinearModel(weight, bias)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, TensorDataset(x, y)


DUAL = {"linf": 1.0, "l2": 2.0, "l1": float("inf")}


def exact_margins(model: LinearModel, x: torch.Tensor, y: torch.Tensor, norm: str) -> torch.Tensor:
    """Closed-form minimal ``norm`` perturbation that changes a linear model's decision (box ignored).

    For class j the margin (w_y - w_j)·x + b_y - b_j is removed by a perturbation of norm
    margin / ||w_y - w_j||_q, q the dual exponent; the minimum over j is the input margin.
    """
    w, b = model.head.weight.detach(), model.head.bias.detach()
    flat = x.flatten(1)
    logits = flat @ w.T + b
    diff_w = w[y].unsqueeze(1) - w.unsqueeze(0)  # [N, C, d]
    gap = logits.gather(1, y[:, None]) - logits  # [N, C]
    size = gap / diff_w.norm(p=DUAL[norm], dim=2).clamp_min(1e-12)
    size[torch.arange(len(y)), y] = float("inf")
    return size.min(1).values


def straddling_points(model: LinearModel, norm: str, eps: float, n_each: int = 12, seed: int = 1, shape=(3, 4, 4)):
    """Points in [0.1, 0.9] whose exact margin lies in (0.2ε, 0.9ε) or (1.1ε, 2ε), labelled by the model.

    With ε small (≤ 0.045) the minimal perturbation stays inside the [0, 1] box, so the closed form is exact.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4000, *shape, generator=g) * 0.8 + 0.1
    with torch.no_grad():
        y = model(x).argmax(1)
    m = exact_margins(model, x, y, norm)
    below = ((m > 0.2 * eps) & (m < 0.9 * eps)).nonzero().flatten()[:n_each]
    above = ((m > 1.1 * eps) & (m < 2 * eps)).nonzero().flatten()[:n_each]
    assert len(below) == n_each and len(above) == n_each, "widen the search"
    idx = torch.cat([below, above])
    return x[idx], y[idx], m[idx]


def linear_model(classes: int = 5, shape=(3, 4, 4), seed: int = 0) -> LinearModel:
    g = torch.Generator().manual_seed(seed)
    d = int(torch.tensor(shape).prod())
    return LinearModel(torch.randn(classes, d, generator=g), torch.randn(classes, generator=g) * 0.1)


class TinyCNN(nn.Module):
    """A small conv net for 3×8×8 images (tests that need a trained, non-linear model)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1, stride=2), nn.ReLU(), nn.Flatten())
        self.head = nn.Linear(16 * 4 * 4, classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


def template_data(n: int, classes: int = 10, seed: int = 0, noise: float = 0.25):
    """Images = a fixed random template per class + noise, clipped to [0, 1]."""
    g = torch.Generator().manual_seed(1234)
    templates = torch.rand(classes, 3, 8, 8, generator=g)
    g.manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = (templates[y] + noise * torch.randn(n, 3, 8, 8, generator=g)).clamp(0, 1)
    return x, y


def trained_cnn(classes: int = 10, steps: int = 150, seed: int = 0) -> TinyCNN:
    """A TinyCNN trained (standard CE, a few seconds on a CPU) on :func:`template_data`."""
    torch.manual_seed(seed)
    model = TinyCNN(classes)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        x, y = template_data(64, classes, seed=10_000 + step)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
