"""The report's plots, drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display).

Each function takes plain numbers and labels and writes one PNG; the caller names the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

DPI = 96


def _figure(width: float, height: float, rows: int = 1):  # noqa: ANN202 - matplotlib's Figure, imported lazily
    """A figure with fixed margins (matplotlib's constrained layout costs seconds on a busy CPU)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.7 / width, right=1 - 0.15 / width, bottom=0.55 / height, top=1 - 0.35 / height,
                        wspace=0.25, hspace=0.4)
    return fig


def _grid(n: int, cols: int = 3) -> tuple[int, int]:
    cols = min(cols, n)
    return math.ceil(n / cols), cols


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def grouped_bars(path: Path, panels: Sequence[tuple[str, Sequence[str], Mapping[str, Sequence[float | None]]]]) -> Path:
    """One panel per factor: x = threat, one bar per group (``panels``: title, threat labels, group → values)."""
    rows, cols = _grid(len(panels), 2)
    fig = _figure(6.2 * cols, 3.2 * rows, rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (title, labels, groups) in zip(axes, panels):
        width = 0.8 / max(len(groups), 1)
        for i, (group, values) in enumerate(groups.items()):
            xs = [j + (i - (len(groups) - 1) / 2) * width for j in range(len(labels))]
            ax.bar(xs, [v if v is not None else 0 for v in values], width, label=_short(group))
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("mean accuracy")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, ncols=2)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.savefig(path, dpi=DPI)
    return path


def pareto_panels(path: Path, panels: Sequence[tuple[str, Sequence[tuple[float, float]], Sequence[tuple[float, float]]]],
                  ylabel: str) -> Path:
    """One panel per dataset: every result as a point, the clean–robust Pareto front as a line."""
    rows, cols = _grid(len(panels), 3)
    fig = _figure(4.2 * cols, 3.4 * rows, rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (title, points, front) in zip(axes, panels):
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=8, alpha=0.45, color="tab:blue")
        ax.plot([p[0] for p in front], [p[1] for p in front], "-o", color="tab:red", ms=4, lw=1.5, label="Pareto front")
        ax.set_title(_short(title, 40), fontsize=10)
        ax.set_xlabel("clean accuracy")
        ax.set_ylabel(ylabel)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.savefig(path, dpi=DPI)
    return path


def _fitted_title(fig, title: str, fontsize: float = 10) -> None:  # noqa: ANN001 - matplotlib's Figure
    """``title`` over the whole figure, wrapped to its width (never cut at the edges), with room made at the top."""
    import textwrap

    width, height = fig.get_size_inches()
    chars = max(20, int(width * 72 / (0.6 * fontsize)) - 4)  # an average glyph is about 0.6 em wide
    lines = textwrap.wrap(title, chars) or [title]
    fig.suptitle("\n".join(lines), fontsize=fontsize, y=1 - 0.08 / height, va="top")
    fig.subplots_adjust(top=1 - (0.2 + 0.2 * len(lines)) / height)


def heatmap(path: Path, labels: Sequence[str], matrix: Sequence[Sequence[float]], title: str) -> Path:
    """A square matrix of rank correlations with the values written in the cells."""
    fig = _figure(max(4.5, 1.2 + 0.9 * len(labels)), max(3.6, 1.0 + 0.8 * len(labels)))
    fig.subplots_adjust(left=0.2, bottom=0.2, right=0.95)
    ax = fig.subplots()
    image = ax.imshow([[v if math.isfinite(v) else 0 for v in row] for row in matrix], vmin=-1, vmax=1, cmap="RdBu")
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            dark = math.isfinite(v) and abs(v) > 0.6
            ax.text(j, i, "—" if not math.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    _fitted_title(fig, title)
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.savefig(path, dpi=DPI)
    return path


def line_panels(path: Path, panels: Sequence[tuple[str, Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float], Sequence[float]]]]],
                xlabel: str, ylabel: str, hline: Mapping[str, float] | None = None, ylim: tuple[float, float] | None = (0, 1)) -> Path:
    """One panel per setting, one line per condition: ``(x, mean, low, high)``, the band spanning the seeds."""
    rows, cols = _grid(len(panels), 2)
    fig = _figure(5.6 * cols, 3.6 * rows, rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (title, lines) in zip(axes, panels):
        for label, (x, mean, low, high) in lines.items():
            (line,) = ax.plot(x, mean, "-o", ms=3, label=_short(label, 60))
            if any(lo != hi for lo, hi in zip(low, high)):
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15)
        if hline and title in hline:
            ax.axhline(hline[title], ls="--", color="grey", lw=1, label="chance + 5 points")
        ax.set_title(_short(title, 70), fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ylim:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.savefig(path, dpi=DPI)
    return path


def scatter(path: Path, points: Mapping[str, Sequence[tuple[float, float]]], xlabel: str, ylabel: str, title: str) -> Path:
    """Labelled groups of points (one colour per group)."""
    fig = _figure(6.0, 4.2)
    ax = fig.subplots()
    for label, pts in points.items():
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=28, label=_short(label, 40))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=DPI)
    return path
