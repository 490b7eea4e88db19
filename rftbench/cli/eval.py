"""``rftbench eval TARGET``: clean accuracy, robust accuracy per threat model, and metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from ..errors import ConfigError
from ._app import app, console, print_json

THREAT_HELP = (
    "A threat model or metric, NAME[:VALUE][:ATTACK][:key=value,…]: linf:4/255 (AutoAttack standard), "
    "linf:4/255:apgd-ce (fast), l2:2, l1:75, corruptions:3, expected_robustness:eps=8/255. Repeatable."
)


def result_table(result: dict[str, Any], title: str, width: int | None = None) -> Table:
    """The evaluation as a table fitted to ``width`` (default: the terminal's): accuracies whole, notes wrapped."""
    from ..stats import format_accuracy
    from ._fit import FitColumn, build_fitted

    rows: list[tuple[str | Text, str | Text, str | Text]] = []
    n = result["n_examples"]
    rows.append(("clean accuracy", format_accuracy(result["clean_acc"], n), f"n={n}"))
    for label, record in result["threats"].items():
        notes = [f"{record['seconds']:.1f} s"]
        if not record.get("reliable", True):
            notes.append("unreliable: see flags")
        rows.append((f"accuracy {label}", format_accuracy(record["acc"], record.get("n", n)),
                     Text(", ".join(notes), style="" if record.get("reliable", True) else "red")))
    for key, what in (("union", "L∞/L2/L1"), ("union_all", "all threats")):
        union = result.get(key)
        if isinstance(union, dict):
            rows.append((f"union accuracy ({what})", format_accuracy(union.get("acc"), union.get("n", n)),
                         Text("correct under every one of " + ", ".join(map(str, union.get("of") or []))
                              + ("" if union.get("reliable", True) else "; unreliable: see flags"),
                              style="" if union.get("reliable", True) else "red")))
    for label, record in result["metrics"].items():
        value = record.get("value", record.get("kendall_tau", record.get("sum")))
        rows.append((label, f"{value:.4g}" if isinstance(value, (int, float)) else "-", f"{record['seconds']:.1f} s"))
    for flag in result["flags"]:
        colour = "red" if flag["severity"] == "warning" else "dim"
        rows.append((Text(f"flag {flag['check']}", style=colour), str(flag.get("threat") or "all"), Text(str(flag["message"]), style=colour)))
    columns = [FitColumn("measure", [r[0] for r in rows], breakable=True, required=True),
               FitColumn("value", [r[1] for r in rows], required=True),
               FitColumn("notes", [r[2] for r in rows], breakable=True, required=True)]
    table, _, _ = build_fitted(columns, width or console.width, title=title, caption="accuracies with their Wilson 95% interval")
    return table


@app.command("eval")
def eval_command(
    target: str = typer.Argument(..., help="A run folder (runs/HASH) or its record runs/HASH.json, a weights file, or a representation id with --head."),
    threats: list[str] = typer.Option(None, "--threat", "-t", help=THREAT_HELP),
    suite: str = typer.Option(None, "--suite", "-s", help="A named suite (study, robustbench32, quick, diagnostics) or a YAML file of items; --threat items are added to it."),
    n_examples: int = typer.Option(None, "--n-examples", "-n", help="Evaluate the first N test images (default: all)."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset card (default: the run's)."),
    representation: str = typer.Option(None, "--representation", "-r", help="Representation of a bare weights file."),
    head: Path = typer.Option(None, "--head", help="Linear head weights (weight, bias) for a representation target."),
    batch_size: int = typer.Option(128, "--batch-size", "-b", help="Evaluation batch size."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    seed: int = typer.Option(0, "--seed", help="Seeds attacks and corruptions: the same seed gives the same numbers."),
    data_root: str = typer.Option(None, "--data-root", help="Where datasets are stored (default: the rftbench cache)."),
    output: Path = typer.Option(None, "--output", "-o", help="Folder for evaluation.json and plots (default: <run>/eval for a run)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Evaluate a classifier: clean accuracy, accuracy under each threat model, metrics, masking flags.

    Examples: `rftbench eval runs/3f2a… --suite study`, `rftbench eval runs/3f2a… -t linf:4/255 -t corruptions:3 -n 500`,
    `rftbench eval model.safetensors -r mini_resnet.shapes_standard -d digits -t linf:8/255:apgd-ce`.
    Nothing is written unless the whole evaluation succeeds.
    """
    from ..evaluation import evaluate
    from ..evaluation.suites import named_suite, parse_item
    from ..evaluation.targets import load_target
    from ..plugins import get_manager
    from ..results import atomic_write_text

    items = named_suite(suite) if suite else []
    items += [parse_item(t) for t in threats or []]
    if not items:
        raise ConfigError("nothing to evaluate: pass --threat (e.g. -t linf:4/255) or --suite (study, quick, …)")
    manager = get_manager()
    from ..evaluation import resolve_suite

    resolve_suite(items, manager)  # bad names and parameters fail before any model or data is loaded
    loaded = load_target(target, dataset=dataset, representation=representation, head=head, data_root=data_root,
                         device=device, manager=manager)
    out_dir = output or loaded.default_output
    from ..outcomes import points_for

    result = evaluate(loaded.model, loaded.test, items, batch_size=batch_size, n_examples=n_examples, device=device,
                      seed=seed, manager=manager, output_dir=out_dir, progress=not as_json,
                      points=points_for(loaded.info.get("dataset"), manager))
    result["target"] = {"kind": loaded.kind, **loaded.info}
    result["suite"] = [c.as_config() for c in items]
    if out_dir is not None:
        atomic_write_text(Path(out_dir) / "evaluation.json", json.dumps(result, indent=2, default=str))
        from ..outcomes import prune

        prune(out_dir, (result.get("outcomes") or {}).get("file"))  # the per-example files of earlier evaluations
        result["written"] = str(Path(out_dir) / "evaluation.json")
    if as_json:
        print_json(result)
        return
    console.print(result_table(result, f"eval {target}"))
    if out_dir is not None:
        console.print(f"written: {result['written']}" + (f" and {len(result['plots'])} plots" if result["plots"] else ""), style="dim")
