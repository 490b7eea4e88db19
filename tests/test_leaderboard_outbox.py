"""The local outbox: entries kept before sending, submissions remembered, per target."""

from __future__ import annotations

from leaderboard_helpers import make_entry
from rftbench.leaderboard.outbox import Outbox, Submission


def test_keep_then_record(tmp_path):
    box = Outbox(tmp_path)
    entry = make_entry()
    path = box.keep("huggingface.co/datasets/org/board", entry)
    assert path.name == f"{entry.run_id}.entry.json" and oct(path.stat().st_mode & 0o777) == "0o644"
    assert box.kept("huggingface.co/datasets/org/board", entry.run_id) == entry
    assert box.kept("other/target", entry.run_id) is None
    assert box.submission("huggingface.co/datasets/org/board", entry) is None
    box.record(Submission(entry.id, "huggingface.co/datasets/org/board", "opened", pr_url="https://x/discussions/3"), entry)
    prior = box.submission("huggingface.co/datasets/org/board", entry)
    assert prior.status == "already-submitted" and prior.pr_url == "https://x/discussions/3"


def test_a_rebuilt_entry_for_the_same_run_is_not_taken_as_submitted(tmp_path):
    box = Outbox(tmp_path)
    entry = make_entry()
    box.record(Submission(entry.id, "t", "opened", pr_url="u"), entry)
    rebuilt = entry.resealed(submitter="bob")
    assert box.submission("t", rebuilt) is None


def test_default_location_is_in_the_rftbench_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path))
    assert Outbox().root == tmp_path / "leaderboard" / "outbox"
