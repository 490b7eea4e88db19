"""Write the scenes zoo's representation cards (registry/representations/mini_*.yaml) from the shipped weights.

Run after `rftbench zoo build <card>` when a backbone's recipe changed and its new weights were
copied into plugins/weights/: the cards pin each shipped file by its sha256. A card whose file is
not shipped yet names only its recipe (built on first use).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "plugins" / "weights"
OUT = ROOT / "registry" / "representations"

#: architecture → (family, size class, params in millions, features, description)
ARCHS = {
    "mini_resnet": ("convolutional", "tiny", 0.077, 64, "mini ResNet, widths 16-32-64, one basic block per stage"),
    "mini_resnet_wide": ("convolutional", "small", 0.307, 128, "mini ResNet, widths 32-64-128, one basic block per stage"),
    "mini_convnext": ("convolutional", "tiny", 0.232, 128, "mini ConvNeXt (timm ConvNeXt), 2×2 patch stem, stages at 16-8-4-2 px, widths 16-32-64-128, one block per stage"),
    "mini_convnext_wide": ("convolutional", "small", 0.898, 256, "mini ConvNeXt (timm ConvNeXt), 2×2 patch stem, stages at 16-8-4-2 px, widths 32-64-128-256, one block per stage"),
    "mini_vit": ("attention", "tiny", 0.119, 48, "mini ViT (timm VisionTransformer), 4×4 patches (64 tokens), width 48, 4 blocks, 3 heads, no class token (average-pooled)"),
    "mini_vit_wide": ("attention", "small", 0.458, 96, "mini ViT (timm VisionTransformer), 4×4 patches (64 tokens), width 96, 4 blocks, 3 heads, no class token (average-pooled)"),
}
INPUT = {"resolution": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bilinear"}
ORIGIN = ("built by rftbench's pretraining recipe (plugins/_recipes.py) and shipped in plugins/weights/; "
          "`rftbench zoo build` rebuilds it and compares")


def card(arch: str, kind: str) -> dict:
    family, size, params, features, what = ARCHS[arch]
    base = {"id": f"{arch}.{kind}", "source": "recipe", "model": arch, "family": family, "size": size,
            "params_m": params, "num_features": features, "input": INPUT}
    if kind == "scratch":
        return {**base, "pretraining": {"strategy": "none", "data": "none"},
                "provenance": {"license": "Apache-2.0", "notes": f"{what}; random initialisation: the no-pretraining baseline"},
                "tags": ["offline", "scenes-zoo"]}
    robust = kind == "scenes_robust"
    weights = {"recipe": f"{arch}.{kind}"}
    shipped = WEIGHTS / f"{arch}.{kind}.safetensors"
    if shipped.is_file():
        weights |= {"filename": shipped.name, "sha256": hashlib.sha256(shipped.read_bytes()).hexdigest()}
    pretraining = {"strategy": "adversarially-robust" if robust else "supervised", "data": "scenes-offline", "volume": 12000}
    if robust:
        pretraining["threat"] = "linf 4/255"
    notes = (f"{what}; robust: Classic AT (PGD-2, L∞ 4/255, ε warm-up) on the scenes dataset, started from {arch}.scenes_standard"
             if robust else f"{what}; non-robust: standard cross-entropy training on the scenes dataset from random init")
    return {**base, "weights": weights, "pretraining": pretraining,
            "provenance": {"license": "Apache-2.0", "origin": ORIGIN, "notes": notes},
            "tags": ["offline", "scenes-zoo", "robust" if robust else "non-robust"]}


def main() -> None:
    for arch in ARCHS:
        for kind in ("scratch", "scenes_standard", "scenes_robust"):
            if arch == "mini_resnet" and kind == "scratch":
                continue  # mini_resnet.scratch is the offline plugin's own card
            text = yaml.safe_dump(card(arch, kind), sort_keys=False, allow_unicode=True, width=120)
            (OUT / f"{arch}.{kind}.yaml").write_text(text)


if __name__ == "__main__":
    main()
