"""Issue 23 §2: the last hostile inputs, each refused by name (exit 2 / a named problem), never a bug message."""

from __future__ import annotations

import json

import pytest

from rftbench.leaderboard.check import check_files
from rftbench.leaderboard.collect import entries_from_folder
from rftbench.leaderboard.entry import EntryError, load_entry

from tests.cli_helpers import run_cli as run
from tests.leaderboard_helpers import make_entry


def _entry_dict():
    return json.loads(make_entry().to_json())


@pytest.mark.parametrize("where", ["metrics.extra", "threats.extra", "config"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_numbers_in_an_entry_are_named_problems(tmp_path, capsys, where, value):
    data = _entry_dict()
    if where == "metrics.extra":
        data["metrics"]["extra"] = {"x": value}
    elif where == "threats.extra":
        next(iter(data["metrics"]["threats"].values()))["extra"] = {"x": value}
    else:
        data["config"]["lr"] = value
    with pytest.raises(EntryError):  # a mapping (not only a file) is refused too
        load_entry(data)
    path = tmp_path / "entries" / f"{data['id']}.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))  # Python writes NaN / Infinity, which is not JSON
    report = check_files([path])
    assert report.problems and "non-finite" in " ".join(report.problems)
    good = tmp_path / "entries" / "good.json"
    good.write_text(make_entry("0123456789abcdef").to_json())
    problems: list[str] = []
    assert len(entries_from_folder(path.parent, problems=problems)) == 1 and problems  # one bad file skipped, not fatal
    code, _, err = run(capsys, "leaderboard", "check", str(path))
    assert code == 1 and "bug" not in err


def test_an_entry_nested_100000_deep_is_a_named_problem(tmp_path, capsys):
    path = tmp_path / "deep.json"
    path.write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    assert "nested too deeply" in " ".join(check_files([path]).problems)
    code, out, err = run(capsys, "leaderboard", "check", str(path))
    assert code == 1 and "RecursionError" not in err + out and "bug" not in err
    with pytest.raises(EntryError, match="nested too deeply"):
        load_entry(path)
