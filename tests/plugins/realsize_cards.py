"""Fixture plugin for the real-size tests: timm ResNet-50, ViT-S/16 and ConvNeXt-T cards and a generated 224-px image folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rftbench import hookimpl
from rftbench.cards import DatasetCard, RepresentationCard

FOLDER = "realsize224"
CLASSES = ("circle", "square", "stripes")
PER_CLASS = 2
_INPUT = {"resolution": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "interpolation": "bicubic",
          "crop_pct": 0.95}
MODELS = {"resnet50": ("convolutional", 23.5), "vit_small_patch16_224": ("attention", 21.7), "convnext_tiny": ("convolutional", 27.8)}


@hookimpl
def rftbench_add_representations():
    return [
        RepresentationCard(id=f"{name}.random", source="timm", model=name, family=family, size="medium", params_m=params,
                           input=_INPUT, pretraining={"strategy": "none", "data": "none"}, provenance={"license": "apache-2.0"})
        for name, (family, params) in MODELS.items()
    ]


@hookimpl
def rftbench_add_datasets():
    splits = {"train": {"rule": "stratified"}, "test": {"rule": "stratified", "fraction": 0.5}}
    return [DatasetCard(id="realsize224", source="imagefolder", args={"folder": FOLDER}, num_classes=len(CLASSES),
                        resolution=256, splits=splits, provenance={"license": "CC0-1.0"})]


def write_images(root: Path, seed: int = 0) -> Path:
    """``root/realsize224/<class>/<i>.png``: 256-px RGB images of three drawn shapes with noise (no download)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        folder = root / FOLDER / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(PER_CLASS):
            noise = rng.integers(0, 80, (256, 256, 3), dtype=np.uint8)
            img = Image.fromarray(noise)
            draw = ImageDraw.Draw(img)
            x, y = rng.integers(40, 120, 2)
            if c == 0:
                draw.ellipse([x, y, x + 100, y + 100], fill=(230, 60, 60))
            elif c == 1:
                draw.rectangle([x, y, x + 100, y + 100], fill=(60, 230, 60))
            else:
                for k in range(0, 256, 32):
                    draw.rectangle([k, 0, k + 12, 255], fill=(60, 60, 230))
            img.save(folder / f"{i}.png")
    return root
