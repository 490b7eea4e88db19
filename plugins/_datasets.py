"""The code of the built-in ``datasets`` plugin (see :mod:`rftbench_plugins.datasets`), imported when a dataset is loaded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset, Dataset

from rftbench.cards import DatasetCard

from rftbench.splits import Split, _stratified, make_splits  # noqa: F401 - public in rftbench (rftbench.make_splits)

from .datasets import DatasetError


def _check_classes(card: DatasetCard, classes: Sequence[str], where: Path) -> None:
    if len(classes) != card.num_classes:
        raise DatasetError(
            f"dataset {card.id!r}: {where} has {len(classes)} classes, the card says num_classes = {card.num_classes}. "
            "The folder is incomplete or is another dataset: delete it and download again"
        )


def _missing(card: DatasetCard, where: Path, detail: str, download: bool) -> DatasetError:
    how = "it could not be downloaded" if download else "download is off"
    return DatasetError(
        f"dataset {card.id!r}: {detail} in {where} ({how}).\n"
        f"Fix: run with download enabled on a machine with internet, or place the files there in the layout the "
        f"{card.source!r} source reads{card.args.get('manual') and ' (' + card.args['manual'] + ')' or ''}."
    )


# ---------------------------------------------------------------------------------- torchvision

_LABEL_ATTRS = ("targets", "labels", "_labels", "y")


def _labels_of(ds: Dataset) -> np.ndarray:
    for attr in _LABEL_ATTRS:
        value = getattr(ds, attr, None)
        if value is not None:
            return np.asarray([int(v) for v in value])
    samples = getattr(ds, "_samples", None) or getattr(ds, "samples", None)
    if samples is not None:
        return np.asarray([int(s[1]) for s in samples])
    raise DatasetError(f"{type(ds).__name__}: cannot read its labels without loading every image")


def _classes_of(ds: Dataset, num_classes: int) -> list[str]:
    for attr in ("classes", "categories"):
        value = getattr(ds, attr, None)
        if value:
            return [str(v) for v in value]
    return [str(i) for i in range(num_classes)]


def load_torchvision(card: DatasetCard, *, root: Path, download: bool, seed: int = 0, subsample: bool = True) -> dict[str, Split]:
    """The ``torchvision`` dataset source (see the module docstring)."""
    import torchvision.datasets as tvd

    name = card.args.get("class")
    cls = getattr(tvd, str(name), None)
    if cls is None:
        raise DatasetError(f"dataset {card.id!r}: torchvision.datasets has no class {name!r} (args.class)")
    official: dict[str, dict[str, Any]] = card.args.get("official") or {"all": {}}
    parts, labels = {}, {}
    for part, kwargs in official.items():
        try:
            ds = cls(str(root), download=download, **kwargs, **card.args.get("kwargs", {}))
        except (RuntimeError, FileNotFoundError, ValueError) as err:
            raise _missing(card, Path(root), f"torchvision's {name} reports: {err}", download) from None
        parts[part], labels[part] = ds, _labels_of(ds)
    classes = _classes_of(next(iter(parts.values())), card.num_classes)
    _check_classes(card, classes, Path(root))
    return make_splits(card, parts, labels, classes, seed=seed, subsample=subsample)


# ---------------------------------------------------------------------------------- image folders


def _fetch_archive(card: DatasetCard, root: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    url = card.args.get("url")
    if not url:
        return
    try:
        download_and_extract_archive(url, download_root=str(root), md5=card.args.get("md5"))
    except Exception as err:  # noqa: BLE001 - network, bad archive, md5 mismatch
        raise DatasetError(f"dataset {card.id!r}: downloading {url} failed: {err}") from None


def load_imagefolder(card: DatasetCard, *, root: Path, download: bool, seed: int = 0, subsample: bool = True) -> dict[str, Split]:
    """The ``imagefolder`` dataset source: ``<class>/<image>`` folders (see the module docstring)."""
    from torchvision.datasets import ImageFolder

    root = Path(root)
    folders: dict[str, str] = card.args.get("official") or {"all": card.args.get("folder", card.id)}
    if download and not all((root / f).is_dir() for f in folders.values()):
        _fetch_archive(card, root)
    parts, labels, classes = {}, {}, None
    for part, sub in folders.items():
        where = root / sub
        if not where.is_dir():
            raise _missing(card, where, "the image folder does not exist", download)
        try:
            ds = ImageFolder(str(where))
        except FileNotFoundError as err:
            raise _missing(card, where, str(err), download) from None
        if classes is not None and ds.classes != classes:
            raise DatasetError(f"dataset {card.id!r}: {where} has other classes than the other parts")
        classes = ds.classes
        parts[part], labels[part] = ds, np.asarray(ds.targets)
    _check_classes(card, classes or [], root)
    return make_splits(card, parts, labels, classes or [], seed=seed, subsample=subsample)


# ---------------------------------------------------------------------------------- CUB-200-2011


class _Files(Dataset):
    """Images listed by path, with labels (what the CUB and Dogs readers produce)."""

    def __init__(self, paths: list[Path], labels: list[int]):
        self.paths, self.labels = paths, labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        with Image.open(self.paths[index]) as img:
            return img.convert("RGB"), self.labels[index]


def _read_table(path: Path, card: DatasetCard, download: bool) -> list[list[str]]:
    if not path.is_file():
        raise _missing(card, path.parent, f"{path.name} is missing", download)
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def load_cub200(card: DatasetCard, *, root: Path, download: bool, seed: int = 0, subsample: bool = True) -> dict[str, Split]:
    """CUB-200-2011 from its official files; official train/test from ``train_test_split.txt``."""
    base = Path(root) / "CUB_200_2011"
    if download and not (base / "images.txt").is_file():
        _fetch_archive(card, Path(root))
    images = dict(_read_table(base / "images.txt", card, download))
    labels = {i: int(c) - 1 for i, c in _read_table(base / "image_class_labels.txt", card, download)}
    is_train = {i: f == "1" for i, f in _read_table(base / "train_test_split.txt", card, download)}
    classes = [" ".join(row[1:]) for row in _read_table(base / "classes.txt", card, download)]
    _check_classes(card, classes, base)
    parts, part_labels = {}, {}
    for part, flag in (("train", True), ("test", False)):
        ids = sorted((i for i in images if is_train[i] == flag), key=int)
        paths = [base / "images" / images[i] for i in ids]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise _missing(card, base / "images", f"{len(missing)} listed images are missing (e.g. {missing[0].name})", download)
        parts[part] = _Files(paths, [labels[i] for i in ids])
        part_labels[part] = np.asarray(parts[part].labels)
    return make_splits(card, parts, part_labels, classes, seed=seed, subsample=subsample)


# ---------------------------------------------------------------------------------- Stanford Dogs


def load_stanford_dogs(card: DatasetCard, *, root: Path, download: bool, seed: int = 0, subsample: bool = True) -> dict[str, Split]:
    """Stanford Dogs from ``Images/`` and the official ``train_list.mat`` / ``test_list.mat``."""
    from scipy.io import loadmat
    from torchvision.datasets.utils import download_and_extract_archive

    base = Path(root) / card.args.get("folder", "stanford_dogs")
    if download and not (base / "train_list.mat").is_file():
        for url in card.args.get("urls", []):
            try:
                download_and_extract_archive(url, download_root=str(base))
            except Exception as err:  # noqa: BLE001
                raise DatasetError(f"dataset {card.id!r}: downloading {url} failed: {err}") from None
    parts, part_labels, names = {}, {}, {}
    for part in ("train", "test"):
        mat = base / f"{part}_list.mat"
        if not mat.is_file():
            raise _missing(card, base, f"{mat.name} is missing", download)
        data = loadmat(mat, squeeze_me=True)
        files = [str(f) for f in np.atleast_1d(data["file_list"])]
        labels = [int(v) - 1 for v in np.atleast_1d(data["labels"])]
        paths = [base / "Images" / f for f in files]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise _missing(card, base / "Images", f"{len(missing)} listed images are missing (e.g. {missing[0].name})", download)
        for f, y in zip(files, labels):
            names[y] = f.split("/")[0].split("-", 1)[-1]  # n02085620-Chihuahua → Chihuahua
        parts[part], part_labels[part] = _Files(paths, labels), np.asarray(labels)
    classes = [names.get(i, str(i)) for i in range(max(names) + 1)]
    _check_classes(card, classes, base)
    return make_splits(card, parts, part_labels, classes, seed=seed, subsample=subsample)


# ---------------------------------------------------------------------------------- registration


__all__ = ["DatasetError", "Split", "load_cub200", "load_imagefolder", "load_stanford_dogs", "load_torchvision", "make_splits"]
