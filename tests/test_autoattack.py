"""AutoAttack: exact on a linear classifier, agrees with torchattacks, adjusts to few classes."""

from __future__ import annotations

import math

import pytest
import torch

from rftbench.attacks.autoattack import AttackError, AutoAttack, minimum_norm_perturbation
from tests.plugins import evaluation as fx
from tests.plugins.evaluation import one_thread  # noqa: F401 - fixture

SHAPE = (3, 8, 8)  # Square's L2 initialisation needs images of at least 5×5
BUDGETS = {"linf": 0.02, "l2": 0.08, "l1": 0.08}
QUICK = 25  # iterations: plenty on a linear model (the slow tests run the standard 100)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    return fx.linear_model(classes=5, shape=SHAPE)


EXACT_ALONE = [(a, n) for a in ("apgd-ce", "apgd-t", "fab-t") for n in ("linf", "l2", "l1") if (a, n) != ("apgd-t", "l1")]


# L1 APGD-T alone misses a few points here (its sparse steps aim at 4 targets in turn); the
# standard ensemble, where APGD-CE runs first, is exact for L1 too (the slow test below).
@pytest.mark.parametrize(("attack", "norm"), EXACT_ALONE)
def test_each_white_box_attack_is_exact_on_a_linear_classifier(model, norm, attack):
    eps = BUDGETS[norm]
    x, y, margin = fx.straddling_points(model, norm, eps, n_each=5, shape=SHAPE)
    result = AutoAttack(norm, eps, version="custom", attacks=[attack], n_iter=QUICK).run(model, x, y)
    # broken exactly where the closed-form margin is below ε, never above
    assert (~result.robust).tolist() == (margin < eps).tolist()
    delta = (result.x_adv - x).flatten(1)
    p = {"linf": math.inf, "l2": 2, "l1": 1}[norm]
    assert (delta.norm(p=p, dim=1) <= eps * (1 + 1e-4)).all()
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_standard_ensemble_is_exact_on_a_linear_classifier(model, norm):
    eps = BUDGETS[norm]
    x, y, margin = fx.straddling_points(model, norm, eps, n_each=6, shape=SHAPE)
    result = AutoAttack(norm, eps).run(model, x, y)
    assert list(result.after) == ["clean", "apgd-ce", "apgd-t", "fab-t", "square"]
    assert (~result.robust).tolist() == (margin < eps).tolist()
    assert result.after["square"] == pytest.approx(0.5)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_fab_margins_match_the_closed_form(model, norm):
    x, y, margin = fx.straddling_points(model, norm, BUDGETS[norm], n_each=4, shape=SHAPE)
    found = minimum_norm_perturbation(model, x, y, norm=norm, n_iter=QUICK)
    # FAB overshoots the boundary by a small factor and then searches back: within 1%
    assert torch.allclose(found, margin, rtol=0.01)
    assert (found >= margin * (1 - 1e-4)).all()  # never below the true minimum


def test_fab_margins_of_misclassified_points_are_zero(model):
    x, y, _ = fx.straddling_points(model, "l2", 0.08, n_each=2, shape=SHAPE)
    wrong = (y + 1) % 5
    assert minimum_norm_perturbation(model, x, wrong, norm="l2", n_iter=QUICK).tolist() == [0.0] * 4


def test_run_reports_worst_case_per_point_and_which_attack_broke_it(model):
    x, y, margin = fx.straddling_points(model, "linf", 0.02, n_each=4, shape=SHAPE)
    y = y.clone()
    y[0] = (y[0] + 1) % 5  # misclassified without attack
    result = AutoAttack("linf", 0.02, version="custom", attacks=["apgd-ce", "fab-t"], n_iter=QUICK).run(model, x, y)
    assert result.broken_by[0] == "clean"
    assert all(b == "apgd-ce" for b in result.broken_by[1:4])
    assert all(b is None for b in result.broken_by[4:])
    assert result.after == {"clean": 7 / 8, "apgd-ce": 0.5, "fab-t": 0.5}


def test_few_classes_adjust_targets_and_drop_apgd_t():
    model = fx.linear_model(classes=3, shape=SHAPE)
    aa, attacks, notes = AutoAttack("linf", 0.02).configure(model, 3, torch.device("cpu"))
    assert attacks == ["apgd-ce", "fab-t", "square"]
    assert aa.fab.n_target_classes == 2
    assert any("APGD-T left out" in n for n in notes) and any("FAB-T uses 2 target classes" in n for n in notes)
    aa, attacks, notes = AutoAttack("linf", 0.02).configure(model, 10, torch.device("cpu"))
    assert attacks == ["apgd-ce", "apgd-t", "fab-t", "square"] and notes == []
    assert aa.apgd_targeted.n_target_classes == 9


