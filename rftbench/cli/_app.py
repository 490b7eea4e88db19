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


def _fix_help_rendering() -> None:
    """Two mends to Typer's Rich help (applied once, to whatever Typer version is installed):

    - the help is Markdown, where ``<run>`` is an HTML tag and vanishes ("default: /eval for a
      run"): a ``<`` outside code spans is escaped, so placeholders print as written;
    - a boolean flag takes no value, so it gets no ``<bool>`` type as if it did.
    """
    import re

    try:
        from typer import core, rich_utils
    except ImportError:  # pragma: no cover - a Typer without Rich help
        return
    make_text = getattr(rich_utils, "_make_rich_text", None)
    if make_text is not None and not getattr(make_text, "_rftbench", False):
        code_span = re.compile(r"(`+[^`]*`+)")

        def _make_rich_text(*args: Any, **kwargs: Any) -> Any:
            text = kwargs.get("text")
            if isinstance(text, str) and kwargs.get("markup_mode") == "markdown":
                kwargs["text"] = "".join(part if part.startswith("`") else re.sub(r"(?<!\\)<", r"\\<", part)
                                         for part in code_span.split(text))
            return make_text(*args, **kwargs)

        _make_rich_text._rftbench = True  # type: ignore[attr-defined]
        rich_utils._make_rich_text = _make_rich_text  # type: ignore[assignment]
    option = getattr(core, "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if shown is not None and not getattr(shown, "_rftbench", False):
        def display_type_rich(self: Any, ctx: Any) -> Any:
            if getattr(self, "is_flag", False) and getattr(self, "metavar", None) is None:
                return None  # `--json`, `--progress/--no-progress`: nothing follows the flag
            return shown(self, ctx)

        display_type_rich._rftbench = True  # type: ignore[attr-defined]
        option.display_type_rich = display_type_rich  # type: ignore[union-attr]


_fix_help_rendering()
