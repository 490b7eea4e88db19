"""``rftbench sweep``, ``rftbench results`` and ``rftbench tune``: grids of runs, their results, HPO."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..sweep.worker import DEFAULT_RUN
from ..zoo import parse_filters
from ._app import app, console, err_console, print_json, styled, visible


def _params(pairs: list[str] | None) -> dict[str, object]:
    """``["address=auto", "gpus_per_run=1"]`` → a dict with YAML-parsed values."""
    from ..yamlfile import loads

    return {k: loads(v, f"--param {k}={v}") for k, v in parse_filters(pairs).items()}


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
        DEFAULT_RUN, "--run-function", help="module:function that runs one config (rftbench.sweep.synthetic:synthetic_run to test the machinery)."
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


@app.command("results")
def results_command(
    results_dir: Path = typer.Argument(..., help="A results directory: a sweep's results_dir or a run's output_dir."),
    filters: list[str] = typer.Option(
        None, "--filter", "-f", help="column=value (wildcards), column!=value, column>number, …; repeat to combine. E.g. -f loss=trades -f 'clean_acc>0.5'."
    ),
    columns: str = typer.Option(None, "--columns", "-c", help="Comma-separated columns to keep (wildcards allowed: 'linf*')."),
    sort: str = typer.Option(None, "--sort", "-s", help="Comma-separated columns to sort by; '-col' for descending."),
    fmt: str = typer.Option("table", "--format", "-F", help="table, csv, parquet or jsonl."),
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file (required for parquet)."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Also read records in sub-folders."),
    failures: bool = typer.Option(False, "--failures", help="List the sweep's failure records instead (hash, attempts, last error)."),
    group_by: str = typer.Option(
        None, "--group-by", "-g",
        help="Comma-separated columns to group by, e.g. representation,loss: each group's runs (usually its seeds) become one row "
             "with runs, seeds, and per accuracy its mean, std and a 95% interval (<col>.mean, .std, .ci_low, .ci_high).",
    ),
    curves: Path = typer.Option(
        None, "--curves", help="Also draw the in-training validation curves (clean and robust accuracy, Pareto frontier) "
                               "of the listed runs into this PNG (runs with a `monitor:` section).",
    ),
    wide: bool = typer.Option(False, "--wide", "-w", help="Table: show every column, however wide (e.g. pipe into `less -S`)."),
) -> None:
    """List, filter and export result records, one row per run, for analysis in pandas.

    Columns: id, status, the config (loss, loss.beta, optimizer.lr_head, …), the metrics
    (clean_acc, threats.linf:4/255.acc, …), each accuracy's Wilson 95% interval
    (clean_acc.ci_low, clean_acc.ci_high, …) and timings.*. The table shows accuracies in %
    with their interval: `48.3 [45.2, 51.4]`.

    The table fits the terminal: by default the config columns whose values differ between the
    rows shown (plus `id` when they do not tell the rows apart), then every accuracy; columns
    that do not fit are dropped (and named below the table), never cut. `-c` chooses the
    columns, `--wide` shows them all.

    `--group-by representation,loss` turns a grid with several seeds into a study: one row per
    group, `mean ± std [95% interval]` per accuracy; `pooled` names any other config column that
    differs inside a group (add it to --group-by to split them). Filters apply to the runs,
    `--sort` to the groups (e.g. `-s -clean_acc.mean`).

    Example: `rftbench results runs/study -f dataset=digits -F csv -o study.csv`, then
    `pandas.read_csv("study.csv")`.
    """
    from ..errors import RftbenchError
    from ..sweep.export import FORMATS, filter_rows, group_rows, load_rows, select_columns, sort_rows, write_rows

    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r}: use one of {', '.join(FORMATS)}", param_hint="--format")
    if failures:
        _print_failures(results_dir)
        return
    problems: list[str] = []
    rows = filter_rows(load_rows(results_dir, recursive=recursive, problems=problems), filters or [])
    for problem in problems:
        err_console.print(styled("[yellow]skipped:[/] {}", problem), soft_wrap=True)
    if curves is not None:
        _draw_curves(results_dir, rows, curves, recursive)
    keys = _split(group_by)
    if keys:
        rows = group_rows(rows, keys)
    rows = sort_rows(rows, _split(sort))
    chosen = _split(columns)
    if fmt == "table":
        _print_results_table(rows, results_dir, keys, chosen, wide)
        return
    cols = select_columns(rows, chosen)
    if not rows:
        raise RftbenchError(f"no result records match in {results_dir}; nothing to export")
    text = write_rows(rows, cols, fmt, output)
    if text is not None:  # on stdout control characters are shown as \xNN; a file (-o) keeps the exact values
        typer.echo(visible(text), nl=False)
    else:
        err_console.print(f"wrote {len(rows)} rows × {len(cols)} columns to {output}")


def _draw_curves(results_dir: Path, rows: list[dict], path: Path, recursive: bool) -> None:
    from ..curves import plot_curves
    from ..errors import RftbenchError
    from ..results import read_record
    from ..sweep.export import find_records

    if path.suffix.lower() != ".png":
        raise typer.BadParameter(f"{str(path)!r}: the curves are written as PNG; name a .png file", param_hint="--curves")
    wanted = {r["id"] for r in rows}
    records = []
    for record_path in find_records(results_dir, recursive=recursive):
        try:
            record = read_record(record_path)
        except RftbenchError:
            continue  # already reported as skipped
        if record.id in wanted:
            records.append(record)
    written = plot_curves(records, path, title=f"in-training evaluation: {results_dir}")
    if written is None:
        err_console.print("no curves drawn: none of these runs has an in-training evaluation (add a `monitor:` section)",
                          markup=False)
    else:
        err_console.print(f"curves of {sum(1 for r in records if r.monitor)} runs written to {written}", markup=False)


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


#: Identity columns in the order a reader looks for them; other config columns that vary follow.
_IDENTITY = ("representation", "dataset", "protocol", "loss", "threat", "threat.eps", "seed")
#: Config columns that say where a run was, not what it was.
_NOT_IDENTITY = ("output_dir", "data_root", "device")


def _varies(rows: list[dict], column: str) -> bool:
    """Whether ``column`` differs between ``rows``; a parameter (``loss.beta``) only counts where it differs for one component."""
    import json

    def text(row: dict, col: str) -> str:
        return json.dumps(row.get(col), sort_keys=True, default=str)

    parent = column.rsplit(".", 1)[0] if "." in column else None
    if parent is not None and rows and parent in rows[0]:
        by_parent: dict[str, set[str]] = {}
        for r in rows:
            by_parent.setdefault(text(r, parent), set()).add(text(r, column))
        return any(len(values) > 1 for values in by_parent.values())
    return len({text(r, column) for r in rows}) > 1


def _default_columns(rows: list[dict]) -> list[str]:
    """Identity columns that differ between ``rows`` (``id`` first when they do not tell the rows apart), then every accuracy.

    The rule is by name, so a metric another plugin adds flows in: every accuracy-like column
    (:func:`rftbench.sweep.export.is_accuracy`: ``clean_acc``, ``<threat>.acc``, ``*_acc``).
    """
    from ..config import RunConfig
    from ..sweep.export import is_accuracy, select_columns

    present = select_columns(rows, None)
    config = [c for c in present if c.split(".")[0] in RunConfig.model_fields and c.split(".")[0] not in _NOT_IDENTITY]
    ordered = [c for c in _IDENTITY if c in config] + [c for c in config if c not in _IDENTITY]
    identity = [c for c in ordered if _varies(rows, c)]  # one row: none (its identity goes in the caption)
    keys = {tuple(str(r.get(c)) for c in identity) for r in rows}
    if len(keys) < len(rows) or not identity:
        identity = ["id", *identity]
    metrics = [c for c in present if is_accuracy(c) and c.split(".")[0] not in RunConfig.model_fields
               and any(_is_number(r.get(c)) for r in rows)]
    from ..curves import DEFAULT_COST_COLUMNS

    # the in-training Pareto AUC and the cost, where any listed run has them (other cost columns: -c 'cost.*')
    extras = [c for c in ("pareto_auc", "warnings", *DEFAULT_COST_COLUMNS) if any(r.get(c) is not None for r in rows)]
    return [*identity, *_accuracy_order(metrics), *extras]


def _accuracy_order(columns: list[str]) -> list[str]:
    """Clean accuracy first, then the threat models' accuracies, then other accuracy-like metrics (stable otherwise)."""
    def rank(c: str) -> int:
        return 0 if c.split(".")[0] == "clean_acc" else 1 if c.startswith("threats.") else 2

    return sorted(columns, key=rank)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _print_results_table(rows: list[dict], results_dir: Path, keys: list[str], chosen: list[str], wide: bool) -> None:
    from ..sweep.export import is_accuracy, select_columns
    from ._fit import FitColumn, print_fitted

    if chosen:
        cols = select_columns(rows, chosen)
    elif wide:
        shown = set()
        cols = select_columns(rows, None)
        for c in cols:
            base = c[: -len(".mean")] if c.endswith(".mean") else c
            if is_accuracy(base):
                shown.add(base)
        cols = [c for c in cols if not (c.endswith((".ci_low", ".ci_high", ".std")) and c.rsplit(".", 1)[0] in shown)]
    else:
        cols = _group_columns(rows, keys) if keys else _default_columns(rows)
    accuracies = [c for c in cols if is_accuracy(c[: -len(".mean")] if c.endswith(".mean") else c)]
    identity = [c for c in cols if c not in accuracies]
    fitted = []
    for c in cols:
        cells = [_cell(row.get(c), row, c) for row in rows]
        numeric = all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows)
        required = bool(chosen) or (c in accuracies and c == accuracies[0]) or c in ("id", *keys)  # -c: all of them
        # Dropped first: accuracies after the first (last first), then identity columns (last first).
        drop = (-accuracies.index(c) if c in accuracies else -1000 - identity.index(c) if c in ("runs", "seeds", "pooled")
                else 1000 - identity.index(c))
        fitted.append(FitColumn(c, cells, breakable=not numeric and c not in accuracies, required=required,
                                justify="right" if numeric else "left", drop=drop if not chosen else None))
    title = f"{len(rows)} groups of results in {results_dir}" if keys else f"{len(rows)} results in {results_dir}"
    caption = ("accuracies in %: mean ± std over the group's runs [95% interval]" if keys
               else "accuracies in % [Wilson 95% interval]")
    if not rows:
        console.print(title)
        return
    if not chosen and not wide and not keys:
        from ..config import RunConfig

        same = [f"{c}={rows[0].get(c)}" for c in _IDENTITY if c in rows[0] and c not in cols and c.split(".")[0] in RunConfig.model_fields
                and rows[0].get(c) is not None and not _varies(rows, c)]
        if same:
            caption += ("; every row: " if len(rows) > 1 else "; the run: ") + ", ".join(same)
    print_fitted(console, fitted, title=title, caption=caption if rows else None, wide=wide)


