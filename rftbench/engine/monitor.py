"""In-training evaluation (the ``monitor:`` section of a run config) and the early warnings.

At each evaluation point the :class:`Monitor` measures, on a fixed validation subset (``n``
images of the val split drawn once with ``seed``, kept as tensors on the device), the clean
accuracy and the robust accuracy under ``threat`` (default APGD-CE, 5 steps, L∞ 4/255) and,
when configured, under one ``corruption`` threat. Attacks run in fp32 in evaluation mode with
the parameters frozen, under a forked RNG seeded with ``seed`` (every point attacks alike and
training's RNG stream is untouched, so a monitored run trains exactly as an unmonitored one).
Per-batch counts stay on the device; the values are read once per point.

:class:`EarlyWarnings` checks the curves at every point (see ``docs/monitor.md``):
``task-adaptation`` (validation accuracy below chance + a margin after a share of training,
the Epsilon-Scheduling paper's criterion), ``robust-collapse`` (robust accuracy falls by more
than a threshold between consecutive points: catastrophic or robust overfitting) and
``loss-divergence`` (the training loss rose for several epochs in a row and is well above its
best, the trend before a NaN stop).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch
from torch import nn

from ..attacks import attack_mode
from ..config import MonitorConfig, WarningsConfig
from ..errors import ConfigError
from ..evaluation.context import collate
from ..evaluation.evaluate import resolve_suite
from ..threat import Reporter, batch_evaluator, takes_early_stop

log = logging.getLogger("rftbench")

#: The per-point values a monitor curve holds (``corruption_acc`` only with a corruption threat).
POINT_KEYS = ("step", "epoch", "clean_acc", "robust_acc", "corruption_acc", "seconds")
#: The warnings a run can raise, by name.
WARNINGS = ("task-adaptation", "robust-collapse", "loss-divergence")

#: ``robust-collapse``, its never-robust form: the default of ``monitor.warnings.collapse_gap``, the training attack's
#: accuracy on its own points (the epoch's ``train_acc``) above the monitored robust accuracy by more than this
#: (absolute), at the full training ε. Runs that
#: became robust stay at or below 0.28 at every epoch (the monitored adversarial records of the shipped studies and
#: study 06's search, 77 runs); the catastrophic overfitting that search found (plain FGSM, ε = 0.2, wide mini ResNet)
#: reaches 0.53-0.65.
COLLAPSE_GAP = WarningsConfig.model_fields["collapse_gap"].default


def check_monitor(config: MonitorConfig, val: Any, manager: Any = None) -> None:
    """Check ``config`` against the val split (before training); raises :class:`ConfigError` naming the field."""
    if val is None:
        raise ConfigError("monitor: this dataset has no val split, and in-training evaluation needs one (the test split is "
                          "kept for the final evaluation); remove `monitor:` or use a dataset whose card defines a val split")
    size = len(val)
    if config.n > size:
        raise ConfigError(f"monitor.n: {config.n} is more than the {size} images of the val split; use monitor.n ≤ {size}")
    _threats(config, manager)


def _threats(config: MonitorConfig, manager: Any) -> list[tuple[str, Any, str]]:
    suite = [config.threat] + ([config.corruption] if config.corruption is not None else [])
    try:
        threats, _ = resolve_suite(suite, manager)
    except ConfigError as err:
        raise ConfigError(str(err).replace("evaluation.0", "monitor.threat").replace("evaluation.1", "monitor.corruption")
                          .replace("invalid evaluation suite", "invalid monitor")) from None
    out = [(threats[0][0], threats[0][1], "robust_acc")]
    if config.corruption is not None:
        label, threat, _ = threats[1]
        if getattr(threat, "norm", None) != "corruption":
            raise ConfigError(f"monitor.corruption: {label!r} is not a corruption threat model; use e.g. "
                              "{name: corruptions, severity: 3}, and name adversarial threats in monitor.threat")
        out.append((label, threat, "corruption_acc"))
    return out


class Monitor:
    """Evaluates a model on the fixed validation subset: ``point(model)`` → ``{clean_acc, robust_acc, …}``."""

    def __init__(self, config: MonitorConfig, val: Any, *, device: torch.device, manager: Any = None,
                 channels_last: bool = False):
        check_monitor(config, val, manager)
        self.config, self.device = config, device
        self.threats = _threats(config, manager)
        #: per threat, what measures its batches itself (rftbench.threat.batch_evaluator), resolved once
        self.evaluators = [batch_evaluator(threat) for _, threat, _ in self.threats]
        self.label = self.threats[0][0]
        self.corruption_label = self.threats[1][0] if len(self.threats) > 1 else None
        generator = torch.Generator().manual_seed(config.seed)
        self.indices = torch.randperm(len(val), generator=generator)[: config.n].sort().values
        x, y = collate([val[int(i)] for i in self.indices])
        self.x = x.to(device)
        if channels_last and self.x.dim() == 4:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = y.to(device)

    def point(self, model: nn.Module) -> dict[str, float]:
        """Clean and robust (and corruption) accuracy of ``model`` on the subset, read from the device once."""

        start = time.perf_counter()
        sums: dict[str, list[torch.Tensor]] = {"clean_acc": [], **{key: [] for _, _, key in self.threats}}
        devices = [self.device] if self.device.type == "cuda" else []
        with attack_mode(model), torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.config.seed)
            bs = self.config.batch_size
            for lo in range(0, len(self.y), bs):
                x, y = self.x[lo:lo + bs], self.y[lo:lo + bs]
                with torch.no_grad():
                    clean_ok = model(x).argmax(1) == y
                sums["clean_acc"].append(clean_ok.sum())
                for (_, threat, key), runner in zip(self.threats, self.evaluators):
                    if runner is not None:
                        ok = runner.evaluate_batch(model, x, y, index=self.indices[lo:lo + bs])["correct"].to(x.device) > 0.5
                    else:
                        x_adv = (threat.perturb(model, x, y, early_stop=True) if takes_early_stop(threat)
                                 else threat.perturb(model, x, y)).detach()
                        with torch.no_grad():
                            ok = model(x_adv).argmax(1) == y
                    if getattr(threat, "norm", None) in ("linf", "l2", "l1"):
                        ok = ok & clean_ok  # robust means correct on the clean point too, as in the final evaluation
                    sums[key].append(ok.sum())
            for (_, threat, _), runner in zip(self.threats, self.evaluators):
                reporter = runner if runner is not None else threat
                if isinstance(reporter, Reporter):
                    reporter.report()  # reset what the threat accumulated
        n = len(self.y)
        keys = list(sums)
        values = torch.stack([torch.stack(sums[k]).sum() for k in keys]).tolist()  # the one read of this point
        out = {k: v / n for k, v in zip(keys, values)}
        out["seconds"] = time.perf_counter() - start
        return out


def _warning(name: str, point: dict[str, Any], message: str) -> dict[str, Any]:
    return {"name": name, "epoch": point.get("epoch"), "step": point.get("step"), "message": message}


class EarlyWarnings:
    """The early-warning checks of one run (each warning is raised at most once)."""

    def __init__(self, config: WarningsConfig, num_classes: int, epochs: int, n: int | None = None):
        self.config, self.chance, self.epochs = config, 1.0 / max(num_classes, 1), epochs
        self.n = n  # images per evaluation point: how far two points' accuracies move by sampling alone
        self.raised: set[str] = set()

    def _new(self, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        fresh = [w for w in found if w["name"] not in self.raised]
        self.raised.update(w["name"] for w in fresh)
        return fresh

    def check_accuracy(self, point: dict[str, Any], acc: float | None) -> list[dict[str, Any]]:
        """``task-adaptation``: ``acc`` (validation, clean) below chance + margin once the share of training is done."""
        cfg = self.config
        progress = float(point.get("epoch") or 0.0) / self.epochs
        if acc is None or progress + 1e-9 < cfg.adaptation_share:
            return []
        floor = self.chance + cfg.adaptation_margin
        if acc >= floor:
            return []
        return self._new([_warning("task-adaptation", point,
                                   f"task adaptation failing: validation accuracy {100 * acc:.1f}% after {100 * progress:.0f}% "
                                   f"of training is below chance + {100 * cfg.adaptation_margin:.0f} points "
                                   f"({100 * floor:.1f}%); check the learning rates, the protocol or the training ε")])

    def check_robust(self, points: dict[str, list[Any]]) -> list[dict[str, Any]]:
        """``robust-collapse``: the last point's robust accuracy is more than ``collapse_drop`` below the previous one's.

        Not raised when the previous point was below chance + ``adaptation_margin`` (nothing to collapse), nor when
        the drop is within two standard errors of the difference of two accuracies on the ``n`` monitored images.
        """
        robust = points.get("robust_acc") or []
        if len(robust) < 2 or robust[-1] is None or robust[-2] is None:
            return []
        before, after = robust[-2], robust[-1]
        drop = before - after
        if drop <= self.config.collapse_drop:
            return []
        if before < self.chance + self.config.adaptation_margin:
            return []  # never above chance + margin: nothing had been learnt that could collapse (noise near chance)
        if self.n and drop <= 2 * math.sqrt((before * (1 - before) + after * (1 - after)) / self.n):
            return []  # within two standard errors of the difference on n images: sampling noise, not a collapse
        point = {"epoch": points["epoch"][-1], "step": points["step"][-1]}
        return self._new([_warning("robust-collapse", point,
                                   f"robust accuracy collapsed: {100 * robust[-2]:.1f}% → {100 * robust[-1]:.1f}% between "
                                   f"evaluation points (drop {100 * drop:.1f} > {100 * self.config.collapse_drop:.0f} points): "
                                   "catastrophic or robust overfitting; consider monitor.keep=best-robust, a multi-step "
                                   "training attack or a smaller learning rate")])

    def check_gap(self, train_acc: float | None, robust_acc: float | None, point: dict[str, Any]) -> list[dict[str, Any]]:
        """``robust-collapse`` never preceded by robustness: the training attack's accuracy exceeds the robust one by > ``collapse_gap``.

        ``train_acc``: the epoch's accuracy on the training attack's points; ``robust_acc``: the monitor's latest
        point. The caller checks that the two are comparable (adversarial training at its full ε, the monitor's
        threat of the same norm with no larger ε). The single-step attack has stopped finding the points a
        multi-step one finds (catastrophic overfitting, as plain FGSM), or the training points' robustness does
        not generalise (robust overfitting). Not raised when the gap is within two standard errors of the
        robust accuracy on the ``n`` monitored images (a handful of images).
        """
        gap = self.config.collapse_gap
        if train_acc is None or robust_acc is None or train_acc - robust_acc <= gap:
            return []
        if self.n and train_acc - robust_acc <= 2 * math.sqrt(max(robust_acc * (1 - robust_acc), 1 / self.n) / self.n):
            return []  # within two standard errors of the robust accuracy on n images (few monitored images): noise
        return self._new([_warning("robust-collapse", point,
                                   f"robust accuracy collapsed: {100 * robust_acc:.1f}% under the monitor's attack against "
                                   f"{100 * train_acc:.1f}% on the training attack's own points (gap > {100 * gap:.0f} "
                                   "points): catastrophic overfitting (the training attack no longer finds adversarial "
                                   "points) or robust overfitting; consider a multi-step or N-FGSM training attack")])

    def check_loss(self, curves: dict[str, list[Any]], step: int) -> list[dict[str, Any]]:
        """``loss-divergence``: the per-epoch training loss rose ``divergence_window`` times in a row and exceeds ratio × its best."""
        losses = [v for v in curves.get("train_loss") or [] if v is not None]
        w = self.config.divergence_window
        if len(losses) < w + 1 or any(not math.isfinite(v) for v in losses):
            return []
        tail = losses[-(w + 1):]
        rising = all(b > a for a, b in zip(tail, tail[1:]))
        best = min(losses)
        if not rising or not losses[-1] > self.config.divergence_ratio * best:
            return []
        point = {"epoch": curves["epoch"][-1], "step": step}
        return self._new([_warning("loss-divergence", point,
                                   f"training loss diverging: it rose {w} epochs in a row to {losses[-1]:.3g} "
                                   f"(> {self.config.divergence_ratio:g} × its best, {best:.3g}); lower optimizer.lr_backbone / "
                                   "lr_head before it becomes NaN")])


__all__ = ["COLLAPSE_GAP", "POINT_KEYS", "WARNINGS", "EarlyWarnings", "Monitor", "check_monitor"]
