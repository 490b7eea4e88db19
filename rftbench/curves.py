"""A record's curves, in-training evaluation and cost as readers see them (``results``, report, leaderboard).

- :func:`curve_problem`: why a record's curves cannot be shown (non-finite values, epochs out of
  order, lists of unequal length — a record written by another tool), or ``None``; readers list
  such a record as left out with that reason and show the rest.
- :func:`summary_columns`: the flat columns ``pareto_auc``, ``val_robust_acc.best``,
  ``warnings`` and ``cost.*`` of a record; a record without cost (the imported reference
  study) has ``None`` there, shown as *unknown*, never 0.
- :func:`plot_curves`: the validation clean and robust accuracy curves of several runs, and
  their clean–robust points with each run's Pareto frontier, as one PNG (matplotlib).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: The cost columns of a row (``cost.peak_memory_bytes`` is the device peak on CUDA, else the host peak).
COST_COLUMNS = ("cost.flops", "cost.train_flops_per_step", "cost.eval_flops", "cost.train_forward_passes",
                "cost.train_backward_passes", "cost.eval_forward_passes", "cost.eval_backward_passes",
                "cost.device_seconds", "cost.peak_memory_bytes")
#: The ones the default ``results`` table shows.
DEFAULT_COST_COLUMNS = ("cost.flops", "cost.device_seconds", "cost.peak_memory_bytes")


def _finite(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))


def _increasing(values: Sequence[Any]) -> bool:
    numbers = [v for v in values if v is not None]
    return len(numbers) == len(values) and all(b > a for a, b in zip(numbers, numbers[1:]))


def curve_problem(record: Any) -> str | None:
    """The reason ``record``'s curves cannot be shown, or ``None`` when they are sound."""
    curves = getattr(record, "curves", None) or {}
    if not isinstance(curves, Mapping):
        return "curves is not a mapping"
    lengths = {len(v) for v in curves.values() if isinstance(v, list)}
    if any(not isinstance(v, list) for v in curves.values()) or len(lengths) > 1:
        return "its per-epoch curves are not lists of one length"
    if "epoch" in curves and not _increasing(curves["epoch"]):
        return f"its curve epochs are out of order ({curves['epoch']})"
    for key, values in curves.items():
        if not all(_finite(v) for v in values):
            return f"curve {key!r} has a non-finite value"
    monitor = getattr(record, "monitor", None)
    if monitor is None:
        return None
    points = monitor.get("points") if isinstance(monitor, Mapping) else None
    if not isinstance(points, Mapping) or any(not isinstance(v, list) for v in points.values()):
        return "its monitor points are not lists"
    if len({len(v) for v in points.values()}) > 1:
        return "its monitor points are lists of different lengths"
    for key in ("epoch", "step"):
        if key in points and not _increasing(points[key]):
            return f"its monitor {key}s are out of order ({points[key]})"
    for key, values in points.items():
        if not all(_finite(v) for v in values):
            return f"monitor curve {key!r} has a non-finite value"
        if key.endswith("_acc") and not all(v is None or 0.0 <= v <= 1.0 for v in values):
            return f"monitor curve {key!r} has a value outside [0, 1]"
    auc = monitor.get("pareto_auc")
    if not _finite(auc):
        return "its pareto_auc is not a finite number"
    return None


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def summary_columns(record: Any) -> dict[str, Any]:
    """``pareto_auc``, ``val_robust_acc.best``, ``warnings``, the ``cost.*`` and ``parameters.*`` columns of a record (``None``: unknown)."""
    row: dict[str, Any] = {}
    monitor = getattr(record, "monitor", None)
    if isinstance(monitor, Mapping):
        row["pareto_auc"] = _number(monitor.get("pareto_auc"))
        robust = [v for v in (monitor.get("points") or {}).get("robust_acc") or [] if _number(v) is not None]
        row["val_robust_acc.best"] = max(robust) if robust else None
        kept = monitor.get("kept") or {}
        row["kept"] = kept.get("keep") if isinstance(kept, Mapping) else None
    warnings = getattr(record, "warnings", None) or []
    row["warnings"] = ",".join(str(w.get("name")) for w in warnings if isinstance(w, Mapping)) or None
    cost = getattr(record, "cost", None) or {}
    if not isinstance(cost, Mapping):
        cost = {}
    train = cost.get("train") if isinstance(cost.get("train"), Mapping) else {}
    evaluation = cost.get("evaluation") if isinstance(cost.get("evaluation"), Mapping) else {}
    phases = [p for p in (evaluation.get("phases") or {}).values() if isinstance(p, Mapping)]

    def total(key: str) -> int | None:
        values = [_number(p.get(key)) for p in phases]
        return int(sum(v for v in values if v is not None)) if phases else None

    peak = _number(cost.get("peak_device_memory_bytes")) or _number(cost.get("peak_host_memory_bytes"))
    row.update({
        "cost.flops": _number(cost.get("flops")),
        "cost.train_flops_per_step": _number(train.get("flops_per_step")),
        "cost.eval_flops": _number(evaluation.get("flops")),
        "cost.train_forward_passes": _number(train.get("forward_passes")),
        "cost.train_backward_passes": _number(train.get("backward_passes")),
        "cost.eval_forward_passes": total("forward_passes"),
        "cost.eval_backward_passes": total("backward_passes"),
        "cost.device_seconds": _number(cost.get("device_seconds")),
        "cost.peak_memory_bytes": peak,
    })
    parameters = getattr(record, "parameters", None) or {}
    if not isinstance(parameters, Mapping):
        parameters = {}
    # the protocol's trainable / total / added parameter counts and the trainable share (None: unknown)
    row.update({f"parameters.{k}": _number(parameters.get(k)) for k in ("trainable", "total", "added", "share")})
    return row


