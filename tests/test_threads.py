"""rftbench.engine.threads: the thread count from the affinity mask and the cgroup quota (fake cgroup files)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rftbench.engine import threads as th
from rftbench.errors import ConfigError
from tests.cli_helpers import run_cli
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture


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


# ---------------------------------------------------------------------- auto under load

_STAT = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 {b0} 0 0 {i0} 0 0 0 0 0 0\ncpu1 {b1} 0 0 {i1} 0 0 0 0 0 0\nintr 5\n"


def test_other_load_is_the_masks_busy_time_minus_this_process_own(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(_STAT.format(b0=100, i0=900, b1=100, i1=900))
    clock, own = iter([0.0, 1.0, 1.0]), iter([5.0, 5.1])
    load = th.OtherLoad(stat=stat, cpus={0, 1}, clock=lambda: next(clock), own=lambda: next(own), sleep=lambda s: None)
    stat.write_text(_STAT.format(b0=200, i0=900, b1=150, i1=950))  # cpu0 all busy, cpu1 half: 1.5 CPUs
    assert load.busy() == pytest.approx(1.5 - 0.1)  # 0.1 s of this process's own CPU time over 1 s
    assert th.OtherLoad(stat=stat, cpus={0}, min_seconds=0.0).busy() is None  # no tick elapsed: no measurement
    assert th.OtherLoad(stat=tmp_path / "missing", cpus={0}, min_seconds=0.0).busy() is None


@pytest.mark.parametrize("busy, expected", [(0.0, 2), (0.4, 2), (0.6, 1), (1.0, 1), (1.9, 1), (3.5, 1), (None, 2)])
def test_auto_leaves_the_cpus_other_processes_keep_busy(monkeypatch, busy, expected):
    monkeypatch.setattr(th, "affinity_cpus", lambda: 2)
    choice = th.under_load(th.ThreadChoice(2, "auto: affinity mask 2 CPUs", auto=True), busy)
    assert choice.threads == expected and choice.auto
    if busy is not None and expected < 2:
        assert f"{busy:.1f} of the 2 CPUs busy with other processes" in choice.reason
    assert th.under_load(th.ThreadChoice(2, "threads in the config"), 1.9).threads == 2  # a setting is kept


def test_a_resume_under_auto_takes_its_first_starts_count(monkeypatch):
    monkeypatch.setattr(th, "usable_cpus", lambda *a, **k: (2, "affinity mask 2 CPUs"))
    now = th.ThreadChoice(1, "auto: …; 1.9 of the 2 CPUs busy with other processes: 1", auto=True)
    resumed = th.as_first_start(now, 2)
    assert resumed.threads == 2 and "first start's 2 threads" in resumed.reason
    assert th.as_first_start(now, 8).threads == 2  # never more than the CPUs it may use now
    assert th.as_first_start(th.ThreadChoice(1, "threads in the config"), 2).threads == 1
    assert th.as_first_start(now, None) is now


def test_two_busy_processes_on_a_cpu_are_measured(tmp_path):
    """A real measurement: a busy process pinned to one CPU of the mask makes that CPU read as busy."""
    import os
    import subprocess
    import sys

    if not hasattr(os, "sched_setaffinity") or not Path("/proc/stat").is_file():
        pytest.skip("needs Linux's /proc/stat and sched_setaffinity")
    cpu = min(os.sched_getaffinity(0))
    spin = "import os, time; os.sched_setaffinity(0, {%d}); t = time.time() + 20\nwhile time.time() < t: pass" % cpu
    procs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2)]
    try:
        import time

        time.sleep(0.3)  # both started and pinned
        busy = th.OtherLoad(cpus={cpu}, min_seconds=0.5).busy()
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert busy is not None and 0.8 <= busy <= 1.05, busy


def test_a_run_resumed_on_a_busier_machine_keeps_its_thread_count_and_ends_bit_identical(engine_manager, tmp_path, monkeypatch):
    import os
    import signal

    from rftbench import run
    from rftbench.engine import RunInterrupted
    from tests.test_run import tiny

    if th.affinity_cpus() < 2:
        pytest.skip("needs 2 CPUs")
    monkeypatch.delenv("RFTBENCH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(th, "usable_cpus", lambda *a, **k: (2, "affinity mask 2 CPUs"))
    monkeypatch.setattr(th, "affinity_cpus", lambda: 2)
    before = torch.get_num_threads()
    busy = {"now": 0.0}
    monkeypatch.setattr(th.OtherLoad, "busy", lambda self: busy["now"])
    try:
        whole = run(overrides=tiny(tmp_path / "a"), manager=engine_manager)
        assert "0.0 CPUs busy" in whole.provenance["threads_reason"] and whole.provenance["threads"] == 2

        def ctrl_c(trainer, epoch, step):
            if (epoch, step) == (0, 2):
                os.kill(os.getpid(), signal.SIGINT)

        with pytest.raises(RunInterrupted):
            run(overrides=tiny(tmp_path / "b"), manager=engine_manager, callback=ctrl_c)
        busy["now"] = 1.9  # the machine got busy: a fresh start would take 1 thread
        resumed = run(overrides=tiny(tmp_path / "b"), manager=engine_manager)
    finally:
        torch.set_num_threads(before)
    assert "first start's 2 threads" in resumed.provenance["threads_reason"]
    assert resumed.provenance["model_sha256"] == whole.provenance["model_sha256"]
