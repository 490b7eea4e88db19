"""Calling the ``rftbench`` command in-process, as the CLI tests do."""

from __future__ import annotations

from rftbench.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``rftbench ARGV…``; returns (exit code, stdout, stderr)."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as exit_:
        code = exit_.code or 0
    out, err = capsys.readouterr()
    return code, out, err
