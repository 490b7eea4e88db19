"""rftbench.engine.trainer: protocol phases, schedules in the loop, accumulation and curves."""

from __future__ import annotations

import pytest
import torch

from rftbench import load_model, run
from rftbench.engine import freeze_for_epoch
from rftbench.errors import ConfigError
from rftbench.model import build_classifier
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture
from tests.test_run import tiny

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def initial_backbone(manager, seed=0):
    torch.manual_seed(seed)
    return build_classifier("micro_resnet.test", 10, manager=manager).backbone.state_dict()


def test_freeze_for_epoch_sets_modes():
    from tests.test_protocols import TinyBackbone
    from rftbench.model import Classifier

    model = Classifier(TinyBackbone(), 3)
    freeze_for_epoch(model, {"head.weight", "head.bias"})
    assert model.training and model.head.training and not model.backbone.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    freeze_for_epoch(model, {n for n, _ in model.named_parameters() if n.startswith(("head.", "backbone.blocks.2."))})
    assert model.backbone.blocks[2].training and not model.backbone.blocks[0].training and not model.backbone.stem.training


def test_lp_keeps_the_backbone_and_its_statistics(engine_manager, tmp_path):
    record = run(overrides=tiny(tmp_path, protocol="lp", epochs=1), manager=engine_manager)
    trained = load_model(record.run_dir, manager=engine_manager).backbone.state_dict()
    for key, value in initial_backbone(engine_manager).items():
        assert torch.equal(trained[key], value), key  # weights and BN running statistics untouched


def test_lp_ft_trains_the_backbone_after_the_probe(engine_manager, tmp_path):
    record = run(overrides=tiny(tmp_path, protocol="{name: lp-ft, lp_epochs: 1}"), manager=engine_manager)
    trained = load_model(record.run_dir, manager=engine_manager).backbone.state_dict()
    assert not torch.equal(trained["stem.0.weight"], initial_backbone(engine_manager)["stem.0.weight"])


def test_schedules_reach_the_curves_and_accumulation(engine_manager, tmp_path):
    record = run(
        overrides=tiny(tmp_path, epochs=4, eps_schedule="{name: epsilon-scheduling, t1: 1, t2: 3}", lr_schedule="constant",
                       effective_batch_size=32, loss="classic_at"),
        manager=engine_manager,
    )
    eps = record.curves["eps"]
    assert eps[0] == 0 and eps[1] == 0 and eps[2] == pytest.approx(0.5 * 4 / 255) and eps[3] == pytest.approx(4 / 255)
    assert record.curves["lr_factor"] == [1.0] * 4
    assert record.config["effective_batch_size"] == 32


@pytest.mark.parametrize("effective, steps_per_epoch", [(None, 6), (32, 3), (48, 2)])
def test_accumulation_takes_one_optimiser_step_per_window(engine_manager, tmp_path, effective, steps_per_epoch):
    """96 training images in batches of 16: 6 micro-batches an epoch, an optimiser step every effective/16 of them."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    steps = []
    handle = register_optimizer_step_post_hook(lambda optimizer, args, kwargs: steps.append(1))
    try:
        extra = {"effective_batch_size": effective} if effective else {}
        run(overrides=tiny(tmp_path, epochs=2, loss="ce", **extra), manager=engine_manager)
    finally:
        handle.remove()
    assert len(steps) == 2 * steps_per_epoch


def test_effective_batch_larger_than_the_split(engine_manager, tmp_path):
    with pytest.raises(ConfigError, match="effective_batch_size = 192 needs 12 batches of 16 .* only 96 images"):
        run(overrides=tiny(tmp_path, effective_batch_size=192), manager=engine_manager)
