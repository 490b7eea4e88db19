"""Executors: Ray (a local cluster) and SLURM (submitit's local executor) give the same results as
the local executor; executors that cannot start fail before any run."""

from __future__ import annotations

import pytest

from rftbench.results import read_record
from rftbench.sweep import ExecutorError, build_executor, load_sweep, run_sweep
from tests.sweep_helpers import events, manager, synthetic, write_sweep  # noqa: F401  (manager: fixture)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray cluster for the module (starting one takes seconds); executors reuse it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def records(sweep):
    """What a run computed: metrics and config, by hash (not timings, provenance, nor where it was written)."""
    out = {}
    for run in sweep.runs:
        record = read_record(sweep.results_dir / f"{run.hash}.json")
        out[run.hash] = (record.metrics, {k: v for k, v in record.config.items() if k != "output_dir"})
    return out


def reference(tmp_path, n):
    sweep = load_sweep(write_sweep(tmp_path, n), results_dir=tmp_path / "local")
    assert run_sweep(sweep, run=synthetic(tmp_path / "log_local"), progress="none").complete
    return records(sweep)


def nothing_ran(tmp_path, sweep):
    assert not (tmp_path / "log").exists()
    assert not list(sweep.results_dir.glob("*.json"))


@pytest.mark.parametrize(
    "address, expected",
    [
        ("127.0.0.1:1", r"no Ray cluster answers at '127.0.0.1:1'"),
        ("ray://127.0.0.1:1", r"no Ray cluster answers at 'ray://127.0.0.1:1'"),
        ("nonsense", r"address 'nonsense' is not 'host:port'"),
        ("auto", r"could not start or reach a Ray cluster at 'auto'.*ray start --head"),
    ],
)
def test_ray_without_a_cluster_at_the_address_fails_before_any_run(manager, tmp_path, address, expected):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # pragma: no cover - only if run after the local_ray tests
        pytest.skip("a Ray is already running in this process")
    sweep = load_sweep(write_sweep(tmp_path, 2))
    with pytest.raises(ExecutorError, match="(?s)" + expected):
        run_sweep(sweep, build_executor(sweep, "ray", {"address": address}), run=synthetic(tmp_path / "log"), progress="none")
    nothing_ran(tmp_path, sweep)


@pytest.mark.slow
def test_ray_gives_the_same_results_as_local(manager, tmp_path, local_ray):
    expected = reference(tmp_path, 6)
    sweep = load_sweep(write_sweep(tmp_path, 6), results_dir=tmp_path / "ray")
    log = tmp_path / "log_ray"
    summary = run_sweep(sweep, build_executor(sweep, "ray"), run=synthetic(log, seconds=0.1), progress="none")
    assert summary.complete and summary.done_now == 6
    assert records(sweep) == expected
    assert events(log)["end"] == {r.hash: 1 for r in sweep.runs}
    assert local_ray.is_initialized()  # an executor leaves alone a Ray it did not start


@pytest.mark.slow
def test_ray_refuses_a_gpu_request_no_node_can_meet(manager, tmp_path, local_ray):
    sweep = load_sweep(write_sweep(tmp_path, 2))
    with pytest.raises(ExecutorError, match=r"gpus_per_run=1 but the cluster has 0 GPUs"):
        run_sweep(sweep, build_executor(sweep, "ray", {"gpus_per_run": 1}), run=synthetic(tmp_path / "log"), progress="none")
    nothing_ran(tmp_path, sweep)


def test_slurm_without_sbatch_fails_before_any_run(manager, tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    sweep = load_sweep(write_sweep(tmp_path, 2, "executor: {name: slurm, partition: gpu, time_min: 30, gpus_per_run: 1}\n"))
    with pytest.raises(ExecutorError, match="`sbatch` is not on PATH"):
        run_sweep(sweep, run=synthetic(tmp_path / "log"), progress="none")
    nothing_ran(tmp_path, sweep)


@pytest.mark.slow
def test_slurm_through_submitits_local_executor_gives_the_same_results(manager, tmp_path):
    pytest.importorskip("submitit")
    expected = reference(tmp_path, 3)
    sweep = load_sweep(write_sweep(tmp_path, 3, "executor: {name: slurm, cluster: local, time_min: 5}\n"), results_dir=tmp_path / "slurm")
    summary = run_sweep(sweep, run=synthetic(tmp_path / "log_slurm"), progress="none")
    assert summary.complete and records(sweep) == expected
    assert list((sweep.results_dir / "slurm").glob("*/*_log.out"))  # submitit's job folders and logs


def test_slurm_parameters_become_sbatch_options(manager, tmp_path, monkeypatch):
    """Time, GPUs, partition and the array limit from the sweep file reach submitit's SLURM executor."""
    submitit = pytest.importorskip("submitit")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for tool in ("sbatch", "srun"):  # present, so submitit picks SLURM; never called (nothing is submitted)
        (fake_bin / tool).write_text("#!/bin/sh\nexit 1\n")
        (fake_bin / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:/usr/bin:/bin")
    text = "executor: {name: slurm, partition: gpu, time_min: 240, gpus_per_run: 2, cpus_per_run: 8, array_parallelism: 16, mem_gb: 32, additional: {mail-type: END}}\n"
    sweep = load_sweep(write_sweep(tmp_path, 2, text))
    executor = build_executor(sweep)
    executor.start(sweep.results_dir)
    params = executor._executor._executor.parameters
    assert isinstance(executor._executor._executor, submitit.SlurmExecutor)
    assert params["time"] == 240 and params["gpus_per_node"] == 2 and params["cpus_per_task"] == 8
    assert params["partition"] == "gpu" and params["array_parallelism"] == 16 and params["mem"] == "32GB"
    assert params["additional_parameters"] == {"mail-type": "END"}


@pytest.mark.slow
def test_a_run_on_several_processes_is_launched_with_torchrun(manager, tmp_path, monkeypatch):
    from tests.sweep_helpers import REPO, ddp_run

    monkeypatch.setenv("PYTHONPATH", str(REPO))  # torchrun's processes import the run function
    sweep = load_sweep(write_sweep(tmp_path, 1, "executor: {name: local, procs_per_run: 2}\n"))
    summary = run_sweep(sweep, run=ddp_run, progress="none")
    assert summary.complete, [p.error for p in summary.failed]
    record = read_record(sweep.results_dir / f"{sweep.runs[0].hash}.json")
    assert record.metrics == {"world_size": 2, "rank_sum": 3.0, "local_rank": 0}  # written by rank 0
