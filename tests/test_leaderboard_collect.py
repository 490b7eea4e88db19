"""Gathering entries: folders of entry files, local result records, deduplication across origins."""

from __future__ import annotations

import json

import pytest

from leaderboard_helpers import make_entry, make_record
from rftbench.leaderboard.collect import Collected, entries_from_folder, entries_from_results
from rftbench.leaderboard.entry import write_entries_jsonl
from rftbench.leaderboard.errors import EntryError
from rftbench.results import write_record


def test_folder_reads_json_and_jsonl_and_skips_hidden(tmp_path):
    (tmp_path / "a.json").write_text(make_entry("a" * 16).to_json())
    write_entries_jsonl([make_entry("b" * 16), make_entry("c" * 16)], tmp_path / "more.jsonl")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "junk.json").write_text("{}")
    assert len(entries_from_folder(tmp_path)) == 3


def test_bad_files_are_reported_or_raised(tmp_path):
    data = json.loads(make_entry().to_json())
    data["metrics"]["clean_acc"] = 0.5
    data["metrics"]["sum"], data["metrics"]["geom"] = 0.5 + 0.42 + 0.5, 0.5 * 0.42 * 0.5
    (tmp_path / "tampered.json").write_text(json.dumps(data))
    problems: list[str] = []
    assert entries_from_folder(tmp_path, problems=problems) == []
    assert "tampered.json" in problems[0] and "content_hash" in problems[0]
    with pytest.raises(EntryError):
        entries_from_folder(tmp_path)


def test_results_become_entries(tmp_path, fresh_manager):
    write_record(make_record("1" * 16), tmp_path / "r" / "1.json")
    write_record(make_record("2" * 16).model_copy(update={"status": "failed"}), tmp_path / "r" / "2.json")
    (tmp_path / "r" / "plot.json").write_text("[1, 2]")
    problems: list[str] = []
    entries = entries_from_results([tmp_path / "r"], problems=problems)
    assert [e.run_id for e in entries] == ["1" * 16] and "status 'failed'" in problems[0]
    with pytest.raises(EntryError, match="no such result file"):
        entries_from_results([tmp_path / "missing"])


def test_unique_keeps_the_first_origin():
    c = Collected()
    c.add("published", [make_entry("a" * 16)])
    c.add("submitted", [make_entry("a" * 16), make_entry("b" * 16)])
    assert [(o, e.run_id) for o, e in c.unique()] == [("published", "a" * 16), ("submitted", "b" * 16)]
