"""rftbench.engine.threads: the thread count from the affinity mask and the cgroup quota (fake cgroup files)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rftbench.engine import threads as th
from rftbench.errors import ConfigError
from tests.cli_helpers import run_cli


@pytest.fixture
def four_cpus(monkeypatch):
    monkeypatch.setattr(th, "affinity_cpus", lambda: 4)


def _v2(tmp_path: Path, cpu_max: str | None, cgroup: str = "/", parent_max: str | None = None) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    own = root.joinpath(*[p for p in cgroup.split("/") if p])
    own.mkdir(parents=True, exist_ok=True)
    if cpu_max is not None:
        (own / "cpu.max").write_text(cpu_max + "\n")
    if parent_max is not None:
        (root / "cpu.max").write_text(parent_max + "\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text(f"0::{cgroup}\n")
    return root, proc


def _v1(tmp_path: Path, quota: int, period: int = 100_000) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    cpu = root / "cpu,cpuacct" / "docker" / "abc"
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (cpu / "cpu.cfs_period_us").write_text(f"{period}\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    return root, proc


@pytest.mark.parametrize("cpu_max, expected", [("max 100000", 4), ("200000 100000", 2), ("150000 100000", 1),
                                                ("50000 100000", 1), ("800000 100000", 4)])
def test_cgroup_v2_quota_caps_the_affinity_mask(tmp_path, four_cpus, cpu_max, expected):
    root, proc = _v2(tmp_path, cpu_max)
    choice = th.choose_threads("auto", env={}, root=root, proc_cgroup=proc)
    assert choice.threads == expected
    assert ("cgroup quota" in choice.reason) == (cpu_max != "max 100000")
    assert "affinity mask 4 CPUs" in choice.reason


def test_a_parent_cgroup_quota_counts_and_the_smallest_wins(tmp_path, four_cpus):
    root, proc = _v2(tmp_path, "max 100000", cgroup="/kubepods/pod1", parent_max="100000 100000")
    assert th.choose_threads("auto", env={}, root=root, proc_cgroup=proc).threads == 1


@pytest.mark.parametrize("quota, expected", [(-1, 4), (300000, 3), (100000, 1)])
def test_cgroup_v1_quota(tmp_path, four_cpus, quota, expected):
    root, proc = _v1(tmp_path, quota)
    choice = th.choose_threads("auto", env={}, root=root, proc_cgroup=proc)
    assert choice.threads == expected
    assert ("cgroup v1" in choice.reason) == (quota > 0)


def test_garbage_cgroup_files_are_ignored(tmp_path, four_cpus):
    root, proc = _v2(tmp_path, "lots of cpus")
    assert th.choose_threads("auto", env={}, root=root, proc_cgroup=proc).threads == 4
    missing = tmp_path / "nowhere"
    assert th.choose_threads("auto", env={}, root=missing, proc_cgroup=missing).threads == 4


def test_config_then_env_then_omp_then_auto(tmp_path, four_cpus):
    root, proc = _v2(tmp_path, "300000 100000")
    kw = dict(root=root, proc_cgroup=proc)
    assert th.choose_threads(2, env={"RFTBENCH_THREADS": "1"}, **kw).threads == 2
    choice = th.choose_threads("auto", env={"RFTBENCH_THREADS": "1"}, **kw)
    assert choice.threads == 1 and "RFTBENCH_THREADS=1" in choice.reason
    choice = th.choose_threads("auto", env={"OMP_NUM_THREADS": "1"}, **kw)
    assert choice.threads == torch.get_num_threads() and "OMP_NUM_THREADS=1" in choice.reason
    assert th.choose_threads("auto", env={}, **kw).threads == 3


@pytest.mark.parametrize("value, match", [(0, "threads: 0 threads"), (9, "threads in the config: 9 threads, but this process may use only 3 CPUs"),
                                          ("many", "'many' is not a thread count")])
def test_bad_thread_counts_are_named_errors(tmp_path, four_cpus, value, match):
    root, proc = _v2(tmp_path, "300000 100000")
    with pytest.raises(ConfigError, match=match):
        th.choose_threads(value, env={}, root=root, proc_cgroup=proc)


@pytest.mark.parametrize("value", ["abc", "0", "-2"])
def test_a_bad_environment_variable_is_a_named_error(tmp_path, four_cpus, value):
    root, proc = _v2(tmp_path, None)
    with pytest.raises(ConfigError, match=r"RFTBENCH_THREADS: .*set RFTBENCH_THREADS to an integer"):
        th.choose_threads("auto", env={"RFTBENCH_THREADS": value}, root=root, proc_cgroup=proc)


@pytest.mark.parametrize("setting, field", [("threads=0", "threads"), ("threads=lots", "threads"),
                                            ("eval_batch_size=0", "eval_batch_size"), ("log_every=0", "log_every")])
def test_bad_performance_settings_exit_2_naming_the_field(capsys, tmp_path, setting, field):
    code, out, err = run_cli(capsys, "run", "--set", setting, "--set", f"output_dir={tmp_path}")
    assert code == 2, (out, err)
    assert "error:" in err and field in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.json"))


def test_a_bad_env_var_stops_rftbench_run_with_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_THREADS", "zero")
    code, out, err = run_cli(capsys, "run", "--set", f"output_dir={tmp_path}", "--set", "epochs=1")
    assert code == 2 and "error:" in err and "RFTBENCH_THREADS" in err and "Traceback" not in err


def test_doctor_shows_the_choice_and_its_reason():
    from rftbench.doctor import collect

    assert "CPUs" in collect()["cpu"]["threads_auto"]


def test_performance_settings_are_out_of_the_config_hash():
    from rftbench.config import RunConfig

    base = RunConfig().config_hash()
    assert RunConfig(threads=1).config_hash() == base
    assert RunConfig(eval_batch_size=32).config_hash() == base
    assert RunConfig(log_every=7).config_hash() == base
    assert RunConfig(seed=1).config_hash() != base
