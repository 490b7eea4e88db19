"""Margin consistency and robust accuracy estimated from a subset (Ngnawé et al., NeurIPS 2024).

- logit margin: top-1 minus top-2 logit; input margin: norm of the minimum-norm adversarial
  perturbation FAB finds for the predicted label;
- margin consistency: Kendall τ between the two; detection of non-robust points at ε
  (input margin ≤ ε) by the logit margin, scored by AUROC, AUPR and FPR at 95% TPR;
- subset estimate: attack a random subset, choose the logit-margin threshold that reproduces its
  robust accuracy, apply it to the other points; the error bar is the bootstrap spread over the subset;
- pseudo-margin (the paper's remedy for models that are not margin-consistent): a small MLP on the
  penultimate features (``model.features``) regressing FAB's input margin, fitted on part of the
  attacked points; it replaces the logit margin for detection and for the subset estimate. The
  paper does not publish the MLP's size or training; rftbench's: two hidden layers of 64 ReLU
  units on standardised features, mean squared error on the standardised margin, full-batch Adam
  (lr 1e-2, weight decay 1e-3, 300 steps), all parameters of :class:`PseudoMargin`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from .context import EvalContext


class PseudoMargin:
    """A small MLP from penultimate features to the input margin (Ngnawé et al. 2024, § pseudo-margin).

    :param hidden: units of each of the two hidden layers.
    :param steps: full-batch Adam steps; ``lr``, ``weight_decay``: Adam's.
    :param seed: seeds the initialisation (training is otherwise deterministic).
    """

    def __init__(self, hidden: int = 64, steps: int = 300, lr: float = 1e-2, weight_decay: float = 1e-3, seed: int = 0):
        self.hidden, self.steps, self.lr, self.weight_decay, self.seed = hidden, steps, lr, weight_decay, seed
        self.net: torch.nn.Module | None = None

    def fit(self, features: torch.Tensor, margins: torch.Tensor) -> PseudoMargin:
        """Fit on ``features [n, d]`` and finite input ``margins [n]``; returns ``self``."""
        from torch import nn

        f, t = features.detach().float().flatten(1).cpu(), margins.detach().float().cpu()
        if len(f) != len(t) or len(t) < 2 or not bool(torch.isfinite(t).all()):
            raise ValueError("a pseudo-margin needs at least two points with finite input margins")
        self.mean, self.std = f.mean(0), f.std(0).clamp_min(1e-6)
        self.t_mean, self.t_std = t.mean(), t.std().clamp_min(1e-12)
        z, target = (f - self.mean) / self.std, (t - self.t_mean) / self.t_std
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = nn.Sequential(nn.Linear(z.shape[1], self.hidden), nn.ReLU(), nn.Linear(self.hidden, self.hidden),
                                nn.ReLU(), nn.Linear(self.hidden, 1))
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        with torch.enable_grad():
            for _ in range(self.steps):
                opt.zero_grad()
                loss = ((net(z).squeeze(1) - target) ** 2).mean()
                loss.backward()
                opt.step()
        self.net = net.eval()
        return self

    @torch.no_grad()
    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted input margins ``[n]`` (CPU, float32)."""
        if self.net is None:
            raise RuntimeError("PseudoMargin.fit first")
        z = (features.detach().float().flatten(1).cpu() - self.mean) / self.std
        return self.net(z).squeeze(1) * self.t_std + self.t_mean


def penultimate_features(ctx: EvalContext, indices: torch.Tensor | None = None) -> torch.Tensor | None:
    """``model.features(x)`` of the points (CPU), or ``None`` when the model has no ``features``/``head``."""
    from .sensitivity import split_classifier

    try:
        features, _head = split_classifier(ctx.model)
    except Exception:  # noqa: BLE001 - any model without the Classifier shape: no pseudo-margin
        return None
    out = []
    with torch.no_grad():
        for x, _y, _index in ctx.batches(indices):
            out.append(features(x).float().flatten(1).cpu())
    return torch.cat(out) if out else None


