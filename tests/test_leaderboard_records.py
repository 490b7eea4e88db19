"""Result records → entries: typed setup, canonical threat labels, metrics kept as numbers."""

from __future__ import annotations

import json

import pytest

from leaderboard_helpers import make_entry, make_record
from rftbench.leaderboard.errors import EntryError
from rftbench.leaderboard.records import entry_from_record, model_info_for
from rftbench.plugins import PluginManager


def test_entry_from_record_types_numbers_and_budgets():
    entry = make_entry()
    assert entry.setup.threat.norm == "linf" and entry.setup.threat.eps == pytest.approx(4 / 255)
    assert entry.setup.loss == "trades" and entry.setup.loss_params == {"beta": 6.0}
    assert list(entry.metrics.threats) == ["linf:4/255", "l2:0.5"]
    assert entry.metrics.threats["linf:4/255"].extra == {"loss": 1.25}
    assert entry.metrics.sum == pytest.approx(0.81 + 0.42 + 0.5)
    assert entry.metrics.geom == pytest.approx(0.81 * 0.42 * 0.5)
    assert entry.metrics.expected_robustness == 0.6
    assert entry.metrics.extra == {"margin_consistency.kendall_tau": 0.7}
    assert entry.metrics.n_eval == 64
    assert entry.run_id == "a1b2c3d4e5f60718"
    assert entry.id == entry.content_hash[:16]
    # JSON keeps numbers as numbers
    data = json.loads(entry.to_json())
    assert isinstance(data["metrics"]["threats"]["linf:4/255"]["eps"], float)
    assert isinstance(data["setup"]["epochs"], int)


def test_incomplete_or_unevaluated_records_are_refused():
    record = make_record()
    with pytest.raises(EntryError, match="status 'failed'"):
        entry_from_record(record.model_copy(update={"status": "failed"}))
    with pytest.raises(EntryError, match="no metrics.clean_acc"):
        entry_from_record(record.model_copy(update={"metrics": {}}))
    with pytest.raises(EntryError, match="config has no 'dataset'"):
        entry_from_record(record.model_copy(update={"config": {k: v for k, v in record.config.items() if k != "dataset"}}))


def test_model_labels_come_from_the_zoo_card(fresh_manager):
    import rftbench_plugins.zoo as zoo

    fresh_manager.register(zoo, "zoo")
    cards = fresh_manager.items("representation")
    if not cards:
        pytest.skip("no representation card in registry/")
    card = cards[0]
    info = model_info_for(card.id, fresh_manager)
    assert info.family == card.family and info.pretraining == card.pretraining.strategy
    assert model_info_for("no-such-card", PluginManager()).family is None


def test_the_evaluators_output_shape():
    """rftbench.evaluation.evaluate's dict: n_examples, per-threat n/seconds/reliable, metric records, flags."""
    record = make_record()
    record = record.model_copy(update={"metrics": {
        "n_examples": 32, "clean_acc": 0.75, "seed": 0, "seconds": 1.7, "reliable": False, "plots": ["a.png"],
        "flags": [{"check": "x", "threat": "linf:4/255", "message": "m", "severity": "warning"}],
        "threats": {"linf:4/255": {"acc": 0.25, "n": 32, "norm": "linf", "eps": 4 / 255, "seconds": 0.4, "reliable": False}},
        "metrics": {"expected_robustness": {"value": 0.5, "seconds": 2.0}, "margin": {"kendall_tau": 0.3, "seconds": 1.0}},
    }})
    entry = entry_from_record(record, manager=PluginManager())
    m = entry.metrics
    assert m.n_eval == 32 and m.reliable is False and m.expected_robustness == 0.5
    assert m.threats["linf:4/255"].extra == {"n": 32.0}
    assert m.extra == {"expected_robustness.value": 0.5, "margin.kendall_tau": 0.3}


def test_unset_optional_fields_do_not_change_the_hash():
    entry = make_entry()
    data = json.loads(entry.to_json())
    del data["metrics"]["reliable"], data["model"]["short_name"], data["checkpoint"]["subfolder"]
    from rftbench.leaderboard.entry import load_entry

    assert load_entry(data).content_hash == entry.content_hash


def test_training_warnings_reach_the_entry_and_the_site():
    """A run whose robust accuracy collapsed while training (catastrophic overfitting) carries the flag to the board."""
    from rftbench.engine.monitor import WARNINGS
    from rftbench.leaderboard.build import render_site
    from rftbench.leaderboard.entry import TrainingWarning, load_entry
    from typing import get_args

    assert get_args(TrainingWarning) == WARNINGS  # one list of names
    warned = make_record().model_copy(update={"warnings": [
        {"name": "robust-collapse", "epoch": 1.5, "step": 12, "message": "robust accuracy collapsed: 40.0% → 2.0%"},
        {"name": "robust-collapse", "epoch": 2.0, "step": 16, "message": "again"},
        {"name": "loss-divergence", "epoch": 3, "step": 24, "message": "rising"},
    ]})
    entry = entry_from_record(warned)
    assert entry.training_warnings == ["robust-collapse", "loss-divergence"]
    assert load_entry(json.loads(entry.to_json())).training_warnings == entry.training_warnings
    plain = entry_from_record(make_record())
    assert plain.training_warnings is None and json.loads(plain.to_json()).get("training_warnings") is None
    html = render_site([("local", entry), ("local", plain)])
    assert html.count(">overfit?</span>") == 1
    data = json.loads(entry.to_json())
    data["training_warnings"] = ["<script>"]
    with pytest.raises(EntryError, match="training_warnings"):
        load_entry(data, check_hash=False)


def test_parameter_counts_reach_the_entry_and_a_sortable_site_column():
    """The record's ``parameters`` (trainable / total / added / share) become the entry's and the board's "trainable" column."""
    import re

    from rftbench.leaderboard.build import render_site
    from rftbench.leaderboard.entry import load_entry

    counted = make_record().model_copy(update={"parameters": {"trainable": 15800, "total": 93200, "added": 14500,
                                                              "share": 0.1695}})
    entry = entry_from_record(counted)
    assert entry.parameters is not None and entry.parameters.trainable == 15800 and entry.parameters.added == 14500
    assert load_entry(json.loads(entry.to_json())).parameters == entry.parameters  # sealed in the hash, read back
    plain = entry_from_record(make_record().model_copy(update={"parameters": None}))
    assert plain.parameters is None and json.loads(plain.to_json()).get("parameters") is None
    html = render_site([("local", entry), ("local", plain)])
    assert 'data-key="trainable" data-type="num"' in html  # a numeric, sortable column
    cells = re.findall(r'<td class="num" data-v="([^"]*)" title="[^"]*">([^<]*)</td>\s*<td data-v="local"', html)
    assert ("15800.0", "15.8 k (17.0%)") in cells and ("", "unknown") in cells, cells
    data = json.loads(entry.to_json())
    data["parameters"]["share"] = 2.0
    with pytest.raises(EntryError, match="parameters"):
        load_entry(data, check_hash=False)
