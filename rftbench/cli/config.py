"""``rftbench config``: the fully resolved, validated run configuration."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from ..config import load_config
from ._app import app, console, print_json

config_app = typer.Typer(help="Inspect run configurations.", no_args_is_help=True)
app.add_typer(config_app, name="config")

#: Shared by every command that takes a config (run, eval, sweep…).
SET_OPTION_HELP = (
    "Override a config field: key=value, dotted for nested fields and parameters "
    "(--set epochs=5 --set loss.beta=6 --set threat.eps=8/255 --set loss=classic_at). Repeatable."
)


@config_app.command("show")
def config_show(
    config: Path = typer.Argument(None, help="A YAML run config; omit for the built-in offline default."),
    overrides: list[str] = typer.Option(None, "--set", "-s", help=SET_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
) -> None:
    """Print the resolved config: every name checked, every parameter validated and defaulted.

    The config hash printed last names the run's result record.
    """
    resolved = load_config(config, overrides)
    data = resolved.to_dict()
    if as_json:
        print_json({"config": data, "hash": resolved.config_hash()})
        return
    console.print(yaml.safe_dump(data, sort_keys=False).rstrip(), markup=False)
    console.print(f"# config hash: {resolved.config_hash()}", style="dim")
