"""rftbench.sweep.trial: `tune_trial` reports the validation loss per epoch, writes nothing, needs a val split."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rftbench import hookimpl, load_model, run
from rftbench.cards import DatasetCard
from rftbench.config import load_config
from rftbench.sweep.trial import REPORTED, tune_trial
from rftbench.errors import ConfigError
from rftbench.specs import DatasetSourceSpec, NoParams
from rftbench_plugins.offline import load_offline
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture
from tests.test_run import tiny

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_a_trial_reports_every_epoch_as_the_run_records_it(engine_manager, tmp_path):
    overrides = tiny(tmp_path, precision="fp32")
    rows = []
    tune_trial(load_config(overrides=overrides, manager=engine_manager), rows.append, manager=engine_manager)
    assert [row["epoch"] for row in rows] == [1, 2]
    for row in rows:
        assert set(row) == set(REPORTED) and all(type(row[k]) is float for k in REPORTED if k != "epoch")
        assert math.isfinite(row["val_loss"]) and row["val_loss"] > 0 and 0 <= row["val_acc"] <= 1
    assert not (tmp_path / "runs").exists()  # no run folder, checkpoint or record

    # the same config through run(): the same training, and val_loss in the record's curves
    record = run(overrides=overrides, manager=engine_manager)
    assert record.curves["val_loss"] == pytest.approx([row["val_loss"] for row in rows], abs=1e-6)
    assert record.curves["val_acc"] == pytest.approx([row["val_acc"] for row in rows], abs=1e-9)

    # val_loss is the mean clean cross-entropy of the trained model on the val split
    from rftbench.data import build_data

    data = build_data(engine_manager.get("representation", "micro_resnet.test"), engine_manager.get("dataset", "digits_small"),
                      batch_size=16, manager=engine_manager)
    x = torch.stack([data.val[i][0] for i in range(len(data.val))])
    y = torch.tensor([data.val[i][1] for i in range(len(data.val))])
    with torch.no_grad():
        expected = F.cross_entropy(load_model(record.run_dir, manager=engine_manager)(x), y).item()
    assert record.curves["val_loss"][-1] == pytest.approx(expected, rel=1e-5)


def test_a_trial_stopped_at_a_report_leaves_nothing(engine_manager, tmp_path):
    def ray_stops(metrics):  # what Ray's report does in a trial ASHA stops
        raise SystemExit(0)

    with pytest.raises(SystemExit):
        tune_trial(load_config(overrides=tiny(tmp_path, epochs=3, loss="ce"), manager=engine_manager), ray_stops,
                   manager=engine_manager)
    assert not (tmp_path / "runs").exists()


def _without_val(card, *, root, download, **params):
    splits = load_offline(card, root=root, download=download, **params)
    splits.pop("val")
    return splits


class NoValPlugin:
    @hookimpl
    def rftbench_add_datasets(self):
        base = {"source": "offline", "args": {"generator": "digits", "limit": 64}, "num_classes": 10, "resolution": 16,
                "provenance": {"license": "CC-BY-4.0"}}
        return [
            DatasetCard(id="digits_no_val", splits={"train": {"rule": "stratified"}, "test": {"rule": "stratified", "fraction": 0.2}},
                        **base),
            DatasetCard(id="digits_val_lost", splits={"train": {"rule": "stratified"}, "val": {"rule": "stratified", "fraction": 0.2},
                                                     "test": {"rule": "stratified", "fraction": 0.2}},
                        **{**base, "source": "offline_without_val"}),
        ]

    @hookimpl
    def rftbench_add_dataset_sources(self):
        return [DatasetSourceSpec(name="offline_without_val", params=NoParams, factory=_without_val,
                                  description="offline, dropping the val split")]


@pytest.mark.parametrize("dataset", ["digits_no_val", "digits_val_lost"])
def test_a_dataset_without_a_val_split_is_refused(engine_manager, tmp_path, dataset):
    engine_manager.register(NoValPlugin(), "no_val")
    config = load_config(overrides=tiny(tmp_path, dataset=dataset), manager=engine_manager)
    with pytest.raises(ConfigError, match=rf"dataset '{dataset}' has no val split, and tuning needs one: .*validation loss"):
        tune_trial(config, lambda metrics: pytest.fail("reported without validation"), manager=engine_manager)
    assert not (tmp_path / "runs").exists()


def micro_trial(config, report):
    """The engine's trial with the test-only micro cards registered (Ray's workers load only entry points)."""
    from rftbench.plugins import PluginManager
    from tests.plugins import engine_cards

    manager = PluginManager()
    manager.load_entrypoints()
    manager.register(engine_cards, "engine_cards")
    torch.set_num_threads(1)
    tune_trial(config, report, manager=manager)


@pytest.mark.slow
def test_ray_tune_with_asha_runs_the_engines_trial(engine_manager, tmp_path):
    pytest.importorskip("ray.tune")
    from rftbench.sweep.tune import tune

    config = load_config(overrides=tiny(tmp_path, epochs=2, loss="ce"), manager=engine_manager)
    ranges = {"lr_backbone": (1e-4, 1e-2), "lr_head": (1e-4, 1e-2)}
    result = tune(config, trial="tests.test_engine_tune:micro_trial", ranges=ranges, num_samples=2, num_cpus=2,
                  results_dir=tmp_path / "tune", seed=0, manager=engine_manager)
    assert len(result.trials) == 2 and not any(t.get("error") for t in result.trials)
    finished = [t for t in result.trials if t["epochs"] == 2]
    assert finished and math.isfinite(result.value) and result.value == min(t["val_loss"] for t in finished)
    best = next(t for t in finished if t["val_loss"] == result.value)["values"]
    assert result.best.optimizer.lr_head == pytest.approx(best["lr_head"]) and 1e-4 <= best["lr_head"] <= 1e-2
    assert not (tmp_path / "runs").exists()  # trials write no run folder or record
