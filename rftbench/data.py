"""Data for a run: resolve a dataset card, load its splits through its source, transform, batch.

:func:`load_splits` calls the card's dataset source (``factory(card, *, root, download)``);
:func:`make_transform` resizes every image to the representation's resolution (after a
``crop_pct`` centre crop) and, for training, applies the reference study's augmentation:
horizontal flip, ``ColorJitter(0.25, 0.25, 0.25)``, ``RandomRotation(2)``. A dataset card
tagged ``no-hflip`` (digits, text) skips the flip. :class:`EpochBatches` makes each epoch's
order a function of ``(seed, epoch)`` alone, so an interrupted run resumes on the same batches.

The training split is loaded by ``data.num_workers`` processes (``auto``: :func:`resolve_workers`),
each example's augmentation drawn from its own seed ``(seed, epoch, index)`` (:func:`sample_seed`), so
the batches are the same whichever the number of workers and wherever a run resumes. The decoded,
resized split is kept in memory (uint8 for 8-bit images) when it fits (:func:`cache_prepared`);
``data.augment_on: device`` moves the augmentation onto the device as batched tensor arithmetic
(:class:`DeviceAugment`).
"""

from __future__ import annotations

import logging
import math
import os
import random
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

log = logging.getLogger("rftbench")

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


def _resize_steps(inp: Any) -> list[Any]:
    """Crop/resize to the representation's input: resize then centre-crop when ``crop_pct`` < 1, else resize."""
    size = inp.resolution
    if inp.crop_pct < 1:
        return [v2.Resize(math.floor(size / inp.crop_pct), interpolation=_interpolation(inp.interpolation), antialias=True),
                v2.CenterCrop(size)]
    return [v2.Resize((size, size), interpolation=_interpolation(inp.interpolation), antialias=True)]


def make_transform(rep: RepresentationCard, data: DatasetCard | None = None, *, train: bool, augment: bool = True) -> Callable:
    """The image transform of a split: to [0, 1] tensor, crop/resize to the representation's input, augment."""
    inp = rep.input
    steps: list[Any] = [_ToRGBTensor(inp.channels), *_resize_steps(inp)]
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


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one training example's augmentation in one epoch (a 63-bit mix of the three)."""
    value = (seed * 1_000_003 + epoch) * 2_147_483_647 + index
    value ^= value >> 29
    return (value * 0x9E3779B97F4A7C15) % (1 << 63)


def _prepare_transform(rep: RepresentationCard) -> Callable:
    """The deterministic part of the training transform: decode (uint8 stays uint8), crop, resize."""
    inp = rep.input
    steps: list[Any] = [_ToImage(inp.channels), *_resize_steps(inp)]
    return v2.Compose(steps)


def _augment_transform(data: DatasetCard | None, augment: bool) -> Callable:
    """The random part of the training transform, per example, on a [0, 1] float or uint8 image."""
    steps: list[Any] = [_ToFloat()]
    if augment:
        if data is None or "no-hflip" not in data.tags:
            steps.append(v2.RandomHorizontalFlip())
        steps += [v2.ColorJitter(*STUDY_JITTER), v2.RandomRotation(STUDY_ROTATION)]
    steps.append(_Clamp())
    return v2.Compose(steps)


class _ToImage(_ToRGBTensor):
    """PIL image or tensor → (C, H, W) tensor with the representation's channels; 8-bit images stay uint8."""

    def __call__(self, img: Any) -> torch.Tensor:
        if not isinstance(img, torch.Tensor):
            if hasattr(img, "convert"):
                img = img.convert("RGB" if self.channels == 3 else "L")
            img = v2.functional.to_image(img)
        if img.dtype != torch.uint8:
            img = img.float()
        if img.dim() == 2:
            img = img.unsqueeze(0)
        if img.shape[0] == 1 and self.channels == 3:
            img = img.expand(3, -1, -1)
        elif img.shape[0] == 3 and self.channels == 1:
            img = img.float().mean(0, keepdim=True) / (255.0 if img.dtype == torch.uint8 else 1.0)
        return img.contiguous()


class _ToFloat:
    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return img.float() / 255.0 if img.dtype == torch.uint8 else img.float()


