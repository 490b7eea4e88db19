"""Gradient-masking checks: each symptom flagged, the numbers still reported, never silently."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rftbench.evaluation import evaluate
from rftbench.evaluation.masking import check_attack_order
from tests.plugins import evaluation as fx
from tests.plugins.evaluation import manager, one_thread  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("one_thread")


class Softmaxed(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).softmax(1)


class Noisy(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x + 0.05 * torch.randn_like(x))


class Quantised(nn.Module):
    """Rounds its input to 4 levels: the input gradient is exactly zero (shattered gradients)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 3) / 3)


class Purifying(nn.Module):
    """Runs a gradient step on its own input inside the forward pass (a dynamic defence)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        with torch.enable_grad():
            z = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.model(z).logsumexp(1).sum(), z)
        return self.model(x - 0.001 * g.sign())


@pytest.mark.parametrize(
    ("wrap", "check"),
    [(Softmaxed, "probabilities"), (Noisy, "randomized"), (Quantised, "zero_gradients"), (Purifying, "dynamic")],
)
def test_model_symptoms_are_flagged_and_mark_results_unreliable(manager, wrap, check):
    model, data = fx.linear_problem(n=16)
    result = evaluate(wrap(model), data, ["tiny_fgsm"], progress=False)
    assert check in [f["check"] for f in result["flags"]]
    assert result["reliable"] is False
    record = result["threats"]["tiny_fgsm:0.1"]
    assert record["reliable"] is False and 0 <= record["acc"] <= 1  # reported, but marked


def test_a_plain_linear_model_raises_no_flag(manager):
    model, data = fx.linear_problem(n=16)
    result = evaluate(model, data, ["tiny_fgsm"], progress=False)
    assert result["flags"] == [] and result["reliable"]


def test_square_beating_the_white_box_attacks_is_flagged():
    after = {"clean": 0.9, "apgd-ce": 0.6, "apgd-t": 0.55, "fab-t": 0.55, "square": 0.40}
    (flag,) = check_attack_order("linf:4/255", {"after": after})
    assert flag["check"] == "square_beats_white_box" and flag["threat"] == "linf:4/255" and "15.0 points" in flag["message"]
    after["square"] = 0.549  # within AutoAttack's 0.2-point tolerance
    assert check_attack_order("linf:4/255", {"after": after}) == []