def plot_curves(records: Iterable[Any], path: str | Path, *, title: str | None = None) -> Path | None:
    """Draw each record's validation clean/robust accuracy over training and its clean–robust Pareto front; ``None`` if none has a curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .evaluation.pareto import pareto_front

    runs = [(r, r.monitor["points"]) for r in records if isinstance(getattr(r, "monitor", None), Mapping)
            and (r.monitor.get("points") or {}).get("robust_acc")]
    if not runs:
        return None
    fig, (over_time, trade) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (record, points) in enumerate(runs):
        color = f"C{i % 10}"
        label = f"{record.id[:8]} {record.config.get('loss') if isinstance(record.config.get('loss'), str) else (record.config.get('loss') or {}).get('name', '')}"
        over_time.plot(points["epoch"], [100 * v for v in points["clean_acc"]], color=color, linestyle="--", marker=".")
        over_time.plot(points["epoch"], [100 * v for v in points["robust_acc"]], color=color, marker="o", label=label)
        trade.scatter([100 * v for v in points["clean_acc"]], [100 * v for v in points["robust_acc"]], color=color, s=14, alpha=0.6)
        front = pareto_front(points["clean_acc"], points["robust_acc"])
        auc = record.monitor.get("pareto_auc")
        # the staircase whose area is the Pareto AUC (each point's robust accuracy up to its clean accuracy)
        trade.step([0.0] + [100 * a for a, _ in front], [100 * front[0][1]] + [100 * r for _, r in front], where="pre", color=color,
                   label=f"{record.id[:8]} AUC {auc:.3f}" if isinstance(auc, (int, float)) else record.id[:8])
    over_time.set_xlabel("epoch")
    over_time.set_ylabel("validation accuracy (%)")
    over_time.set_title("robust (solid) and clean (dashed) during training")
    over_time.legend(fontsize=7)
    trade.set_xlabel("clean accuracy (%)")
    trade.set_ylabel("robust accuracy (%)")
    trade.set_xlim(0, 100)
    trade.set_ylim(0, 100)
    trade.set_title("evaluation points and Pareto frontier")
    trade.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["COST_COLUMNS", "DEFAULT_COST_COLUMNS", "curve_problem", "plot_curves", "summary_columns"]
