"""``rftbench submit``, ``rftbench verify`` and ``rftbench leaderboard build|import|check``."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app, console, print_json

leaderboard_app = typer.Typer(
    help="The leaderboard: import published results, build the static site, check submitted entries.",
    no_args_is_help=True,
)
app.add_typer(leaderboard_app, name="leaderboard")


@leaderboard_app.command("import")
def leaderboard_import(
    source: str = typer.Argument("guide2025", help="Which published results: `guide2025` (the reference study)."),
    path: Path = typer.Option(None, "--from", help="The results file (default: the copy in leaderboard/data/)."),
    out: Path = typer.Option(None, "--out", "-o", help="Where to write the entries, one JSON per line (default: leaderboard/entries/SOURCE.jsonl)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Import published results as entries marked `imported` with their source.

    `guide2025` maps the 1,440 results of Heuillet et al. (arXiv:2508.14079) onto the entry
    schema: Linf/L2/L1/common accuracies → `linf:4/255`, `l2:2`, `l1:75`, `corruptions:3`;
    `FFT (50 epochs)` → protocol `fft`, 50 epochs; `Classic AT` → `classic_at`, `TRADES` → `trades`.
    """
    from rftbench_leaderboard import ENTRIES_DIR, GUIDE2025_CSV

    from ..leaderboard.importer import import_published

    path = path or GUIDE2025_CSV
    out = out or ENTRIES_DIR / f"{source}.jsonl"
    entries = import_published(source, path, out)
    if as_json:
        print_json({"source": source, "from": str(path), "out": str(out), "entries": len(entries)})
        return
    console.print(f"imported {len(entries)} entries from {path} → {out}")
