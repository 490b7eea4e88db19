"""Metrics: hand-computed expected robustness and subset estimate; AS, margins and aggregates on a linear model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from scipy.stats import kendalltau
from torch.utils.data import TensorDataset

from rftbench.errors import ConfigError
from rftbench.evaluation import EvaluationError, evaluate
from rftbench.evaluation.expected import eps_grid, expected_robustness
from rftbench.evaluation.margins import PseudoMargin, fit_threshold, subset_estimate
from rftbench_plugins import metrics as plugin
from tests.plugins import evaluation as fx
from tests.plugins.evaluation import one_thread  # noqa: F401 - fixture

SHAPE = (3, 8, 8)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_expected_robustness_by_hand():
    grid = eps_grid(4 / 255)
    assert grid == pytest.approx([0, 1 / 255, 2 / 255, 3 / 255, 4 / 255])
    # h·[(1+.8)/2 + (.8+.6)/2 + (.6+.5)/2 + (.5+.4)/2] / 4h = 2.6 / 4
    assert expected_robustness(grid, [1, 0.8, 0.6, 0.5, 0.4]) == pytest.approx(0.65)
    # a budget that is not a whole number of steps: the last step is shorter
    grid = eps_grid(2.5 / 255)
    assert grid == pytest.approx([0, 1 / 255, 2 / 255, 2.5 / 255])
    # [(1+.5)/2·1 + (.5+.5)/2·1 + (.5+0)/2·0.5] / 2.5 = (0.75 + 0.5 + 0.125) / 2.5
    assert expected_robustness(grid, [1, 0.5, 0.5, 0]) == pytest.approx(1.375 / 2.5)
    assert expected_robustness([0, 0.1], [0.7, 0.7]) == pytest.approx(0.7)  # flat curve


def test_subset_estimate_by_hand():
    margin = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    correct = np.ones(10, dtype=bool)
    subset = np.array([0, 2, 4, 6, 8])  # margins .1 .3 .5 .7 .9
    robust = np.array([False, False, True, True, True])
    # 3 robust: the threshold sits between the 3rd (.5) and 4th (.3) largest margins
    assert fit_threshold(margin[subset], correct[subset], robust) == pytest.approx(0.4)
    record = subset_estimate(margin, correct, subset, robust, n_boot=50)
    # the rest (.2 .4 .6 .8 1.0) above .4: 3 points; (3 measured + 3 predicted) / 10
    assert record["value"] == pytest.approx(0.6)
    assert record["subset_acc"] == pytest.approx(0.6) and record["n_subset"] == 5
    assert record["std"] >= 0 and record["ci95"][0] <= record["value"] <= record["ci95"][1] + 1e-9
    # misclassified points are never counted robust, whatever their margin
    correct2 = correct.copy()
    correct2[9] = False
    assert subset_estimate(margin, correct2, subset, robust, n_boot=10)["value"] == pytest.approx(0.5)


@pytest.fixture
def linear_case():
    model = fx.linear_model(classes=5, shape=SHAPE)
    x, y, margin = fx.straddling_points(model, "linf", 0.02, n_each=6, shape=SHAPE)
    return model, TensorDataset(x, y), margin


def test_expected_robustness_metric_follows_the_closed_form_curve(builtins, linear_case):
    model, data, margin = linear_case
    suite = [{"name": "expected_robustness", "eps": 0.03, "step": 0.006, "steps": 20}]
    record = evaluate(model, data, suite, progress=False)["metrics"]["expected_robustness:linf:0.03"]
    grid = record["curve"]["eps"]
    assert grid == pytest.approx([0, 0.006, 0.012, 0.018, 0.024, 0.03])
    exact = [float((margin > e).float().mean()) for e in grid]
    assert record["curve"]["acc"] == pytest.approx(exact)
    assert record["value"] == pytest.approx(expected_robustness(grid, exact))


def test_adversarial_sensitivity_on_a_linear_model(builtins, linear_case):
    """g(x) = x: the largest L∞ shift in L2 is the ball's corner, eps·√d, inside the box here."""
    model, data, _ = linear_case
    eps = 0.02
    result = evaluate(model, data, [{"name": "adversarial_sensitivity", "eps": eps, "steps": 10}], progress=False)
    record = result["metrics"]["adversarial_sensitivity:linf:0.02"]
    d = math.prod(SHAPE)
    assert record["value"] == pytest.approx(eps * math.sqrt(d), rel=1e-4)
    w = model.head.weight.detach()
    assert record["head_spectral_norm"] == pytest.approx(float(torch.linalg.matrix_norm(w, ord=2)), rel=1e-5)
    x, y = data.tensors
    logits = model(x).detach()
    other = logits.scatter(1, y[:, None], -math.inf).amax(1)
    margin = logits.gather(1, y[:, None]).squeeze(1) - other
    lipschitz = torch.cdist(w, w)[y].amax(1)
    assert record["certified_share"] == pytest.approx(float((margin > lipschitz * eps * math.sqrt(d)).float().mean()))
    assert record["certified_share"] <= record["robust_acc_pgd"] + 1e-9  # a certificate never exceeds robustness
    assert record["ce_gap_normalised"] <= record["lemma1_bound"] + 1e-6


