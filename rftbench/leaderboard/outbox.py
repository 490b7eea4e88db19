"""The local outbox: every entry is kept on disk before it is sent, and what was sent is remembered.

This is what makes ``rftbench submit`` safe to re-run: an entry built from a result record is
kept under ``<outbox>/<target>/<run id>.entry.json`` before any network call, so a failed
submission loses nothing and a re-run sends the very same entry (same date, same hash); once a
pull request is open, ``<run id>.submitted.json`` records its URL and a re-run only prints it.
No token is ever written here.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ..paths import cache_dir
from ..results import atomic_write_text
from .entry import Entry, load_entry, write_entry


@dataclass(frozen=True)
class Submission:
    """What a publisher did with an entry."""

    entry_id: str
    target: str
    status: str  # opened | already-submitted | dry-run
    pr_url: str | None = None
    commit_url: str | None = None
    path_in_repo: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def default_outbox() -> Path:
    """``<rftbench cache>/leaderboard/outbox``."""
    return cache_dir() / "leaderboard" / "outbox"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "__", text).strip("_") or "default"


class Outbox:
    """Entries kept locally per publishing target (e.g. ``hf-dataset:org/name``)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_outbox()

    def _stem(self, target: str, key: str) -> Path:
        return self.root / _slug(target) / _slug(key)

    @staticmethod
    def key_of(entry: Entry) -> str:
        """Entries from a run are kept by run id (so that a re-run finds them); others by entry id."""
        return entry.run_id or entry.id

    def kept(self, target: str, key: str) -> Entry | None:
        """The entry kept for ``key`` (a run id or entry id), if any."""
        path = self._stem(target, key).with_suffix(".entry.json")
        return load_entry(path) if path.is_file() else None

    def keep(self, target: str, entry: Entry) -> Path:
        """Write the entry (atomically) before anything is sent; returns its path."""
        return write_entry(entry, self._stem(target, self.key_of(entry)).with_suffix(".entry.json"))

    def submission(self, target: str, entry: Entry) -> Submission | None:
        """The recorded submission of this very entry to ``target``, if there was one."""
        path = self._stem(target, self.key_of(entry)).with_suffix(".submitted.json")
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        if data.get("entry_id") != entry.id:
            return None  # a different entry for the same run (rebuilt): not submitted yet
        return Submission(**{**data, "status": "already-submitted"})

    def record(self, submission: Submission, entry: Entry) -> Path:
        """Remember a successful submission (PR URL, path in the repo)."""
        path = self._stem(submission.target, self.key_of(entry)).with_suffix(".submitted.json")
        atomic_write_text(path, json.dumps(submission.as_dict(), indent=2) + "\n")
        return path
