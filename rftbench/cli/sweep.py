"""``rftbench sweep``, ``rftbench results`` and ``rftbench tune``: grids of runs, their results, HPO."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.table import Table

from ..zoo import parse_filters
from ._app import app, console, err_console, print_json


def _params(pairs: list[str] | None) -> dict[str, object]:
    """``["address=auto", "gpus_per_run=1"]`` → a dict with YAML-parsed values."""
    return {k: yaml.safe_load(v) for k, v in parse_filters(pairs).items()}


@app.command("sweep")
def sweep_command(
    sweep_file: Path = typer.Argument(..., help="A sweep YAML file: base config, axes, zip, results_dir, executor."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Print the runs, their hashes and status, and their count; run nothing."),
    executor: str = typer.Option(None, "--executor", "-e", help="Executor plugin to use instead of the sweep file's: local, ray, slurm, …"),
    executor_params: list[str] = typer.Option(
        None, "--param", "-p", help="Executor parameter key=value (e.g. -p processes=2, -p address=auto, -p gpus_per_run=1). Repeatable."
    ),
    results_dir: Path = typer.Option(None, "--results-dir", "-o", help="Override the sweep file's results_dir."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Give runs that failed every attempt a fresh set of attempts."),
    run_function: str = typer.Option(
        "rftbench:run", "--run-function", help="module:function that runs one config (rftbench.sweep.synthetic:synthetic_run to test the machinery)."
    ),
    progress: str = typer.Option(None, "--progress", help="live (a table; the default on a terminal), lines (one per run) or none."),
    as_json: bool = typer.Option(False, "--json", help="With --dry-run: print the runs as JSON."),
) -> None:
    """Run a grid of runs, skipping those whose result exists; stop it any time and run it again to resume.

    Each run's result record is named by its config hash in the results directory, so
    finished runs are never repeated, workers on several machines never run the same config at
    once (claim files), and failures are recorded with their traceback and retried up to
    `retries` times. Example: `rftbench sweep study.yaml --executor ray -p address=auto`.
    """
    from ..sweep import Store, build_executor, load_sweep, run_sweep

    if progress not in (None, "live", "lines", "none"):
        raise typer.BadParameter(f"{progress!r}: use live, lines or none", param_hint="--progress")
    sweep = load_sweep(sweep_file, results_dir=results_dir)
    runner = build_executor(sweep, executor, _params(executor_params))
    if dry_run:
        store = Store(sweep.results_dir, claim_timeout=sweep.spec.claim_timeout)
        max_attempts = 1 + sweep.spec.retries
        done = store.done() if store.root.is_dir() else set()
        running = store.running() if store.claims.is_dir() else {}
        rows = []
        for run in sweep.runs:
            attempts = store.attempts(run.hash) if store.failures.is_dir() else 0
            status = (
                "done" if run.hash in done
                else "running" if run.hash in running
                else "failed" if attempts >= max_attempts
                else f"todo (failed {attempts}×)" if attempts
                else "todo"
            )
            rows.append({"index": run.index, "hash": run.hash, "status": status, "axes": run.assignment})
        counts = {s: sum(r["status"].startswith(s) for r in rows) for s in ("todo", "running", "done", "failed")}
        if as_json:
            print_json({"sweep": sweep.name, "results_dir": str(sweep.results_dir), "count": len(rows), "duplicates": sweep.duplicates, "counts": counts, "runs": rows})
            return
        table = Table(title=f"sweep {sweep.name}: {len(rows)} runs → {sweep.results_dir}", title_justify="left")
        for col in ("#", "hash", "status", "config"):
            table.add_column(col, no_wrap=col != "config")
        for run, row in zip(sweep.runs, rows):
            table.add_row(str(run.index), run.hash, row["status"], run.label)
        console.print(table)
        dup = f"; {sweep.duplicates} duplicate configs dropped" if sweep.duplicates else ""
        console.print(
            f"{len(rows)} runs: {counts['todo']} to run, {counts['running']} running, {counts['done']} done, "
            f"{counts['failed']} failed{dup}; executor {executor or sweep.spec.executor.name}",
            markup=False,
        )
        return
    summary = run_sweep(
        sweep, runner, run=run_function, retry_failed=retry_failed, console=err_console, progress=progress  # type: ignore[arg-type]
    )
    console.print(summary.render())
    if summary.interrupted:
        raise typer.Exit(130)
    if summary.failed:
        raise typer.Exit(1)
