"""The leaderboard: entries (versioned schema + content hash), imports, the static site, submit, check, verify.

Modules, one job each: :mod:`.entry` (schema, hash, files), :mod:`.records` (result record →
entry), :mod:`.importer` (published results → entries), :mod:`.collect` (gather entries),
:mod:`.build` (the static site), :mod:`.hub` (the Hub repo and the ``hub`` publisher),
:mod:`.outbox` (entries kept locally), :mod:`.submit` (submit orchestration), :mod:`.check`
(the maintainers' pull-request check), :mod:`.verify` (re-evaluation from the checkpoint).
"""

from __future__ import annotations

from .entry import ENTRY_SCHEMA_VERSION, Checkpoint, Entry, Metrics, OutcomesRef, Setup, load_entry, migrate_entry, write_entry
from .errors import (
    AuthError,
    DuplicateEntryError,
    EntryError,
    HubError,
    OfflineError,
    RepoNotFoundError,
    TamperedEntryError,
    VerificationError,
)
from .outbox import Outbox, Submission
from .records import entry_from_record

__all__ = [
    "ENTRY_SCHEMA_VERSION",
    "AuthError",
    "Checkpoint",
    "DuplicateEntryError",
    "Entry",
    "EntryError",
    "HubError",
    "Metrics",
    "OutcomesRef",
    "OfflineError",
    "Outbox",
    "RepoNotFoundError",
    "Setup",
    "Submission",
    "TamperedEntryError",
    "VerificationError",
    "entry_from_record",
    "load_entry",
    "migrate_entry",
    "write_entry",
]
