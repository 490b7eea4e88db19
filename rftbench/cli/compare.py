"""``rftbench compare``: paired differences of accuracy between results measured on the same points."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ._app import app, console, err_console, print_json, styled


def _pp(value: float) -> str:
    return f"{100 * value:+.1f}"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.1e}"


@app.command("compare")
def compare_command(
    results: list[Path] = typer.Argument(..., help="Two or more results: run folders (runs/HASH), records (runs/HASH.json), "
                                                   "evaluation.json files of `rftbench eval`, or entry files with per-example outcomes."),
    threats: list[str] = typer.Option(None, "--threat", "-t", help="Compare only these threat models (repeat; 'clean' for clean accuracy). Default: clean and every threat both measured."),
    plot: Path = typer.Option(None, "--plot", "-p", help="Write a plot of the paired differences with their intervals (PNG, SVG or PDF)."),
    alpha: float = typer.Option(0.05, "--alpha", min=1e-6, max=0.5, help="Significance level for the marks (after the Holm correction)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparisons as JSON."),
) -> None:
    """Is A really more robust than B? Paired comparison of results on the same test points.

    For each threat model: the difference in accuracy (A − B, in points) with a 95% interval
    (Agresti–Min, for matched pairs), the points only A / only B gets right, and the exact
    McNemar p-value on those discordant points. With more than two results, each is compared
    with the first, and every p-value is Holm-adjusted over all the comparisons shown (the
    column `p Holm`): a `*` marks a difference significant at `--alpha` after that correction.

    The results must have been measured on the same points (same dataset card, split and
    n_eval); otherwise compare refuses and says what differs.

    Examples: `rftbench compare runs/3f2a… runs/9c1b…` ·
    `rftbench compare runs/base.json runs/trades.json runs/mart.json -t linf:4/255 --plot diff.png`
    """
    from ..comparison import compare_many, load_source, plot_comparisons
    from ..errors import RftbenchError

    if len(results) < 2:
        raise RftbenchError("compare needs at least two results (A B [C …]); each is compared with the first")
    sources = [load_source(r) for r in results]
    comparisons = compare_many(sources[0], sources[1:], threats or None)
    written = plot_comparisons(comparisons, plot, alpha) if plot is not None else None
    if as_json:
        print_json({"alpha": alpha, "comparisons": [c.to_dict() for c in comparisons], "plot": str(written) if written else None})
        return
    for c in comparisons:
        table = Table(title=f"A = {c.a}\nB = {c.b}\n{c.n} paired points", title_justify="left")
        table.add_column("threat", no_wrap=True)
        for name in ("A", "B", "A−B", "95% interval", "only A", "only B", "p", "p Holm", ""):
            table.add_column(name, justify="right", no_wrap=name in ("95% interval", "A−B"))
        for d in c.differences:
            only = (f"{d.only_a:g}", f"{d.only_b:g}")
            mark = "*" if d.significant(alpha) else ""
            table.add_row(d.threat, f"{100 * d.acc_a:.1f}%", f"{100 * d.acc_b:.1f}%", _pp(d.diff),
                          f"[{_pp(d.ci_low)}, {_pp(d.ci_high)}]", *only, _p(d.p_value), _p(d.p_holm), mark)
        console.print(table)
    tests = {d.test for c in comparisons for d in c.differences}
    note = "p: exact McNemar test" + (" (sign test for averaged outcomes)" if "sign-test" in tests else "")
    err_console.print(styled("[dim]{}; * significant at α = {} after Holm over {} tests[/]",
                             note, f"{alpha:g}", sum(len(c.differences) for c in comparisons)))
    if written:
        err_console.print(f"plot: {written}")