def _group_columns(rows: list[dict], keys: list[str]) -> list[str]:
    from ..sweep.export import is_accuracy, select_columns

    present = select_columns(rows, None)
    means = [c for c in present if c.endswith(".mean") and is_accuracy(c[: -len(".mean")])]
    extra = ["pooled"] if any(r.get("pooled") for r in rows) else []
    return [*keys, "runs", "seeds", *extra, *_accuracy_order(means)]


def _cell(value: object, row: dict | None = None, column: str = "") -> str:
    from ..sweep.export import is_accuracy

    if column.startswith("cost."):
        from .run import format_count

        unit = "B" if column.endswith("_bytes") else "FLOP" if "flops" in column else ""
        if column == "cost.device_seconds":
            return "unknown" if value is None else f"{value:.1f} s"
        return format_count(value, unit)  # None: the record has no cost: unknown, never 0
    if value is None:
        return ""
    if row is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        base = column[: -len(".mean")] if column.endswith(".mean") else column
        low, high = row.get(f"{base}.ci_low"), row.get(f"{base}.ci_high")
        if is_accuracy(base):
            text = f"{100 * value:.1f}"
            std = row.get(f"{base}.std") if column.endswith(".mean") else None
            if std is not None:
                text += f" ± {100 * std:.1f}"
            if low is not None and high is not None:
                text += f" [{100 * low:.1f}, {100 * high:.1f}]"
            return text
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _print_failures(results_dir: Path) -> None:
    from ..sweep import Store

    store = Store(results_dir)
    table = Table(title=f"failures in {results_dir}", title_justify="left", caption=f"tracebacks: {store.failures}/<hash>.json")
    table.add_column("hash", no_wrap=True)
    for col in ("attempts", "last error", "when"):
        table.add_column(col)
    paths = sorted(store.failures.glob("*.json")) if store.failures.is_dir() else []
    for path in paths:
        record = store.failure_record(path.stem) or {"attempts": []}
        last = record["attempts"][-1] if record["attempts"] else {}
        done = " (since done)" if store.is_done(path.stem) else ""
        table.add_row(path.stem, f"{len(record['attempts'])}{done}", str(last.get("error", "")), str(last.get("time", "")))
    console.print(table)


