"""Regenerate the golden fixtures in tests/golden/ from the reference implementations.

Two parts, each run in the environment that has its reference (``scripts/make_golden_fixtures.sh``
runs both):

- ``corruptions`` — in a separate virtual environment with PyPI ``imagecorruptions`` 1.1.2
  (numpy 1.26, scipy 1.11, scikit-image 0.20, opencv-python-headless, setuptools < 81): a few
  synthetic RGB images at 32 and 64 px, every corruption type at every severity, each call made
  after ``np.random.seed(s)`` (and skimage's ``random_noise`` given ``seed=s``) with ``s`` stored
  beside the output, so that ``rftbench.evaluation.corruptions.NumpyDraws(s)`` replays the same
  random draws. Written to ``tests/golden/corruptions.npz``.
- ``attacks`` — in the project's environment, with pyautoattack: a tiny model whose loss
  oscillates (its weights stored), the best points of APGD-CE (L∞ and L2, from x, N = 5, 7, 10,
  20, 100), every iterate at N = 10, and AutoAttack standard's per-point outcome (L∞ and L2).
  Written to ``tests/golden/attacks.npz``.

Every file is an ``.npz`` of plain arrays (loadable with ``allow_pickle=False``) and records the
SHA-256 of this script: the tests refuse a fixture made by another version of it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
SCRIPT_SHA256 = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

#: Corruption types compared (rftbench's: the study's 11 and Gaussian noise), severities and image sizes.
TYPES = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "motion_blur", "zoom_blur", "snow",
    "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
SEVERITIES = (1, 2, 3, 4, 5)
IMAGES_PER_SIZE = {32: 2, 64: 1}

APGD_STEPS = (5, 7, 10, 20, 100)
APGD_THREATS = (("linf", 8 / 255), ("l2", 1.0))
ITERATES_AT = 10
AUTOATTACK_THREATS = (("linf", 2 / 255), ("l2", 0.1))  # budgets where some points survive APGD-CE


def synthetic_images(size: int, count: int, seed: int) -> np.ndarray:
    """``[count, size, size, 3]`` uint8: a colour gradient, discs and bars with sharp edges, texture and noise."""
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    images = []
    for _ in range(count):
        base = np.stack([c0 + (c1 - c0) * (a * xx + (1 - a) * yy) for c0, c1, a in rs.uniform(0, 1, (3, 3))], -1)
        for _ in range(4):
            cy, cx, r = rs.uniform(0.1, 0.9), rs.uniform(0.1, 0.9), rs.uniform(0.08, 0.3)
            base[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = rs.uniform(0, 1, 3)
        top, left = rs.randint(0, size // 2, 2)
        base[top:top + size // 4, left:left + size // 3] = rs.uniform(0, 1, 3)
        freq = rs.uniform(4, 12)
        base += 0.08 * np.sin(2 * np.pi * freq * (xx + 0.5 * yy))[..., None]
        base += rs.normal(0, 0.03, base.shape)
        images.append(np.clip(np.round(base * 255), 0, 255).astype(np.uint8))
    return np.stack(images)


def make_corruptions(out: Path) -> None:
    import imagecorruptions
    import skimage
    import skimage.util

    arrays: dict[str, np.ndarray] = {}
    random_noise = skimage.util.random_noise
    seed = 1000
    for size, count in IMAGES_PER_SIZE.items():
        images = synthetic_images(size, count, seed=size)
        arrays[f"images_{size}"] = images
        for name in TYPES:
            for severity in SEVERITIES:
                outputs, seeds = [], []
                for image in images:
                    seed += 1
                    np.random.seed(seed)
                    skimage.util.random_noise = lambda *a, _s=seed, **k: random_noise(*a, seed=_s, **k)
                    try:
                        outputs.append(imagecorruptions.corrupt(image, severity=severity, corruption_name=name))
                    finally:
                        skimage.util.random_noise = random_noise
                    seeds.append(seed)
                arrays[f"{name}_{severity}_{size}"] = np.stack(outputs).astype(np.uint8)
                arrays[f"{name}_{severity}_{size}_seeds"] = np.array(seeds, dtype=np.int64)
    versions = {"imagecorruptions": "1.1.2", "numpy": np.__version__, "scikit-image": skimage.__version__}
    import scipy

    versions["scipy"] = scipy.__version__
    _save(out, arrays, versions)


def _tiny_model(seed: int = 0):
    """The model of the attack fixtures: 192 → 16 → sin → 10, first layer ×8 so that the loss oscillates."""
    import torch
    from torch import nn

    class Sin(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.sin(z)

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 16), Sin(), nn.Linear(16, 10)).eval()
    with torch.no_grad():
        model[1].weight.mul_(8.0)
    return model


class _Recorder:
    """Wraps a model and keeps every batch it is asked to classify."""

    def __init__(self, model):
        self.model, self.inputs = model, []

    def __call__(self, x):
        self.inputs.append(x.detach().clone())
        return self.model(x)


def make_attacks(out: Path) -> None:
    import pyautoattack
    import torch
    from pyautoattack.autopgd_base import APGDAttack

    torch.set_num_threads(1)
    model = _tiny_model()
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    arrays: dict[str, np.ndarray] = {"x": x.numpy(), "y": y.numpy()}
    for key, value in model.state_dict().items():
        arrays[f"weights.{key}"] = value.numpy()
    library_norm = {"linf": "Linf", "l2": "L2"}
    for norm, eps in APGD_THREATS:
        for steps in APGD_STEPS:
            recorder = _Recorder(model)
            apgd = APGDAttack(recorder, n_iter=steps, norm=library_norm[norm], eps=eps, device="cpu", seed=0)
            apgd.init_hyperparam(x)
            best, robust, loss, _ = apgd.attack_single_run(x, y, x_init=x.clone())
            arrays[f"apgd_{norm}_{steps}_best"] = best.numpy()
            arrays[f"apgd_{norm}_{steps}_robust"] = robust.numpy()
            if steps == ITERATES_AT:
                arrays[f"apgd_{norm}_{steps}_iterates"] = torch.stack(recorder.inputs).numpy()
    for norm, eps in AUTOATTACK_THREATS:
        attack = pyautoattack.AutoAttack(model, norm=library_norm[norm], eps=eps, version="standard", device="cpu", seed=0)
        x_adv, _ = attack.run_standard_evaluation(x, y, batch_size=len(x))
        with torch.no_grad():
            arrays[f"autoattack_{norm}_robust"] = (model(x_adv).argmax(1) == y).numpy()
    import importlib.metadata

    _save(out, arrays, {"pyautoattack": importlib.metadata.version("pyautoattack"), "torch": torch.__version__})


def _save(out: Path, arrays: dict[str, np.ndarray], versions: dict[str, str]) -> None:
    arrays = dict(arrays)
    arrays["script_sha256"] = np.array(SCRIPT_SHA256)
    arrays["versions"] = np.array([f"{k}=={v}" for k, v in sorted(versions.items())])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {len(arrays)} arrays; {', '.join(arrays['versions'])})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("corruptions", "attacks"), help="which fixture to regenerate")
    parser.add_argument("--out", type=Path, help="output file (default: tests/golden/PART.npz)")
    args = parser.parse_args(argv)
    out = args.out or GOLDEN / f"{args.part}.npz"
    {"corruptions": make_corruptions, "attacks": make_attacks}[args.part](out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
