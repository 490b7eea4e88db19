"""benchmarks/gpu_report.py --dry-run: the GPU report's code on CPU at tiny size (issue 18 item 8)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


def test_dry_run_writes_json_and_markdown_with_every_row(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import gpu_report

    report = gpu_report.main(["--dry-run", "--out", str(tmp_path)])
    on_disk = json.loads((tmp_path / "gpu_report.json").read_text())
    assert on_disk["setup"]["dry_run"] and on_disk["steps"] == json.loads(json.dumps(report["steps"]))
    rows = {(r["model"], r["setting"]): r for r in report["steps"]}
    for model in ("resnet18", "vit_tiny_patch16_224"):
        for setting in ("fp32", "bf16"):
            r = rows[(model, setting)]
            assert r["fused_images_per_s"] > 0 and r["clean_images_per_s"] > 0
            assert r["ceiling_images_per_s"] == pytest.approx(3 / (2 * 2 + 3) * r["clean_images_per_s"])
            assert r["vs_floor"] > 0 and r["step_tflop"] > 0 and r["syncs_per_step"] >= 0
            assert r["mfu"] is None  # no known peak for a CPU
        assert "CUDA" in rows[(model, "fp16 + GradScaler")]["skipped"]
        assert any(s.startswith("compiled") and "CUDA" in r.get("skipped", "") for (m, s), r in rows.items() if m == model)
    assert [r["workers"] for r in report["data"]] == [0, 1] and all(r["images_per_s"] > 0 for r in report["data"])
    table = (tmp_path / "gpu_report.md").read_text()
    assert "| resnet18 | fp32 |" in table and "dry run on CPU" in table and "of ceiling" in table


def test_mfu_uses_a_given_peak():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_report
    import torch

    assert gpu_report.peak_for(torch.device("cpu"), "bf16", None) is None
    assert gpu_report.peak_for(torch.device("cpu"), "bf16", 100.0) == 100.0