def test_margin_consistency_matches_closed_form_margins(builtins, linear_case, tmp_path):
    model, data, margin = linear_case
    suite = [{"name": "margin_consistency", "eps": 0.02, "n": 12, "fab_steps": 25}]
    result = evaluate(model, data, suite, output_dir=tmp_path, progress=False)
    record = result["metrics"]["margin_consistency:linf:0.02"]
    x, _ = data.tensors
    logits = model(x).detach().topk(2, 1).values
    tau, _ = kendalltau(margin.numpy(), (logits[:, 0] - logits[:, 1]).numpy())
    assert record["kendall_tau"] == pytest.approx(tau, abs=0.02)
    assert record["non_robust_share"] == pytest.approx(0.5) and record["n_unbroken"] == 0
    # detection of the non-robust points (closed-form input margin ≤ ε) by −logit margin, as sklearn scores it
    from sklearn.metrics import average_precision_score, roc_auc_score

    non_robust = (margin <= 0.02).numpy()
    score = -(logits[:, 0] - logits[:, 1]).numpy()
    assert record["auroc"] == pytest.approx(roc_auc_score(non_robust, score))
    assert record["aupr"] == pytest.approx(average_precision_score(non_robust, score)) and record["fpr_at_95_tpr"] == 0.0
    assert (tmp_path / "margin_consistency_linf_0.02.png").exists()


def test_subset_estimate_metric_uses_the_suite_measurement(builtins, linear_case):
    model, data, margin = linear_case
    threat = {"name": "linf", "eps": 0.02, "attack": "apgd-ce", "steps": 20}
    suite = [threat, {"name": "subset_estimate", "threat": threat, "n": 6, "n_boot": 20}]
    result = evaluate(model, data, suite, progress=False)
    record = result["metrics"]["subset_estimate:linf:0.02"]
    assert result["threats"]["linf:0.02"]["acc"] == pytest.approx(0.5)
    assert record["measured_acc"] == pytest.approx(0.5) and record["n_subset"] == 6 and record["n_total"] == 12
    # the linear model is margin-consistent: the threshold fitted on 6 points classifies the other 6 exactly
    assert record["value"] == pytest.approx(0.5) and record["error"] == pytest.approx(0.0)
    correct = np.ones(12, dtype=bool)
    lm = model(data.tensors[0]).detach().topk(2, 1).values
    lm = (lm[:, 0] - lm[:, 1]).numpy()
    subset = np.sort(torch.randperm(12, generator=torch.Generator().manual_seed(0))[:6].numpy())
    by_hand = subset_estimate(lm, correct, subset, (margin > 0.02).numpy()[subset], n_boot=20)
    assert record["threshold"] == pytest.approx(by_hand["threshold"])


class RescaledModel(torch.nn.Module):
    """Not margin-consistent by construction: a two-layer linear classifier whose logits are multiplied
    by a positive per-example factor exp(8·(x₀ − ½)). Decisions and input margins are those of the
    linear model; the logit margin is scrambled by the factor."""

    def __init__(self, seed: int = 0, d: int = 48, width: int = 8, classes: int = 3):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.proj = torch.nn.Linear(d, width, bias=False)
        self.head = torch.nn.Linear(width, classes)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(width, d, generator=g) * 4 / d**0.5)
            self.head.weight.copy_(torch.randn(classes, width, generator=g))
            self.head.bias.copy_(torch.randn(classes, generator=g) * 0.1)

    def features(self, x):
        return self.proj(x.flatten(1))

    def forward(self, x):
        return self.head(self.features(x)) * torch.exp(8 * (x.flatten(1)[:, :1] - 0.5))

    def linear(self) -> fx.LinearModel:
        return fx.LinearModel(self.head.weight.detach() @ self.proj.weight.detach(), self.head.bias.detach())


