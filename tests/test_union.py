"""Union (worst-over-threats) accuracy: the definition, the evaluator's record, and its files."""

from __future__ import annotations

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
from tests.plugins.evaluation import one_thread  # noqa: F401 - fixtures

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
