"""Help text as a person reads it: placeholders such as `<run>` kept, flags shown without a value type."""

from __future__ import annotations

import re

import pytest
import typer

from rftbench.cli import _app, app
from tests.cli_helpers import run_cli as cli


def _commands() -> list[list[str]]:
    """Every command path of the `rftbench` app, e.g. ["zoo", "list"]."""
    out: list[list[str]] = []

    def walk(command, path):
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out.append(path)

    walk(typer.main.get_command(app), [])
    return out


COMMANDS = _commands()


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_help_shows_no_value_type_on_flags(capsys, monkeypatch, path):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = cli(capsys, *path, "--help")
    assert code == 0 and "Usage" in out
    assert "<bool>" not in out
    assert re.search(r"--help\s+-h\s+Show this message", out)


@pytest.mark.parametrize("path, placeholder", [
    (["eval"], "(default: <run>/eval for a run)"),
    (["submit"], "(default: <rftbench cache>/leaderboard/outbox)"),
    (["results"], "(<col>.mean, .std, .ci_low, .ci_high)"),
    (["run"], "<output_dir>/<hash>.json"),
])
def test_help_keeps_placeholders(capsys, monkeypatch, path, placeholder):
    monkeypatch.setenv("COLUMNS", "400")  # one line per help text, so the placeholder is not wrapped
    code, out, _ = cli(capsys, *path, "--help")
    assert code == 0 and placeholder in " ".join(out.split()), out


def test_the_mends_are_applied_once():
    from typer import core, rich_utils

    before = (rich_utils._make_rich_text, core.TyperOption.display_type_rich)
    assert all(getattr(f, "_rftbench", False) for f in before)
    _app._fix_help_rendering()  # a second import path, a reload: never wrapped twice
    assert (rich_utils._make_rich_text, core.TyperOption.display_type_rich) == before
