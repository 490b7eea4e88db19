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
    fig.savefig(path, dpi=120)
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
