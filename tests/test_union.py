"""Union (worst-over-threats) accuracy: the definition, the evaluator's record, and its files."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rftbench.evaluation import evaluate
from rftbench.outcomes import (
    Outcomes,
    OutcomesError,
    read_outcomes,
    union_correct,
    union_members,
    union_summary,
    write_outcomes,
)
from tests.plugins import evaluation as fx
from tests.plugins.evaluation import manager, one_thread  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("one_thread")


def test_union_by_hand():
    """Six points; a point counts only when correct clean and under every threat of the set."""
    clean = np.array([1, 1, 1, 1, 0, 1], bool)
    correct = {
        "linf:4/255": np.array([1, 1, 0, 1, 1, 1], bool),
        "l2:0.5": np.array([1, 0, 1, 1, 1, 1], bool),
        "l1:10": np.array([1, 1, 1, 0, 1, 1], bool),
        # averaged corruptions: the share of corruption types a point survives
        "corruptions:3": np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.5], np.float16),
    }
    norms = {"corruptions:3": "corruption"}
    members = union_members(list(correct), norms)
    assert members == {"union": ["linf:4/255", "l2:0.5", "l1:10"], "union_all": list(correct)}
    # by hand: union = points 0 and 5 (point 4 is wrong clean); union_all = point 0 (point 5 fails half the corruptions)
    assert union_correct(clean, correct, members["union"]).tolist() == [1, 0, 0, 0, 0, 1]
    summary = union_summary(clean, correct, norms, reliable={"l2:0.5": False})
    assert summary["union"] == {"acc": pytest.approx(2 / 6), "n": 6, "of": members["union"], "reliable": False}
    assert summary["union_all"]["acc"] == pytest.approx(1 / 6) and summary["union_all"]["reliable"] is False
    for name, record in summary.items():
        accs = [clean.mean()] + [np.asarray(correct[t], np.float32).mean() for t in record["of"]]
        assert record["acc"] <= min(accs) + 1e-12


def test_which_unions_a_suite_defines():
    assert union_members(["linf:4/255"]) == {}
    assert union_members(["linf:4/255", "corruptions:3"], {"corruptions:3": "corruption"}) == {
        "union_all": ["linf:4/255", "corruptions:3"]}
    assert union_members(["linf:4/255", "l2:0.5"]) == {"union": ["linf:4/255", "l2:0.5"]}
    # the label's prefix serves when no norm is known; a recorded norm wins
    assert union_members(["linf:1", "mine:1"], {"mine:1": "l2"}) == {"union": ["linf:1", "mine:1"]}
    assert union_members(["linf:1", "mine:1"]) == {"union_all": ["linf:1", "mine:1"]}


def _outcomes(norms=None) -> Outcomes:
    n = 5
    return Outcomes(index=np.arange(n), label=np.zeros(n, np.int64), clean=np.array([1, 1, 1, 0, 1], bool),
                    margin=np.zeros(n, np.float32),
                    correct={"linf:1": np.array([1, 1, 0, 0, 1], bool), "l2:1": np.array([1, 0, 1, 0, 1], bool),
                             "corruptions:3": np.array([0, 1, 1, 1, 1], bool)},
                    points={"n": n}, norms=dict(norms or {}))


def test_outcomes_give_the_union_per_point_and_keep_norms_through_the_file(tmp_path):
    o = _outcomes({"linf:1": "linf", "l2:1": "l2", "corruptions:3": "corruption"})
    assert o.outcome("union").tolist() == [1, 0, 0, 0, 1]
    assert o.outcome("union_all").tolist() == [0, 0, 0, 0, 1]
    meta = write_outcomes(o, tmp_path)
    back = read_outcomes(tmp_path / meta["file"], meta["sha256"])
    assert back.norms == o.norms and back.outcome("union_all").tolist() == [0, 0, 0, 0, 1]
    only = Outcomes(index=o.index, label=o.label, clean=o.clean, margin=o.margin, correct={"linf:1": o.correct["linf:1"]})
    with pytest.raises(OutcomesError, match="no union accuracy: it needs at least two L∞/L2/L1 threats"):
        only.outcome("union")


def test_evaluation_records_the_unions_and_they_match_the_outcomes(builtins, tmp_path):
    model, data = fx.linear_problem(n=48, shape=(3, 8, 8), seed=0)
    suite = [{"name": "linf", "eps": 0.01, "attack": "pgd", "steps": 2},
             {"name": "l2", "eps": 0.15, "attack": "pgd", "steps": 2},
             {"name": "corruptions", "severity": 3}]
    result = evaluate(model, data, suite, batch_size=16, output_dir=tmp_path, progress=False)
    labels = list(result["threats"])
    adversarial = [t for t in labels if not t.startswith("corruptions")]
    assert result["union"]["of"] == adversarial and result["union_all"]["of"] == labels
    o = read_outcomes(tmp_path / result["outcomes"]["file"], result["outcomes"]["sha256"])
    assert o.norms[labels[-1]] == "corruption"
    for name, members in (("union", adversarial), ("union_all", labels)):
        by_hand = np.array(o.clean, bool)
        for t in members:
            by_hand &= np.asarray(o.correct[t]) >= 1
        record = result[name]
        assert record["n"] == 48 and record["acc"] == pytest.approx(by_hand.mean())
        assert record["acc"] == pytest.approx(o.outcome(name).mean())
        assert record["acc"] <= min([result["clean_acc"]] + [result["threats"][t]["acc"] for t in members]) + 1e-12
    # corruptions and attacks break different points, so union_all is strictly below each of its threats here
    assert result["union_all"]["acc"] < min(result["threats"][t]["acc"] for t in labels)


# ---------------------------------------------------------------------------- compare


def _record(root, name, *, model_seed=0, eps=(0.05, 0.12), n=80):
    """A record as the runner writes it (root/NAME.json, root/NAME/outcomes-*.npz) with two L∞ threats."""
    from rftbench.results import ResultRecord, write_record

    model, _ = fx.linear_problem(n=n, seed=model_seed)
    _, data = fx.linear_problem(n=n, seed=0)
    run_dir = root / name
    metrics = evaluate(model, data, [{"name": "tiny_fgsm", "eps": e} for e in eps], batch_size=32, output_dir=run_dir,
                       progress=False, points={"dataset": "toy", "card_sha256": "c" * 64, "split": "test"})
    metrics["outcomes"]["file"] = f"{name}/{metrics['outcomes']['file']}"
    path = root / f"{name}.json"
    write_record(ResultRecord(id=name, config={"dataset": "toy", "seed": model_seed}, metrics=metrics), path)
    return path


def test_compare_includes_the_union_paired_per_point(manager, tmp_path):
    from scipy.stats import binomtest

    from rftbench.comparison import compare, load_source

    a, b = _record(tmp_path, "a", model_seed=0), _record(tmp_path, "b", model_seed=1)
    result = compare(a, b)
    assert [d.threat for d in result.differences] == ["clean", "tiny_fgsm:0.05", "tiny_fgsm:0.12", "union"]
    d = result.differences[-1]
    ua, ub = load_source(a).outcomes.outcome("union"), load_source(b).outcomes.outcome("union")
    assert (d.only_a, d.only_b) == (int((ua & ~ub).sum()), int((ub & ~ua).sum()))
    assert d.acc_a == pytest.approx(json_union(a)) and d.diff == pytest.approx(ua.mean() - ub.mean())
    assert d.p_value == pytest.approx(binomtest(d.only_a, d.only_a + d.only_b).pvalue if d.only_a + d.only_b else 1.0)
    # asked for by name; refused when the sides' unions span different threats
    assert [x.threat for x in compare(a, b, ["union"]).differences] == ["union"]
    c = _record(tmp_path, "c", model_seed=2, eps=(0.05, 0.2))
    assert "union" not in [x.threat for x in compare(a, c).differences]
    with pytest.raises(OutcomesError, match="'union' is not defined over the same threats"):
        compare(a, c, ["union"])


def json_union(path) -> float:
    import json

    return json.loads(path.read_text())["metrics"]["union"]["acc"]


def test_compare_recipes_includes_the_union(manager, tmp_path):
    import numpy as np

    from rftbench.comparison import compare
    from rftbench.groups import load_group
    from rftbench.stats import recipe_difference

    ga = [_record(tmp_path, f"a{s}", model_seed=s) for s in (0, 1, 2)]
    gb = [_record(tmp_path, f"b{s}", model_seed=s + 10) for s in (0, 1, 2)]
    result = compare(ga, gb)
    assert result.level == "recipe" and result.differences[-1].threat == "union"
    group_a, group_b = load_group(ga), load_group(gb)
    expected = recipe_difference(np.stack([r.outcomes.outcome("union") for r in group_a.runs]),
                                 np.stack([r.outcomes.outcome("union") for r in group_b.runs]), "union",
                                 paired=result.paired)
    got = result.differences[-1]
    assert got.diff == pytest.approx(expected.diff) and got.ci_low == pytest.approx(expected.ci_low)


def test_cli_compare_shows_the_union(manager, tmp_path, capsys):
    from tests.cli_helpers import run_cli

    a, b = _record(tmp_path, "a", model_seed=0), _record(tmp_path, "b", model_seed=1)
    code, out, err = run_cli(capsys, "compare", str(a), str(b))
    assert code == 0, err
    assert any(line.lstrip("│ ").startswith("union") for line in out.splitlines())


# ---------------------------------------------------------------------------- results


def test_results_rows_carry_the_union_with_its_interval_and_old_records_get_it_on_read(manager, tmp_path, capsys):
    import json

    from rftbench.stats import accuracy_interval
    from rftbench.sweep.export import load_rows
    from tests.cli_helpers import run_cli

    new = _record(tmp_path, "new", model_seed=0)
    old = _record(tmp_path, "old", model_seed=1)
    recorded = json.loads(old.read_text())
    union = recorded["metrics"].pop("union")
    old.write_text(json.dumps(recorded))  # as written before union accuracies were recorded
    bare = json.loads(new.read_text())
    bare["id"] = "bare"
    bare["metrics"].pop("union")
    bare["metrics"].pop("outcomes")  # no per-example file: the union is unknown, not zero
    (tmp_path / "bare.json").write_text(json.dumps(bare))
    rows = {r["id"]: r for r in load_rows(tmp_path)}
    assert rows["old"]["union.acc"] == pytest.approx(union["acc"]) and rows["old"]["union.n"] == 80
    assert "union.acc" not in rows["bare"]
    for row in (rows["new"], rows["old"]):
        low, high = accuracy_interval(row["union.acc"], 80)
        assert (row["union.acc.ci_low"], row["union.acc.ci_high"]) == (pytest.approx(low), pytest.approx(high))
    code, out, err = run_cli(capsys, "results", str(tmp_path), "-c", "id,union.acc", "-s", "id")
    assert code == 0, err
    shown = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in out.splitlines() if line.count("│") >= 3}
    acc, (low, high) = rows["new"]["union.acc"], accuracy_interval(rows["new"]["union.acc"], 80)
    assert shown["new"] == f"{100 * acc:.1f} [{100 * low:.1f}, {100 * high:.1f}]" and shown["bare"] == ""
    code, out, err = run_cli(capsys, "results", str(tmp_path), "-F", "csv", "-c", "id,union.acc*")
    assert code == 0 and out.splitlines()[0] == "id,union.acc,union.acc.ci_low,union.acc.ci_high"


def _render(table) -> str:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_run_summary_and_eval_table_show_the_union(manager, tmp_path):
    import json

    from rftbench.cli.eval import result_table
    from rftbench.cli.run import summary_table
    from rftbench.results import read_record
    from rftbench.stats import format_accuracy

    path = _record(tmp_path, "a")
    record = read_record(path)
    expected = format_accuracy(record.metrics["union"]["acc"], 80)
    text = _render(summary_table(record))
    assert any("union accuracy" in line and expected in line for line in text.splitlines())  # the label may wrap
    assert "tiny_fgsm:0.05, tiny_fgsm:0.12" in text
    text = _render(result_table(json.loads(path.read_text())["metrics"], "eval"))
    assert any("union accuracy" in line and expected in line for line in text.splitlines())
    record.metrics.pop("union")
    assert "union accuracy" not in _render(summary_table(record))


# ---------------------------------------------------------------------------- report


def test_report_shows_the_union_per_recipe_and_per_run(tmp_path):
    import json

    from rftbench.outcomes import from_evaluation, write_outcomes
    from rftbench.report import build_report
    from rftbench.report._analyses import pm, recipe_ci
    from rftbench.report._build import md
    from rftbench.report._load import load_inputs
    from tests.report_helpers import record, write

    folder = tmp_path / "runs"
    recs = []
    for seed, union in enumerate((0.30, 0.32, 0.34)):
        rec = record(f"u{seed}aaaaaaaaaaaaaa", seed=seed, linf=0.4, threats={"l2:0.5": 0.5})
        rec["metrics"]["union"] = {"acc": union, "n": 200, "of": ["linf:4/255", "l2:0.5"], "reliable": True}
        recs.append(rec)
    hostile = record("hbbbbbbbbbbbbbbb", seed=0, loss="trades", linf=0.4, threats={"l2:0.5": 0.5})
    hostile["metrics"]["union"] = {"acc": 0.45, "n": 200, "of": ["linf:4/255", "l2:0.5"]}  # above L∞'s 0.40: impossible
    recs.append(hostile)
    # a record from before unions were recorded, with its per-example file: the union is computed on read
    old = record("o" + "c" * 15, seed=0, loss="mart")
    clean = np.array([1, 1, 1, 1, 0, 1, 1, 1], bool)
    linf, l2 = np.array([1, 0, 1, 1, 0, 1, 1, 0], bool), np.array([1, 1, 0, 1, 0, 1, 0, 1], bool)
    labels = np.zeros(8, np.int64)
    logits = np.zeros((8, 3))
    logits[:, 0] = np.where(clean, 2.0, -2.0)
    o = from_evaluation(logits, labels, {"linf:4/255": {"correct": linf}, "l2:0.5": {"correct": l2}}, points={"dataset": "digits"},
                        norms={"linf:4/255": "linf", "l2:0.5": "l2"})
    (folder / old["id"]).mkdir(parents=True)
    ref = write_outcomes(o, folder / old["id"])
    old["metrics"].update(n_examples=8, clean_acc=7 / 8, outcomes={**ref, "file": f"{old['id']}/{ref['file']}"},
                          threats={"linf:4/255": {"acc": 5 / 8, "n": 8}, "l2:0.5": {"acc": 5 / 8, "n": 8}})
    recs.append(old)
    write(folder, recs)
    rows = {r.id: r for r in load_inputs([str(folder)]).rows}
    assert rows[old["id"]].union == pytest.approx(3 / 8)  # points 0, 3, 5
    assert rows["hbbbbbbbbbbbbbbb"].union is None  # refused, shown as unknown
    build_report([str(folder)], tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "Union accuracy: robust to every threat at once" in text
    table = text.split(f"*{md('Union accuracy per recipe')}*", 1)[1].strip().splitlines()[2:]
    table = list(itertools.takewhile(lambda line: line.startswith("|"), table))  # this table only: other sections follow
    cells = [[c.strip().replace("\\", "") for c in line.strip("|").split("|")] for line in table]
    recipe = next(c for c in cells if c[3].startswith("classic_at"))
    group = [rows[f"u{s}aaaaaaaaaaaaaa"] for s in range(3)]
    assert recipe[5] == "3" and recipe[6] == pm([0.30, 0.32, 0.34]) and recipe[7] == recipe_ci([0.30, 0.32, 0.34], group)
    assert recipe[8] == pm([0.4, 0.4, 0.4]) and recipe[9] == pm([0.10, 0.08, 0.06])
    assert not any(c[3].startswith("trades") for c in cells)
    assert "union (L∞/L2/L1)" in text.split("Every local result", 1)[1]


def test_a_hostile_norms_array_is_refused(tmp_path):
    import hashlib
    import io

    o = _outcomes({"linf:1": "linf", "l2:1": "l2", "corruptions:3": "corruption"})
    meta = write_outcomes(o, tmp_path)
    with np.load(tmp_path / meta["file"], allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for bad in (np.array(["linf"], dtype=str), np.array([1, 2, 3])):
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{**arrays, "norms": bad})
        path = tmp_path / "bad.npz"
        path.write_bytes(buffer.getvalue())
        with pytest.raises(OutcomesError, match="malformed outcomes file"):
            read_outcomes(path, hashlib.sha256(buffer.getvalue()).hexdigest())


def test_results_group_by_aggregates_the_union(manager, tmp_path):
    from rftbench.stats import recipe_interval
    from rftbench.sweep.export import group_rows, load_rows

    for s in (0, 1, 2):
        _record(tmp_path, f"r{s}", model_seed=s)
    (group,) = group_rows(load_rows(tmp_path), ["dataset"])
    values = [r["union.acc"] for r in load_rows(tmp_path)]
    assert group["union.acc.mean"] == pytest.approx(np.mean(values))
    low, high = recipe_interval(values, 80)
    assert (group["union.acc.ci_low"], group["union.acc.ci_high"]) == (pytest.approx(max(0, low)), pytest.approx(min(1, high)))
