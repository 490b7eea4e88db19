"""``rftbench plugins``: what is installed and what each plugin contributes."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from ..plugins import DISABLE_ENV, LOAD_ENV, get_manager
from ._app import app, console, print_json, styled


def _names(kind: str, names: list[str]) -> str:
    """All names, except that long card lists are summarised (``rftbench zoo list`` shows them)."""
    if kind in ("representation", "dataset") and len(names) > 6:
        return f"{len(names)} cards (rftbench zoo list{' --kind dataset' if kind == 'dataset' else ''})"
    return ", ".join(names)


@app.command("plugins")
def plugins_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    kind: str = typer.Option(None, "--kind", "-k", help="Only list contributions of this kind (e.g. loss, threat_model)."),
) -> None:
    """List every plugin, its version, its status and what it contributes.

    Plugins come from the entry-point group `rftbench` (the built-ins too). Switch plugins
    off with `RFTBENCH_DISABLE_PLUGINS=name,…`, or allow-list them with
    `RFTBENCH_LOAD_PLUGINS=name,…`. Nothing is dropped silently: a plugin that fails to import
    or implements no hook is `failed`, one with refused contributions `partial`, two that
    contribute the same name `conflict`; each problem is printed below the table with its
    fix, and every other plugin still works.
    """
    logger = logging.getLogger("rftbench")
    level = logger.level
    logger.setLevel(logging.ERROR)  # the problems are listed below the table, not also as warnings above it
    try:
        manager = get_manager()
        infos = manager.describe()
        problems = manager.check()
    finally:
        logger.setLevel(level)
    if kind:
        manager.names(kind)  # validates the kind, listing the valid ones
        infos = [i for i in infos if i.contributions.get(kind)]  # only the plugins contributing that kind
    if as_json:
        rows = [i.as_dict() for i in infos]
        if kind:
            for row in rows:
                row["contributions"] = {k: v for k, v in row["contributions"].items() if k == kind}
        print_json({"plugins": rows, "problems": [p.as_dict() for p in problems]})
        return
    table = Table(title="rftbench plugins", caption=f"disable with {DISABLE_ENV}=name,… · allow-list with {LOAD_ENV}=name,…")
    table.add_column("plugin", style="bold")
    table.add_column("distribution")
    table.add_column("status")
    table.add_column("contributions")
    for info in infos:
        contributions = {k: v for k, v in info.contributions.items() if not kind or k == kind}
        text = Text("\n").join(styled("[cyan]{}[/]: {}", k, _names(k, v)) for k, v in contributions.items()) or "-"
        status = {"ok": styled("[green]ok[/]"), "disabled": styled("[dim]disabled[/]")}.get(info.status) or styled("[red]{}[/]", info.status)
        dist = f"{info.distribution or '-'} {info.version or ''}".strip()
        table.add_row(info.name, dist, status, text)
    console.print(table)
    if problems:
        console.print(styled("[bold red]{} problem{}:[/]", len(problems), "s" if len(problems) > 1 else ""))
        for problem in problems:
            console.print(f"- {problem}")


plugin_app = typer.Typer(help="Create plugins (see docs/plugins.md).", no_args_is_help=True)
app.add_typer(plugin_app, name="plugin")


@plugin_app.command("new")
def plugin_new(
    name: str = typer.Argument(..., help="The distribution's name, e.g. acme-rft (its package: acme_rft)."),
    kinds: list[str] = typer.Option(None, "--kind", "-k", help="A kind to contribute (repeat): loss, threat_model, attack, "
                                    "metric, schedule, protocol, architecture, dataset, executor, publisher. Default: loss."),
    directory: Path = typer.Option(Path("."), "--dir", "-d", help="Where to create the NAME folder."),
) -> None:
    """Write a working plugin distribution: pyproject with the entry point, a module with one
    example contribution per kind, a README and tests (rftbench.testing) that pass after
    `pip install -e NAME`.

    Example: `rftbench plugin new acme-rft --kind loss --kind threat_model`, then
    `pip install -e acme-rft && pytest acme-rft`.
    """
    from .._scaffold import new_plugin

    root = new_plugin(name, kinds, directory)
    from .._scaffold import package_name

    console.print(f"wrote {root}: pyproject.toml, README.md, {package_name(name)}/plugin.py, tests/")
    console.print(f"next: pip install -e {root} && pytest {root}")
