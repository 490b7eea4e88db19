"""Built-in plugin ``offline``: everything `rftbench run` needs on a machine without internet.

- dataset source ``offline`` and its cards: ``digits`` (scikit-learn's bundled 8×8 digits,
  upscaled to 32 px, 3 channels, stratified 60/20/20 splits) and ``shapes`` (a procedurally
  generated dSprites-like source dataset: 8 shape classes with random scale, rotation,
  position and colours);
- dataset card ``scenes`` (:mod:`rftbench_plugins._scenes`): the 64-class generated pretraining
  task of the scenes zoo (materials × scale × hue on objects in clutter);
- architecture ``recipe``: small backbones (mini ResNet, mini ConvNeXt and mini ViT, two widths each)
  whose pretrained weights are shipped, or built by a *pretraining recipe* on first use and
  cached under ``rftbench.paths.cache_dir()``;
- representation cards ``mini_resnet.scratch`` (random init), ``mini_resnet.shapes_standard``
  (non-robust: standard training on shapes) and ``mini_resnet.shapes_robust`` (adversarially
  pretrained on shapes), so that the literature's questions about transfer from non-robust
  and robust backbones can be asked offline. The scenes zoo's cards (``mini_resnet``,
  ``mini_resnet_wide``, ``mini_convnext``, ``mini_convnext_wide``, ``mini_vit``, ``mini_vit_wide`` × ``scratch``,
  ``scenes_standard``, ``scenes_robust``) are YAML files in ``registry/representations/``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from pydantic import Field

from rftbench import ArchitectureSpec, DatasetSourceSpec, Params, hookimpl
from rftbench._lazy import forward_to, lazy_import
from rftbench.cards import DatasetCard, RepresentationCard
from rftbench.errors import CardError

# Imported on first use (a dataset loaded, a backbone built), not when plugins are listed.
np = lazy_import("numpy")
torch = lazy_import("torch")
F = lazy_import("torch.nn.functional")
_nets = lazy_import("rftbench_plugins._offline_nets")  # LabelledTensors, MiniResNet (torch classes)

# ---------------------------------------------------------------------------------- data

SHAPES = ("square", "ellipse", "heart", "triangle", "cross", "star", "ring", "diamond")


def _stratified(labels: np.ndarray, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Indices of each split, stratified by label, shares in ``fractions`` (the last takes the rest)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {k: [] for k in fractions}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        names = list(fractions)
        for i, name in enumerate(names):
            stop = len(idx) if i == len(names) - 1 else start + int(round(fractions[name] * len(idx)))
            out[name].extend(idx[start:stop].tolist())
            start = stop
    return {k: np.sort(np.array(v, dtype=np.int64)) for k, v in out.items()}


def _split_fractions(card: DatasetCard) -> dict[str, float]:
    fractions = {name: rule.fraction for name, rule in card.splits.items() if name != "train"}
    if any(f is None for f in fractions.values()):
        raise CardError(f"dataset card {card.id!r}: the offline source needs a fraction on every split but train")
    fractions = {"train": 1.0 - sum(fractions.values()), **fractions}
    if fractions["train"] <= 0:
        raise CardError(f"dataset card {card.id!r}: the split fractions leave nothing for train")
    return fractions


@functools.lru_cache(maxsize=2)
def load_digits_images(resolution: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled digits as (N, 3, r, r) images in [0, 1] (bilinear upscale) and labels.

    Cached per resolution; callers index it (which copies) and must not modify it in place.
    """
    pixels, target = _digits_arrays()
    images = torch.tensor(pixels, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    images = F.interpolate(images, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return images.clamp(0, 1).expand(-1, 3, -1, -1).contiguous(), torch.tensor(target, dtype=torch.long)


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 64) pixel values 0–16 and labels, read from scikit-learn's bundled ``digits.csv.gz``.

    Reading the file directly skips importing ``sklearn.datasets`` (seconds on a loaded
    machine); ``load_digits`` is the fallback should the file move.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            data = np.loadtxt(path, delimiter=",")
            return data[:, :-1], data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data, bunch.target


def _shape_sdf(which: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance-like field of shape ``which`` (an index into :data:`SHAPES`) at coordinates (u, v)."""
    if which == 0:
        return np.maximum(abs(u), abs(v)) - 0.7  # square
    if which == 1:
        return np.sqrt((u / 0.95) ** 2 + (v / 0.55) ** 2) - 1.0  # ellipse
    if which == 2:
        hu, hv = abs(u) * 1.1, -v * 1.1 + 0.25  # heart: implicit curve (x² + y² − 1)³ − x²y³ ≤ 0
        return np.cbrt((hu**2 + hv**2 - 0.8) ** 3 - hu**2 * hv**3)
    if which == 3:
        return np.maximum(np.maximum(-v - 0.5, v * 0.5 + abs(u) * 0.866 - 0.5), -1) * 1.5  # triangle
    if which == 4:
        return np.minimum(np.maximum(abs(u) - 0.25, abs(v) - 0.85), np.maximum(abs(u) - 0.85, abs(v) - 0.25))  # cross
    if which == 5:
        return np.sqrt(u**2 + v**2) - (0.45 + 0.35 * np.cos(5 * np.arctan2(v, u)))  # star
    if which == 6:
        return abs(np.sqrt(u**2 + v**2) - 0.6) - 0.2  # ring
    return (abs(u) * 1.8 + abs(v) * 0.9 - 0.9) * 0.7  # diamond: an elongated rhombus (a square turned 45° is a square)


def _shape_masks(kind: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Soft masks (N, H, W) of each shape in its own frame (u, v in about [-1, 1]); ``kind``: (N,) shape indices.

    Each shape's field is computed on its own images only.
    """
    sdf = np.empty_like(u)
    for which in range(len(SHAPES)):
        sel = np.flatnonzero(kind == which)
        if len(sel):
            sdf[sel] = _shape_sdf(which, u[sel], v[sel])
    return 1.0 / (1.0 + np.exp(np.clip(sdf * 12.0, -50, 50)))


def generate_shapes(n: int, resolution: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` dSprites-like images (N, 3, r, r) in [0, 1] and their shape labels (balanced, shuffled).

    Each image: one of :data:`SHAPES`, scale 0.35–0.6 of the image, any rotation, a random
    position keeping it inside, a random foreground colour on a random darker or lighter
    background, plus Gaussian pixel noise (σ = 0.03). Fully determined by ``seed``.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPES))
    scale = rng.uniform(0.35, 0.6, n)
    angle = rng.uniform(0, 2 * np.pi, n)
    cx = rng.uniform(-1 + scale, 1 - scale)
    cy = rng.uniform(-1 + scale, 1 - scale)
    fg = rng.uniform(0.0, 1.0, (n, 3))
    bg = rng.uniform(0.0, 1.0, (n, 3))
    contrast = np.abs(fg.mean(1) - bg.mean(1)) < 0.3  # keep shapes visible: push the background away
    bg[contrast] = np.where(fg[contrast].mean(1, keepdims=True) > 0.5, bg[contrast] * 0.3, 0.7 + bg[contrast] * 0.3)
    grid = (np.arange(resolution) + 0.5) / resolution * 2 - 1
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    images = np.empty((n, 3, resolution, resolution), dtype=np.float32)
    for start in range(0, n, 512):
        sl = slice(start, min(n, start + 512))
        m = sl.stop - sl.start
        dx = xx[None] - cx[sl, None, None]
        dy = yy[None] - cy[sl, None, None]
        c, s = np.cos(angle[sl])[:, None, None], np.sin(angle[sl])[:, None, None]
        u = (c * dx + s * dy) / scale[sl, None, None]
        v = (-s * dx + c * dy) / scale[sl, None, None]
        mask = _shape_masks(labels[sl], u, v)[:, None]
        img = mask * fg[sl, :, None, None] + (1 - mask) * bg[sl, :, None, None]
        img += rng.normal(0, 0.03, (m, 3, resolution, resolution))
        images[sl] = np.clip(img, 0, 1)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def load_offline(card: DatasetCard, *, root: Path, download: bool, **params: Any) -> dict[str, LabelledTensors]:
    """Dataset source ``offline``: builds the card's splits in memory (nothing is downloaded)."""
    generator = card.args.get("generator")
    resolution = int(card.resolution or 32)
    seed = int(card.args.get("seed", 0))
    if generator == "digits":
        images, labels = load_digits_images(resolution)
        classes = [str(i) for i in range(10)]
        parts = _stratified(labels.numpy(), _split_fractions(card), seed)
        limit = card.args.get("limit")  # keep the first `limit` images of each split (tests, smoke runs)
        return {k: _nets.LabelledTensors(images[idx[:limit]], labels[idx[:limit]], classes) for k, idx in parts.items()}
    if generator == "shapes":
        sizes = {k: int(card.args.get(f"n_{k}", 0)) for k in card.splits}
        if not all(sizes.values()):
            raise CardError(f"dataset card {card.id!r}: args must give n_train, n_val, n_test for generated splits")
        out = {}
        for i, (name, size) in enumerate(sorted(sizes.items())):
            images, labels = generate_shapes(size, resolution, seed=seed * 100 + i)
            out[name] = _nets.LabelledTensors(images, labels, list(SHAPES))
        return out
    if generator == "scenes":
        return _load_scenes(card, resolution, seed)
    raise CardError(f"dataset card {card.id!r}: args.generator must be 'digits', 'shapes' or 'scenes' (got {generator!r})")


@functools.lru_cache(maxsize=4)
def _scenes_split(size: int, resolution: int, seed: int, n_classes: int, class_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from rftbench_plugins._scenes import generate_scenes

    images, labels = generate_scenes(size, resolution, seed=seed, n_classes=n_classes, class_seed=class_seed)
    return torch.from_numpy(images), torch.from_numpy(labels)


def _load_scenes(card: DatasetCard, resolution: int, seed: int) -> dict[str, LabelledTensors]:
    """The ``scenes`` pretraining task's splits (see :mod:`rftbench_plugins._scenes`), disjoint draws per split."""
    from rftbench_plugins._scenes import N_CLASSES, class_names

    try:
        sizes = {k: int(card.args[f"n_{k}"]) for k in card.splits}
        class_seed = int(card.args.get("class_seed", 0))
    except (KeyError, TypeError, ValueError) as err:
        raise CardError(f"dataset card {card.id!r}: args needs integer n_train, n_val, n_test (and optional class_seed): {err}") from None
    if any(s < 1 for s in sizes.values()):
        raise CardError(f"dataset card {card.id!r}: every split needs at least one image (args.n_<split> >= 1)")
    if not 1 <= card.num_classes <= N_CLASSES:
        raise CardError(f"dataset card {card.id!r}: num_classes must be between 1 and {N_CLASSES} for scenes")
    names = class_names(card.num_classes, class_seed)
    out = {}
    for name, size in sizes.items():
        split_seed = 1000 * seed + ("train", "val", "test").index(name) + 1
        images, labels = _scenes_split(size, resolution, split_seed, card.num_classes, class_seed)
        out[name] = _nets.LabelledTensors(images.clone(), labels.clone(), names)
    return out


# ---------------------------------------------------------------------------------- model


#: Architectures the ``recipe`` source builds, by card ``model`` name.
ARCHITECTURES: dict[str, Any] = {
    "mini_resnet": lambda card: _nets.MiniResNet(mean=card.input.mean, std=card.input.std),
    "mini_resnet_wide": lambda card: _nets.MiniResNet(widths=(32, 64, 128), mean=card.input.mean, std=card.input.std),
    "mini_convnext": lambda card: _nets.MiniConvNeXt(dims=(16, 32, 64, 128), mean=card.input.mean, std=card.input.std),
    "mini_convnext_wide": lambda card: _nets.MiniConvNeXt(dims=(32, 64, 128, 256), mean=card.input.mean, std=card.input.std),
    "mini_vit": lambda card: _nets.MiniViT(dim=48, depth=4, heads=3, mean=card.input.mean, std=card.input.std),
    "mini_vit_wide": lambda card: _nets.MiniViT(dim=96, depth=4, heads=3, mean=card.input.mean, std=card.input.std),
    # test-only (like timm's test models): a few thousand parameters, so engine tests take milliseconds
    "micro_resnet": lambda card: _nets.MiniResNet(widths=(4, 8, 8), mean=card.input.mean, std=card.input.std),
}


class RecipeParams(Params):
    pretrained: bool = Field(True, description="load (building on first use) the recipe's weights; False: random init")


def build_recipe_backbone(card: RepresentationCard, *, pretrained: bool = True) -> nn.Module:
    """Architecture ``recipe``: build the card's small backbone; with ``pretrained``, load (or first build) its weights."""
    if card.model not in ARCHITECTURES:
        raise CardError(f"representation card {card.id!r}: model {card.model!r} is not a recipe architecture ({', '.join(ARCHITECTURES)})")
    backbone = ARCHITECTURES[card.model](card)
    if pretrained and card.weights.recipe:
        from rftbench_plugins._recipes import pretrained_weights

        state, sha256 = pretrained_weights(card)
        backbone.load_state_dict(state)
        backbone.weights_sha256 = sha256
    return backbone


# ---------------------------------------------------------------------------------- cards

_OFFLINE_PROVENANCE = {
    "license": "Apache-2.0",
    "origin": "built by rftbench's pretraining recipe (plugins/_recipes.py) and shipped in plugins/weights/; "
              "`rftbench zoo build` rebuilds it and compares",
}
_INPUT = {"resolution": 32, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "interpolation": "bilinear"}

REPRESENTATIONS = [
    RepresentationCard(
        id="mini_resnet.scratch", source="recipe", model="mini_resnet", family="convolutional", size="tiny",
        params_m=0.077, num_features=64, input=_INPUT, pretraining={"strategy": "none", "data": "none"},
        provenance={"license": "Apache-2.0", "notes": "random initialisation: the no-pretraining baseline"},
        tags=["offline"],
    ),
    RepresentationCard(
        id="mini_resnet.shapes_standard", source="recipe", model="mini_resnet", family="convolutional", size="tiny",
        params_m=0.077, num_features=64, input=_INPUT, weights={
            "recipe": "shapes_standard", "filename": "mini_resnet.shapes_standard.safetensors",
            "sha256": "afcda710a4f90865a4e2cccc61762b712c3c4e4bdb165dac65984f0efaf45c7a",
        },
        pretraining={"strategy": "supervised", "data": "shapes-offline", "volume": 4000},
        provenance={**_OFFLINE_PROVENANCE, "notes": "non-robust: standard cross-entropy training on the shapes dataset"},
        tags=["offline", "non-robust"],
    ),
    RepresentationCard(
        id="mini_resnet.shapes_robust", source="recipe", model="mini_resnet", family="convolutional", size="tiny",
        params_m=0.077, num_features=64, input=_INPUT, weights={
            "recipe": "shapes_robust", "filename": "mini_resnet.shapes_robust.safetensors",
            "sha256": "5489eb39219dd09b2b88b5e3da4b4c2dc5754262392434fb40e18fd3efbf09a5",
        },
        pretraining={"strategy": "adversarially-robust", "data": "shapes-offline", "volume": 4000, "threat": "linf 8/255"},
        provenance={**_OFFLINE_PROVENANCE, "notes": "robust: Classic AT (PGD-3, L∞ 8/255, ε warm-up) on the shapes dataset"},
        tags=["offline", "robust"],
    ),
]

DATASETS = [
    DatasetCard(
        id="digits", source="offline", args={"generator": "digits", "seed": 0}, num_classes=10, resolution=32,
        domain="handwritten digits",
        splits={"train": {"rule": "stratified"}, "val": {"rule": "stratified", "fraction": 0.2},
                "test": {"rule": "stratified", "fraction": 0.2}},
        provenance={"license": "CC-BY-4.0", "origin": "scikit-learn's bundled copy of the UCI optical digits (1,797 images)",
                    "notes": "8×8 grey images upscaled bilinearly to 32 px and repeated on 3 channels"},
        tags=["offline", "no-hflip"],
    ),
    DatasetCard(
        id="shapes", source="offline", args={"generator": "shapes", "seed": 0, "n_train": 4000, "n_val": 500, "n_test": 1000},
        num_classes=len(SHAPES), resolution=32, domain="synthetic",
        splits={"train": {"rule": "generated"}, "val": {"rule": "generated"}, "test": {"rule": "generated"}},
        provenance={"license": "Apache-2.0", "origin": "procedurally generated by rftbench (dSprites-like)",
                    "notes": f"classes: {', '.join(SHAPES)}; random scale, rotation, position, colours, pixel noise"},
        tags=["offline", "source-dataset"],
    ),
    DatasetCard(
        id="scenes", source="offline",
        args={"generator": "scenes", "seed": 0, "class_seed": 0, "n_train": 12000, "n_val": 1000, "n_test": 2000},
        num_classes=64, resolution=32, domain="synthetic-natural",
        splits={"train": {"rule": "generated"}, "val": {"rule": "generated"}, "test": {"rule": "generated"}},
        provenance={"license": "Apache-2.0", "origin": "procedurally generated by rftbench (plugins/_scenes.py)",
                    "notes": ("64 classes = material (ramps, zigzag, honeycomb, bricks, speckle, marble, spiral, "
                              "crosshatch) × scale (coarse, fine) × base hue (4) on an object of any silhouette, size, "
                              "position and rotation, with lighting, 1–3 distractor objects, a 1/f² background and "
                              "pixel noise: the pretraining task of the offline zoo's scenes backbones")},
        tags=["offline", "source-dataset"],
    ),
]


@hookimpl
def rftbench_add_architectures() -> list[ArchitectureSpec]:
    return [ArchitectureSpec(name="recipe", factory=build_recipe_backbone, params=RecipeParams, rebuild=rebuild_recipe_weights,
                             description="small backbones (mini ResNet, mini ConvNeXt, mini ViT) pretrained by rftbench's offline recipes")]


def rebuild_recipe_weights(card: Any, output: Any = None) -> dict[str, Any]:
    """The spec's ``rebuild``: run the card's recipe again, compare with the shipped file, copy the result to ``output``."""
    import shutil
    from pathlib import Path

    from ._recipes import rebuild, shipped_weights_file

    info = rebuild(card)
    if output:
        Path(output).mkdir(parents=True, exist_ok=True)
        shipped = shipped_weights_file(card)  # a plain file name, checked
        target = Path(output) / (shipped.name if shipped is not None else f"{card.id}.safetensors")
        shutil.copyfile(info["file"], target)
        info["copied_to"] = str(target)
    return info


@hookimpl
def rftbench_add_dataset_sources() -> list[DatasetSourceSpec]:
    return [DatasetSourceSpec(name="offline", factory=load_offline,
                              description="datasets built in memory without internet: scikit-learn digits, generated shapes and scenes")]


@hookimpl
def rftbench_add_representations() -> list[RepresentationCard]:
    return list(REPRESENTATIONS)


@hookimpl
def rftbench_add_datasets() -> list[DatasetCard]:
    return list(DATASETS)


#: ``LabelledTensors``, ``BasicBlock``, ``MiniResNet``, ``MiniConvNeXt`` and ``MiniViT`` live in :mod:`rftbench_plugins._offline_nets`.
__getattr__ = forward_to("rftbench_plugins._offline_nets", {"LabelledTensors", "BasicBlock", "MiniResNet", "MiniConvNeXt", "MiniViT"})
