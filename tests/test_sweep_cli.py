"""`rftbench sweep` (dry run, running, resuming, bad input) and `rftbench results` from the command line."""

from __future__ import annotations

import json

import pytest

from tests.sweep_helpers import manager, write_sweep  # noqa: F401  (manager: fixture)
from tests.cli_helpers import run_cli as cli

SYNTHETIC = ["--run-function", "rftbench.sweep.synthetic:synthetic_run"]


def test_dry_run_lists_runs_count_and_status(manager, tmp_path, capsys):
    path = write_sweep(tmp_path, 3, "zip:\n  - {loss: [trades, classic_at]}\n")
    code, out, _ = cli(capsys, "sweep", str(path), "--dry-run", "--json")
    data = json.loads(out)
    assert code == 0 and data["count"] == 6 and data["counts"] == {"todo": 6, "running": 0, "done": 0, "failed": 0}
    assert data["runs"][1]["axes"] == {"seed": 0, "loss": "classic_at"}
    code, _, err = cli(capsys, "sweep", str(path), *SYNTHETIC, "--progress", "none")
    assert code == 0
    (tmp_path / "sweep.yaml").write_text(path.read_text().replace("[0, 1, 2]", "[0, 1, 2, 3]"))
    code, out, _ = cli(capsys, "sweep", str(path), "--dry-run")
    assert "8 runs: 2 to run, 0 running, 6 done, 0 failed; executor local" in out
    assert "seed=3 loss=trades" in out


def test_sweep_runs_resumes_and_prints_a_summary(manager, tmp_path, capsys):
    path = write_sweep(tmp_path, 2)
    code, out, err = cli(capsys, "sweep", str(path), *SYNTHETIC, "--progress", "lines", "-e", "local", "-p", "processes=0")
    assert code == 0 and "[2/2] done" in err and "2/2 runs done" in out and "results" in out
    code, out, err = cli(capsys, "sweep", str(path), *SYNTHETIC, "--progress", "lines")
    assert code == 0 and "done before" in out and "[1/2]" not in err


@pytest.mark.parametrize(
    "extra, args, expected",
    [
        ("  loss: [trades, trade]\n", [], "axes.loss[1] = 'trade'"),
        ("  representation: {family: hybrid}\n", [], "matches no representation card"),
        ("", ["-o", "/proc/rftbench-results"], "is not writable"),
        ("", ["-e", "slurm", "-p", "cluster=slurm"], "`sbatch` is not on PATH"),
        ("", ["-e", "ray", "-p", "address=127.0.0.1:1"], "no Ray cluster answers at '127.0.0.1:1'"),
        ("", ["-e", "local", "-p", "processes=many"], "executor.processes: Input should be a valid integer"),
        ("", ["-e", "dask"], "Unknown executor 'dask'"),
    ],
)
def test_bad_input_fails_before_any_run(manager, tmp_path, capsys, monkeypatch, extra, args, expected):
    if "slurm" in args:
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path = tmp_path / "sweep.yaml"
    path.write_text("results_dir: results\naxes:\n  seed: [0, 1]\n" + extra)
    code, out, err = cli(capsys, "sweep", str(path), *SYNTHETIC, *args)
    assert code == 2 and expected in err and "Traceback" not in err
    assert not list((tmp_path / "results").glob("*.json"))


def test_results_lists_filters_and_exports(manager, tmp_path, capsys):
    pandas = pytest.importorskip("pandas")
    path = write_sweep(tmp_path, 3, "zip:\n  - {loss: [trades, classic_at]}\n")
    assert cli(capsys, "sweep", str(path), *SYNTHETIC, "--progress", "none")[0] == 0
    results = tmp_path / "results"
    code, out, _ = cli(capsys, "results", str(results), "-f", "loss=classic_at", "-f", "seed>=1", "-c", "seed,clean_acc", "-s", "seed")
    assert code == 0 and "2 results in" in out and "clean_acc" in out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("│")] == ["1", "2"]
    code, out, _ = cli(capsys, "results", str(results), "-F", "csv", "-c", "id,seed,loss,clean_acc", "-s", "-seed,loss")
    lines = out.splitlines()
    assert lines[0] == "id,seed,loss,clean_acc" and len(lines) == 7 and lines[1].split(",")[1:3] == ["2", "classic_at"]
    assert cli(capsys, "results", str(results), "-F", "parquet", "-o", str(tmp_path / "r.parquet"))[0] == 0
    frame = pandas.read_parquet(tmp_path / "r.parquet")
    assert len(frame) == 6 and {"clean_acc", "linf:4/255.acc", "loss.beta", "optimizer.lr_head", "timings.total_s"} <= set(frame.columns)
    assert cli(capsys, "results", str(results), "-F", "jsonl", "-o", str(tmp_path / "r.jsonl"))[0] == 0
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 6
    code, _, err = cli(capsys, "results", str(results), "-f", "los=trades")
    assert code == 2 and "unknown column 'los'" in err and "Did you mean: loss" in err
    code, _, err = cli(capsys, "results", str(results), "-F", "parquet")
    assert code == 2 and "--output" in err
    code, _, err = cli(capsys, "results", str(tmp_path / "nowhere"))
    assert code == 2 and "does not exist" in err


def test_results_failures(manager, tmp_path, capsys):
    path = write_sweep(tmp_path, 1, "retries: 0\n")
    from rftbench.sweep import Store, load_sweep

    sweep = load_sweep(path)
    store = Store(sweep.results_dir)
    store.check_writable()
    store.record_failure(sweep.runs[0].hash, {}, "Traceback …\nValueError: nan loss")
    code, out, _ = cli(capsys, "sweep", str(path), "--dry-run")
    assert "0 to run, 0 running, 0 done, 1 failed" in out
    code, out, _ = cli(capsys, "results", str(sweep.results_dir), "--failures")
    assert code == 0 and sweep.runs[0].hash in out and "ValueError: nan loss" in out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["sweep", "--help"], ["--dry-run", "--executor", "--retry-failed", "resume"]),
        (["results", "--help"], ["--filter", "parquet", "pandas"]),
        (["tune", "--help"], ["ASHA", "--samples", "1e-6", "--trial-function"]),
    ],
)
def test_help(capsys, argv, expected):
    code, out, _ = cli(capsys, *argv)
    assert code == 0
    for part in expected:
        assert part in out


def test_results_group_by_aggregates_seeds(manager, tmp_path, capsys):
    path = write_sweep(tmp_path, 3, "zip:\n  - {loss: [trades, classic_at]}\n")
    assert cli(capsys, "sweep", str(path), *SYNTHETIC, "--progress", "none")[0] == 0
    results = tmp_path / "results"
    code, out, _ = cli(capsys, "results", str(results), "--group-by", "loss", "-s", "loss", "-c", "loss,runs,clean_acc.mean")
    assert code == 0 and "2 groups of results" in out and "mean ± std" in out
    body = [line for line in out.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in body] == ["classic_at", "trades"]
    assert all("± " in line and "[" in line and line.split("│")[2].strip() == "3" for line in body)
    code, out, _ = cli(capsys, "results", str(results), "--group-by", "loss", "-F", "csv")
    header = out.splitlines()[0].split(",")
    assert code == 0 and {"loss", "runs", "seeds", "clean_acc.mean", "clean_acc.std", "clean_acc.ci_low", "clean_acc.ci_high"} <= set(header)
    code, _, err = cli(capsys, "results", str(results), "--group-by", "los")
    assert code == 2 and "unknown column 'los'" in err
