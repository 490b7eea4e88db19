"""Gather entries for the site: imported collections, local result records, and entry files.

The Hub side (``snapshot_download`` of the leaderboard repo) is in :mod:`.hub`; it hands back
a folder of entry files that :func:`entries_from_folder` reads like any other.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .._json import loads as _strict_json
from ..errors import RftbenchError
from ..results import read_record
from .entry import Entry, load_entry, read_entries_jsonl
from .records import entry_from_record
from .errors import EntryError

log = logging.getLogger("rftbench")

#: Where an entry shown on the site came from (a column and a filter of the table).
ORIGINS = ("published", "submitted", "local")


@dataclass
class Collected:
    """Entries by origin, plus the problems met on the way (bad files are reported, not fatal)."""

    entries: list[tuple[str, Entry]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, origin: str, entries: Iterable[Entry]) -> None:
        self.entries.extend((origin, e) for e in entries)

    def unique(self) -> list[tuple[str, Entry]]:
        """Entries without repeats (the same content hash from two origins: the first origin wins)."""
        seen: set[str] = set()
        out = []
        for origin, entry in self.entries:
            if entry.content_hash not in seen:
                seen.add(entry.content_hash)
                out.append((origin, entry))
        return out


def entries_from_folder(folder: str | Path, *, problems: list[str] | None = None) -> list[Entry]:
    """Every ``*.json`` entry under ``folder`` (recursively); ``*.jsonl`` collections too.

    With ``problems`` given, an invalid or tampered file is reported there and skipped;
    without it, the first one raises.
    """
    folder = Path(folder)
    entries: list[Entry] = []
    for path in sorted(folder.rglob("*.json")) + sorted(folder.rglob("*.jsonl")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue  # .cache/ of huggingface_hub's local_dir downloads
        try:
            if path.suffix == ".jsonl":
                entries.extend(read_entries_jsonl(path))
            else:
                entries.append(load_entry(path))
        except EntryError as err:
            if problems is None:
                raise
            problems.append(str(err))
            log.warning("skipping %s", err)
    return entries


def entries_from_results(paths: Iterable[str | Path], *, problems: list[str] | None = None) -> list[Entry]:
    """Entries for local result records: files, or folders searched recursively for ``*.json``.

    A JSON file that is already an entry is taken as is; failed or unevaluated runs are skipped
    (reported in ``problems``).
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.rglob("*.json")))
        elif p.is_file():
            files.append(p)
        else:
            raise EntryError(f"{p}: no such result file or folder")
    entries = []
    for path in files:
        try:
            data = _strict_json(path.read_bytes())
        except (OSError, ValueError) as err:  # ValueError: bad JSON or not UTF-8
            if problems is None:
                raise EntryError(f"{path}: not readable JSON ({err})") from None
            problems.append(f"{path}: not readable JSON ({err}); skipped")
            continue
        if not isinstance(data, dict) or "metrics" not in data or "config" not in data:
            continue
        try:
            if "content_hash" in data:
                entries.append(load_entry(data, where=str(path)))
            else:
                record = read_record(path)
                if record.metrics.get("outcomes") and not any(u in record.metrics for u in ("union", "union_all")):
                    # a record from before union accuracies were recorded: from its per-example file, when there
                    from ..outcomes import unions_on_read

                    record = record.model_copy(update={"metrics": {**record.metrics, **unions_on_read(record.metrics, path.parent)}})
                entries.append(entry_from_record(record))
        except RftbenchError as err:  # a bad record is reported, the rest still build
            if problems is None:
                raise
            problems.append(f"{path}: {err}")
    return entries
