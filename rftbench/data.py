"""Data for a run: resolve a dataset card, load its splits through its source, transform, batch.

:func:`load_splits` calls the card's dataset source (``factory(card, *, root, download)``);
:func:`make_transform` resizes every image to the representation's resolution (after a
``crop_pct`` centre crop) and, for training, applies the reference study's augmentation:
horizontal flip, ``ColorJitter(0.25, 0.25, 0.25)``, ``RandomRotation(2)``. A dataset card
tagged ``no-hflip`` (digits, text) skips the flip. :class:`EpochBatches` makes each epoch's
order a function of ``(seed, epoch)`` alone, so an interrupted run resumes on the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2

from .cards import DatasetCard, RepresentationCard
from .errors import ConfigError
from .paths import cache_dir
from .plugins import PluginManager, get_manager

#: The reference study's training augmentation (arXiv 2508.14079, §3).
STUDY_JITTER = (0.25, 0.25, 0.25)
STUDY_ROTATION = 2.0


def data_root(root: str | Path | None = None) -> Path:
    """Where dataset sources store data: ``root`` or ``<cache>/datasets``."""
    path = Path(root) if root else cache_dir() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_splits(
    card: DatasetCard | str,
    *,
    root: str | Path | None = None,
    download: bool = True,
    manager: PluginManager | None = None,
) -> dict[str, Dataset]:
    """The card's splits (``train``, ``test`` and maybe ``val``) as returned by its dataset source."""
    manager = manager or get_manager()
    if isinstance(card, str):
        card = manager.get("dataset", card)
    spec = manager.get("dataset_source", card.source)
    params = spec.validate_params({})  # `root` and `download` are context, not parameters (see the hookspec)
    values = {k: getattr(params, k) for k in type(params).model_fields}
    splits = spec.factory(card, root=data_root(root), download=download, **values)
    missing = {"train", "test"} - set(splits)
    if missing:
        raise ConfigError(f"dataset {card.id!r}: its source {card.source!r} returned no {', '.join(sorted(missing))} split")
    check_classes(card, splits)
    return splits


def check_classes(card: DatasetCard, splits: dict[str, Dataset]) -> None:
    """A :class:`ConfigError` when a split's classes do not match the card's ``num_classes`` (the head's size)."""
    for name, ds in splits.items():
        classes = getattr(ds, "classes", None)
        if classes is not None and len(classes) != card.num_classes:
            raise ConfigError(
                f"dataset {card.id!r}: the {name} split has {len(classes)} classes but the card's num_classes "
                f"(the size of the head) is {card.num_classes}; fix num_classes in the card"
            )
        targets = getattr(ds, "targets", None)
        if targets is not None and len(targets):
            top = int(max(targets))
            if top >= card.num_classes or int(min(targets)) < 0:
                raise ConfigError(
                    f"dataset {card.id!r}: the {name} split has label {top} but the card's num_classes "
                    f"(the size of the head) is {card.num_classes}; labels must lie in 0…{card.num_classes - 1}"
                )


