"""rftbench.data: dataset loading through the card's source, transforms, epoch batches."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from rftbench.cards import DatasetCard, RepresentationCard
from rftbench.data import EpochBatches, build_data, check_classes, make_transform
from rftbench.errors import ConfigError
from rftbench_plugins.offline import LabelledTensors
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture

REP = RepresentationCard(id="x.test", source="recipe", model="micro_resnet", family="convolutional", size="tiny", params_m=1,
                         input={"resolution": 24, "interpolation": "bilinear"}, pretraining={"strategy": "none", "data": "none"},
                         provenance={"license": "MIT"})


def card(**kw):
    base = dict(id="d.test", source="offline", num_classes=3, splits={"train": {}, "test": {}}, provenance={"license": "MIT"})
    return DatasetCard(**{**base, **kw})


def test_eval_transform_resizes_converts_and_clamps():
    t = make_transform(REP, card(), train=False)
    out = t(Image.new("L", (40, 30), color=200))
    assert out.shape == (3, 24, 24) and out.dtype == torch.float32 and torch.allclose(out, torch.full_like(out, 200 / 255), atol=1e-3)
    out = t(torch.rand(1, 8, 8))
    assert out.shape == (3, 24, 24) and float(out.min()) >= 0 and float(out.max()) <= 1
    crop = make_transform(REP.model_copy(update={"input": REP.input.model_copy(update={"crop_pct": 0.875})}), card(), train=False)
    assert crop(torch.rand(3, 50, 60)).shape == (3, 24, 24)


def test_train_augmentation_is_the_studys_and_respects_no_hflip():
    names = [type(s).__name__ for s in make_transform(REP, card(), train=True).transforms]
    assert {"RandomHorizontalFlip", "ColorJitter", "RandomRotation"} <= set(names)
    names = [type(s).__name__ for s in make_transform(REP, card(tags=["no-hflip"]), train=True).transforms]
    assert "RandomHorizontalFlip" not in names and "ColorJitter" in names
    jitter = next(s for s in make_transform(REP, card(), train=True).transforms if type(s).__name__ == "ColorJitter")
    assert jitter.brightness == (0.75, 1.25) and jitter.contrast == (0.75, 1.25) and jitter.saturation == (0.75, 1.25)


def test_epoch_batches_depend_only_on_seed_and_epoch():
    b = EpochBatches(10, 3, seed=0)
    first = list(b)
    assert len(first) == 3 and all(len(x) == 3 for x in first) and len(set(sum(first, []))) == 9
    torch.manual_seed(123)  # the global RNG does not matter
    assert list(EpochBatches(10, 3, seed=0)) == first
    b.set_epoch(1)
    second = list(b)
    assert second != first
    b.set_epoch(1, skip=2)
    assert list(b) == second[2:] and len(b) == 1


def test_check_classes():
    ds = LabelledTensors(torch.zeros(4, 3, 2, 2), torch.tensor([0, 1, 2, 3]), ["a", "b", "c", "d"])
    with pytest.raises(ConfigError, match=r"the train split has 4 classes but the card's num_classes .* is 3"):
        check_classes(card(), {"train": ds})
    ds.classes = None
    with pytest.raises(ConfigError, match=r"has label 3 .* labels must lie in 0…2"):
        check_classes(card(), {"train": ds})


def test_build_data(engine_manager):
    rep = engine_manager.get("representation", "micro_resnet.test")
    data = build_data(rep, engine_manager.get("dataset", "digits_small"), batch_size=16, manager=engine_manager)
    x, y = next(iter(data.train_loader))
    assert x.shape == (16, 3, 16, 16) and y.dtype == torch.long
    assert len(data.eval_loader("test", n=10).dataset) == 10
    with pytest.raises(ConfigError, match="batch_size = 97 is larger than the train split"):
        build_data(rep, engine_manager.get("dataset", "digits_small"), batch_size=97, manager=engine_manager)
