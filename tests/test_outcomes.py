"""Per-example outcomes: written with the evaluation, consistent with its totals, refused when damaged."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest
import torch

from rftbench.evaluation import evaluate
from rftbench.outcomes import (
    NotComparableError,
    OutcomesError,
    breaker_codes,
    check_same_points,
    read_outcomes,
    write_outcomes,
)
from tests.plugins import evaluation as fx
from tests.plugins.evaluation import manager, one_thread  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("one_thread")

POINTS = {"dataset": "toy", "card_sha256": "c" * 64, "split": "test"}


def _noisy_problem(n=60, seed=0):
    model, data = fx.linear_problem(n=n, seed=seed)
    x, y = data.tensors
    y = y.clone()
    y[: n // 5] = (y[: n // 5] + 1) % 3  # some clean mistakes
    return model, torch.utils.data.TensorDataset(x, y)


def test_outcomes_match_the_totals(manager, tmp_path):
    model, data = _noisy_problem()
    result = evaluate(model, data, [{"name": "tiny_fgsm", "eps": 0.05}], batch_size=16, output_dir=tmp_path,
                      progress=False, points=POINTS)
    ref = result["outcomes"]
    assert ref["file"] == f"outcomes-{ref['sha256'][:16]}.npz"  # named by its content
    assert ref["sha256"] == hashlib.sha256((tmp_path / ref["file"]).read_bytes()).hexdigest()
    out = read_outcomes(tmp_path / ref["file"], ref["sha256"])
    assert len(out) == 60 and out.index.tolist() == list(range(60))
    assert out.label.tolist() == data.tensors[1].tolist()
    assert out.clean.mean() == pytest.approx(result["clean_acc"])
    assert out.correct["tiny_fgsm:0.05"].mean() == pytest.approx(result["threats"]["tiny_fgsm:0.05"]["acc"])
    assert not (out.correct["tiny_fgsm:0.05"] & ~out.clean).any()  # attacked points start clean-correct
    # the margin is the true-class logit minus the largest other: positive exactly when correct
    assert ((out.margin > 0) == out.clean).all()
    logits = model(data.tensors[0]).detach()
    top_other = logits.clone()
    top_other[torch.arange(60), data.tensors[1]] = -torch.inf
    expected = logits[torch.arange(60), data.tensors[1]] - top_other.max(1).values
    np.testing.assert_allclose(out.margin.astype(np.float32), expected.numpy(), rtol=2e-3, atol=2e-3)
    assert out.points["dataset"] == "toy" and out.points["n"] == 60 and out.points["subsample"] == "first"
    assert ref["points"] == out.points


def test_autoattack_records_which_attack_broke_each_point(manager, tmp_path):
    model = fx.linear_model(classes=5)
    x = torch.rand(24, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    y = model(x).argmax(1)
    y[:4] = (y[:4] + 1) % 5
    data = torch.utils.data.TensorDataset(x, y)
    suite = [{"name": "aa_test", "norm": "linf", "eps": 0.05, "n_iter": 5, "n_queries": 20}]
    result = evaluate(model, data, suite, batch_size=8, output_dir=tmp_path, progress=False)
    label = next(iter(result["threats"]))
    out = read_outcomes(tmp_path / result["outcomes"]["file"], result["outcomes"]["sha256"])
    names = out.breaker(label)
    assert names is not None
    correct = out.correct[label]
    assert ((names == "") == correct).all()
    assert ((names == "clean") == ~out.clean).all()
    record = result["threats"][label]
    for attack in out.broken_by[label][1]:
        # accuracy after an attack = points not broken by it or any earlier one
        ran = out.broken_by[label][1]
        before = ran[: ran.index(attack) + 1]
        still = out.clean & ~np.isin(names, before)
        assert still.mean() == pytest.approx(record["after"][attack])


def test_breaker_codes_by_hand():
    after = {"clean": [1, 1, 1, 0], "apgd-ce": [1, 0, 1, 0], "square": [0, 0, 1, 0]}
    codes, names = breaker_codes({k: np.array(v, dtype=bool) for k, v in after.items()})
    assert names == ["apgd-ce", "square"] and codes.tolist() == [2, 1, -1, 0]


def _written(tmp_path, n=50, seed=0, **points):
    model, data = _noisy_problem(n=n, seed=seed)
    folder = tmp_path / f"r{seed}-{n}-{len(points)}"
    result = evaluate(model, data, [{"name": "tiny_fgsm", "eps": 0.05}], batch_size=16, output_dir=folder,
                      progress=False, points={**POINTS, **points})
    return folder / result["outcomes"]["file"], result["outcomes"]["sha256"]


def test_damaged_files_are_refused(manager, tmp_path):
    path, sha = _written(tmp_path)
    with pytest.raises(OutcomesError, match="missing"):
        read_outcomes(path.with_name("gone.npz"), sha)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(OutcomesError, match="does not match .* truncated or was altered"):
        read_outcomes(path, sha)
    # truncated, and the recorded sha256 updated to match: still refused as unreadable
    with pytest.raises(OutcomesError, match="not a readable outcomes file"):
        read_outcomes(path, hashlib.sha256(path.read_bytes()).hexdigest())


def test_object_arrays_are_never_unpickled(tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array([1]), index=np.array([object()], dtype=object))
    path = tmp_path / "evil.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(OutcomesError, match="not a readable outcomes file"):
        read_outcomes(path, hashlib.sha256(buffer.getvalue()).hexdigest())


def test_inconsistent_arrays_are_refused(manager, tmp_path):
    path, _ = _written(tmp_path)
    with zipfile.ZipFile(path) as z:
        arrays = {name[:-4]: np.load(io.BytesIO(z.read(name))) for name in z.namelist()}
    arrays["clean"] = arrays["clean"][:10]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(OutcomesError, match="malformed .* 'clean' has shape"):
        read_outcomes(path, hashlib.sha256(buffer.getvalue()).hexdigest())


def test_different_points_are_refused(manager, tmp_path):
    a = read_outcomes(*_written(tmp_path, n=50, seed=0))
    b = read_outcomes(*_written(tmp_path, n=50, seed=1))  # same n, different labels
    c = read_outcomes(*_written(tmp_path, n=40, seed=0))
    d = read_outcomes(*_written(tmp_path, n=50, seed=0, dataset="other"))
    e = read_outcomes(*_written(tmp_path, n=50, seed=0, card_sha256="d" * 64))
    check_same_points(a, a)
    with pytest.raises(NotComparableError, match="indices or labels differ"):
        check_same_points(a, b)
    with pytest.raises(NotComparableError, match="different number of points: A has 50, B has 40"):
        check_same_points(a, c)
    with pytest.raises(NotComparableError, match="different dataset: A has 'toy', B has 'other'"):
        check_same_points(a, d)
    with pytest.raises(NotComparableError, match="different dataset card version"):
        check_same_points(a, e)


def test_size_per_thousand_points(manager, tmp_path):
    """Under 50 kB per 1,000 points per threat (the budget); in practice a few kB."""
    rng = np.random.default_rng(0)
    from rftbench.outcomes import Outcomes

    n = 1000
    label = rng.integers(0, 10, n)
    out = Outcomes(index=np.arange(n), label=label, clean=rng.random(n) < 0.8, margin=rng.normal(size=n).astype(np.float32),
                   correct={f"t{i}": rng.random(n) < 0.4 for i in range(4)}, points={"n": n})
    ref = write_outcomes(out, tmp_path / "o.npz")
    assert ref["bytes"] < 50_000 * 4
    back = read_outcomes(tmp_path / "o.npz", ref["sha256"])
    assert json.dumps(back.points) == json.dumps(out.points)


def test_a_zip_bomb_is_refused(tmp_path, monkeypatch):
    import rftbench.outcomes as oc

    buffer = io.BytesIO()
    np.savez_compressed(buffer, format=np.array([1]), index=np.zeros(2_000_000, dtype=np.int64))
    data = buffer.getvalue()
    path = tmp_path / "bomb.npz"
    path.write_bytes(data)
    monkeypatch.setattr(oc, "MAX_UNPACKED_BYTES", 1 << 20)
    with pytest.raises(OutcomesError, match="MiB unpacked"):
        read_outcomes(path, hashlib.sha256(data).hexdigest())