def _tau(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float | None:
    from scipy.stats import kendalltau

    if len(a) < 2:
        return None
    tau = kendalltau(np.asarray(a), np.asarray(b))[0]
    return None if math.isnan(tau) else float(tau)


def input_margins(ctx: EvalContext, idx: torch.Tensor, *, norm: str, fab_steps: int, restarts: int, seed: int) -> torch.Tensor:
    """FAB's input margin of each point of ``idx`` (``inf`` where FAB found no adversarial point), CPU."""
    from ..attacks.autoattack import minimum_norm_perturbation

    found = []
    for x, _y, index in ctx.batches(idx):
        with ctx.seeded(int(index[0])):
            found.append(minimum_norm_perturbation(ctx.model, x, None, norm=norm, n_restarts=restarts,
                                                   n_iter=fab_steps, seed=seed).cpu())
    return torch.cat(found) if found else torch.empty(0)


def logit_margins(logits: torch.Tensor) -> torch.Tensor:
    """Top-1 minus top-2 logit per row."""
    top = logits.float().topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


def random_subset(n_total: int, n: int, seed: int) -> torch.Tensor:
    """``n`` distinct indices of ``range(n_total)``, sorted, drawn with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[:n].sort().values


def detection_scores(logit_margin: np.ndarray, non_robust: np.ndarray) -> dict[str, float | None]:
    """AUROC, AUPR and FPR at 95% TPR of ``−margin`` (logit or pseudo-margin) as a detector of non-robust points."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    if non_robust.all() or not non_robust.any():
        return {"auroc": None, "aupr": None, "fpr_at_95_tpr": None}
    score = -logit_margin
    fpr, tpr, _ = roc_curve(non_robust, score)
    return {
        "auroc": float(roc_auc_score(non_robust, score)),
        "aupr": float(average_precision_score(non_robust, score)),
        "fpr_at_95_tpr": float(fpr[np.searchsorted(tpr, 0.95, side="left")]),
    }


class MarginConsistency:
    """The ``margin_consistency`` metric: Kendall τ(input margin, logit margin) and detection scores at ε."""

    def __init__(self, norm: str, eps: float, n: int, fab_steps: int, restarts: int, seed: int,
                 pseudo_margin: str = "auto", min_tau: float = 0.5):
        self.norm, self.eps, self.n, self.fab_steps, self.restarts, self.seed = norm, float(eps), n, fab_steps, restarts, seed
        self.pseudo_margin, self.min_tau = pseudo_margin, min_tau
        self._points: dict[str, list[float]] | None = None

    def label(self) -> str:
        from ..specs import format_number

        return f"margin_consistency:{self.norm}:{format_number(self.eps)}"

    def compute(self, ctx: EvalContext) -> dict[str, Any]:
        from scipy.stats import kendalltau

        count = min(self.n, len(ctx))
        idx = random_subset(len(ctx), count, self.seed)
        lm = logit_margins(ctx.clean_logits[idx])
        im = input_margins(ctx, idx, norm=self.norm, fab_steps=self.fab_steps, restarts=self.restarts, seed=self.seed)
        ok = torch.isfinite(im)
        tau, p_value = kendalltau(im[ok].numpy(), lm[ok].numpy()) if int(ok.sum()) > 1 else (math.nan, math.nan)
        non_robust = (im <= self.eps).numpy()
        record: dict[str, Any] = {
            "kendall_tau": None if math.isnan(tau) else float(tau),
            "p_value": None if math.isnan(p_value) else float(p_value),
            "n": count,
            "n_unbroken": int((~ok).sum()),
            "eps": self.eps,
            "non_robust_share": float(non_robust.mean()),
            **detection_scores(lm.numpy(), non_robust),
            "input_margin_median": float(im[ok].median()) if ok.any() else None,
        }
        record["margin_used"] = "logit"
        record["pseudo_margin"] = None
        if self.pseudo_margin != "off":
            pseudo = self._pseudo(ctx, idx, im, lm)
            record["pseudo_margin"] = pseudo
            wanted = self.pseudo_margin == "on" or (record["kendall_tau"] is not None and record["kendall_tau"] < self.min_tau)
            if wanted and pseudo.get("kendall_tau") is not None:
                record["margin_used"] = "pseudo"
                record.update({k: pseudo[k] for k in ("auroc", "aupr", "fpr_at_95_tpr")})
        self._points = {"input": im.tolist(), "logit": lm.tolist()}
        return record

    def _pseudo(self, ctx: EvalContext, idx: torch.Tensor, im: torch.Tensor, lm: torch.Tensor) -> dict[str, Any]:
        """Fit a pseudo-margin on half the broken points, score it (and the logit margin) on the other half."""
        features = penultimate_features(ctx, idx)
        if features is None:
            return {"note": "the model exposes no features/head (rftbench.model.Classifier): no pseudo-margin"}
        ok = torch.nonzero(torch.isfinite(im)).flatten()
        if len(ok) < 8:
            return {"note": f"only {len(ok)} points with an input margin: too few to fit a pseudo-margin (8 needed)"}
        order = ok[torch.randperm(len(ok), generator=torch.Generator().manual_seed(self.seed))]
        fit, test = order[: len(order) // 2], order[len(order) // 2:]
        model = PseudoMargin(seed=self.seed).fit(features[fit], im[fit])
        predicted = model(features[test])
        non_robust = (im[test] <= self.eps).numpy()
        return {
            "kendall_tau": _tau(im[test], predicted),
            "kendall_tau_logit": _tau(im[test], lm[test]),
            "n_fit": int(len(fit)),
            "n_test": int(len(test)),
            **detection_scores(predicted.numpy(), non_robust),
        }

    def plot(self, record: dict[str, Any], directory: Any) -> list[Any]:
        from .plots import plot_margins

        if self._points is None:
            return []
        name = self.label().replace(":", "_").replace("/", "-")
        return [plot_margins(self._points["input"], self._points["logit"], record, directory / f"{name}.png", title=self.label())]


def fit_threshold(margin: np.ndarray, correct: np.ndarray, robust: np.ndarray) -> float:
    """The logit-margin threshold ``t`` such that ``correct & (margin > t)`` has as many points as ``robust``.

    With ``R`` robust points, ``t`` lies midway between the R-th and (R+1)-th largest margins of the
    correctly classified points (so the rule reproduces the subset's robust accuracy exactly).
    """
    ranked = np.sort(margin[correct])[::-1]
    r = int(robust.sum())
    if r == 0:
        return float(ranked[0]) + 1.0 if len(ranked) else 0.0
    if r >= len(ranked):
        return float(ranked[-1]) - 1.0
    return float((ranked[r - 1] + ranked[r]) / 2)


def subset_estimate(margin: np.ndarray, correct: np.ndarray, subset: np.ndarray, robust_subset: np.ndarray,
                    *, n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """Estimate the robust accuracy of all points from the attacked ``subset`` (indices) and its outcome.

    The estimate counts the subset's measured robust points and, among the others, those the fitted
    threshold calls robust. ``std``: bootstrap standard deviation (resampling the subset, refitting);
    it can understate the error: on the benchmark's model (1,000 points, 200 attacked) the bootstrap
    std was 0.7 points while the error over 100 random subsets had a mean |error| of 0.95 points and
    a 95th percentile of 2.3 (``benchmarks/bench_evaluation.py``).
    """
    n_total = len(margin)
    mask = np.zeros(n_total, dtype=bool)
    mask[subset] = True
    rest = ~mask

    def estimate(t: float) -> float:
        predicted = correct[rest] & (margin[rest] > t)
        return (float(robust_subset.sum()) + float(predicted.sum())) / n_total

    t = fit_threshold(margin[subset], correct[subset], robust_subset)
    value = estimate(t)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(subset), len(subset))
        tb = fit_threshold(margin[subset][pick], correct[subset][pick], robust_subset[pick])
        predicted = correct[rest] & (margin[rest] > tb)
        share = robust_subset[pick].mean() * mask.sum() + predicted.sum()
        boots.append(share / n_total)
    boots_arr = np.asarray(boots)
    p = float(robust_subset.mean()) if len(robust_subset) else math.nan
    return {
        "value": value,
        "std": float(boots_arr.std()),
        "ci95": [float(np.quantile(boots_arr, 0.025)), float(np.quantile(boots_arr, 0.975))],
        "threshold": t,
        "subset_acc": p,
        "subset_std": math.sqrt(p * (1 - p) / len(robust_subset)) if len(robust_subset) else None,
        "n_subset": int(len(subset)),
        "n_total": int(n_total),
    }


class SubsetEstimate:
    """The ``subset_estimate`` metric: robust accuracy under a threat model estimated from ``n`` attacked points."""

    def __init__(self, threat: dict[str, Any], n: int, seed: int, n_boot: int, margin: str = "logit",
                 fab_steps: int = 100, min_tau: float = 0.5, manager: Any = None):
        from ..plugins import get_manager

        self.threat, self.n, self.seed, self.n_boot = dict(threat), n, seed, n_boot
        self.margin, self.fab_steps, self.min_tau = margin, fab_steps, min_tau
        params = {k: v for k, v in self.threat.items() if k != "name"}
        # built now, so that a bad threat fails when the suite is resolved, before any work
        self._threat = (manager or get_manager()).get("threat_model", self.threat["name"]).build(**params)
        if margin != "logit" and getattr(self._threat, "norm", None) not in ("linf", "l2", "l1"):
            from ..errors import ConfigError

            raise ConfigError(f"margin={margin!r} needs an Lp threat model (a pseudo-margin regresses FAB's input margin); "
                              f"{self._threat.label()!r} is not one: use margin: logit")

    def label(self) -> str:
        kind = "" if self.margin == "logit" else f"[{self.margin}]"
        return f"subset_estimate{kind}:{self._threat.label()}"

    def compute(self, ctx: EvalContext) -> dict[str, Any]:
        from .evaluate import robust_correct

        threat = self._threat
        count = min(self.n, len(ctx))
        subset = random_subset(len(ctx), count, self.seed)
        robust = robust_correct(ctx, threat, subset).numpy()
        margin = logit_margins(ctx.clean_logits)
        correct = ctx.clean_correct.numpy()
        used, extra = "logit", {}
        if self.margin != "logit":
            margin, used, extra = self._pseudo_margin(ctx, subset, margin)
        record = subset_estimate(margin.numpy(), correct, subset.numpy(), robust, n_boot=self.n_boot, seed=self.seed)
        record["threat"] = threat.label()
        record["margin"] = used
        record.update(extra)
        if count == len(ctx):
            record["note"] = f"n={self.n} covers the whole evaluation set ({len(ctx)} points): the value is measured, not estimated"
        measured = ctx.results.get("threats", {}).get(threat.label())
        if measured is not None:
            record["measured_acc"] = measured["acc"]
            record["error"] = record["value"] - measured["acc"]
        return record

    def _pseudo_margin(self, ctx: EvalContext, subset: torch.Tensor, logit: torch.Tensor) -> tuple[torch.Tensor, str, dict[str, Any]]:
        """The margin to threshold: a pseudo-margin fitted on the subset's FAB margins, or the logit margin ("auto")."""
        from .evaluate import EvaluationError

        norm = self._threat.norm
        im = input_margins(ctx, subset, norm=norm, fab_steps=self.fab_steps, restarts=1, seed=self.seed)
        ok = torch.isfinite(im)
        tau = _tau(im[ok], logit[subset][ok])
        extra: dict[str, Any] = {"kendall_tau_logit_subset": tau}
        if self.margin == "auto" and tau is not None and tau >= self.min_tau:
            return logit, "logit", extra
        features = penultimate_features(ctx)
        if features is None or int(ok.sum()) < 2:
            why = "the model exposes no features/head" if features is None else "FAB broke fewer than 2 subset points"
            if self.margin == "pseudo":
                raise EvaluationError(f"subset_estimate: no pseudo-margin possible: {why}")
            extra["note"] = f"pseudo-margin not used: {why}"
            return logit, "logit", extra
        model = PseudoMargin(seed=self.seed).fit(features[subset][ok], im[ok])
        return model(features), "pseudo", extra
