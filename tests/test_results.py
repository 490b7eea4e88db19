"""rftbench.results: the result record schema, atomic writes and reading back."""

from __future__ import annotations

import json

import pytest

from rftbench.errors import RftbenchError
from rftbench.results import ResultRecord, atomic_write_text, read_record, write_record


def test_round_trip_with_engine_fields(tmp_path):
    record = ResultRecord(
        id="0123456789abcdef", config={"epochs": 1}, metrics={"clean_acc": 0.9, "threats": {"linf:4/255": {"acc": 0.5}}},
        curves={"epoch": [1], "train_loss": [0.3]}, timings={"train_seconds": 1.5}, provenance={"torch": "x"},
        created="2025-01-01T00:00:00+00:00", run_dir=str(tmp_path / "r"),
    )
    path = write_record(record, tmp_path / "r.json")
    back = read_record(path)
    assert back == record and back.run_dir == str(tmp_path / "r")
    assert json.loads(path.read_text())["status"] == "complete"


def test_the_docstring_documents_every_field():
    doc = ResultRecord.__doc__
    for name in ("id", "config", "status", "metrics", "curves", "timings", "provenance", "created", "run_dir",
                 "train_loss", "val_acc", "images_per_s", "model_sha256", "built_sha256"):
        assert f"``{name}``" in doc, name


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    atomic_write_text(path, "old")

    def boom(*a, **kw):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_broken_records_are_named(tmp_path):
    with pytest.raises(RftbenchError, match="no result record there"):
        read_record(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RftbenchError, match="not a valid JSON result record"):
        read_record(tmp_path / "bad.json")
    (tmp_path / "invalid.json").write_text('{"config": {}}')
    with pytest.raises(RftbenchError, match="invalid result record:\n  id: Field required"):
        read_record(tmp_path / "invalid.json")


def test_atomic_write_gives_the_usual_permissions(tmp_path):
    """mkstemp creates 0600 files; records must be readable by the other users of a shared results folder."""
    import os
    import stat

    from rftbench.results import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644
