"""Gradient-masking checks, after AutoAttack's (Croce & Hein 2020, ``flags_doc.md``).

Each check returns *flags*: ``{"check", "threat", "severity", "message"}``. A ``warning``
flag marks the robust accuracies it concerns (``threat`` = a label, or ``None`` for all
adversarial threats) as unreliable in the result; the numbers are still reported, never
silently. ``info`` flags record documented adjustments.

Checks on the model (once per evaluation, on the first batch):

- ``probabilities``: the outputs look like probabilities (in [0, 1], rows summing to 1), so
  cross-entropy attacks see vanishing gradients; the model should return logits;
- ``randomized``: two forward passes of the same batch differ (a randomised defence needs EOT);
- ``zero_gradients``: points whose input gradient of the cross-entropy is exactly zero;
- ``non_finite``: NaN or infinite logits;
- ``dynamic``: the forward pass itself calls autograd (a test-time defence that adapts).

Checks on an attack (per threat model):

- ``square_beats_white_box``: the black-box Square attack lowers the accuracy left by the
  white-box attacks by more than 0.2 points (AutoAttack's threshold);
- ``budget_violation``: an attack returned points outside its ε-ball or outside [0, 1].
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import attack_mode

if TYPE_CHECKING:
    from .context import EvalContext

#: Square may lower the white-box attacks' accuracy by at most this much (AutoAttack's alpha).
SQUARE_TOLERANCE = 0.002
#: Outputs within this of a probability simplex are flagged.
PROBABILITY_TOLERANCE = 1e-5
#: Two forward passes differing (cosine-normalised L2) by more than this are flagged.
RANDOMIZED_TOLERANCE = 1e-4
#: Attacks known to use no gradient.
BLACK_BOX = ("square",)


def flag(check: str, threat: str | None, message: str, severity: str = "warning") -> dict[str, Any]:
    """One flag record (``threat=None`` concerns every adversarial threat model)."""
    return {"check": check, "threat": threat, "severity": severity, "message": message}


def _first_batch(ctx: EvalContext, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    x, y, _ = next(ctx.batches(batch_size=min(size, ctx.batch_size)))
    return x, y


class _AutogradInForward:
    """Counts calls into autograd made while a forward pass runs (AutoAttack's ``check_dynamic``)."""

    NAMES = frozenset({"grad", "backward", "_make_grads"})

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_name in self.NAMES and "torch" in frame.f_code.co_filename:
            self.calls += 1


def check_model(ctx: EvalContext) -> list[dict[str, Any]]:
    """The model-level checks, on the first batch (see the module docstring)."""
    flags: list[dict[str, Any]] = []
    model = ctx.model
    with attack_mode(model):
        x, y = _first_batch(ctx)
        with torch.no_grad():
            first = model(x).float()
            second = model(x).float()
        if not torch.isfinite(first).all():
            flags.append(flag("non_finite", None, "the model returns NaN or infinite logits; robust accuracy is meaningless until that is fixed"))
            return flags
        if (first.max() < 1 + PROBABILITY_TOLERANCE and first.min() > -PROBABILITY_TOLERANCE
                and ((first.sum(-1) - 1).abs() < PROBABILITY_TOLERANCE).all()):
            flags.append(flag("probabilities", None, "the model seems to output probabilities, not logits: gradient attacks on the cross-entropy see vanishing gradients; remove the final softmax"))
        a = first / (first.norm(dim=1, keepdim=True) + 1e-10)
        b = second / (second.norm(dim=1, keepdim=True) + 1e-10)
        if (a - b).norm(dim=1).max() > RANDOMIZED_TOLERANCE or not torch.equal(first.argmax(1), second.argmax(1)):
            flags.append(flag("randomized", None, "two forward passes on the same images differ: the model is randomised; deterministic attacks overestimate its robustness (use expectation over transformation)"))
        with torch.enable_grad():
            xg = x.clone().requires_grad_(True)
            loss = F.cross_entropy(model(xg).float(), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, xg)
        zero = int((grad.flatten(1).abs().sum(1) == 0).sum())
        if zero:
            flags.append(flag("zero_gradients", None, f"{zero} of {len(y)} points have an exactly zero input gradient: gradient-based attacks cannot move them, and their robust accuracy may be overestimated"))
        tracer = _AutogradInForward()
        small = x[:2]
        previous = sys.getprofile()
        sys.setprofile(tracer)
        try:
            with torch.no_grad():
                model(small)
        finally:
            sys.setprofile(previous)
        if tracer.calls:
            flags.append(flag("dynamic", None, "the forward pass calls autograd itself (a dynamic, test-time defence): standard attacks may be insufficient; use an adaptive attack"))
    return flags


def check_attack_order(label: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """AutoAttack's Square check on a threat result holding ``after`` (accuracy after each attack, in order)."""
    after = result.get("after")
    if not isinstance(after, dict) or not any(k in after for k in BLACK_BOX):
        return []
    white = [v for k, v in after.items() if k not in BLACK_BOX]
    if not white:
        return []
    best_white = min(white)
    flags = []
    for name in BLACK_BOX:
        if name in after and after[name] < best_white - SQUARE_TOLERANCE:
            flags.append(flag(
                "square_beats_white_box", label,
                f"the black-box {name} attack lowered the robust accuracy left by the white-box attacks by "
                f"{100 * (best_white - after[name]):.1f} points: gradients are probably masked, so white-box numbers are unreliable",
            ))
    return flags
