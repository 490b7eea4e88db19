"""``rftbench doctor``: the environment, what ``auto`` chooses on it, and why — for bug reports."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from ._app import app, console, print_json


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    return str(value)


def _row(table: Table, *cells: Any) -> None:
    """Add a row of plain text (values from the environment are never read as Rich markup)."""
    table.add_row(*(Text(_text(c)) for c in cells))


def _section(title: str, rows: Any) -> Table:
    table = Table(title=title, show_header=False, title_justify="left", title_style="bold", min_width=len(title) + 2)
    table.add_column("what", style="cyan", no_wrap=True)
    table.add_column("value", overflow="fold")
    if isinstance(rows, dict):
        for key, value in rows.items():
            _row(table, key, value)
    else:
        _row(table, "", rows)
    return table


@app.command("doctor")
def doctor_command(as_json: bool = typer.Option(False, "--json", help="Print JSON (for tools) instead of tables.")) -> None:
    """Describe this environment for bug reports: versions of rftbench, torch, CUDA and every plugin;
    the CPU (model, instruction sets, threads) and GPUs (memory); what `auto` chooses for precision,
    channels_last and compile on each device and why; the active guards against known backend bugs;
    caches, offline mode and free space; plugin problems.

    Paste its output into bug reports. It never fails: what it cannot determine it reports as `unknown`.
    """
    from ..doctor import collect

    info = collect()
    if as_json:
        print_json(info)
        return
    out = [
        _section("versions", info["versions"]),
        _section("platform", {"platform": info["platform"]}),
        _section("CPU", info["cpu"]),
    ]
    gpu = info["gpu"]
    if isinstance(gpu, dict):
        summary = {k: v for k, v in gpu.items() if k != "devices"}
        for d in gpu.get("devices", []):
            summary[f"cuda:{d['index']}"] = (f"{d['name']} (sm {d['capability']}), {d['memory_gib']} GiB, "
                                             f"{d['free_gib']} GiB free, bf16 {_text(d['bf16'])}")
        out.append(_section("GPU", summary))
    else:
        out.append(_section("GPU", gpu))
    auto = info["auto"]
    if isinstance(auto, list):
        for row in auto:
            out.append(_section(f"what `auto` chooses on {row['device']}", {
                "precision": f"{row['precision']} — {row['precision_reason']}",
                "channels_last": f"{_text(row['channels_last'])} — {row.get('channels_last_reason', '')}",
                "compile": row["compile"],
            }))
    else:
        out.append(_section("what `auto` chooses", auto))
    guards = info["guards"]
    if isinstance(guards, list):
        out.append(_section("active guards (rftbench/engine/guards.py)",
                            {g["guard"]: f"{g['effect']} — {g['upstream']}" for g in guards} or {"none": "no known backend bug applies here"}))
    else:
        out.append(_section("active guards", guards))
    storage = info["storage"]
    if isinstance(storage, dict):
        rows = {}
        for key in ("rftbench_cache", "data_root", "hf_home", "hf_hub_cache"):
            d = storage[key]
            rows[key] = (f"{d['path']} ({'exists' if d['exists'] else 'not created yet'}, {d['free_gib']} GiB free)"
                         if isinstance(d, dict) else d)
        rows["hf_hub_offline"] = storage["hf_hub_offline"]
        rows.update({f"${k}": v for k, v in storage["environment"].items()})
        out.append(_section("caches and offline mode", rows))
    else:
        out.append(_section("caches and offline mode", storage))
    plugins = info["plugins"]
    if isinstance(plugins, dict):
        rows = {p["name"]: f"{p['distribution'] or '-'} {p['version'] or ''} — {p['status']}" for p in plugins["plugins"]}
        out.append(_section("plugins", rows))
        out.append(_section("plugin problems", {str(i + 1): p for i, p in enumerate(plugins["problems"])} or {"none": "every plugin loaded"}))
    else:
        out.append(_section("plugins", plugins))
    for table in out:
        console.print(table)
