"""Common corruptions: every type, determinism, severities, round robin and average, bad input."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch.utils.data import TensorDataset

from rftbench.errors import UnknownNameError
from rftbench.evaluation import evaluate
from rftbench.evaluation.corruptions import ALL_TYPES, STUDY_TYPES, NumpyDraws, corrupt
from rftbench_plugins import corruptions as plugin
from tests.plugins import evaluation as fx
from tests.plugins.evaluation import one_thread  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("one_thread")


def smooth_images(n: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False).clamp(0.05, 0.95)


@pytest.mark.parametrize("name", ALL_TYPES)
def test_each_type_changes_images_within_range_deterministically(name):
    x = smooth_images()
    out = corrupt(x, name, 3, seed=1, index=[10, 11, 12, 13])
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert (out - x).abs().mean() > 1e-3
    again = corrupt(x, name, 3, seed=1, index=[10, 11, 12, 13])
    assert torch.equal(out, again)
    # an image's corruption does not depend on the batch it is in
    alone = corrupt(x[2:3], name, 3, seed=1, index=[12])
    assert torch.allclose(alone, out[2:3], atol=1e-6)


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "motion_blur", "snow", "elastic_transform"])
def test_random_types_depend_on_seed_and_index(name):
    x = smooth_images(1).expand(2, -1, -1, -1)
    a = corrupt(x, name, 3, seed=0, index=[0, 1])
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a, corrupt(x, name, 3, seed=5, index=[0, 1]))


@pytest.mark.parametrize("name", ALL_TYPES)
def test_severity_5_changes_more_than_severity_1(name):
    x = smooth_images(seed=3)
    d1 = (corrupt(x, name, 1) - x).abs().mean()
    d5 = (corrupt(x, name, 5) - x).abs().mean()
    assert d5 > d1


def test_contrast_and_brightness_by_hand():
    x = torch.tensor([0.2, 0.4, 0.9, 0.5]).view(1, 1, 2, 2).expand(1, 3, 2, 2).clone()
    x[0, 1] *= 0.5
    out = corrupt(x, "contrast", 3, quantize=False)  # c = 0.2: (x - mean) * 0.2 + mean per channel
    mean = x.mean(dim=(-2, -1), keepdim=True)
    assert torch.allclose(out, (x - mean) * 0.2 + mean)
    # 8-bit by default, truncating as the reference's np.uint8(255·value)
    assert torch.equal(corrupt(x, "contrast", 3), torch.floor(((x - mean) * 0.2 + mean) * 255) / 255)
    out = corrupt(x, "brightness", 2, quantize=False)  # +0.2 on the HSV value
    for i in range(2):
        for j in range(2):
            h, s, v = colorsys.rgb_to_hsv(*x[0, :, i, j].tolist())
            expected = colorsys.hsv_to_rgb(h, s, min(v + 0.2, 1.0))
            assert torch.allclose(out[0, :, i, j], torch.tensor(expected), atol=1e-6)


def test_unknown_corruption_names_close_matches():
    with pytest.raises(UnknownNameError, match="Did you mean: snow"):
        corrupt(smooth_images(1), "snwo", 3)
    with pytest.raises(ValidationError, match="unknown corruption 'jpeg'.*did you mean jpeg_compression"):
        plugin.CorruptionParams(types=["jpeg"])
    with pytest.raises(ValidationError, match="less than or equal to 5"):
        plugin.CorruptionParams(severity=6)
    for bad in (0, 6):
        with pytest.raises(ValueError, match=f"severity={bad}: must be an integer from 1 to 5"):
            corrupt(smooth_images(1), "contrast", bad)
    with pytest.raises(ValueError, match="draws: one source per image"):
        corrupt(smooth_images(2), "snow", 3, draws=[NumpyDraws(0)])


@pytest.mark.parametrize("name", ALL_TYPES)
def test_outputs_are_8bit_by_default_and_floats_on_request(name):
    x = torch.floor(smooth_images(2) * 255) / 255  # images on the 8-bit grid, as decoded files
    out = corrupt(x, name, 2, seed=3)
    assert torch.equal(out, torch.round(out * 255) / 255)
    floats = corrupt(x, name, 2, seed=3, quantize=False)
    if name not in ("jpeg_compression", "impulse_noise"):  # these keep 8-bit inputs on the 8-bit grid
        assert not torch.equal(floats, torch.round(floats * 255) / 255)
    assert (floats - out).abs().max() <= 1 / 255 + 1e-6


def test_pixelate_is_pillows_box_then_nearest():
    """Against Pillow itself (the reference's resampling), at sizes whose factors do not divide them."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (1, 3, 37, 45), generator=g).float() / 255
    for severity, c in enumerate([0.6, 0.5, 0.4, 0.3, 0.25], start=1):
        image = Image.fromarray((x[0] * 255).round().byte().permute(1, 2, 0).numpy())
        small = image.resize((int(45 * c), int(37 * c)), Image.BOX)
        expected = torch.from_numpy(np.asarray(small.resize((45, 37), Image.NEAREST)).copy()).permute(2, 0, 1).float()
        assert torch.equal(corrupt(x, "pixelate", severity)[0] * 255, expected), severity


@pytest.fixture
def manager(fresh_manager):
    fresh_manager.register(plugin, "corruptions")
    return fresh_manager


class ConstantModel(torch.nn.Module):
    """Predicts class 1 when the image mean exceeds a threshold, else 0 (brightness moves it)."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([0.5 - m, m - 0.5], 1)


def test_round_robin_assigns_one_type_per_image_in_study_order(manager):
    x = smooth_images(23)
    data = TensorDataset(x, torch.zeros(23, dtype=torch.long))
    result = evaluate(ConstantModel(), data, ["corruptions"], batch_size=5, progress=False)
    record = result["threats"]["corruptions:3"]
    assert record["mode"] == "round_robin" and record["severity"] == 3
    assert list(record["per_type"]) == list(STUDY_TYPES)
    assert [record["per_type_n"][t] for t in STUDY_TYPES] == [3] + [2] * 10
    assert record["quantize"] is True  # 8-bit images, as the reference
    threat = plugin.Corruptions(3, "round_robin", STUDY_TYPES, 0)
    x8 = torch.floor(smooth_images(4) * 255) / 255
    out = threat.perturb(ConstantModel(), x8, torch.zeros(4, dtype=torch.long))
    assert torch.equal(out, torch.round(out * 255) / 255)
    floats = plugin.Corruptions(3, "round_robin", STUDY_TYPES, 0, quantize=False).perturb(ConstantModel(), x8, torch.zeros(4, dtype=torch.long))
    assert not torch.equal(floats, out) and (floats - out).abs().max() <= 1 / 255 + 1e-6
    assert threat.assignment(torch.tensor([0, 10, 11, 12])) == ["shot_noise", "jpeg_compression", "shot_noise", "impulse_noise"]


def test_average_mode_is_the_mean_over_types_and_runs_are_reproducible(manager):
    x = smooth_images(6, size=16)
    y = ConstantModel()(x).argmax(1)
    data = TensorDataset(x, y)
    suite = [{"name": "corruptions", "mode": "average", "types": ["brightness", "gaussian_noise", "contrast"], "severity": 5}]
    a = evaluate(ConstantModel(), data, suite, batch_size=4, progress=False)
    b = evaluate(ConstantModel(), data, suite, batch_size=3, progress=False)
    label = "corruptions:5:average[brightness,gaussian_noise,contrast]"
    record = a["threats"][label]
    assert record["acc"] == pytest.approx(sum(record["per_type"].values()) / 3)
    other = b["threats"][label]  # other batch sizes, same numbers
    assert record["per_type"] == other["per_type"] and record["acc"] == pytest.approx(other["acc"], abs=1e-6)


@pytest.mark.parametrize("height, width", [pytest.param(224, 224, marks=pytest.mark.slow), (96, 160)])  # 224 px: ~10 s
def test_shot_noise_replays_the_reference_at_224_px_and_non_square(height, width):
    """imagecorruptions 1.1.2's shot_noise is ``np.clip(np.random.poisson(np.array(x) / 255. * c) / c, 0, 1) * 255``,
    then ``np.uint8``: written out here, with the same seeded draws. Rates in float32 made numpy's sampler draw
    differently (up to 255 levels off at severities 1-4 at 224 px); they must be float64 as the reference's."""
    import numpy as np

    from rftbench.evaluation.corruptions import NumpyDraws, corrupt

    rs = np.random.RandomState(7)
    images = rs.randint(0, 256, size=(16, height, width, 3)).astype(np.uint8)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    for severity, c in enumerate([60, 25, 12, 5, 3], 1):
        seeds = [100 * severity + i for i in range(len(images))]
        out = corrupt(x, "shot_noise", severity, draws=[NumpyDraws(s) for s in seeds])
        ours = torch.round(out * 255).to(torch.int64).permute(0, 2, 3, 1).numpy()
        reference = []
        for image, seed in zip(images, seeds):
            np.random.seed(seed)
            reference.append(np.uint8(np.clip(np.random.poisson(np.array(image) / 255.0 * c) / float(c), 0, 1) * 255))
        diff = np.abs(ours - np.stack(reference).astype(np.int64))
        assert diff.max() <= 1, f"severity {severity}: {int(diff.max())} levels off"
