"""``rftbench compare`` and ``rftbench.compare``: paired differences, Holm, refusals, damaged files, entries."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

import rftbench
from rftbench.comparison import compare, compare_many, load_source
from rftbench.evaluation import evaluate
from rftbench.outcomes import NotComparableError, OutcomesError, read_outcomes
from rftbench.results import ResultRecord, write_record
from hub_server import fake_hub, hub_env  # noqa: F401 - fixtures
from tests.cli_helpers import run_cli
from tests.plugins import evaluation as fx
from tests.plugins.evaluation import manager, one_thread  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("one_thread")

POINTS = {"dataset": "toy", "card_sha256": "c" * 64, "split": "test"}


def _record(root, name, *, n=80, model_seed=0, eps=0.05, dataset="toy"):
    """A result record laid out as the runner writes it: root/NAME.json and root/NAME/outcomes-<sha>.npz."""
    model, _ = fx.linear_problem(n=n, seed=model_seed)
    _, data = fx.linear_problem(n=n, seed=0)  # the same points for every model
    x, y = data.tensors
    run_dir = root / name
    metrics = evaluate(model, data, [{"name": "tiny_fgsm", "eps": eps}], batch_size=32, output_dir=run_dir, progress=False,
                       points={**POINTS, "dataset": dataset})
    metrics["outcomes"]["file"] = f"{name}/{metrics['outcomes']['file']}"
    path = root / f"{name}.json"
    write_record(ResultRecord(id=name, config={"dataset": dataset}, metrics=metrics), path)
    return path


def test_compare_matches_a_direct_computation(manager, tmp_path):
    a, b = _record(tmp_path, "a", model_seed=0), _record(tmp_path, "b", model_seed=1)
    result = rftbench.compare(a, b)
    assert [d.threat for d in result.differences] == ["clean", "tiny_fgsm:0.05"]
    oa = read_outcomes(next((tmp_path / "a").glob("outcomes-*.npz")), None)
    ob = read_outcomes(next((tmp_path / "b").glob("outcomes-*.npz")), None)
    for d in result.differences:
        x, y = oa.outcome(d.threat), ob.outcome(d.threat)
        only_a, only_b = int((x & ~y).sum()), int((y & ~x).sum())
        assert (d.only_a, d.only_b) == (only_a, only_b)
        assert d.diff == pytest.approx(x.mean() - y.mean())
        p = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
        assert d.p_value == pytest.approx(p)
    # the run folder and the record name the same result
    assert compare(tmp_path / "a", b).differences == result.differences


def test_holm_over_several_comparisons(manager, tmp_path):
    base = _record(tmp_path, "base", model_seed=0)
    others = [_record(tmp_path, f"o{i}", model_seed=i) for i in (1, 2)]
    results = compare_many(base, others)
    raw = [d.p_value for c in results for d in c.differences]
    holm = [d.p_holm for c in results for d in c.differences]
    m = len(raw)
    order = np.argsort(raw)
    expected = np.maximum.accumulate(np.minimum(1, (m - np.arange(m)) * np.array(raw)[order]))
    assert np.allclose(np.array(holm)[order], expected)


def test_cli_compare_prints_table_plot_and_json(manager, tmp_path, capsys):
    a, b = _record(tmp_path, "a", model_seed=0), _record(tmp_path, "b", model_seed=1)
    code, out, err = run_cli(capsys, "compare", str(a), str(b), "--plot", str(tmp_path / "diff.png"))
    assert code == 0, err
    assert "tiny_fgsm:0.05" in out and "95% interval" in out and "exact McNemar" in err
    assert (tmp_path / "diff.png").stat().st_size > 1000
    code, out, _ = run_cli(capsys, "compare", str(a), str(b), "--json", "-t", "tiny_fgsm:0.05")
    data = json.loads(out)
    assert code == 0 and [d["threat"] for d in data["comparisons"][0]["differences"]] == ["tiny_fgsm:0.05"]


def test_cli_refuses_different_points(manager, tmp_path, capsys):
    a = _record(tmp_path, "a", n=80)
    b = _record(tmp_path, "b", n=60)
    c = _record(tmp_path, "c", dataset="other")
    code, _, err = run_cli(capsys, "compare", str(a), str(b))
    assert code == 2 and "error:" in err and "not measured on the same test points" in err and "number of points" in err
    code, _, err = run_cli(capsys, "compare", str(a), str(c))
    assert code == 2 and "different dataset" in err
    with pytest.raises(NotComparableError):
        compare(a, c)


def test_cli_refuses_damaged_or_missing_files(manager, tmp_path, capsys):
    a, b = _record(tmp_path, "a"), _record(tmp_path, "b", model_seed=1)
    npz = next((tmp_path / "b").glob("outcomes-*.npz"))
    npz.write_bytes(npz.read_bytes()[:-20])
    code, _, err = run_cli(capsys, "compare", str(a), str(b))
    assert code == 2 and "error:" in err and "truncated or was altered" in err
    npz.unlink()
    code, _, err = run_cli(capsys, "compare", str(a), str(b))
    assert code == 2 and "missing" in err
    code, _, err = run_cli(capsys, "compare", str(a), str(tmp_path / "nothing.json"))
    assert code == 2 and "error:" in err
    code, _, err = run_cli(capsys, "compare", str(a), str(a), "-t", "l2:1")
    assert code == 2 and "was not measured" in err
    code, _, err = run_cli(capsys, "compare", str(a), str(a), "--plot", str(tmp_path / "diff.xyz"))
    assert code == 2 and "use a .png, .svg or .pdf" in err


def test_outcome_paths_are_confined_to_the_record_folder(manager, tmp_path):
    a = _record(tmp_path, "a")
    data = json.loads(a.read_text())
    data["metrics"]["outcomes"]["file"] = "../../etc/passwd"
    a.write_text(json.dumps(data))
    with pytest.raises(OutcomesError, match="relative path inside"):
        load_source(a)


def test_record_without_outcomes_is_named(tmp_path):
    path = tmp_path / "old.json"
    write_record(ResultRecord(id="old", config={}, metrics={"clean_acc": 0.5, "threats": {}}), path)
    with pytest.raises(OutcomesError, match="no per-example outcomes recorded"):
        load_source(path)


def test_entries_carry_their_outcomes(manager, tmp_path):
    import shutil

    from rftbench.leaderboard import entry_from_record, load_entry, write_entry
    from rftbench.leaderboard.errors import TamperedEntryError
    from rftbench.results import read_record

    a, b = _record(tmp_path, "a", model_seed=0), _record(tmp_path, "b", model_seed=1)
    record = read_record(a)
    record.config.update(representation="toy_rep", epochs=1)
    entry = entry_from_record(record)
    assert entry.schema_version == 2 and entry.outcomes is not None
    assert entry.outcomes.sha256 == record.metrics["outcomes"]["sha256"] and entry.outcomes.points["n"] == 80
    folder = tmp_path / "entries"
    path = write_entry(entry, folder / f"{entry.id}.json")
    with pytest.raises(OutcomesError, match="is not beside it, and the entry names no checkpoint"):
        load_source(path)
    shutil.copy(tmp_path / record.metrics["outcomes"]["file"], folder / entry.outcomes.file)
    assert entry.outcomes.file == record.metrics["outcomes"]["file"].split("/")[1]  # the same name as in the run folder
    assert compare(path, b).differences == compare(a, b).differences
    # the sha256 is sealed in the entry: editing it breaks the content hash
    data = json.loads(path.read_text())
    data["outcomes"]["sha256"] = "0" * 64
    with pytest.raises(TamperedEntryError):
        load_entry(data)


def test_rftbench_eval_outputs_compare(manager, tmp_path):
    """The folder `rftbench eval` writes (evaluation.json + the per-example file) is a side of a comparison."""
    model_a, data = fx.linear_problem(n=50, seed=0)
    model_b, _ = fx.linear_problem(n=50, seed=3)
    for name, model in (("a", model_a), ("b", model_b)):
        out = tmp_path / name / "eval"
        result = evaluate(model, data, [{"name": "tiny_fgsm", "eps": 0.05}], output_dir=out, progress=False, points=POINTS)
        (out / "evaluation.json").write_text(json.dumps(result))
    result = compare(tmp_path / "a" / "eval", tmp_path / "b" / "eval" / "evaluation.json")
    assert result.n == 50 and [d.threat for d in result.differences] == ["clean", "tiny_fgsm:0.05"]


def test_entry_outcomes_are_fetched_from_the_checkpoint(manager, tmp_path, fake_hub):
    """An entry file without its per-example file beside it: fetched from its checkpoint at the pinned commit."""
    from rftbench.leaderboard import entry_from_record, write_entry
    from rftbench.results import read_record

    a, b = _record(tmp_path, "a", model_seed=0), _record(tmp_path, "b", model_seed=1)
    record = read_record(a)
    record.config.update(representation="toy_rep", epochs=1)
    name = record.metrics["outcomes"]["file"].split("/")[1]
    repo = fake_hub.create_repo("alice/toy-run", repo_type="model", files={name: (tmp_path / "a" / name).read_bytes()})
    entry = entry_from_record(record, checkpoint={"repo": "alice/toy-run", "revision": repo.branches["main"]})
    path = write_entry(entry, tmp_path / "entries" / f"{entry.id}.json")
    fetched = load_source(path, endpoint=fake_hub.url)
    assert compare(fetched, b).differences == compare(a, b).differences
    # a checkpoint without the file: a named error
    empty = fake_hub.create_repo("alice/no-file", repo_type="model", files={"README.md": b"x"})
    other = entry_from_record(record, checkpoint={"repo": "alice/no-file", "revision": empty.branches["main"]})
    path = write_entry(other, tmp_path / "entries2" / f"{other.id}.json")
    with pytest.raises(OutcomesError, match="neither beside the entry nor in its checkpoint"):
        load_source(path, endpoint=fake_hub.url)
