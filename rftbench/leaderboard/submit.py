"""``rftbench submit``: result → entry → kept locally → published by a publisher plugin.

Any publisher works (see ``rftbench_add_publishers``); the built-in ``hub`` publisher opens a
pull request on the leaderboard's Hugging Face dataset repo. The order of steps is what makes
submission safe: validate, keep the entry in the outbox, then publish; on any failure the
entry stays in the outbox and the same command can simply be run again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from .._json import loads as _strict_json
from ..errors import RftbenchError
from ..results import read_record
from .entry import Checkpoint, Entry, load_entry
from .records import entry_from_record
from .errors import DuplicateEntryError, EntryError
from .outbox import Outbox, Submission


class Publisher(Protocol):
    """What a ``publisher`` spec's factory returns."""

    target: str

    def identity(self) -> str: ...

    def publish(self, entry: Entry, *, dry_run: bool = False) -> Submission: ...


def prepare_entry(
    result: str | Path,
    publisher: Publisher,
    outbox: Outbox,
    *,
    submitter: str | None = None,
    checkpoint: Checkpoint | dict[str, Any] | None = None,
    rebuild: bool = False,
) -> Entry:
    """The entry to submit for ``result`` (a result record, or an entry file).

    For a record, the entry kept in the outbox by an earlier attempt is reused (same date and
    hash, so a retry is the same submission) unless ``rebuild`` or a different checkpoint is asked.
    The submitter defaults to the publisher's identity (the Hub user of the token).
    """
    path = Path(result)
    if path.is_dir() and path.with_suffix(".json").is_file():
        path = path.with_suffix(".json")  # runs/<hash>/ → its record runs/<hash>.json
    elif path.is_dir():
        candidates = sorted(p for p in path.glob("*.json") if _looks_like_record(p))
        if len(candidates) != 1:
            raise EntryError(f"{path}: expected one result record (*.json) in the folder, found {len(candidates)}; pass the file")
        path = candidates[0]
    try:
        data = _strict_json(path.read_text())
    except FileNotFoundError:
        raise EntryError(f"{path}: no such result record or entry file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise EntryError(f"{path}: not valid JSON ({err})") from None
    if isinstance(data, dict) and "content_hash" in data:
        return load_entry(data, where=str(path))
    record = read_record(path)
    wanted = Checkpoint.model_validate(checkpoint) if isinstance(checkpoint, dict) else checkpoint
    kept = None if rebuild else outbox.kept(publisher.target, record.id)
    if kept is not None and (wanted is None or kept.checkpoint == wanted) and (submitter is None or kept.submitter == submitter):
        return kept
    who = submitter or publisher.identity()
    return entry_from_record(record, checkpoint=wanted, submitter=who)


def _looks_like_record(path: Path) -> bool:
    try:
        data = _strict_json(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "metrics" in data and "config" in data


def submit(entry: Entry, publisher: Publisher, outbox: Outbox, *, dry_run: bool = False) -> tuple[Submission, Path]:
    """Keep the entry locally, then publish it (once). Returns the submission and the kept file.

    A failure is re-raised with the kept file's path and how to retry appended.
    """
    kept = outbox.keep(publisher.target, entry)
    prior = outbox.submission(publisher.target, entry)
    if prior is not None:
        return prior, kept
    try:
        submission = publisher.publish(entry, dry_run=dry_run)
    except DuplicateEntryError:
        raise
    except RftbenchError as err:
        raise type(err)(f"{err}\nNothing was published. The entry is kept at {kept}; run the same command again to retry.") from None
    if submission.status == "opened":
        outbox.record(submission, entry)
    return submission, kept
