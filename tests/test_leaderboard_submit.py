"""Submit orchestration with any publisher (the publisher contract of rftbench_add_publishers)."""

from __future__ import annotations

import pytest

from leaderboard_helpers import make_record
from rftbench.leaderboard.errors import DuplicateEntryError, EntryError, OfflineError
from rftbench.leaderboard.outbox import Outbox, Submission
from rftbench.leaderboard.submit import prepare_entry, submit
from rftbench.results import write_record


class MemoryPublisher:
    """A publisher keeping entries in a list; fails while ``down``."""

    target = "memory"

    def __init__(self) -> None:
        self.published: list = []
        self.down = False
        self.identity_calls = 0

    def identity(self) -> str:
        self.identity_calls += 1
        return "dora"

    def publish(self, entry, *, dry_run=False):
        if self.down:
            raise OfflineError("the board is down")
        if any(e.content_hash == entry.content_hash for e in self.published):
            raise DuplicateEntryError(f"entry {entry.id} is already published")
        if dry_run:
            return Submission(entry.id, self.target, "dry-run")
        self.published.append(entry)
        return Submission(entry.id, self.target, "opened", pr_url=f"memory://{len(self.published)}")


@pytest.fixture
def record_path(tmp_path, fresh_manager):
    return write_record(make_record(), tmp_path / "run" / "result.json")


def test_submit_keeps_first_then_publishes_once(tmp_path, record_path):
    pub, box = MemoryPublisher(), Outbox(tmp_path / "box")
    pub.down = True
    entry = prepare_entry(record_path, pub, box)
    assert entry.submitter == "dora" and pub.identity_calls == 1
    with pytest.raises(OfflineError, match="kept at .*a1b2c3d4e5f60718.entry.json; run the same command again"):
        submit(entry, pub, box)
    pub.down = False
    again = prepare_entry(record_path.parent, pub, box)  # a run folder works too
    assert again == entry and pub.identity_calls == 1  # the kept entry is reused: same date, same hash
    sub, _ = submit(again, pub, box)
    assert sub.status == "opened" and pub.published == [entry]
    sub, _ = submit(prepare_entry(record_path, pub, box), pub, box)
    assert sub.status == "already-submitted" and sub.pr_url == "memory://1" and len(pub.published) == 1


def test_dry_run_publishes_nothing(tmp_path, record_path):
    pub, box = MemoryPublisher(), Outbox(tmp_path / "box")
    sub, kept = submit(prepare_entry(record_path, pub, box, submitter="eve"), pub, box, dry_run=True)
    assert sub.status == "dry-run" and not pub.published and kept.is_file()
    assert box.submission(pub.target, prepare_entry(record_path, pub, box)) is None


def test_rebuild_and_a_new_checkpoint_make_a_new_entry(tmp_path, record_path):
    pub, box = MemoryPublisher(), Outbox(tmp_path / "box")
    first = prepare_entry(record_path, pub, box, submitter="eve")
    box.keep(pub.target, first)
    ckpt = {"repo": "eve/model", "revision": "cd" * 20}
    with_ckpt = prepare_entry(record_path, pub, box, submitter="eve", checkpoint=ckpt)
    assert with_ckpt.checkpoint.repo == "eve/model" and with_ckpt.id != first.id


def test_folder_with_several_records_is_ambiguous(tmp_path, record_path):
    write_record(make_record("f" * 16), record_path.parent / "other.json")
    with pytest.raises(EntryError, match="found 2; pass the file"):
        prepare_entry(record_path.parent, MemoryPublisher(), Outbox(tmp_path / "box"))
