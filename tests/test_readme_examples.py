"""The README's `$ rftbench …` examples print what the README says they print."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from rftbench.cli import _app
from tests.cli_helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
#: Where an example runs: the compare examples are on study 01's shipped records.
CWD = {"compare records": ROOT / "examples" / "studies" / "01-suboptimal-transfer"}


def _examples(path: Path) -> list[tuple[str, str]]:
    """(command, shown output) of each ``$ rftbench …`` line in a fenced block, output up to the next ``$`` or the fence."""
    out: list[tuple[str, str]] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", path.read_text(), flags=re.S):
        for chunk in re.split(r"^(?=\$ rftbench )", block, flags=re.M):
            if chunk.startswith("$ rftbench "):
                command, _, shown = chunk.partition("\n")
                out.append((command[2:], shown))
    return out


EXAMPLES = _examples(ROOT / "README.md")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_readme_has_examples():
    assert len(EXAMPLES) >= 3 and any(c.startswith("rftbench config show") for c, _ in EXAMPLES)


@pytest.mark.parametrize("command, shown", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_example_output_is_real(builtins, capsys, monkeypatch, command, shown):
    cwd = next((d for prefix, d in CWD.items() if command.startswith(f"rftbench {prefix}")), ROOT)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(_app.console, "_width", 100)
    monkeypatch.setattr(_app.err_console, "_width", 100)
    code, out, err = run_cli(capsys, *shlex.split(command)[1:])
    real = _flat(out + "\n" + err)
    # lines wrap at another width; "[…]" marks where the README shortens a long message
    position = 0
    for part in _flat(shown).split("[…]"):
        part = part.strip()
        if part:
            found = real.find(part, position)
            assert found >= 0, f"README shows:\n{part}\n\nreal output:\n{out}{err}"
            position = found + len(part)
    expected_code = 2 if "error:" in shown else 0
    assert code == expected_code
