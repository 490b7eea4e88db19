"""Plots written next to a result (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    """Save a figure through a temporary file, so a full disk never leaves a truncated image behind."""
    from .._fs import atomic_write

    path = Path(path)
    atomic_write(path, lambda handle: fig.savefig(handle, dpi=120, format=path.suffix.lstrip(".") or "png"), binary=True)


def plot_threat_bars(result: dict[str, Any], path: Path) -> Path:
    """A bar per threat model (clean first): accuracy, unreliable ones hatched."""
    plt = _pyplot()
    labels = ["clean"] + list(result["threats"])
    values = [result["clean_acc"]] + [r["acc"] for r in result["threats"].values()]
    reliable = [True] + [r.get("reliable", True) for r in result["threats"].values()]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(labels) + 1.5), 3.2))
    bars = ax.bar(range(len(labels)), values, color=["#4c72b0" if ok else "#c44e52" for ok in reliable])
    for bar, ok in zip(bars, reliable):
        if not ok:
            bar.set_hatch("//")
    for i, v in enumerate(values):
        ax.text(i, v + 0.01, f"{100 * v:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("accuracy")
    ax.set_title(f"accuracy per threat model (n={result['n_examples']})", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def write_plots(result: dict[str, Any], output_dir: str | Path, metrics: Sequence[Any] = ()) -> list[Path]:
    """Write the per-threat bar chart and every metric's own plots (``metric.plot(record, dir)``)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = [plot_threat_bars(result, output_dir / "accuracy_per_threat.png")]
    for metric in metrics:
        plot = getattr(metric, "plot", None)
        record = result["metrics"].get(metric.label()) if hasattr(metric, "label") else None
        if plot is not None and record is not None:
            paths.extend(plot(record, output_dir))
    return paths


def plot_expected_robustness(record: dict[str, Any], path: Path, title: str = "expected robustness") -> Path:
    """Accuracy vs ε with the area under the curve shaded: its mean height is the expected robustness."""
    plt = _pyplot()
    eps = [255 * e for e in record["curve"]["eps"]]
    acc = record["curve"]["acc"]
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    ax.fill_between(eps, acc, color="#4c72b0", alpha=0.25, label=f"expected robustness {100 * record['value']:.1f}%")
    ax.plot(eps, acc, "o-", color="#4c72b0", ms=3)
    ax.axhline(record["value"], color="#4c72b0", ls="--", lw=0.8)
    ax.set_xlabel("ε (×1/255)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def plot_margins(input_margin: Sequence[float], logit_margin: Sequence[float], record: dict[str, Any], path: Path,
                 title: str = "margin consistency") -> Path:
    """Logit margin against input margin (points FAB could not break left out), with Kendall τ and ε."""
    import math

    plt = _pyplot()
    pairs = [(i, m) for i, m in zip(input_margin, logit_margin) if math.isfinite(i)]
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    if pairs:
        xs, ys = zip(*pairs)
        ax.scatter(xs, ys, s=6, alpha=0.6, color="#4c72b0")
    ax.axvline(record["eps"], color="#c44e52", ls="--", lw=0.8, label=f"ε = {record['eps']:.4g}")
    tau = record.get("kendall_tau")
    ax.set_title(f"{title}\nKendall τ = {tau:.3f}" if tau is not None else title, fontsize=9)
    ax.set_xlabel("input margin (FAB)")
    ax.set_ylabel("logit margin (top-1 − top-2)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path