class TrainSplit(Dataset):
    """The training split: decoded and resized (``prepare``, maybe from an in-memory cache), then augmented.

    Indexed by ``(epoch, index)`` (from :class:`EpochBatches` with ``tagged``), an example's
    augmentation is drawn from the seed :func:`sample_seed` ``(seed, epoch, index)`` under a
    forked RNG, so it is the same in any worker process and after a resume; a plain ``index``
    draws from the global RNG. ``augment=None`` returns the prepared image (device augmentation).
    """

    def __init__(self, base: Dataset, prepare: Callable, augment: Callable | None, seed: int):
        self.base, self.prepare, self.augment, self.seed = base, prepare, augment, seed
        self.cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def prepared(self, index: int) -> tuple[torch.Tensor, int]:
        """Example ``index`` decoded and resized, not augmented."""
        if self.cache is not None:
            return self.cache[0][index], int(self.cache[1][index])
        img, label = self.base[index]
        return self.prepare(img), int(label)

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        epoch = None
        if isinstance(index, tuple):
            epoch, index = index
        img, label = self.prepared(index)
        if self.augment is None:
            return img, label
        if epoch is None:
            return self.augment(img), label
        # The CPU generator alone, saved and restored (what ``fork_rng(devices=[])`` + ``manual_seed`` do to it):
        # ``torch.manual_seed`` also queues a lazy CUDA/XPU/MTIA seeding with a formatted stack trace
        # (``traceback.format_stack``) while those are not initialised, which cost ~1 ms per example.
        gen = torch.default_generator
        state = gen.get_state()
        gen.manual_seed(sample_seed(self.seed, epoch, index))
        try:
            return self.augment(img), label
        finally:
            gen.set_state(state)


class _Prepared(Dataset):
    def __init__(self, split: TrainSplit):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.split.prepared(index)


def cache_budget_bytes() -> int:
    """How much memory a decoded train split may take: a quarter of the available memory, at most 8 GiB."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
            available = 2 << 30
    return min(available // 4, 8 << 30)


def cache_prepared(split: TrainSplit, *, num_workers: int = 0, budget: int | None = None) -> bool:
    """Decode and resize the whole split once into one tensor (uint8 for 8-bit images) when it fits ``budget``.

    Returns whether it did. The cached images are exactly what ``prepare`` returns, so results do
    not change; only the decoding and resizing per epoch are saved.
    """
    n = len(split)
    if n == 0:
        return False
    first, _ = split.prepared(0)
    need = n * first.numel() * first.element_size()
    budget = cache_budget_bytes() if budget is None else budget
    if need > budget:
        log.info("the decoded train split (%.1f GiB) does not fit the cache budget (%.1f GiB): decoding every epoch",
                 need / 2**30, budget / 2**30)
        return False
    images = torch.empty((n, *first.shape), dtype=first.dtype)
    labels = torch.empty(n, dtype=torch.long)
    loader = DataLoader(_Prepared(split), batch_size=64, num_workers=num_workers, shuffle=False,
                        worker_init_fn=seed_worker if num_workers else None)
    at = 0
    for x, y in loader:
        if x.shape[1:] != first.shape or x.dtype != first.dtype:  # pragma: no cover - prepare resizes to one shape
            return False
        images[at : at + len(x)] = x
        labels[at : at + len(x)] = y
        at += len(x)
    split.cache = (images, labels)
    return True


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed Python's and NumPy's RNGs from the worker's torch seed (as torch's docs recommend)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a dependency of torchvision
        pass


def resolve_workers(setting: int | str, device_type: str = "cpu") -> int:
    """Loader processes for ``data.num_workers``: the number itself, or for ``auto`` a share of the usable cores.

    ``auto``: on CUDA all usable cores but one, at most 8 (the accelerator waits on the data path);
    on CPU the step itself uses the cores, so 0 on machines with 4 or fewer cores, else a quarter of them, at most 4.
    """
    if setting != "auto":
        return int(setting)
    from .config import usable_cores

    cores = usable_cores()
    if device_type == "cuda":
        return max(0, min(8, cores - 1))
    return 0 if cores <= 4 else min(4, cores // 4)


class DeviceAugment:
    """The study's augmentation on a whole batch on its device, with per-example parameters.

    Horizontal flip (p = 0.5, unless the card is ``no-hflip``), brightness, contrast and saturation
    factors uniform in ``[0.75, 1.25]`` and a rotation uniform in ``[-2°, 2°]`` (nearest, zero fill),
    all drawn per example from a device generator seeded with ``(seed, epoch, batch)``. The same
    formulas as torchvision's ``ColorJitter`` and ``RandomRotation``, with one departure: the order
    of the three colour operations is drawn once per batch (torchvision draws it per example).
    """

    def __init__(self, seed: int, *, flip: bool = True, jitter: tuple[float, float, float] = STUDY_JITTER,
                 degrees: float = STUDY_ROTATION):
        self.seed, self.flip, self.jitter, self.degrees = seed, flip, jitter, degrees

    def __call__(self, x: torch.Tensor, epoch: int, batch: int) -> torch.Tensor:
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        n = x.shape[0]
        seed = sample_seed(self.seed, epoch, batch)
        gen = torch.Generator(device=x.device).manual_seed(seed)
        draws = torch.rand((n, 5), generator=gen, device=x.device)
        if self.flip:
            x = torch.where((draws[:, 0] < 0.5).view(n, 1, 1, 1), x.flip(-1), x)
        order = torch.randperm(3, generator=torch.Generator().manual_seed(seed)).tolist()  # CPU: no device sync
        for op in order:
            strength = self.jitter[op]
            factor = (1 - strength + 2 * strength * draws[:, 1 + op]).view(n, 1, 1, 1)
            x = (jitter_brightness, jitter_contrast, jitter_saturation)[op](x, factor)
        angle = (2 * draws[:, 4] - 1) * self.degrees
        return rotate_batch(x, angle).clamp(0.0, 1.0)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def jitter_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's ``adjust_brightness`` with one factor per example."""
    return (x * factor).clamp(0.0, 1.0)


