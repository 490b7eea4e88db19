"""A sweep of real (micro) runs through the engine: records named by config hash, resumable."""

from __future__ import annotations

import json

import pytest

from rftbench.results import read_record
from rftbench.sweep.runner import run_sweep
from rftbench.sweep.spec import load_sweep
from tests.plugins.engine_cards import engine_manager  # noqa: F401  (fixture)


@pytest.mark.slow
def test_sweep_of_real_runs_resumes_without_rerunning(engine_manager, tmp_path):  # noqa: F811
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "results_dir: results\n"
        "base:\n"
        "  representation: micro_resnet.test\n"
        "  dataset: digits_small\n"
        "  epochs: 1\n"
        "  batch_size: 16\n"
        "  threat: {name: linf, eps: 2/255, steps: 2}\n"
        "  evaluation: [{name: linf, eps: 2/255, attack: pgd, steps: 2}]\n"
        "axes:\n"
        "  loss: [trades, classic_at]\n"
        "  seed: [0, 1]\n"
    )
    sweep = load_sweep(path, engine_manager)
    assert len(sweep.runs) == 4
    summary = run_sweep(sweep, progress="none")
    assert summary.complete and summary.done_now == 4

    records = {p.stem: read_record(p) for p in (tmp_path / "results").glob("*.json")}
    assert set(records) == {run.config.config_hash() for run in sweep.runs}
    for digest, record in records.items():
        assert record.id == digest and record.status == "complete"
        assert 0.0 <= record.metrics["clean_acc"] <= 1.0 and "linf:2/255" in record.metrics["threats"]
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "results").glob("*.json")}

    again = run_sweep(load_sweep(path, engine_manager), progress="none")
    assert again.done_now == 0 and again.done_before == 4
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "results").glob("*.json")} == stamps
    assert json.loads(next(iter((tmp_path / "results").glob("*.json"))).read_text())["schema_version"] == 1
