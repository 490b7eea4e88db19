"""Built-in plugin ``metrics``: metrics computed on a trained model after its threat models.

Clean accuracy and the accuracy under each threat model are always measured by the evaluator;
these add the diagnostics of the literature:

- ``expected_robustness``: mean accuracy over ε uniform on [0, ε_g] (trapezoid, 1/255 grid), with its curve;
- ``adversarial_sensitivity``: AS of the representation and Nern et al.'s bound quantities;
- ``margin_consistency``: Kendall τ between FAB input margins and logit margins; AUROC/AUPR/FPR@95 at ε;
  with a pseudo-margin (MLP on penultimate features) and its τ for models that are not margin-consistent;
- ``subset_estimate``: robust accuracy estimated from ``n`` attacked points by a logit-margin (or
  pseudo-margin) threshold;
- ``aggregates``: the reference study's ``sum`` and ``geom`` (product) of the accuracies.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from rftbench import Epsilon, MetricSpec, Params, hookimpl
from rftbench.specs import lazy

# The metrics' code (and torch) is imported when a metric is built, not when plugins are listed.
Aggregates = lazy("rftbench.evaluation.aggregates:Aggregates")
ExpectedRobustness = lazy("rftbench.evaluation.expected:ExpectedRobustness")
MarginConsistency = lazy("rftbench.evaluation.margins:MarginConsistency")
SubsetEstimate = lazy("rftbench.evaluation.margins:SubsetEstimate")
AdversarialSensitivity = lazy("rftbench.evaluation.sensitivity:AdversarialSensitivity")


def _pixel_scale(norm: str, eps: float) -> None:
    if norm == "linf" and eps > 1:
        hint = f"{eps:g}/255" if eps <= 255 else "a value in [0, 1]"
        raise ValueError(f"eps={eps:g}: an L∞ budget is on the [0, 1] pixel scale and must be at most 1; write {hint}")


class ExpectedRobustnessParams(Params):
    norm: Literal["linf", "l2"] = Field("linf", description="the threat's norm")
    eps: Epsilon = Field(4 / 255, gt=0, description="ε_g, the upper end of the ε range")
    step: Epsilon = Field(1 / 255, gt=0, description="grid step of the trapezoid rule")
    attack: str = Field("apgd-ce", description="the attack measuring accuracy at each ε (an installed attack: rftbench plugins --kind attack)")
    steps: int = Field(10, ge=1, le=10_000, description="attack iterations (10 in the paper's evaluation)")

    @model_validator(mode="after")
    def _check(self) -> ExpectedRobustnessParams:
        _pixel_scale(self.norm, self.eps)
        if self.eps / self.step > 2000:
            raise ValueError(f"eps/step = {self.eps / self.step:.0f} grid points: too many; raise step")
        return self


class SensitivityParams(Params):
    norm: Literal["linf", "l2"] = Field("linf", description="the threat's norm (PGD supports L∞ and L2)")
    eps: Epsilon = Field(4 / 255, gt=0, description="the budget within which the feature shift is maximised")
    steps: int = Field(10, ge=1, le=10_000, description="PGD iterations")
    step_size: Epsilon | None = Field(None, description="PGD step (default 2.5·eps/steps)")
    n: int | None = Field(None, ge=1, description="use the first n points (all when unset)")

    @model_validator(mode="after")
    def _check(self) -> SensitivityParams:
        _pixel_scale(self.norm, self.eps)
        return self


class MarginParams(Params):
    norm: Literal["linf", "l2", "l1"] = Field("linf", description="norm of the input margin")
    eps: Epsilon = Field(4 / 255, gt=0, description="a point is non-robust when its input margin is at most eps")
    n: int = Field(500, ge=2, description="points on which FAB measures input margins (a random subset)")
    fab_steps: int = Field(100, ge=1, le=10_000, description="FAB iterations")
    restarts: int = Field(1, ge=1, le=100, description="FAB restarts")
    seed: int = Field(0, ge=0)
    pseudo_margin: Literal["auto", "on", "off"] = Field(
        "auto", description="fit a pseudo-margin (MLP on penultimate features → input margin) on half the points and report its "
        "Kendall τ on the other half; 'auto' uses it for detection when the logit margin's τ is below min_tau, 'on' always")
    min_tau: float = Field(0.5, ge=-1.0, le=1.0, description="Kendall τ below which a model counts as not margin-consistent")

    @model_validator(mode="after")
    def _check(self) -> MarginParams:
        _pixel_scale(self.norm, self.eps)
        return self


class SubsetParams(Params):
    threat: dict[str, Any] = Field(
        default_factory=lambda: {"name": "linf", "eps": "4/255", "attack": "autoattack"},
        description="the threat model to estimate, as a suite item {name: …, param: …}",
    )
    n: int = Field(500, ge=2, description="points attacked")
    seed: int = Field(0, ge=0, description="draws the subset and the bootstrap")
    n_boot: int = Field(200, ge=10, le=100_000, description="bootstrap resamples for the error bar")
    margin: Literal["logit", "pseudo", "auto"] = Field(
        "logit", description="margin to threshold: the logit margin, a pseudo-margin fitted on the subset's FAB input margins, "
        "or 'auto' (the pseudo-margin when the logit margin's Kendall τ on the subset is below min_tau); the last two run FAB on the subset")
    fab_steps: int = Field(100, ge=1, le=10_000, description="FAB iterations (margin: pseudo or auto)")
    min_tau: float = Field(0.5, ge=-1.0, le=1.0, description="Kendall τ below which the logit margin is replaced (margin: auto)")

    @field_validator("threat", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if not isinstance(value, dict) or "name" not in value:
            raise ValueError("threat must be a mapping with a name, e.g. {name: linf, eps: 4/255, attack: autoattack}")
        return value


class AggregateParams(Params):
    of: list[str] | None = Field(None, description="labels to aggregate (default: clean and every threat model)")


@hookimpl
def rftbench_add_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(name="expected_robustness", params=ExpectedRobustnessParams, factory=ExpectedRobustness,
                   description="Mean accuracy over ε uniform on [0, ε_g], trapezoid rule on a 1/255 grid (Epsilon-Scheduling)"),
        MetricSpec(name="adversarial_sensitivity", params=SensitivityParams, factory=AdversarialSensitivity,
                   description="Mean feature shift ‖g(x+δ)−g(x)‖₂ under the budget, with Nern et al.'s bound quantities"),
        MetricSpec(name="margin_consistency", params=MarginParams, factory=MarginConsistency,
                   description="Kendall τ between FAB input margins and logit margins; AUROC of the logit margin at ε"),
        MetricSpec(name="subset_estimate", params=SubsetParams, factory=SubsetEstimate,
                   description="Robust accuracy estimated from n attacked points by a logit-margin threshold, with a bootstrap error bar"),
        MetricSpec(name="aggregates", params=AggregateParams, factory=Aggregates,
                   description="The reference study's sum and geom (product) of clean and threat accuracies"),
    ]
