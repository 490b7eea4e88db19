"""Every shipped study record is a run of its study's sweep: a changed default would orphan them silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from rftbench.sweep.spec import load_sweep

STUDIES = Path(__file__).resolve().parents[1] / "examples" / "studies"
SHIPPED = sorted(p.parent for p in STUDIES.glob("*/records") if (p.parent / "sweep.yaml").is_file())


@pytest.mark.parametrize("study", SHIPPED, ids=lambda p: p.name)
def test_shipped_records_are_runs_of_their_sweep(study):
    runs = {run.hash for run in load_sweep(study / "sweep.yaml").runs}
    records = {p.stem for p in (study / "records").glob("*.json")}
    assert records and records <= runs, (f"{study.name}: {len(records - runs)} of {len(records)} shipped records are not "
                                         "runs of sweep.yaml (a default or the sweep changed their hash)")
