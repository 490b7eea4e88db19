"""plugins/_textures.py and plugins/textures.py: the harder offline downstream task."""

from __future__ import annotations

import numpy as np
import pytest

from rftbench_plugins._textures import FAMILIES, N_CLASSES, class_table, generate_textures


def test_generator_is_deterministic_balanced_and_in_range():
    x1, y1 = generate_textures(80, 32, seed=3)
    x2, y2 = generate_textures(80, 32, seed=3)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(generate_textures(80, 32, seed=4)[0], x1)
    assert x1.shape == (80, 3, 32, 32) and x1.dtype == np.float32
    assert 0.0 <= x1.min() and x1.max() <= 1.0
    assert np.bincount(y1, minlength=N_CLASSES).tolist() == [4] * N_CLASSES


def test_classes_share_structure_and_colour_so_neither_alone_names_them():
    table = class_table()
    structures = [(r["family"], r["band"]) for r in table]
    palettes = [(round(r["hue1"], 6), round(r["hue2"], 6)) for r in table]
    assert len(table) == N_CLASSES and {int(f) for f, _ in structures} == set(range(len(FAMILIES)))
    assert len(set(structures)) < N_CLASSES and len(set(palettes)) < N_CLASSES
    assert len(set(zip(structures, palettes))) == N_CLASSES  # ... but together they do


def test_task_is_not_solved_by_pixel_statistics():
    """Intra-class variation and clutter: a nearest-class-mean classifier on raw pixels stays far from perfect."""
    xtr, ytr = generate_textures(1000, 32, seed=1)
    xte, yte = generate_textures(400, 32, seed=2)
    means = np.stack([xtr[ytr == c].reshape((ytr == c).sum(), -1).mean(0) for c in range(N_CLASSES)])
    dist = ((xte.reshape(len(xte), 1, -1) - means[None]) ** 2).sum(-1)
    acc = float((dist.argmin(1) == yte).mean())
    assert 1 / N_CLASSES < acc < 0.5, acc


def test_card_loads_disjoint_splits_through_the_plugin(builtins):
    from rftbench.data import load_splits

    card = builtins.get("dataset", "textures")
    assert builtins.plugin_of("dataset", "textures") == "textures" and card.num_classes == N_CLASSES
    splits = load_splits("textures", manager=builtins)
    assert {k: len(v) for k, v in splits.items()} == {"train": 2000, "val": 500, "test": 1000}
    x, y = splits["test"][0]
    assert tuple(x.shape) == (3, 32, 32) and isinstance(y, int)
    assert splits["train"].classes[0].startswith(FAMILIES[0])
    first = {bytes(t.numpy().tobytes()) for t in splits["train"].tensors[0][:200]}
    assert not first & {bytes(t.numpy().tobytes()) for t in splits["test"].tensors[0][:200]}


def test_bad_card_args_are_a_card_error(builtins):
    from rftbench.errors import CardError
    from rftbench_plugins.textures import load_textures

    card = builtins.get("dataset", "textures").model_copy(update={"args": {"n_train": 10, "n_val": "x", "n_test": 5}})
    with pytest.raises(CardError, match="n_train, n_val, n_test"):
        load_textures(card, root=None, download=False)