def jitter_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's ``adjust_contrast`` with one factor per example (blend with the mean grey level)."""
    mean = _gray(x).mean(dim=(-3, -2, -1), keepdim=True)
    return (factor * x + (1 - factor) * mean).clamp(0.0, 1.0)


def jitter_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's ``adjust_saturation`` with one factor per example (blend with the grey image)."""
    if x.shape[1] == 1:
        return x
    return (factor * x + (1 - factor) * _gray(x)).clamp(0.0, 1.0)


def rotate_batch(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image by its angle (degrees, counter-clockwise) about its centre: nearest, zero fill."""
    theta = torch.deg2rad(degrees.float())
    cos, sin = torch.cos(theta), torch.sin(theta)
    h, w = x.shape[-2:]
    zero = torch.zeros_like(cos)
    # output → input sampling in normalised coordinates (aspect ratio kept)
    matrix = torch.stack([
        torch.stack([cos, -sin * h / w, zero], 1),
        torch.stack([sin * w / h, cos, zero], 1),
    ], 1)
    grid = torch.nn.functional.affine_grid(matrix, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


class EpochBatches(Sampler[list[int]]):
    """Batches of a shuffled split whose order depends only on ``(seed, epoch)``; drops the last partial batch.

    ``skip`` batches are left out at the start (resuming inside an epoch). With ``tagged`` each
    index comes as ``(epoch, index)`` (what :class:`TrainSplit` seeds an example's augmentation
    with). With ``world > 1`` (distributed training) each batch is the ``rank``-th of ``world``
    equal shards of the global batch, ``batch[rank::world]``.
    """

    def __init__(self, size: int, batch_size: int, seed: int, *, tagged: bool = False, rank: int = 0, world: int = 1):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.epoch, self.skip = 0, 0
        self.tagged, self.rank, self.world = tagged, rank, world

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.size // self.batch_size - self.skip

    def __iter__(self) -> Iterator[list[int]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=gen).tolist()
        for b in range(self.skip, self.size // self.batch_size):
            batch = order[b * self.batch_size : (b + 1) * self.batch_size][self.rank :: self.world]
            yield [(self.epoch, i) for i in batch] if self.tagged else batch  # type: ignore[misc]


@dataclass
class RunData:
    """Transformed splits and the loaders of a run."""

    train: Dataset
    test: Dataset
    val: Dataset | None
    train_batches: EpochBatches
    train_loader: DataLoader
    num_classes: int
    #: ``(x, epoch, batch) -> x`` applied on the device after the transfer (``data.augment_on: device``)
    device_augment: Callable[[torch.Tensor, int, int], torch.Tensor] | None = None
    num_workers: int = 0

    def close(self) -> None:
        """Stop the training loader's persistent worker processes (they hold copies of the parent's files and locks)."""
        iterator = getattr(self.train_loader, "_iterator", None)
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        self.train_loader._iterator = None

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
    cache: bool = True,
    augment_on: str = "cpu",
    rank: int = 0,
    world: int = 1,
) -> RunData:
    """Load and transform the splits of ``card`` for the representation ``rep``; build the training loader.

    ``num_workers`` loader processes (persistent, seeded), ``pin_memory`` for CUDA transfers,
    ``cache`` the decoded train split when it fits, ``augment_on="device"`` for
    :class:`DeviceAugment`; ``rank``/``world`` shard every batch for distributed training.
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
    on_device = augment_on == "device"
    if world > 1 and batch_size % world:
        raise ConfigError(f"batch_size = {batch_size} does not split into {world} equal shards (one per process); "
                          f"use a multiple of {world}")
    train = TrainSplit(splits["train"], _prepare_transform(rep), None if on_device else _augment_transform(card, augment), seed)
    if cache:
        cache_prepared(train, num_workers=num_workers)
    device_augment = None
    if on_device:
        flip = "no-hflip" not in card.tags
        device_augment = DeviceAugment(seed, flip=flip) if augment else (lambda x, epoch, batch: _ToFloat()(x))
    evaluate = make_transform(rep, card, train=False)
    test = Transformed(splits["test"], evaluate)
    val = Transformed(splits["val"], evaluate) if "val" in splits else None
    batches = EpochBatches(n_train, batch_size, seed, tagged=True, rank=rank, world=world)
    loader = DataLoader(train, batch_sampler=batches, num_workers=num_workers, pin_memory=pin_memory,
                        persistent_workers=num_workers > 0, worker_init_fn=seed_worker if num_workers else None,
                        prefetch_factor=4 if num_workers else None)
    return RunData(train, test, val, batches, loader, card.num_classes, device_augment, num_workers)
