"""Row 12 of issue 23: images the model cannot take (1×5×5 for a 3×16×16 model, RGBA) are refused on every evaluation path."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from rftbench import DatasetCard, hookimpl
from rftbench.evaluation import EvaluationError, evaluate
from rftbench.model import build_classifier
from rftbench.specs import DatasetSourceSpec
from rftbench.testing import MICRO_REPRESENTATION, TINY_DATASET, plugin_manager
from tests.cli_helpers import run_cli
from tests.plugins.evaluation import one_thread  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("one_thread")


class _Labelled(TensorDataset):
    def __init__(self, x, y):
        super().__init__(x, y)
        self.targets, self.classes = y.tolist(), [str(i) for i in range(10)]


def _rgba(card, *, root, download, **params):
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(20) % 10
    return {split: _Labelled(torch.rand(20, 4, 5, 5, generator=gen), y) for split in ("train", "test")}


class RgbaPlugin:
    @hookimpl
    def rftbench_add_dataset_sources(self):
        return [DatasetSourceSpec(name="rgba_tensors", description="4-channel tensors, as an RGBA loader might give", factory=_rgba)]

    @hookimpl
    def rftbench_add_datasets(self):
        return [DatasetCard(id="rgba_tiny", source="rgba_tensors", num_classes=10, resolution=8,
                            splits={"train": {"rule": "official"}, "test": {"rule": "official"}},
                            provenance={"license": "CC0-1.0"})]


@pytest.fixture(scope="module")
def manager():
    return plugin_manager(RgbaPlugin())


@pytest.mark.parametrize("suite", [[], ["linf"], [{"name": "linf", "attack": "autoattack"}], ["aggregates"]],
                         ids=["clean", "linf", "autoattack", "metric"])
def test_images_a_card_built_model_cannot_take_are_refused_whatever_the_suite(manager, suite):
    model = build_classifier(MICRO_REPRESENTATION, 10, pretrained=False, manager=manager)
    data = TensorDataset(torch.rand(4, 1, 5, 5), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(EvaluationError, match=r"the test images are 1×5×5 \(C×H×W\) but representation "
                                              r"'micro_resnet.testing' takes 3×16×16 images; resize"):
        evaluate(model, data, suite, manager=manager, progress=False)
    ok = TensorDataset(torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3]))
    assert evaluate(model, ok, [], manager=manager, progress=False)["n_examples"] == 4


def test_a_plain_module_that_cannot_take_the_images_is_a_named_error(manager):
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10))
    data = TensorDataset(torch.rand(4, 1, 5, 5), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(EvaluationError, match=r"the model cannot take the test images \(1×5×5, C×H×W\): RuntimeError"):
        evaluate(linear, data, [], manager=manager, progress=False)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 10))
    with pytest.raises(EvaluationError, match=r"1×5×5 \(C×H×W\) but the model \(its first convolution\) takes 3×H×W"):
        evaluate(conv, data, [], manager=manager, progress=False)


def test_the_cli_names_the_images_and_the_shape_needed(manager, tmp_path, monkeypatch, capsys):
    from safetensors.torch import save_file

    from rftbench.plugins import set_manager

    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "cache"))
    model = build_classifier(MICRO_REPRESENTATION, TINY_DATASET.num_classes, pretrained=False, manager=manager)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
    set_manager(manager)
    try:
        code, _, err = run_cli(capsys, "eval", str(tmp_path / "model.safetensors"), "-r", MICRO_REPRESENTATION.id,
                               "-d", "rgba_tiny", "-t", "linf", "-n", "4", "--data-root", str(tmp_path / "data"))
    finally:
        set_manager(None)
    # the CLI converts 1 ↔ 3 channels and resizes to the representation's input; what it cannot convert is named, exit 2
    assert code == 2, err
    assert "error: the test images have shape (4, 16, 16); expected C×H×W with 1 or 3 channels" in err
    assert "Traceback" not in err
