"""The Typer application and the helpers every command shares."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text


app = typer.Typer(
    name="rftbench",
    help=(
        "rftbench: a benchmark for robust fine-tuning of pretrained image classifiers.\n\n"
        "A run is one configuration (representation × dataset × protocol × loss × threat model × "
        "schedules) trained and evaluated into one result record. Everything a config names "
        "comes from plugins (see `rftbench plugins`) and the model zoo (see `rftbench zoo list`)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
#: Control characters shown as escapes: C0 except tab and newline, DEL, and C1 (ESC starts a terminal
#: sequence; CSI ``\x9b`` is its one-byte form).
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}


def visible(text: str) -> str:
    """``text`` with control characters written as ``\\xNN`` (no terminal escape sequence survives)."""
    return text.translate(_CONTROL)


class SafeConsole(Console):
    """A Rich console that never passes a control character from a string to the terminal.

    Every ``str`` printed (a message, a table cell) goes through :meth:`render_str`, which makes
    control characters visible (:func:`visible`); :func:`styled` does the same for its values.
    A record, card or plugin name holding ``\x1b[2J`` prints as those characters, not as a command.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:  # noqa: D102 - Rich's hook
        return super().render_str(visible(text), **kwargs)


#: Markup is off: no string from a user, a file or a plugin is ever parsed as Rich markup (a name
#: holding ``[/x]`` prints as itself). Styled output goes through :func:`styled`.
console = SafeConsole(highlight=False, markup=False, emoji=False)
err_console = SafeConsole(stderr=True, highlight=False, markup=False, emoji=False)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        import torch

        try:
            ours = version("rftbench")
        except PackageNotFoundError:  # a source checkout that is not installed
            ours = "unknown (not installed)"
        typer.echo(f"rftbench {ours} (torch {torch.__version__})")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", callback=_print_version, is_eager=True,
                                 help="Print rftbench's version (and torch's) and exit."),
    plugin: list[str] = typer.Option(None, "--plugin", "-p", help="Load a plugin module without packaging it "
                                     "(module.path or module.path:object; repeatable; also RFTBENCH_PLUGINS=a,b)."),
) -> None:
    """rftbench: a benchmark for robust fine-tuning of pretrained image classifiers."""
    from .. import plugins

    wanted = [p for p in plugin or [] if p.strip()]
    if wanted != plugins.CLI_MODULES:
        plugins.CLI_MODULES[:] = wanted
        if wanted or plugins._default is not None and any(i.distribution is None and i.entry_point is None
                                                          for i in plugins._default.plugins.values()):
            plugins.set_manager(None)  # loaded afresh with these modules on first use


def styled(template: str, *values: Any) -> Text:
    """Rich text from a markup ``template`` whose ``{}`` fields are filled with escaped ``values``.

    ``styled("[green]ok[/] {}", path)`` colours "ok" and prints ``path`` verbatim, whatever it holds.
    """
    return Text.from_markup(template.format(*(escape(visible(str(v))) for v in values)), emoji=False)


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else."""
    typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
