"""`rftbench tune`: the reference study's search space, ASHA stopping trials early, the best config written back."""

from __future__ import annotations

import pytest

from rftbench.config import load_config
from rftbench.errors import ConfigError, RftbenchError
from rftbench.sweep.tune import SEARCH_SPACE, search_space, tune, write_best
from tests.sweep_helpers import manager  # noqa: F401  (manager: fixture)


def test_search_space_is_the_reference_studys():
    assert SEARCH_SPACE == {
        "lr_backbone": (1e-6, 1e-1), "lr_head": (1e-6, 1e-1),
        "weight_decay_backbone": (1e-6, 1e-2), "weight_decay_head": (1e-6, 1e-2),
    }
    assert search_space(["lr_head"], {"lr_head": (1e-4, 1e-2)}) == {"lr_head": (1e-4, 1e-2)}
    with pytest.raises(ConfigError, match="cannot tune 'lr_haed'. Did you mean: lr_head"):
        search_space(["lr_haed"])
    with pytest.raises(ConfigError, match="need 0 < low < high"):
        search_space(["lr_head"], {"lr_head": (0.0, 1e-2)})


def test_a_trial_function_that_cannot_be_imported_fails_before_ray_starts(manager, tmp_path):
    with pytest.raises(RftbenchError, match="cannot import the run function 'nowhere:trial'"):
        tune(load_config(), trial="nowhere:trial", results_dir=tmp_path)


@pytest.mark.slow
def test_asha_tunes_backbone_and_head_and_writes_the_best_config(manager, tmp_path):
    config = load_config(overrides=["epochs=4"])
    result = tune(config, trial="rftbench.sweep.synthetic:synthetic_trial", num_samples=6, num_cpus=2, results_dir=tmp_path / "tune", seed=1)
    assert len(result.trials) == 6 and result.stopped_early() >= 1  # ASHA halves at epochs 1 and 2
    complete = [t for t in result.trials if t["epochs"] == 4]
    assert result.value == min(t["val_loss"] for t in complete)
    best = next(t for t in complete if t["val_loss"] == result.value)["values"]
    assert result.best.optimizer.lr_head == pytest.approx(best["lr_head"])
    assert result.best.optimizer.weight_decay_backbone == pytest.approx(best["weight_decay_backbone"])
    for trial in result.trials:
        for name, (low, high) in SEARCH_SPACE.items():
            assert low <= trial["values"][name] <= high
    path = write_best(result, tmp_path / "best.yaml")
    assert "best of 6 trials by val_loss" in path.read_text()
    again = load_config(path)
    assert again.optimizer == result.best.optimizer and again.epochs == 4
