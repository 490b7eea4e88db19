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
    adjusted = [d.p_holm for c in results for d in c.differences]
    m = len(raw)
    assert m >= 4 and len(set(raw)) > 1  # one family over both comparisons, not two families of one
    # Holm by its definition, not by the same sort-and-accumulate: for each test, the largest over the
    # p-values no larger than its own of (m - rank) * p, capped at 1 (ties share the smaller rank)
    ranked = sorted(raw)
    expected = [min(1.0, max((m - ranked.index(q)) * q for q in ranked if q <= p)) for p in raw]
    assert adjusted == pytest.approx(expected)
    assert all(a >= p for a, p in zip(adjusted, raw))  # adjusted, not raw, p-values are reported


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


# ---------------------------------------------------------------------------- recipes: groups of runs


def _study(root, *, seeds=(0, 1, 2), n=300, shift=0.15, seed_sd=0.03):
    """Two recipes (classic_at at fixed ε, and the ε schedule), each over ``seeds``, on the same n points."""
    from report_helpers import record, with_outcomes, write

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, n)
    easy = rng.random(n)
    recs = []
    for r, (sched, base) in enumerate((("constant", 0.55), ({"name": "epsilon-scheduling", "t1": "25%", "t2": "75%"}, 0.55 + shift))):
        for seed in seeds:
            level = base + rng.normal(0, seed_sd)
            clean = (easy + 0.25 * rng.random(n)) < level + 0.35
            robust = (easy + 0.25 * rng.random(n)) < level
            rec = record(f"{r}{seed}" + "a" * 14, loss="classic_at", eps_schedule=sched, seed=seed, dataset="textures", n=n)
            recs.append(with_outcomes(root, rec, clean, robust, labels))
    return write(root, recs)


def test_groups_compare_as_recipes(tmp_path):
    from rftbench.groups import group_runs
    from rftbench.stats import recipe_difference

    folder = _study(tmp_path / "runs")
    groups = group_runs(folder, ["recipe"])
    assert [g.name for g in groups] == ["eps_schedule=constant", "eps_schedule=epsilon-scheduling, eps_schedule.t1=25%, eps_schedule.t2=75%"]
    assert [g.seeds for g in groups] == [[0, 1, 2], [0, 1, 2]]
    result = compare(groups[1], groups[0], pair_seeds=False)
    assert result.level == "recipe" and result.covers == "seeds and test points" and not result.warnings
    for d in result.differences:
        a = np.stack([r.outcomes.outcome(d.threat) for r in groups[1].runs])
        b = np.stack([r.outcomes.outcome(d.threat) for r in groups[0].runs])
        assert d == recipe_difference(a, b, d.threat)
    assert result.differences[1].significant()  # 15 points apart with a 3-point seed spread
    # the same with lists of runs, a results folder per side, and pairing by the shared seeds (the default)
    runs = sorted(folder.glob("*.json"))
    paired = compare(runs[3:], runs[:3])
    assert paired.paired and [d.test for d in paired.differences] == ["paired-t", "paired-t"]
    assert paired.seeds_a == [0, 1, 2] and paired.to_dict()["level"] == "recipe"


def test_one_run_per_side_is_a_model_comparison_with_a_warning(tmp_path):
    folder = _study(tmp_path / "runs")
    runs = sorted(folder.glob("*.json"))
    result = compare(runs[0], runs[3])
    assert result.level == "model" and result.covers == "test points"
    assert any("two trained models" in w and "3 or more per side" in w for w in result.warnings)
    # a group of one run asked for a recipe-level test: the same, with a warning, never a failure
    single = compare([runs[0]], [runs[3]])
    assert single.level == "model" and any("group of one run" in w for w in single.warnings)
    # one run against three: the recipe-level test borrows the group's seed variance, and says so
    borrowed = compare([runs[0]], runs[3:])
    assert borrowed.level == "recipe" and any("equal variances assumed" in w for w in borrowed.warnings)


def test_cli_compares_groups_from_a_folder_and_a_sweep_file(tmp_path, capsys):
    folder = _study(tmp_path / "study" / "results")
    code, out, err = run_cli(capsys, "compare", str(folder), "-g", "eps_schedule", "--base", "eps_schedule=epsilon-scheduling")
    assert code == 0, err
    assert "Two recipes" in out and "A = eps_schedule=epsilon-scheduling" in out and "seeds paired" in out
    assert "cover seeds and test points" in err
    code, _, err = run_cli(capsys, "compare", str(folder), "-g", "recipe", "--plot", str(tmp_path / "recipes.png"))
    assert code == 0 and (tmp_path / "recipes.png").stat().st_size > 1000
    (tmp_path / "study" / "sweep.yaml").write_text("results_dir: results\naxes: {seed: [0, 1, 2]}\n")
    code, out, _ = run_cli(capsys, "compare", str(tmp_path / "study" / "sweep.yaml"), "-g", "recipe", "--no-pair-seeds", "--json")
    data = json.loads(out)
    assert code == 0 and data["comparisons"][0]["level"] == "recipe" and not data["comparisons"][0]["paired"]
    assert data["comparisons"][0]["differences"][0]["test"] == "welch-t"
    # two single runs: the model-level table, with the warning
    runs = sorted(folder.glob("*.json"))
    code, out, err = run_cli(capsys, "compare", str(runs[0]), str(runs[3]))
    assert code == 0 and "Two trained models" in out and "warning:" in err and "seed-to-seed" in err