def _interpolation(name: str) -> InterpolationMode:
    return {"nearest": InterpolationMode.NEAREST, "bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}[name]


class _ToRGBTensor:
    """PIL image or tensor → float (C, H, W) in [0, 1] with the representation's channel count."""

    def __init__(self, channels: int):
        self.channels = channels

    def __call__(self, img: Any) -> torch.Tensor:
        if not isinstance(img, torch.Tensor):
            if hasattr(img, "convert"):
                img = img.convert("RGB" if self.channels == 3 else "L")
            img = v2.functional.to_image(img)
        if img.dtype == torch.uint8:
            img = img.float() / 255.0
        img = img.float()
        if img.dim() == 2:
            img = img.unsqueeze(0)
        if img.shape[0] == 1 and self.channels == 3:
            img = img.expand(3, -1, -1)
        elif img.shape[0] == 3 and self.channels == 1:
            img = img.mean(0, keepdim=True)
        return img.contiguous()


def make_transform(rep: RepresentationCard, data: DatasetCard | None = None, *, train: bool, augment: bool = True) -> Callable:
    """The image transform of a split: to [0, 1] tensor, crop/resize to the representation's input, augment."""
    inp = rep.input
    size = inp.resolution
    steps: list[Any] = [_ToRGBTensor(inp.channels)]
    if inp.crop_pct < 1:
        steps += [v2.Resize(math.floor(size / inp.crop_pct), interpolation=_interpolation(inp.interpolation), antialias=True),
                  v2.CenterCrop(size)]
    else:
        steps.append(v2.Resize((size, size), interpolation=_interpolation(inp.interpolation), antialias=True))
    if train and augment:
        if data is None or "no-hflip" not in data.tags:
            steps.append(v2.RandomHorizontalFlip())
        steps += [v2.ColorJitter(*STUDY_JITTER), v2.RandomRotation(STUDY_ROTATION)]
    steps.append(_Clamp())
    return v2.Compose(steps)


class _Clamp:
    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return img.clamp(0.0, 1.0)


class Transformed(Dataset):
    """A split with a transform applied to its images (labels as ints)."""

    def __init__(self, base: Dataset, transform: Callable):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img, label = self.base[index]
        return self.transform(img), int(label)


class EpochBatches(Sampler[list[int]]):
    """Batches of a shuffled split whose order depends only on ``(seed, epoch)``; drops the last partial batch.

    ``skip`` batches are left out at the start (resuming inside an epoch).
    """

    def __init__(self, size: int, batch_size: int, seed: int):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.size // self.batch_size - self.skip

    def __iter__(self) -> Iterator[list[int]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=gen).tolist()
        for b in range(self.skip, self.size // self.batch_size):
            yield order[b * self.batch_size : (b + 1) * self.batch_size]


@dataclass
class RunData:
    """Transformed splits and the loaders of a run."""

    train: Dataset
    test: Dataset
    val: Dataset | None
    train_batches: EpochBatches
    train_loader: DataLoader
    num_classes: int

    def eval_loader(self, split: str = "test", batch_size: int = 256, n: int | None = None) -> DataLoader:
        """A loader over the first ``n`` images of an evaluation split, in order."""
        ds = getattr(self, split)
        if ds is None:
            raise ConfigError(f"this dataset has no {split} split")
        if n is not None and n < len(ds):
            ds = torch.utils.data.Subset(ds, range(n))
        return DataLoader(ds, batch_size=batch_size, shuffle=False)


def build_data(
    rep: RepresentationCard,
    card: DatasetCard,
    *,
    batch_size: int,
    seed: int = 0,
    root: str | Path | None = None,
    download: bool = True,
    augment: bool = True,
    num_workers: int = 0,
    pin_memory: bool = False,
    manager: PluginManager | None = None,
) -> RunData:
    """Load and transform the splits of ``card`` for the representation ``rep``; build the training loader.

    Raises a :class:`ConfigError` naming ``batch_size`` when it exceeds the train split.
    """
    splits = load_splits(card, root=root, download=download, manager=manager)
    n_train = len(splits["train"])  # type: ignore[arg-type]
    if n_train == 0:
        raise ConfigError(f"dataset {card.id!r}: its train split is empty (no images to train on); "
                          "check the dataset's files or the card's splits")
    if batch_size > n_train:
        raise ConfigError(
            f"batch_size = {batch_size} is larger than the train split of dataset {card.id!r} ({n_train} images); "
            f"use batch_size ≤ {n_train} (and effective_batch_size for larger effective batches)"
        )
    train = Transformed(splits["train"], make_transform(rep, card, train=True, augment=augment))
    evaluate = make_transform(rep, card, train=False)
    test = Transformed(splits["test"], evaluate)
    val = Transformed(splits["val"], evaluate) if "val" in splits else None
    batches = EpochBatches(n_train, batch_size, seed)
    loader = DataLoader(train, batch_sampler=batches, num_workers=num_workers, pin_memory=pin_memory,
                        persistent_workers=num_workers > 0)
    return RunData(train, test, val, batches, loader, card.num_classes)
