"""The suite runner: clean and threat accuracy, determinism, bad input, model state restored."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from rftbench.config import Component
from rftbench.errors import ConfigError
from rftbench.evaluation import EvaluationError, evaluate
from tests.plugins import evaluation as fx
from tests.plugins.evaluation import manager, one_thread  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("one_thread")


def test_clean_and_threat_accuracy(manager):
    model, data = fx.linear_problem(n=40)
    with torch.no_grad():
        x, y = data.tensors
        y = y.clone()
        y[:10] = (y[:10] + 1) % 3  # 10 wrong labels: clean accuracy 0.75
    data = TensorDataset(x, y)
    result = evaluate(model, data, [Component(name="tiny_fgsm", params={"eps": 0.05})], batch_size=16, progress=False)
    assert result["n_examples"] == 40
    assert result["clean_acc"] == pytest.approx(0.75)
    record = result["threats"]["tiny_fgsm:0.05"]
    assert record["n"] == 40
    assert 0 <= record["acc"] <= 0.75
    # The threat accuracy equals a direct computation on the same points.
    threat = fx.TinyFGSM(0.05)
    ok = model(x).argmax(1) == y
    x_adv = threat.perturb(model, x[ok], y[ok])
    expected = (model(x_adv).argmax(1) == y[ok]).sum().item() / 40
    assert record["acc"] == pytest.approx(expected)
    assert result["reliable"] and record["reliable"]
    assert result["flags"] == []


def test_suite_items_accept_yaml_forms_and_are_deterministic(manager):
    model, data = fx.linear_problem(n=20)
    suite = ["tiny_fgsm", {"name": "tiny_fgsm", "eps": "8/255"}]
    a = evaluate(model, data, suite, batch_size=7, seed=3, progress=False)
    assert set(a["threats"]) == {"tiny_fgsm:0.1", f"tiny_fgsm:{8 / 255:g}"}
    # determinism needs randomness to control: an attack with a random start, run three times
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("other seed", 4)):
        fx.NoisyFGSM.SEEN.clear()
        torch.manual_seed(1000 + len(runs))  # the caller's RNG state must not matter
        evaluate(model, data, [{"name": "noisy_fgsm", "eps": 0.3}], batch_size=7, seed=seed, progress=False)
        runs[name] = list(fx.NoisyFGSM.SEEN)
    assert len(runs["a"]) == 3  # 20 points in batches of 7
    assert runs["a"] == runs["b"]  # same seed: the same adversarial examples, bit for bit
    assert runs["a"] != runs["other seed"]  # and the seed is what decides them


def test_n_examples_uses_the_first_points(manager):
    model, data = fx.linear_problem(n=30)
    result = evaluate(model, data, [], n_examples=12, progress=False)
    assert result["n_examples"] == 12 and result["clean_acc"] == 1.0


def test_n_examples_larger_than_test_set(manager):
    model, data = fx.linear_problem(n=10)
    with pytest.raises(ConfigError, match=r"n_examples=11 is larger than the test set \(10 images\)"):
        evaluate(model, data, [], n_examples=11, progress=False)


def test_unknown_name_and_bad_params_fail_before_any_work(manager):
    model, data = fx.linear_problem(n=10)
    with pytest.raises(ConfigError) as info:
        evaluate(model, data, ["tiny_fgsn", {"name": "tiny_fgsm", "eps": 8}], progress=False)
    message = str(info.value)
    assert "evaluation.0" in message and "Did you mean: tiny_fgsm" in message
    assert "evaluation.1" in message and "eps" in message and "less than or equal to 1" in message


def test_duplicate_label_is_refused(manager):
    model, data = fx.linear_problem(n=10)
    with pytest.raises(ConfigError, match="appears twice"):
        evaluate(model, data, ["tiny_fgsm", {"name": "tiny_fgsm", "eps": 0.1}], progress=False)


def test_target_that_is_not_a_classifier(manager):
    _, data = fx.linear_problem(n=10)
    with pytest.raises(EvaluationError, match="not a classifier"):
        evaluate(lambda x: x, data, [], progress=False)
    with pytest.raises(EvaluationError, match="logits \\[batch, classes\\]"):
        evaluate(torch.nn.Flatten(0), data, [], progress=False)


def test_model_state_is_restored(manager):
    model, data = fx.linear_problem(n=10)
    model.train()
    evaluate(model, data, ["tiny_fgsm"], progress=False)
    assert model.training
    assert all(p.requires_grad for p in model.parameters())


def test_budget_violation_is_flagged_not_hidden(manager):
    model, data = fx.linear_problem(n=16)
    result = evaluate(model, data, ["broken_fgsm"], progress=False)
    record = result["threats"]["broken_fgsm:0.1"]
    assert "acc" in record and record["reliable"] is False
    assert result["reliable"] is False
    assert [f["check"] for f in result["flags"]] == ["budget_violation"]


def test_plots_are_written(manager, tmp_path):
    model, data = fx.linear_problem(n=10)
    result = evaluate(model, data, ["tiny_fgsm"], output_dir=tmp_path, progress=False)
    assert result["plots"] == [str(tmp_path / "accuracy_per_threat.png")]
    assert (tmp_path / "accuracy_per_threat.png").stat().st_size > 1000


def test_device_problems_are_named(manager):
    model, data = fx.linear_problem(n=4)
    with pytest.raises(ConfigError, match="not a device"):
        evaluate(model, data, [], device="gpu0", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            evaluate(model, data, [], device="cuda", progress=False)


def test_evaluate_restores_each_module_mode_and_grad_flag():
    """A half-frozen model (an LP backbone in eval mode, its head training) comes back exactly as it was."""
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset

    from rftbench.evaluation import evaluate

    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    model.train()
    model[2].eval()
    model[1].weight.requires_grad_(False)
    data = TensorDataset(torch.rand(10, 3, 2, 2), torch.randint(0, 3, (10,)))
    evaluate(model, data, [], progress=False)
    assert [m.training for m in model] == [True, True, False, True]
    assert [p.requires_grad for p in model.parameters()] == [False, True, True, True, True, True]