@app.command("tune")
def tune_command(
    config: Path = typer.Argument(None, help="The run config to tune (YAML); omit for the built-in offline default."),
    overrides: list[str] = typer.Option(None, "--set", "-s", help="Override a config field: key=value (as in `rftbench config show`). Repeatable."),
    samples: int = typer.Option(16, "--samples", "-n", help="Number of trials (configurations sampled)."),
    params: str = typer.Option(
        None, "--params", help="Comma-separated fields to tune (default all): lr_backbone, lr_head, weight_decay_backbone, weight_decay_head."
    ),
    metric: str = typer.Option(
        "val_loss", "--metric",
        help="The reported metric ASHA compares: val_loss, val_acc, or with a `monitor:` section val_robust_acc, "
             "val_pareto_auc, val_corruption_acc (with --mode max).",
    ),
    mode: str = typer.Option("min", "--mode", help="min or max."),
    address: str = typer.Option(None, "--address", help="Ray cluster address ('auto', 'host:port'); default: a Ray on this machine."),
    num_cpus: int = typer.Option(None, "--num-cpus", help="CPUs a Ray started here may use."),
    cpus_per_trial: float = typer.Option(1.0, "--cpus-per-trial", help="CPUs Ray reserves for each trial (fractions allowed)."),
    gpus_per_trial: float = typer.Option(0.0, "--gpus-per-trial", help="GPUs Ray reserves for each trial (0.5 packs two trials per GPU)."),
    results_dir: Path = typer.Option(Path("runs/tune"), "--results-dir", help="Where Ray Tune keeps the trials."),
    output: Path = typer.Option(Path("best.yaml"), "--output", "-o", help="Where to write the best configuration."),
    trial_function: str = typer.Option(
        "rftbench.engine:tune_trial", "--trial-function", help="module:function(config, report) training one trial (rftbench.sweep.synthetic:synthetic_trial for a demo)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random search."),
) -> None:
    """Tune learning rates and weight decays (backbone and head separately) with Ray Tune and ASHA.

    As in the reference study: log-uniform LR in [1e-6, 1e-1] and WD in [1e-6, 1e-2]; ASHA with
    max_t = epochs, grace period 1, reduction factor 2, minimising the validation loss. The best
    configuration is written as a run config: `rftbench tune --set epochs=10 -n 32 -o best.yaml`.
    """
    from ..config import load_config
    from ..sweep.tune import tune, write_best

    base = load_config(config, overrides)
    result = tune(
        base, trial=trial_function, params=_split(params) or None, num_samples=samples, metric=metric, mode=mode,
        address=address, num_cpus=num_cpus, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
        results_dir=results_dir, seed=seed,
    )
    path = write_best(result, output)
    table = Table(title=f"rftbench tune: {len(result.trials)} trials, {result.stopped_early()} stopped early by ASHA", title_justify="left")
    keys = list(result.trials[0]["values"]) if result.trials and result.trials[0]["values"] else []
    for col in (*keys, "epochs", metric):
        table.add_column(col, justify="right")
    for t in sorted(result.trials, key=lambda t: (t.get(metric) is None, t.get(metric) or 0.0), reverse=mode == "max"):
        table.add_row(*(f"{t['values'].get(k, float('nan')):.2e}" for k in keys), str(t["epochs"]), _cell(t.get(metric)))
    console.print(table)
    console.print(f"best {metric} = {result.value:.4g}; configuration written to {path}", markup=False)
