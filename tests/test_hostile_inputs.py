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


# --------------------------------------------------------------------------- YAML: rows 4, 5, 10


def test_an_integer_over_4300_digits_is_a_named_error_in_config_set_and_card(tmp_path, capsys):
    from rftbench.cards import load_card
    from rftbench.errors import CardError

    big = "9" * 5000
    config = tmp_path / "c.yaml"
    config.write_text(f"seed: {big}\n")
    for argv in (["config", "show", str(config)], ["config", "show", "--set", f"seed={big}"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "4,300 digits" in err and "bug" not in err
        assert len(err) < 1000  # the reason is not buried under the number
    card = tmp_path / "x.y.yaml"
    card.write_text(f"id: x.y\nsource: timm\narch: {big}\n")
    with pytest.raises(CardError, match="4,300 digits"):
        load_card(card, "representation")


def test_a_long_string_aliased_many_times_is_refused_quickly():
    import time

    from rftbench.yamlfile import YamlError, loads

    text = "s: &s " + "x" * (1 << 20) + "\nl: [" + ", ".join(["*s"] * 50_000) + "]\n"
    start = time.process_time()
    with pytest.raises(YamlError, match="characters"):
        loads(text)
    assert time.process_time() - start < 20  # CPU time, not wall clock: it spun > 180 s before
    loads("s: &s " + "x" * 1000 + "\nl: [" + ", ".join(["*s"] * 100) + "]\n")  # ordinary aliases still work


def test_suggestions_are_bounded_in_name_and_candidate_length():
    from rftbench.errors import MAX_SUGGEST_LENGTH, close_matches

    long = "x" * (MAX_SUGGEST_LENGTH + 1)
    assert close_matches(long, [long[:-1]]) == []
    assert close_matches("trade", ["trades", long]) == ["trades"]


def test_a_repeated_merge_key_is_an_error_and_a_merge_list_still_works():
    from rftbench.yamlfile import YamlError, loads

    with pytest.raises(YamlError, match="merge key '<<' appears twice"):
        loads("a: &a {p: 1}\nb: &b {q: 2}\nc: {<<: *a, <<: *b}\n")
    assert loads("a: &a {p: 1}\nb: &b {q: 2}\nc: {<<: [*a, *b], r: 3}\n")["c"] == {"p": 1, "q": 2, "r": 3}


# --------------------------------------------------------------------------- schema: row 7


@pytest.mark.parametrize("assignment, field", [
    ("optimizer.betas=[2, 3]", "optimizer.betas"),
    ("optimizer.betas=[0.9, -0.1]", "optimizer.betas"),
    ("seed=99999999999999999999999", "seed"),
])
def test_out_of_range_values_are_refused_by_the_schema(capsys, assignment, field):
    code, _, err = run(capsys, "config", "show", "--set", assignment)
    assert code == 2 and field in err and "bug" not in err


# --------------------------------------------------------------------------- terminal: row 6


@pytest.mark.parametrize("fmt", ["table", "csv", "jsonl"])
def test_terminal_escapes_in_a_record_are_never_printed_raw(tmp_path, capsys, fmt):
    from rftbench.results import write_record
    from tests.leaderboard_helpers import make_record

    hostile = "evil\x1b]0;pwned\x07\x1b[2J\x9b31m"
    write_record(make_record("a1b2c3d4e5f60718", representation=hostile), tmp_path / "a1b2c3d4e5f60718.json")
    code, out, err = run(capsys, "results", str(tmp_path), "-F", fmt)
    assert code == 0, err
    assert not any(c in out + err for c in "\x1b\x07\x9b"), repr(out)
    assert "evil" in out
    if fmt == "csv":
        assert "\\x1b" in out  # shown, not dropped
        exact = tmp_path / "out.csv"
        assert run(capsys, "results", str(tmp_path), "-F", "csv", "-o", str(exact))[0] == 0
        assert hostile in exact.read_text()  # a file keeps the exact value