def test_bad_settings_are_refused():
    with pytest.raises(AttackError, match="norm 'l0'"):
        AutoAttack("l0", 0.1)
    with pytest.raises(AttackError, match="eps=0"):
        AutoAttack("linf", 0)
    with pytest.raises(AttackError, match="unknown AutoAttack attack"):
        AutoAttack("linf", 0.1, version="custom", attacks=["pgd"])
    with pytest.raises(AttackError, match="only applies to version='custom'"):
        AutoAttack("linf", 0.1, attacks=["apgd-ce"])


def test_apgd_agrees_with_torchattacks_on_a_trained_model():
    torchattacks = pytest.importorskip("torchattacks")
    model = fx.trained_cnn()
    x, y = fx.template_data(48, seed=99)
    ours = AutoAttack("linf", 32 / 255, version="custom", attacks=["apgd-ce"], n_iter=QUICK).run(model, x, y).robust.float().mean()
    theirs_attack = torchattacks.APGD(model, norm="Linf", eps=32 / 255, steps=QUICK, n_restarts=1, loss="ce", seed=0)
    x_adv = theirs_attack(x, y)
    theirs = (model(x_adv).argmax(1) == y).float().mean()
    assert 0.05 < float(theirs) < 0.95, "the budget should leave a non-trivial robust accuracy"
    assert abs(float(ours) - float(theirs)) <= 2 / 48 + 1e-9
    assert float(ours) <= float(theirs) + 1 / 48 + 1e-9


@pytest.mark.slow
@pytest.mark.parametrize(("norm", "eps", "library_norm"), [("linf", 32 / 255, "Linf"), ("l2", 1.25, "L2")])
def test_standard_autoattack_agrees_with_torchattacks_through_the_evaluator(builtins, norm, eps, library_norm):
    """Same trained model, same 100 points: within 1 point of torchattacks' AutoAttack and never weaker."""
    torchattacks = pytest.importorskip("torchattacks")
    from torch.utils.data import TensorDataset

    from rftbench.evaluation import evaluate

    model = fx.trained_cnn()
    x, y = fx.template_data(100, seed=99)
    suite = [{"name": norm, "eps": eps, "attack": "autoattack"}]
    result = evaluate(model, TensorDataset(x, y), suite, batch_size=100, progress=False)
    (ours,) = result["threats"].values()
    assert set(ours["after"]) == {"clean", "apgd-ce", "apgd-t", "fab-t", "square"}
    theirs_attack = torchattacks.AutoAttack(model, norm=library_norm, eps=eps, version="standard", n_classes=10, seed=0)
    theirs = float((model(theirs_attack(x, y)).argmax(1) == y).float().mean())
    assert 0.05 < theirs < 0.95, "the budget should leave a non-trivial robust accuracy"
    assert abs(ours["acc"] - theirs) <= 0.01 + 1e-9
    assert ours["acc"] <= theirs + 0.01 + 1e-9  # never weaker by more than a point


def test_registered_autoattack_through_the_builtin_threat_models(builtins):
    """`linf`/`l2`/`l1` with attack=autoattack: exact on a linear model, accuracy after each attack reported."""
    from torch.utils.data import TensorDataset

    from rftbench.evaluation import evaluate

    model = fx.linear_model(classes=5, shape=SHAPE)
    for norm in ("linf", "l1"):
        eps = BUDGETS[norm]
        x, y, margin = fx.straddling_points(model, norm, eps, n_each=4, shape=SHAPE)
        below = margin < eps
        suite = [{"name": norm, "eps": eps, "attack": "autoattack", "steps": QUICK}]
        result = evaluate(model, TensorDataset(x[below], y[below]), suite, progress=False)
        (record,) = result["threats"].values()
        assert record["acc"] == 0.0 and record["after"]["clean"] == 1.0
        assert record["attack"] == "autoattack" and record["implementation"].startswith("pyautoattack")
        assert [f["check"] for f in result["flags"]] == ["few_classes"] * len(result["flags"])
        assert all(f["severity"] == "info" for f in result["flags"]) and result["reliable"]


def test_whole_set_in_chunks_gives_the_same_outcome(model):
    """The evaluator hands AutoAttack the whole set; chunking must not change which points are robust."""
    x, y, margin = fx.straddling_points(model, "l2", 0.08, n_each=5, shape=SHAPE)
    attack = AutoAttack("l2", 0.08, version="custom", attacks=["apgd-ce", "fab-t"], n_iter=QUICK)
    whole = attack.run(model, x, y)
    chunked = attack.run(model, x, y, batch_size=3)
    assert chunked.robust.tolist() == whole.robust.tolist() == (margin >= 0.08).tolist()
    assert chunked.after == whole.after
