"""Every shipped study record is a run of its study's sweep: a changed default would orphan them silently.

``sweep.yaml``'s records are shipped in ``records/``, a second grid ``sweep-NAME.yaml``'s in ``records-NAME/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rftbench.sweep.spec import load_sweep

STUDIES = Path(__file__).resolve().parents[1] / "examples" / "studies"


def _records_folder(sweep: Path) -> Path:
    suffix = sweep.stem.removeprefix("sweep")  # "" or "-NAME"
    return sweep.parent / f"records{suffix}"


SHIPPED = sorted(s for s in STUDIES.glob("*/sweep*.yaml") if _records_folder(s).is_dir())


def test_every_records_folder_has_its_sweep():
    folders = sorted(p for p in STUDIES.glob("*/records*") if p.is_dir())
    assert folders and folders == sorted(_records_folder(s) for s in SHIPPED)


@pytest.mark.parametrize("sweep", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_records_are_runs_of_their_sweep(sweep):
    runs = {run.hash for run in load_sweep(sweep).runs}
    records = {p.stem for p in _records_folder(sweep).glob("*.json")}
    assert records and records <= runs, (f"{sweep.parent.name}: {len(records - runs)} of {len(records)} shipped records are not "
                                         f"runs of {sweep.name} (a default or the sweep changed their hash)")
