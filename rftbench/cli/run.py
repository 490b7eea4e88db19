"""``rftbench run``: train and evaluate one configuration, write its result record, print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from ..results import ResultRecord
from ..stats import format_accuracy
from ._app import app, console, err_console, print_json, styled
from .config import SET_OPTION_HELP


def summary_table(record: ResultRecord, path: Path | None = None, width: int | None = None) -> Table:
    """A readable summary of a result record: what ran, accuracies, time; fitted to ``width`` (default: the terminal's).

    Labels, names and paths wrap after punctuation; accuracies with their intervals never wrap.
    """
    cfg, metrics, timings = record.config, record.metrics, record.timings

    def name(value: Any) -> str:
        if isinstance(value, dict):
            rest = ", ".join(f"{k}={v}" for k, v in value.items() if k != "name" and v is not None)
            return f"{value['name']} ({rest})" if rest else value["name"]
        return str(value)

    from ._fit import FitColumn, build_fitted

    rows: list[tuple[str | Text, str | Text]] = []

    class _Rows:
        def add_row(self, label: str | Text, value: str | Text) -> None:
            rows.append((label, value))

    table = _Rows()
    table.add_row("representation", cfg.get("representation", "-"))
    table.add_row("dataset", cfg.get("dataset", "-"))
    table.add_row("protocol · loss", f"{name(cfg.get('protocol'))} · {name(cfg.get('loss'))}")
    table.add_row("training threat", name(cfg.get("threat")) if _adversarial(cfg.get("loss")) else "none (the loss trains on clean images)")
    table.add_row("epochs · batch", f"{cfg.get('epochs')} · {cfg.get('batch_size')}")
    counts = getattr(record, "parameters", None)  # trainable / total (records of older versions have none)
    if isinstance(counts, dict) and isinstance(counts.get("trainable"), int) and isinstance(counts.get("total"), int):
        table.add_row("trainable parameters", f"{counts['trainable']:,} of {counts['total']:,} "
                      f"({100 * counts['trainable'] / max(counts['total'], 1):.2f}%)")
    n = metrics.get("n_examples")
    clean = styled("[green]{}[/]", format_accuracy(metrics.get("clean_acc"), n))
    clean = clean + styled(" [dim]95% CI, n={}[/]", n) if n else clean
    clean.no_wrap = True  # an accuracy is never split across lines
    table.add_row("clean accuracy", clean)
    for label, result in (metrics.get("threats") or {}).items():
        robust = styled("[yellow]{}[/]", format_accuracy(result.get("acc"), result.get("n", n)))
        robust.no_wrap = True
        table.add_row(f"robust accuracy {label}", robust)
    for key, what in (("union", "L∞/L2/L1"), ("union_all", "all threats")):
        union = metrics.get(key)
        if isinstance(union, dict):
            text = styled("[yellow]{}[/]", format_accuracy(union.get("acc"), union.get("n", n)))
            text.no_wrap = True
            table.add_row(f"union accuracy ({what})", text + styled(" [dim]over {}[/]", ", ".join(map(str, union.get("of") or []))))
    for label, result in (metrics.get("metrics") or {}).items():
        value = result.get("value") if isinstance(result, dict) else result
        if isinstance(value, (int, float)):
            table.add_row(label, f"{value:.4g}")
    prov = record.provenance
    table.add_row("device", f"{prov.get('device', '-')} · {prov.get('precision', '-')}"
                  + (" · channels_last" if prov.get("channels_last") else ""))
    table.add_row(
        "time",
        f"{timings.get('total_seconds', 0):.0f} s (train {timings.get('train_seconds', 0):.0f} s at "
        f"{timings.get('train_images_per_s', 0):.0f} img/s, eval {timings.get('eval_seconds', 0):.0f} s)",
    )
    for label, value in monitor_rows(record):
        table.add_row(label, Text(value) if isinstance(value, str) else value)  # record text is shown, never read as markup
    if path is not None:
        table.add_row("record", str(path))
    if isinstance(metrics.get("outcomes"), dict):
        table.add_row("per-example", f"{metrics['outcomes'].get('file')} (compare runs with `rftbench compare A B`)")
    if record.run_dir:
        table.add_row("model", f"rftbench.load_model({record.run_dir!r})")
    columns = [FitColumn("field", [r[0] for r in rows], breakable=True, required=True, style="bold"),
               FitColumn("value", [r[1] for r in rows], breakable=True, required=True)]
    fitted, _, _ = build_fitted(columns, width or console.width, title=f"run {record.id}", show_header=False)
    return fitted


def _adversarial(loss: Any) -> bool:
    """Whether the loss a config names trains on adversarial examples (its spec's ``adversarial``; unknown: yes)."""
    from ..plugins import get_manager

    name = loss.get("name") if isinstance(loss, dict) else loss
    try:
        return bool(getattr(get_manager().get("loss", str(name)), "adversarial", True))
    except Exception:  # noqa: BLE001 - a record from a plugin not installed here: say what it names
        return True


def format_count(value: Any, unit: str = "") -> str:
    """``1.2 G`` style for a count, ``unknown`` for ``None`` (a record without cost is unknown, not zero)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "unknown"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def monitor_rows(record: ResultRecord) -> list[tuple[str, str]]:
    """Summary rows for the in-training evaluation, warnings and cost of a record (none where it has none)."""
    rows: list[tuple[str, str]] = []
    mon = record.monitor
    if isinstance(mon, dict):
        pts = mon.get("points") or {}
        robust = pts.get("robust_acc") or []
        auc = mon.get("pareto_auc")
        rows.append(("in-training eval", f"{len(robust)} points on {mon.get('n')} val images, {mon.get('threat')}"
                     + (f"; Pareto AUC {auc:.3f}" if isinstance(auc, (int, float)) else "")))
        kept = mon.get("kept") or {}
        if kept.get("keep") == "best-robust":
            rows.append(("weights kept", f"best-robust: epoch {kept.get('epoch')} (step {kept.get('step')}), "
                                         f"val robust {100 * kept.get('robust_acc', 0):.1f}%"))
    for warning in record.warnings or []:
        rows.append((styled("[red]warning {}[/]", warning.get("name")), str(warning.get("message"))))
    if record.stopped:
        rows.append((styled("[red]{}[/]", "stopped early"), f"at epoch {record.stopped.get('epoch')} by {record.stopped.get('name')}"))
    cost = record.cost or {}
    if cost:
        peak = cost.get("peak_device_memory_bytes") or cost.get("peak_host_memory_bytes")
        where = "device" if cost.get("peak_device_memory_bytes") else "host"
        train = cost.get("train") or {}
        rows.append(("cost", f"{format_count(cost.get('flops'), 'FLOP')} (train {format_count(train.get('flops_per_step'), 'FLOP')}"
                             f"/step), {cost.get('device_seconds', 0):.1f} {cost.get('device_seconds_unit', 'device-seconds')}, "
                             f"peak {where} memory {format_count(peak, 'B')}"))
    return rows


@app.command("run")
def run_command(
    config: Path = typer.Argument(None, help="A YAML run config; omit for the built-in offline default."),
    overrides: list[str] = typer.Option(None, "--set", "-s", help=SET_OPTION_HELP),
    restart: bool = typer.Option(False, "--restart", help="Ignore existing checkpoints and train from scratch."),
    rerun: bool = typer.Option(False, "--rerun", help="Run even if a complete result record exists (it is replaced only when the new run completes)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar (loss, accuracy, ε, LR)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result record as JSON instead of the summary."),
    stop_on_warning: bool = typer.Option(
        False, "--stop-on-warning",
        help="End the run at the first early warning (task-adaptation, robust-collapse, loss-divergence); its record is "
             "written with status `stopped`. Sets monitor.stop_on_warning=true (and so turns the in-training evaluation on).",
    ),
) -> None:
    """Train and evaluate one configuration; write its result record `<output_dir>/<hash>.json`.

    With no arguments it fine-tunes an offline mini ResNet (pretrained on generated shapes,
    built on first use) on scikit-learn's digits with TRADES, then reports clean and robust
    accuracy: no internet needed, a few minutes on 2 CPU cores.

    An interrupted run (Ctrl-C saves a checkpoint) resumes when the same command is run again.

    Examples: `rftbench run` · `rftbench run my.yaml` · `rftbench run --set loss=classic_at --set epochs=5`
    · `rftbench run --set representation=mini_resnet.shapes_robust --set protocol=lp`
    """
    from ..runner import run, run_paths
    from ..config import load_config

    if stop_on_warning:
        overrides = [*(overrides or []), "monitor.stop_on_warning=true"]
    resolved = load_config(config, overrides)
    record_path, _ = run_paths(resolved)
    existed = record_path.is_file()
    if existed and not rerun and not as_json:
        err_console.print(styled("[dim]{} exists: showing it (pass --rerun to run again)[/]", record_path))
    record = run(resolved, resume=not restart, rerun=rerun, progress=progress and not as_json, console=err_console)
    if as_json:
        print_json(record.model_dump(mode="json"))
        return
    console.print(summary_table(record, record_path))
