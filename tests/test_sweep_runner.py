"""Driving sweeps: resumable by construction, retries, failures that never stop the rest, kill -9,
two workers racing on one results directory, and the local executor's process pool."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from rftbench.results import read_record
from rftbench.sweep import Store, build_executor, load_sweep, run_sweep
from tests.sweep_helpers import REPO, events, manager, synthetic, write_sweep  # noqa: F401  (manager: fixture)


def metrics_by_hash(sweep):
    return {r.hash: read_record(sweep.results_dir / f"{r.hash}.json").metrics for r in sweep.runs}


def test_a_sweep_runs_every_run_once_and_a_rerun_skips_them(manager, tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, 4))
    log = tmp_path / "log"
    summary = run_sweep(sweep, run=synthetic(log), progress="none")
    assert summary.complete and summary.done_now == 4 and summary.done_before == 0
    assert events(log)["end"] == {r.hash: 1 for r in sweep.runs}
    record = read_record(sweep.results_dir / f"{sweep.runs[1].hash}.json")
    assert record.id == sweep.runs[1].hash and record.config["seed"] == 1
    again = run_sweep(load_sweep(write_sweep(tmp_path, 5)), run=synthetic(log), progress="none")
    assert again.done_before == 4 and again.done_now == 1
    assert sum(events(log)["end"].values()) == 5
    assert not list((sweep.results_dir / "claims").glob("*.claim"))


def test_a_failing_run_is_retried_recorded_and_never_stops_the_rest(manager, tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, 4, "retries: 1\n"))
    log = tmp_path / "log"
    failing = next(r.hash for r in sweep.runs if r.config.seed == 2)
    summary = run_sweep(sweep, run=synthetic(log, fail_seeds=(2,)), progress="none")
    assert summary.done_now == 3 and [p.run.hash for p in summary.failed] == [failing]
    assert summary.failed[0].attempts == 2 and "synthetic failure of seed 2" in summary.failed[0].error
    failure = Store(sweep.results_dir).failure_record(failing)
    assert len(failure["attempts"]) == 2 and "RuntimeError" in failure["attempts"][1]["traceback"]
    assert failure["config"]["seed"] == 2
    # a re-run does not try a run whose attempts are used up ...
    again = run_sweep(sweep, run=synthetic(log, fail_seeds=(2,)), progress="none")
    assert len(again.failed) == 1 and events(log)["start"][failing] == 2
    # ... unless asked to: it fails on its first 2 attempts only, so the fresh attempts succeed
    fixed = run_sweep(sweep, run=synthetic(log, fail_seeds=(2,), fail_times=2), retry_failed=True, progress="none")
    assert fixed.complete and fixed.done_now == 1 and events(log)["end"][failing] == 1


def test_a_flaky_run_succeeds_on_its_retry_within_one_invocation(manager, tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, 2, "retries: 1\n"))
    log = tmp_path / "log"
    summary = run_sweep(sweep, run=synthetic(log, fail_seeds=(1,), fail_times=1), progress="none")
    assert summary.complete and summary.done_now == 2
    assert Store(sweep.results_dir).attempts(sweep.runs[1].hash) == 1


def test_progress_lines_and_summary(manager, tmp_path, capsys):
    from rich.console import Console

    sweep = load_sweep(write_sweep(tmp_path, 2))
    console = Console(file=sys.stdout, width=200)
    summary = run_sweep(sweep, run=synthetic(tmp_path / "log"), console=console, progress="lines")
    console.print(summary.render())
    out = capsys.readouterr().out
    assert f"[1/2] done {sweep.runs[0].hash} seed=0" in out and "[2/2] done" in out
    assert "sweep t: 2/2 runs done" in out and str(sweep.results_dir) in out and "rftbench results" in out


@pytest.mark.parametrize("status", ["lost", "interrupted"])
def test_progress_lines_name_a_taken_over_or_interrupted_run(manager, tmp_path, capsys, monkeypatch, status):
    """Hostile row 2: with --progress lines (the default off a terminal) these outcomes crashed with KeyError."""
    from rich.console import Console

    from rftbench.sweep import runner as sweep_runner
    from rftbench.sweep.worker import Outcome

    calls = []

    def first_one_odd(task):
        calls.append(task.hash)
        if len(calls) == 1:
            return Outcome(task.hash, status, 0.0, "test")
        return real(task)

    real = sweep_runner.execute
    monkeypatch.setattr(sweep_runner, "execute", first_one_odd)
    sweep = load_sweep(write_sweep(tmp_path, 2))
    console = Console(file=sys.stdout, width=200)
    summary = run_sweep(sweep, run=synthetic(tmp_path / "log"), console=console, progress="lines", poll=0.01)
    out = capsys.readouterr().out
    word = {"lost": "taken over by another worker", "interrupted": "interrupted"}[status]
    assert f"{word}" in out and sweep.runs[0].hash in out
    if status == "lost":  # nobody else holds it: the run is taken back and done here; nothing dropped
        assert summary.complete and summary.done_now == 2
    else:
        assert summary.interrupted and not summary.complete


def child(sweep_file, seconds, log, params=None, barrier=None):
    argv = [sys.executable, "-m", "tests.sweep_helpers", str(sweep_file), str(seconds), str(log)]
    if params:
        argv.append(json.dumps(params))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if barrier:
        env["SWEEP_HELPER_BARRIER"] = barrier
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("params", [None, pytest.param({"processes": 2}, marks=pytest.mark.slow)], ids=["in-process", "pool"])
def test_kill_9_mid_sweep_then_rerun_loses_and_duplicates_nothing(manager, tmp_path, params):
    sweep_file = write_sweep(tmp_path, 6, "claim_timeout: 1\n")  # the killed run's claim is taken over after 1 s
    log = tmp_path / "log"
    proc = child(sweep_file, 0.4, log, params)
    results = tmp_path / "results"

    def mid_run() -> bool:  # two runs saved and a third one started, not saved
        saved = {p.stem for p in results.glob("*.json")}
        return len(saved) >= 2 and any(h not in saved for h in events(log)["start"])

    wait_for(mid_run)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: driver and pool workers
    proc.wait()
    sweep = load_sweep(sweep_file)
    saved = Store(results).done()
    before = events(log)["start"]
    assert len(saved) < 6, "the sweep finished before it was killed: nothing was tested"
    summary = run_sweep(sweep, run=synthetic(log), progress="none")
    after = events(log)["start"]
    assert summary.complete and Store(results).done() == {r.hash for r in sweep.runs}  # none lost
    assert summary.done_before == len(saved) and summary.done_now == 6 - len(saved)
    for run in sweep.runs:  # none run again once saved; each unsaved one (interrupted or never started) exactly once more
        assert after[run.hash] == (before[run.hash] if run.hash in saved else before[run.hash] + 1)
    assert any(before[h] and h not in saved for h in after), "no run was interrupted mid-way"
    assert not list((sweep.results_dir / "claims").glob("*.claim"))


@pytest.mark.slow
def test_two_workers_on_one_results_dir_never_run_the_same_config(manager, tmp_path):
    sweep_file = write_sweep(tmp_path, 8)
    log = tmp_path / "log"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    # both start their sweep together (imports take seconds on a loaded machine; without the barrier
    # the first child once finished all 8 runs before the second began), and 8 × 0.5 s leaves both work
    procs = [child(sweep_file, 0.5, log, barrier=f"{barrier}:2") for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    sweep = load_sweep(sweep_file)
    assert events(log)["start"] == {r.hash: 1 for r in sweep.runs}
    done_now = [int(out.split("DONE_NOW ")[1].split()[0]) for out in outputs]
    assert sum(done_now) == 8 and all(n > 0 for n in done_now), outputs


@pytest.mark.slow
def test_process_pool_gives_the_same_results_as_in_process(manager, tmp_path):
    a = load_sweep(write_sweep(tmp_path, 4), results_dir=tmp_path / "a")
    b = load_sweep(write_sweep(tmp_path, 4), results_dir=tmp_path / "b")
    run_sweep(a, run=synthetic(tmp_path / "log_a"), progress="none")
    summary = run_sweep(b, build_executor(b, "local", {"processes": 2}), run=synthetic(tmp_path / "log_b"), progress="none")
    assert summary.complete
    assert metrics_by_hash(a) == metrics_by_hash(b)
    assert len({line.split()[2] for line in (tmp_path / "log_b").read_text().splitlines()}) == 2  # two worker processes


def test_the_live_table_shows_counts_and_eta(manager, tmp_path):
    import io

    from rich.console import Console

    from rftbench.sweep.runner import RunProgress, _Board

    sweep = load_sweep(write_sweep(tmp_path, 3))
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=160)
    assert run_sweep(sweep, run=synthetic(tmp_path / "log"), console=console, progress="live").complete
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buffer.getvalue())  # without terminal colours
    assert "queued 0 · running 0 · done 3 · failed 0" in plain
    board = _Board(sweep, [RunProgress(r) for r in sweep.runs], None)
    board.runs[0].state, board.runs[1].state = "done", "running"
    board.finished(board.runs[0], "done")
    console.print(board)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buffer.getvalue())
    assert "queued 1 · running 1 · done 1 · failed 0" in text and "ETA" in text and "ETA —" not in text.split("queued 1")[1]