def rescaled_case(n: int, seed: int = 3):
    model = RescaledModel()
    x = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(seed)) * 0.8 + 0.1
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def test_pseudo_margin_recovers_kendall_tau_where_the_logit_margin_fails():
    model, x, y = rescaled_case(400)
    margin = fx.exact_margins(model.linear(), x, y, "linf")
    with torch.no_grad():
        top = model(x).topk(2, 1).values
        features = model.features(x)
    logit = top[:, 0] - top[:, 1]
    fit, test = slice(0, 200), slice(200, 400)
    pseudo = PseudoMargin(seed=0).fit(features[fit], margin[fit])(features[test])
    tau_logit = kendalltau(margin[test], logit[test])[0]
    tau_pseudo = kendalltau(margin[test], pseudo)[0]
    assert tau_logit < 0.5 and tau_pseudo > 0.8 and tau_pseudo > tau_logit + 0.3
    again = PseudoMargin(seed=0).fit(features[fit], margin[fit])(features[test])
    assert torch.equal(pseudo, again)  # deterministic given its seed


def test_margin_consistency_and_subset_estimate_use_the_pseudo_margin_on_an_inconsistent_model(builtins):
    model, x, y = rescaled_case(120)
    data = TensorDataset(x, y)
    threat = {"name": "linf", "eps": 0.05, "attack": "apgd-ce", "steps": 20}
    suite = [
        {"name": "margin_consistency", "eps": 0.05, "n": 120, "fab_steps": 30},
        threat,
        {"name": "subset_estimate", "threat": threat, "n": 60, "n_boot": 10, "margin": "logit"},
        {"name": "subset_estimate", "threat": threat, "n": 60, "n_boot": 10, "margin": "auto", "fab_steps": 30},
    ]
    result = evaluate(model, data, suite, progress=False)
    record = result["metrics"]["margin_consistency:linf:0.05"]
    pseudo = record["pseudo_margin"]
    assert record["kendall_tau"] < 0.5 and record["margin_used"] == "pseudo"
    assert pseudo["n_fit"] + pseudo["n_test"] == 120 - record["n_unbroken"]
    assert pseudo["kendall_tau"] > pseudo["kendall_tau_logit"] + 0.3
    assert record["auroc"] == pseudo["auroc"] and record["auroc"] > 0.9
    logit, auto = result["metrics"]["subset_estimate:linf:0.05"], result["metrics"]["subset_estimate[auto]:linf:0.05"]
    assert logit["margin"] == "logit" and auto["margin"] == "pseudo" and auto["kendall_tau_logit_subset"] < 0.5
    assert abs(auto["error"]) < abs(logit["error"])


def test_pseudo_margin_errors_are_named(builtins):
    model, x, y = rescaled_case(20)
    data = TensorDataset(x, y)
    corruption = {"name": "subset_estimate", "threat": {"name": "corruptions", "severity": 1}, "margin": "pseudo"}
    with pytest.raises(ConfigError, match=r"evaluation.0 \(subset_estimate\): margin='pseudo' needs an Lp threat model"):
        evaluate(model, data, [corruption], progress=False)
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3))  # no features/head
    suite = [{"name": "subset_estimate", "threat": {"name": "linf", "eps": 0.05, "attack": "apgd-ce"}, "n": 10,
              "n_boot": 10, "margin": "pseudo", "fab_steps": 5}]
    with pytest.raises(EvaluationError, match="no pseudo-margin possible: the model exposes no features/head"):
        evaluate(plain, data, suite, progress=False)

    model, data = fx.linear_problem(n=10, shape=SHAPE)
    suite = [{"name": "linf", "eps": 0.001, "attack": "apgd-ce"}, "aggregates"]
    result = evaluate(model, data, suite, progress=False)
    accs = [result["clean_acc"], result["threats"]["linf:0.001"]["acc"]]
    record = result["metrics"]["aggregates"]
    assert record["sum"] == pytest.approx(sum(accs)) and record["geom"] == pytest.approx(math.prod(accs))
    assert record["of"] == ["clean", "linf:0.001"]
    with pytest.raises(EvaluationError, match="'l2:2' not measured"):
        evaluate(model, data, [{"name": "aggregates", "of": ["clean", "l2:2"]}], progress=False)


def test_bad_metric_parameters(builtins):
    with pytest.raises(ValidationError, match="write 8/255"):
        plugin.ExpectedRobustnessParams(eps=8)
    with pytest.raises(ValidationError, match="norm"):
        plugin.SensitivityParams(norm="l1")
    model, data = fx.linear_problem(n=4, shape=SHAPE)
    with pytest.raises(ConfigError, match="evaluation.0 \\(margin_consistency\\)"):
        evaluate(model, data, [{"name": "margin_consistency", "eps": 8}], progress=False)


def test_sensitivity_needs_a_representation_and_a_head(builtins):
    _, data = fx.linear_problem(n=4, shape=SHAPE)
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(math.prod(SHAPE), 3))
    with pytest.raises(EvaluationError, match="model.features\\(x\\).*model.head"):
        evaluate(plain, data, ["adversarial_sensitivity"], progress=False)
