"""`rftbench run`: the summary, --json, resuming, and errors printed without a traceback."""

from __future__ import annotations

import json

import pytest

from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture
from tests.test_run import tiny
from tests.cli_helpers import run_cli as cli

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def sets(tmp_path, **extra) -> list[str]:
    return [a for pair in tiny(tmp_path, **extra) for a in ("--set", pair)]


def test_help_shows_usage(capsys):
    code, out, _ = cli(capsys, "run", "--help")
    assert code == 0 and "--set" in out and "offline" in out and "--restart" in out and "resume" in out


def test_run_prints_a_summary_and_json(engine_manager, capsys, tmp_path):
    code, out, err = cli(capsys, "run", *sets(tmp_path), "--no-progress")
    assert code == 0, err
    assert "clean accuracy" in out and "robust accuracy linf:4/255" in out and "micro_resnet.test" in out
    assert "record" in out and "load_model" in out
    assert "95% CI, n=" in out  # each accuracy with its Wilson interval
    code, out, err = cli(capsys, "run", *sets(tmp_path), "--json")
    record = json.loads(out)
    assert code == 0 and record["status"] == "complete" and "clean_acc" in record["metrics"]


def test_runs_keep_per_example_outcomes_and_compare(engine_manager, capsys, tmp_path):
    import hashlib

    runs = []
    for seed in (0, 1):
        code, out, err = cli(capsys, "run", *sets(tmp_path, seed=seed), "--json")
        assert code == 0, err
        runs.append(json.loads(out))
    out_dir = tmp_path / "runs"
    for record in runs:
        ref = record["metrics"]["outcomes"]
        assert ref["file"] == f"{record['id']}/outcomes-{ref['sha256'][:16]}.npz" and ref["points"]["dataset"] == record["config"]["dataset"]
        assert ref["points"]["card_sha256"] and ref["points"]["n"] == record["metrics"]["n_examples"]
        assert hashlib.sha256((out_dir / ref["file"]).read_bytes()).hexdigest() == ref["sha256"]
    # a re-run replaces the file together with the record, and leaves no stale one behind
    stale = out_dir / runs[1]["id"] / "outcomes-0123456789abcdef.npz"
    stale.write_bytes(b"an earlier evaluation")
    code, out, err = cli(capsys, "run", *sets(tmp_path, seed=1), "--rerun", "--json")
    assert code == 0, err
    rerun = json.loads(out)["metrics"]["outcomes"]
    assert [p.name for p in (out_dir / runs[1]["id"]).glob("outcomes-*.npz")] == [rerun["file"].split("/")[1]]
    a, b = (str(out_dir / f"{r['id']}.json") for r in runs)
    code, out, err = cli(capsys, "compare", a, str(out_dir / runs[1]["id"]), "--json")
    assert code == 0, err
    diffs = json.loads(out)["comparisons"][0]["differences"]
    assert [d["threat"] for d in diffs] == ["clean", *runs[0]["metrics"]["threats"]]
    assert diffs[0]["acc_a"] == pytest.approx(runs[0]["metrics"]["clean_acc"])


def test_errors_name_the_field_without_traceback(engine_manager, capsys, tmp_path):
    code, out, err = cli(capsys, "run", *sets(tmp_path), "--set", "threat.eps=8")
    assert code == 2 and "threat.eps" in err and "8/255" in err and "Traceback" not in err
    code, out, err = cli(capsys, "run", *sets(tmp_path, batch_size=1000), "--no-progress")
    assert code == 2 and "batch_size = 1000 is larger than the train split" in err and "Traceback" not in err
