"""Fixtures for the evaluation tests: a tiny FGSM threat model plugin, linear models, tiny data."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.utils.data import TensorDataset

from rftbench import Epsilon, Params, ThreatModelSpec, hookimpl


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


@hookimpl
def rftbench_add_threat_models():
    return [
        ThreatModelSpec(name="tiny_fgsm", description="FGSM for tests.", params=FGSMParams, factory=TinyFGSM, norm="linf"),
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
