"""Regenerate tests/golden/corruptions_large.npz: imagecorruptions 1.1.2 at 224 px and at a non-square size.

Run it in the reference environment of ``scripts/make_golden_fixtures.sh`` (``make_golden_fixtures.sh
corruptions_large``). The small sizes (32 and 64 px, every type at every severity) are
``corruptions.npz``; this file adds the size the ImageNet-C constants were made for and a
non-square one, within the fixtures' size budget (a few hundred KiB each, uint8):

- 224×224 (one image): every type at severity 3, and ``shot_noise`` at every severity (its
  Poisson sampler is where float32 rates once drew differently, up to 255 levels off);
- 96×160 (height × width, one image): every type at severities 1 and 5.

Each call is made after ``np.random.seed(s)`` (and skimage's ``random_noise`` given ``seed=s``)
with ``s`` stored beside the output, so that ``rftbench.evaluation.corruptions.NumpyDraws(s)``
replays the reference's random draws. A plain-array ``.npz`` (``allow_pickle=False``) recording
the SHA-256 of this script: the tests refuse a fixture made by another version of it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "golden" / "corruptions_large.npz"
SCRIPT_SHA256 = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

TYPES = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "motion_blur", "zoom_blur", "snow",
    "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
#: (height, width) → {corruption: severities}
CASES = {
    (224, 224): {**{name: (3,) for name in TYPES}, "shot_noise": (1, 2, 3, 4, 5)},
    (96, 160): {name: (1, 5) for name in TYPES},
}


def synthetic_image(height: int, width: int, seed: int) -> np.ndarray:
    """``[height, width, 3]`` uint8: a colour gradient, discs and a bar with sharp edges and a texture (no noise: it keeps the file small)."""
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    yy, xx = yy / (height - 1), xx / (width - 1)
    base = np.stack([c0 + (c1 - c0) * (a * xx + (1 - a) * yy) for c0, c1, a in rs.uniform(0, 1, (3, 3))], -1)
    for _ in range(5):
        cy, cx, r = rs.uniform(0.1, 0.9), rs.uniform(0.1, 0.9), rs.uniform(0.08, 0.3)
        base[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = rs.uniform(0, 1, 3)
    top, left = rs.randint(0, height // 2), rs.randint(0, width // 2)
    base[top:top + height // 4, left:left + width // 3] = rs.uniform(0, 1, 3)
    base += 0.08 * np.sin(2 * np.pi * rs.uniform(4, 12) * (xx + 0.5 * yy))[..., None]
    return np.clip(np.round(base * 255), 0, 255).astype(np.uint8)


def make(out: Path) -> None:
    import imagecorruptions
    import scipy
    import skimage
    import skimage.util

    arrays: dict[str, np.ndarray] = {}
    random_noise = skimage.util.random_noise
    seed = 5000
    for (height, width), plan in CASES.items():
        size = f"{height}x{width}"
        image = synthetic_image(height, width, seed=height * 1000 + width)
        arrays[f"image_{size}"] = image
        for name, severities in plan.items():
            for severity in severities:
                seed += 1
                np.random.seed(seed)
                skimage.util.random_noise = lambda *a, _s=seed, **k: random_noise(*a, seed=_s, **k)
                try:
                    output = imagecorruptions.corrupt(image, severity=severity, corruption_name=name)
                finally:
                    skimage.util.random_noise = random_noise
                arrays[f"{name}_{severity}_{size}"] = np.asarray(output).astype(np.uint8)
                arrays[f"{name}_{severity}_{size}_seed"] = np.array(seed, dtype=np.int64)
    versions = {"imagecorruptions": "1.1.2", "numpy": np.__version__, "scikit-image": skimage.__version__,
                "scipy": scipy.__version__}
    arrays["script_sha256"] = np.array(SCRIPT_SHA256)
    arrays["versions"] = np.array([f"{k}=={v}" for k, v in sorted(versions.items())])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {len(arrays)} arrays; {', '.join(arrays['versions'])})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"output file (default: {OUT.relative_to(ROOT)})")
    make(parser.parse_args(argv).out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
