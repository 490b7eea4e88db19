"""``rftbench doctor``: every section present, JSON and tables, and it never fails."""

from __future__ import annotations

import json

from rftbench import doctor
from tests.cli_helpers import run_cli

SECTIONS = {"versions", "platform", "cpu", "gpu", "auto", "guards", "storage", "plugins"}


def test_json_reports_every_section(capsys, builtins, monkeypatch, tmp_path):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, _ = run_cli(capsys, "doctor", "--json")
    assert code == 0
    info = json.loads(out)
    assert set(info) == SECTIONS
    assert info["versions"]["torch"] and info["versions"]["rftbench"]
    assert {"model", "instruction_sets", "aten_capability", "onednn_max_isa", "torch_threads"} <= set(info["cpu"])
    assert info["auto"][0]["device"] == "cpu" and info["auto"][0]["precision"] in ("fp32", "bf16")
    assert info["storage"]["hf_hub_offline"] is True
    assert info["storage"]["rftbench_cache"]["path"] == str(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # doctor looks, it does not create
    assert {p["name"] for p in info["plugins"]["plugins"]} >= {"losses", "offline", "threats"}


def test_the_avx2_cap_shows_the_guard_and_fp32(capsys, builtins, monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    code, out, _ = run_cli(capsys, "doctor", "--json")
    info = json.loads(out)
    assert code == 0
    assert info["cpu"]["onednn_max_isa"] == "AVX2" and info["cpu"]["onednn_below_avx512"] is True
    assert [g["guard"] for g in info["guards"]] == ["onednn-6035"]
    assert info["auto"][0]["precision"] == "fp32"


def test_a_failing_probe_is_reported_never_raised(capsys, builtins, monkeypatch):
    def broken():
        raise RuntimeError("no [bold]cpuinfo[/bold] here")

    monkeypatch.setattr(doctor, "_cpu", broken)
    monkeypatch.setattr(doctor, "_gpus", broken)
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 0
    assert "unknown: RuntimeError: no [bold]cpuinfo[/bold] here" in out  # shown verbatim, never parsed as markup
    assert "what `auto` chooses on cpu" in out and "plugins" in out


def test_tables_name_each_section(capsys, builtins):
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 0
    for title in ("versions", "CPU", "GPU", "what `auto` chooses on cpu", "active guards", "caches and offline mode", "plugin problems"):
        assert title in out
