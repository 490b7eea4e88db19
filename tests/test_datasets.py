"""Dataset sources on files fabricated in each source's real on-disk layout (no download)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rftbench.cards import DatasetCard, load_card
from rftbench_plugins import datasets as ds
from rftbench_registry import DATASETS_DIR

rng = np.random.default_rng(0)


def registry_card(name: str, **update) -> DatasetCard:
    card = load_card(DATASETS_DIR / f"{name}.yaml", "dataset")
    return card.model_copy(update=update) if update else card


def _image(path: Path, size=8, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).convert(mode).save(path)


def _no_md5(monkeypatch, module):
    """torchvision checks the md5 of the real files; fabricated files cannot match it (only that check is skipped)."""
    import importlib

    monkeypatch.setattr(importlib.import_module(f"torchvision.datasets.{module}"), "check_integrity", lambda *a, **k: True)


# ---------------------------------------------------------------------------------- torchvision


def _cifar10(root: Path, per_batch=20, test=30):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [*[(f"data_batch_{i}", per_batch) for i in range(1, 6)], ("test_batch", test)]:
        entry = {"batch_label": name, "data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
                 "labels": [i % 10 for i in range(n)], "filenames": [f"{i}.png" for i in range(n)]}
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}, fh)


def test_cifar10_pickles_official_splits_and_carved_val(tmp_path, monkeypatch):
    _cifar10(tmp_path)
    _no_md5(monkeypatch, "cifar")
    splits = ds.load_torchvision(registry_card("cifar10"), root=tmp_path, download=False)
    assert {k: len(v) for k, v in splits.items()} == {"train": 90, "val": 10, "test": 30}
    assert sorted(splits["val"].targets) == list(range(10))  # stratified: one of each class
    assert not set(splits["train"].indices) & set(splits["val"].indices)
    image, label = splits["test"][3]
    assert isinstance(image, Image.Image) and image.size == (32, 32) and label == 3
    assert splits["train"].classes[0] == "airplane"


def _flowers(root: Path, classes=102, per_class=3):
    from scipy.io import savemat

    folder = root / "flowers-102"
    n = classes * per_class
    for i in range(1, n + 1):
        _image(folder / "jpg" / f"image_{i:05d}.jpg")
    savemat(folder / "imagelabels.mat", {"labels": np.array([[1 + (i % classes) for i in range(n)]])})
    ids = np.arange(1, n + 1)
    order = ids.reshape(per_class, classes)  # image i has class i % classes: one image per class in each row
    savemat(folder / "setid.mat", {"trnid": order[0][None], "valid": order[1][None], "tstid": order[2][None]})


def test_flowers102_official_three_splits(tmp_path, monkeypatch):
    _flowers(tmp_path)
    _no_md5(monkeypatch, "flowers102")
    splits = ds.load_torchvision(registry_card("flowers-102"), root=tmp_path, download=False)
    assert {k: len(v) for k, v in splits.items()} == {"train": 102, "val": 102, "test": 102}
    assert sorted(splits["val"].targets) == list(range(102))
    assert splits["test"][0][0].mode == "RGB"


def _caltech101(root: Path, classes=4, per_class=10):
    base = root / "caltech101" / "101_ObjectCategories"
    _image(base / "BACKGROUND_Google" / "image_0001.jpg")
    for c in range(classes):
        for i in range(per_class):
            _image(base / f"class_{c}" / f"image_{i + 1:04d}.jpg", mode="L" if i == 0 else "RGB")


def test_caltech101_stratified_train_val_test_with_subsample(tmp_path):
    _caltech101(tmp_path)
    card = registry_card("caltech101", num_classes=4)
    splits = ds.load_torchvision(card, root=tmp_path, download=False)
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"val": 4, "test": 8, "train": 28}
    seen = [set(s.indices) for s in splits.values()]
    assert sum(map(len, seen)) == len(set().union(*seen)) == 40  # a partition of the 40 images
    for split in splits.values():
        assert set(split.targets) == {0, 1, 2, 3}  # every class in every split
    again = ds.load_torchvision(card, root=tmp_path, download=False)
    assert again["test"].indices == splits["test"].indices  # deterministic
    other = ds.load_torchvision(card, root=tmp_path, download=False, seed=1)
    assert other["test"].indices != splits["test"].indices
    # the study's stratified test subsample, here 4 images of the 8
    sub = card.model_copy(update={"splits": {**card.splits, "test": card.splits["test"].model_copy(update={"size": 4})}})
    small = ds.load_torchvision(sub, root=tmp_path, download=False)
    assert len(small["test"]) == 4 and set(small["test"].targets) == {0, 1, 2, 3}
    assert set(small["test"].indices) <= set(splits["test"].indices)
    assert len(ds.load_torchvision(sub, root=tmp_path, download=False, subsample=False)["test"]) == 8


def test_missing_dataset_names_card_folder_and_fix(tmp_path):
    with pytest.raises(ds.DatasetError, match=r"(?s)caltech101.*Fix: run with download enabled"):
        ds.load_torchvision(registry_card("caltech101"), root=tmp_path, download=False)
    with pytest.raises(ds.DatasetError, match="cannot be downloaded anymore|manual|stanford_cars"):
        ds.load_torchvision(registry_card("stanford_cars"), root=tmp_path, download=True)


def test_class_count_disagreeing_with_card(tmp_path):
    _caltech101(tmp_path, classes=3)
    with pytest.raises(ds.DatasetError, match="has 3 classes, the card says num_classes = 101"):
        ds.load_torchvision(registry_card("caltech101"), root=tmp_path, download=False)


# ---------------------------------------------------------------------------------- image folders


def test_uc_merced_image_folder_of_tifs(tmp_path):
    base = tmp_path / "UCMerced_LandUse" / "Images"
    for c in ("agricultural", "airplane", "beach"):
        for i in range(10):
            _image(base / c / f"{c}{i:02d}.tif")
    splits = ds.load_imagefolder(registry_card("uc-merced-land-use", num_classes=3), root=tmp_path, download=False)
    assert {k: len(v) for k, v in splits.items()} == {"val": 3, "test": 6, "train": 21}
    assert splits["train"].classes == ["agricultural", "airplane", "beach"]
    assert splits["test"][0][0].size == (8, 8)


def test_image_folder_incomplete(tmp_path):
    _image(tmp_path / "UCMerced_LandUse" / "Images" / "beach" / "b.tif")
    with pytest.raises(ds.DatasetError, match="has 1 classes, the card says num_classes = 21"):
        ds.load_imagefolder(registry_card("uc-merced-land-use"), root=tmp_path, download=False)
    with pytest.raises(ds.DatasetError, match="does not exist"):
        ds.load_imagefolder(registry_card("uc-merced-land-use"), root=tmp_path / "none", download=False)


# ---------------------------------------------------------------------------------- CUB, Dogs


def _cub(root: Path, classes=3, per_class=4):
    base = root / "CUB_200_2011"
    base.mkdir(parents=True)
    images, labels, split, names = [], [], [], []
    k = 0
    for c in range(classes):
        name = f"{c + 1:03d}.Bird_{c}"
        names.append(f"{c + 1} {name}")
        for i in range(per_class):
            k += 1
            rel = f"{name}/Bird_{c}_{i:04d}_{k}.jpg"
            _image(base / "images" / rel)
            images.append(f"{k} {rel}")
            labels.append(f"{k} {c + 1}")
            split.append(f"{k} {1 if i < per_class - 1 else 0}")
    for fname, rows in [("images.txt", images), ("image_class_labels.txt", labels), ("train_test_split.txt", split), ("classes.txt", names)]:
        (base / fname).write_text("\n".join(rows) + "\n")
    return base


def test_cub200_official_files(tmp_path):
    base = _cub(tmp_path, classes=3, per_class=11)
    splits = ds.load_cub200(registry_card("cub-200", num_classes=3), root=tmp_path, download=False)
    assert {k: len(v) for k, v in splits.items()} == {"train": 27, "val": 3, "test": 3}
    assert splits["train"].classes[0] == "001.Bird_0"
    assert splits["test"].targets == [0, 1, 2]
    next(base.glob("images/*/*.jpg")).unlink()
    with pytest.raises(ds.DatasetError, match="listed images are missing"):
        ds.load_cub200(registry_card("cub-200", num_classes=3), root=tmp_path, download=False)


def test_stanford_dogs_official_lists(tmp_path):
    from scipy.io import savemat

    base = tmp_path / "stanford_dogs"
    breeds = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel"]
    for part, n in (("train", 10), ("test", 2)):
        files = [f"{b}/{b.split('-')[0]}_{part}{i}.jpg" for b in breeds for i in range(n)]
        for f in files:
            _image(base / "Images" / f)
        labels = np.array([[1 + breeds.index(f.split("/")[0])] for f in files])
        savemat(base / f"{part}_list.mat", {"file_list": np.array(files, dtype=object)[:, None], "labels": labels})
    splits = ds.load_stanford_dogs(registry_card("stanford-dogs", num_classes=2), root=tmp_path, download=False)
    assert {k: len(v) for k, v in splits.items()} == {"train": 18, "val": 2, "test": 4}
    assert splits["train"].classes == ["Chihuahua", "Japanese_spaniel"]
    assert splits["test"][3][1] == 1


def test_sources_are_registered(builtins):
    for name in ("torchvision", "imagefolder", "cub200", "stanford_dogs"):
        assert builtins.get("dataset_source", name).plugin == "datasets"