def test_groups_that_mix_recipes_are_refused_naming_each_field(tmp_path, capsys):
    from report_helpers import record, write

    folder = _study(tmp_path / "runs")
    code, _, err = run_cli(capsys, "compare", str(folder), str(folder))
    assert code == 2 and "different recipes" in err and "eps_schedule:" in err and "eps_schedule.t1:" in err
    rec = json.loads(next(folder.glob("00*.json")).read_text())
    rec["id"], rec["config"]["epochs"], rec["config"]["seed"] = "9" * 16, 9, 7
    write(folder, [rec])
    code, _, err = run_cli(capsys, "compare", str(folder), "-g", "eps_schedule")
    assert code == 2 and "epochs: 4" in err and "9 (" in err and "add epochs" in err
    # the same recipe and seed twice
    (folder / ("9" * 16 + ".json")).unlink()
    rec["id"], rec["config"]["epochs"], rec["config"]["seed"] = "8" * 16, 4, 0
    write(folder, [rec])
    code, _, err = run_cli(capsys, "compare", str(folder), "-g", "recipe")
    assert code == 2 and "two runs with seed 0" in err


def test_groups_on_different_points_are_refused(tmp_path, capsys):
    a = _study(tmp_path / "a", n=300)
    b = _study(tmp_path / "b", n=200)
    code, _, err = run_cli(capsys, "compare", *map(str, sorted(a.glob("0*.json"))), *map(str, sorted(b.glob("1*.json"))), "-g", "recipe")
    assert code == 2 and "not measured on the same test points" in err and "number of points" in err


def test_a_run_with_a_missing_or_altered_file_is_named_and_skipped_only_when_asked(tmp_path, capsys):
    folder = _study(tmp_path / "runs", seeds=(0, 1, 2, 3))
    broken = next((folder / ("01" + "a" * 14)).glob("outcomes-*.npz"))
    broken.write_bytes(broken.read_bytes()[:-30])
    (next((folder / ("13" + "a" * 14)).glob("outcomes-*.npz"))).unlink()
    code, _, err = run_cli(capsys, "compare", str(folder), "-g", "recipe")
    assert code == 2 and "2 run(s) cannot be compared" in err and "01aaaa" in err and "13aaaa" in err and "--skip-missing" in err
    code, out, err = run_cli(capsys, "compare", str(folder), "-g", "recipe", "--skip-missing")
    assert code == 0, err
    assert err.count("left out (--skip-missing)") == 2 and "seeds 0,2,3" in out and "seeds 0,1,2" in out
    assert "seeds independent" in out  # the groups no longer ran the same seeds
    code, _, err = run_cli(capsys, "compare", str(folder), "-g", "recipe", "--skip-missing", "--pair-seeds")
    assert code == 2 and "did not run the same seeds" in err
    with pytest.raises(OutcomesError, match="cannot be compared"):
        compare(folder, folder)


def test_cli_labels_each_run_by_what_differs_between_the_sides(capsys, monkeypatch):
    """Study 01's records (shipped, with outcomes): a side is named by its id and the config values that tell it apart."""
    from pathlib import Path

    from rftbench.cli import _app
    from rftbench.cli.compare import differing

    monkeypatch.setattr(_app.console, "_width", 160)
    records = Path(__file__).resolve().parents[1] / "examples" / "studies" / "01-suboptimal-transfer" / "records"
    at0, ce0, at1 = (str(records / f"{h}.json") for h in ("6cf1af4ed051138b", "1b095dc4ce22adf5", "5f6fe931fba4a58f"))
    code, out, err = run_cli(capsys, "compare", at0, ce0)
    assert code == 0, err
    lines = [line.strip() for line in out.splitlines()]
    assert "A = 6cf1af4ed051138b (loss=classic_at)" in lines and "B = 1b095dc4ce22adf5 (loss=ce)" in lines
    code, out, err = run_cli(capsys, "compare", at0, at1)
    lines = [line.strip() for line in out.splitlines()]
    assert code == 0 and "A = 6cf1af4ed051138b (seed 0)" in lines and "B = 5f6fe931fba4a58f (seed 1)" in lines
    base = {"loss": {"name": "trades", "beta": 6.0}, "seed": 0, "output_dir": "runs/a"}
    assert differing([base, {**base, "loss": {"name": "classic_at"}, "output_dir": "runs/b"}]) == [{"loss": "trades"}, {"loss": "classic_at"}]
    assert differing([base, {**base, "loss": {"name": "trades", "beta": 1.0}}]) == [{"loss.beta": "6.0"}, {"loss.beta": "1.0"}]
