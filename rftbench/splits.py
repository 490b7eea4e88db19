"""Split rules of a dataset card applied to a source's official parts: the public helper dataset sources use.

A third-party ``dataset_source`` loads its official parts (``train``/``test``…, each a map-style
Dataset of ``(image, label)``), their labels and class names, and returns
``make_splits(card, parts, labels, classes, seed=…)``: the card's ``official``, ``stratified``
and ``carved`` split rules and ``size`` subsamples, applied deterministically, exactly as the
built-in sources do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset, Dataset

from .cards import DatasetCard
from .errors import DatasetError

__all__ = ["DatasetError", "Split", "make_splits"]


# ---------------------------------------------------------------------------------- splits


class Split(Dataset):
    """A subset of a dataset, with its labels known without reading images."""

    def __init__(self, base: Dataset, indices: Sequence[int], labels: Sequence[int], classes: Sequence[str]):
        self.base = base
        self.indices = [int(i) for i in indices]
        self.targets = [int(labels[i]) for i in self.indices]
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, _ = self.base[self.indices[index]]
        if hasattr(image, "mode") and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")  # palette / CMYK / 16-bit files in some datasets
        return image, self.targets[index]


def _stratified(indices: np.ndarray, labels: np.ndarray, take: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(taken, rest): a stratified share ``take`` (fraction or count) of ``indices``."""
    from sklearn.model_selection import train_test_split

    if isinstance(take, int) and take >= len(indices):
        return indices, indices[:0]
    try:
        rest, taken = train_test_split(indices, test_size=take, stratify=labels[indices], random_state=seed)
    except ValueError as err:  # a class too small to stratify
        raise DatasetError(f"cannot take a stratified {take} of {len(indices)} images: {err}") from None
    return np.sort(taken), np.sort(rest)


def make_splits(card: DatasetCard, parts: dict[str, Dataset], labels: dict[str, np.ndarray], classes: Sequence[str],
                *, seed: int = 0, subsample: bool = True) -> dict[str, Split]:
    """Apply the card's split rules to the official ``parts`` (see the module docstring)."""
    rules = card.splits
    out: dict[str, tuple[Dataset, np.ndarray, np.ndarray]] = {}
    stratified = [name for name, rule in rules.items() if rule.rule == "stratified"]
    if stratified:
        names = list(parts)
        pool = ConcatDataset([parts[n] for n in names]) if len(names) > 1 else parts[names[0]]
        pool_labels = np.concatenate([labels[n] for n in names])
        remaining = np.arange(len(pool_labels))
        total = len(remaining)
        open_ = [n for n in stratified if rules[n].fraction is None]
        if len(open_) > 1:
            raise DatasetError(f"dataset {card.id!r}: only one stratified split may leave `fraction` unset (got {open_})")
        for name in [n for n in stratified if rules[n].fraction is not None]:
            count = round(rules[name].fraction * total)
            taken, remaining = _stratified(remaining, pool_labels, count, seed)
            out[name] = (pool, taken, pool_labels)
        if open_:
            out[open_[0]] = (pool, remaining, pool_labels)
    for name, rule in rules.items():
        if rule.rule == "official":
            if name not in parts:
                raise DatasetError(f"dataset {card.id!r}: split {name!r} is official but the source has no part {name!r} (it has {sorted(parts)})")
            out[name] = (parts[name], np.arange(len(labels[name])), labels[name])
    for name, rule in rules.items():
        if rule.rule == "carved":
            origin = card.args.get("carve_from", "train")
            if origin not in out or rule.fraction is None:
                raise DatasetError(f"dataset {card.id!r}: split {name!r} is carved from {origin!r}, which needs a fraction and an official {origin!r} split")
            base, idx, lab = out[origin]
            taken, rest = _stratified(idx, lab, rule.fraction, seed)
            out[name] = (base, taken, lab)
            out[origin] = (base, rest, lab)
        elif rule.rule == "generated":
            raise DatasetError(f"dataset {card.id!r}: split rule 'generated' belongs to the offline source, not {card.source!r}")
    splits = {}
    for name, (base, idx, lab) in out.items():
        size = rules[name].size
        if subsample and size is not None and size < len(idx):
            idx, _ = _stratified(idx, lab, size, seed)
        splits[name] = Split(base, idx, lab, classes)
    return splits
