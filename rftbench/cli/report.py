"""``rftbench report``: the papers' analyses of results folders, sweeps and leaderboard entries."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app, console, print_json


@app.command("report")
def report_command(
    results: list[str] = typer.Argument(
        ..., help="Results folders, result records or entries (.json), entry collections (.jsonl), sweep files (.yaml), "
                  "or `guide2025` (the reference study's 1,440 published results).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="The report folder (created; an earlier report there is replaced)."),
    title: str = typer.Option("rftbench report", "--title", help="The report's title."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Write an HTML report (index.html) and Markdown (report.md) with plots, from any results.

    The analyses of the literature rftbench implements: the reference study's (accuracy per
    threat by protocol, loss, architecture family, size and pretraining; TRADES vs Classic AT
    on `sum` over matched pairs; rank agreement between threat models; the clean–robust Pareto
    front per dataset), Epsilon-Scheduling's (validation accuracy per epoch per ε schedule;
    accuracy vs ε with the expected robustness), Nern et al.'s (adversarial sensitivity against
    linear-probe robust accuracy, with the bound's quantities) and robust accuracy against
    training cost per LR schedule. Accuracies carry 95% Wilson intervals where the number of
    test points is known. What cannot be drawn (missing curves, no matched pairs, an empty
    folder) is said in the report, and the rest is still written.

    Examples:

        rftbench report runs/study -o report/
        rftbench report guide2025 -o guide-report/
        rftbench report guide2025 examples/studies/01-suboptimal-transfer/sweep.yaml -o report/
    """
    from ..report import build_report

    report = build_report(results, out, title=title)
    if as_json:
        print_json({"out": str(report.out), "index": str(report.index), "markdown": str(report.markdown),
                    "results": report.rows, "not_drawn": report.missing, "seconds": round(report.seconds, 3)})
        return
    console.print(f"report of {report.rows} result(s) → {report.index} (and {report.markdown.name}) in {report.seconds:.1f} s")
    if report.missing:
        console.print(f"{len(report.missing)} item(s) not drawn or left out (listed in the report), e.g.: {report.missing[0]}",
                      style="yellow", markup=False)
