"""Adversarial sensitivity of a representation and the quantities of Nern et al.'s bounds (NeurIPS 2023).

For a classifier ``f = W g + b`` (a :class:`~rftbench.model.Classifier`: ``features`` = g, ``head`` = W):

- **AS** = mean over points of ``‖g(x+δ) − g(x)‖₂``, δ in the threat budget maximising that
  shift, found by PGD on the feature distance (random start, since the gradient vanishes at δ = 0);
- **CE gap / ‖W‖₂**: mean of ``(CE(f(x+δ')) − CE(f(x)))/‖W‖₂`` with δ' a PGD-CE adversary in the
  same budget. Lemma 1's form implemented: CE is √2-Lipschitz in the logits
  (‖softmax − e_y‖₂ ≤ √2), so ``|ΔCE| ≤ √2 ‖W‖₂ ‖Δg‖₂``: the normalised gap is at most √2 times the
  feature shift of the same δ', and low AS predicts a small gap;
- **certified share**: points classified correctly whose logit margin (true-class logit minus
  the largest other) exceeds ``max_j ‖W_y − W_j‖₂ · ‖g(x+δ) − g(x)‖₂`` (the form in the issue;
  Theorem 2's exact constant was not checked). Since δ comes from an attack, the shift is a
  lower bound of the worst case and the share an *estimate* of the certified share, shown next
  to the robust accuracy measured by the CE attack (and by the suite's own threat model of the
  same norm and budget, when there is one).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from .evaluate import EvaluationError

if TYPE_CHECKING:
    from .context import EvalContext


def split_classifier(model: nn.Module) -> tuple[Any, nn.Linear]:
    """``(features, head)`` of a classifier ``head(features(x))``; a clear error for anything else."""
    features = getattr(model, "features", None)
    head = getattr(model, "head", None)
    if not callable(features) or not isinstance(head, nn.Linear):
        raise EvaluationError(
            f"{type(model).__name__} does not expose a representation and a linear head: adversarial sensitivity "
            "needs model.features(x) (the representation g) and model.head (an nn.Linear W), as rftbench.model.Classifier has"
        )
    return features, head


class _Features(nn.Module):
    def __init__(self, features: Any):
        super().__init__()
        self.fn = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x).flatten(1)


class AdversarialSensitivity:
    """The ``adversarial_sensitivity`` metric (see the module docstring)."""

    def __init__(self, norm: str, eps: float, steps: int, step_size: float | None, n: int | None):
        self.norm, self.eps, self.steps, self.step_size, self.n = norm, float(eps), steps, step_size, n

    def label(self) -> str:
        from ..specs import format_number

        return f"adversarial_sensitivity:{self.norm}:{format_number(self.eps)}"

    def compute(self, ctx: EvalContext) -> dict[str, Any]:
        from ..attacks import pgd

        features, head = split_classifier(ctx.model)
        feature_model = _Features(features)
        w = head.weight.detach().float()
        spectral = float(torch.linalg.matrix_norm(w, ord=2))
        pair = torch.cdist(w, w)  # ‖W_i − W_j‖₂
        count = len(ctx) if self.n is None else min(self.n, len(ctx))
        shifts, ce_clean, ce_adv, robust, certified, correct = [], [], [], [], [], []
        indices = torch.arange(count)
        for x, y, index in ctx.batches(indices):
            with ctx.seeded(int(index[0])), torch.no_grad():
                g0 = feature_model(x)
            with ctx.seeded(int(index[0])):
                def shift(out: torch.Tensor, _y: torch.Tensor, idx: torch.Tensor | None, g0: torch.Tensor = g0) -> torch.Tensor:
                    ref = g0 if idx is None else g0[idx]
                    return (out.float() - ref).norm(dim=1)

                x_as = pgd(feature_model, x, y, norm=self.norm, eps=self.eps, steps=self.steps, step_size=self.step_size,
                           random_start=True, objective=shift)
                x_ce = pgd(ctx.model, x, y, norm=self.norm, eps=self.eps, steps=self.steps, step_size=self.step_size, random_start=True)
            with torch.no_grad():
                g_as = feature_model(x_as)
                s = (g_as - g0).norm(dim=1)
                logits = head(g0)
                adv_logits = ctx.model(x_ce)
                ok = logits.argmax(1) == y
                top_other = logits.scatter(1, y[:, None], -math.inf).amax(1)
                margin = logits.gather(1, y[:, None]).squeeze(1) - top_other
                lipschitz = pair[y].amax(1)  # max_j ‖W_y − W_j‖₂
                shifts.append(s.cpu())
                ce_clean.append(F.cross_entropy(logits, y, reduction="none").cpu())
                ce_adv.append(F.cross_entropy(adv_logits, y, reduction="none").cpu())
                robust.append((ok & (adv_logits.argmax(1) == y)).cpu())
                certified.append((ok & (margin > lipschitz * s)).cpu())
                correct.append(ok.cpu())
        s = torch.cat(shifts)
        gap = (torch.cat(ce_adv) - torch.cat(ce_clean)) / spectral
        record: dict[str, Any] = {
            "value": float(s.mean()),
            "as_std": float(s.std()) if len(s) > 1 else 0.0,
            "n": count,
            "head_spectral_norm": spectral,
            "ce_gap_normalised": float(gap.mean()),
            "lemma1_bound": math.sqrt(2) * float(s.mean()),
            "certified_share": float(torch.cat(certified).float().mean()),
            "robust_acc_pgd": float(torch.cat(robust).float().mean()),
            "clean_acc": float(torch.cat(correct).float().mean()),
            "attack": f"pgd-{self.steps}",
        }
        for label, threat in ctx.results.get("threats", {}).items():
            if threat.get("norm") == self.norm and math.isclose(threat.get("eps", math.nan), self.eps, rel_tol=1e-9):
                record["robust_acc_suite"] = {label: threat["acc"]}
        return record
