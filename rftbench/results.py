"""Result records: one JSON file per run, named by the hash of its resolved config, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .cards import format_validation_error
from .errors import RftbenchError

SCHEMA_VERSION = 1


class ResultRecord(BaseModel):
    """What one run produced.

    ``metrics`` holds ``clean_acc`` and, per threat model label (``linf:4/255``…), a mapping
    with at least ``acc``; metric plugins add their own keys. ``curves`` holds per-epoch
    training curves, ``timings`` wall-clock seconds and images/s, ``provenance`` the versions
    of rftbench, torch and every plugin used, the device and the weights' source and pin.
    """

    model_config = ConfigDict(extra="allow")
    schema_version: int = SCHEMA_VERSION
    id: str = Field(description="the config hash")
    status: Literal["complete", "failed"] = "complete"
    config: dict[str, Any]
    metrics: dict[str, Any] = Field(default_factory=dict)
    curves: dict[str, list[Any]] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    created: str | None = None


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(record: ResultRecord, path: str | Path) -> Path:
    """Write a record atomically as indented JSON; returns the path."""
    atomic_write_text(path, record.model_dump_json(indent=2))
    return Path(path)


def read_record(path: str | Path) -> ResultRecord:
    """Read and validate a record; a broken file raises a :class:`RftbenchError` naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RftbenchError(f"{path}: no result record there") from None
    except json.JSONDecodeError as err:
        raise RftbenchError(f"{path}: not a valid JSON result record ({err})") from None
    try:
        return ResultRecord.model_validate(data)
    except ValidationError as err:
        raise RftbenchError(f"{path}: invalid result record:\n{format_validation_error(err)}") from None
