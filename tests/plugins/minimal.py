"""A self-contained set of contributions with the default config's names, so that config and CLI
tests do not depend on the built-in plugins."""

from typing import Literal

from pydantic import Field, model_validator

from rftbench import (
    ArchitectureSpec,
    DatasetCard,
    DatasetSourceSpec,
    Epsilon,
    LossSpec,
    Params,
    ProtocolSpec,
    RepresentationCard,
    ScheduleSpec,
    ThreatModelSpec,
    hookimpl,
)


class TradesParams(Params):
    beta: float = Field(1.0, ge=0, description="weight of the KL term")


class LinfParams(Params):
    eps: Epsilon = Field(4 / 255, le=1, description="L∞ budget on the [0, 1] scale")
    steps: int = Field(10, ge=0)
    attack: Literal["pgd", "apgd-ce"] = "apgd-ce"


class HingeParams(Params):
    t1: float = Field(0.25, ge=0)
    t2: float = Field(0.75, ge=0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.t1 > self.t2:
            raise ValueError(f"t1 ({self.t1}) must not exceed t2 ({self.t2})")
        return self


def _noop(**kwargs):
    return kwargs


@hookimpl
def rftbench_add_losses():
    return [
        LossSpec(name="trades", description="TRADES.", params=TradesParams, factory=_noop),
        LossSpec(name="classic_at", description="Classic AT.", factory=_noop),
    ]


@hookimpl
def rftbench_add_protocols():
    return [ProtocolSpec(name="fft", description="Full fine-tuning.", factory=_noop)]


@hookimpl
def rftbench_add_threat_models():
    return [ThreatModelSpec(name="linf", description="L∞ ball.", norm="linf", params=LinfParams, factory=_noop)]


@hookimpl
def rftbench_add_schedules():
    return [
        ScheduleSpec(name="constant", description="1 throughout.", factory=_noop),
        ScheduleSpec(name="cosine", description="Cosine decay.", targets=("lr",), factory=_noop),
        ScheduleSpec(name="two-hinge", description="Epsilon-Scheduling.", targets=("epsilon",), params=HingeParams, factory=_noop),
    ]


CARD = dict(
    source="recipe",
    model="mini_resnet",
    family="convolutional",
    size="tiny",
    params_m=0.1,
    pretraining={"strategy": "supervised", "data": "shapes"},
    input={"resolution": 32},
    provenance={"license": "apache-2.0"},
)


@hookimpl
def rftbench_add_representations():
    return [RepresentationCard(id="mini_resnet.shapes_standard", **CARD)]


@hookimpl
def rftbench_add_datasets():
    return [
        DatasetCard(
            id="digits",
            source="offline",
            num_classes=10,
            splits={"train": {"rule": "stratified", "fraction": 0.7}, "test": {"rule": "stratified", "fraction": 0.3}},
            provenance={"license": "bsd-3-clause"},
        )
    ]


@hookimpl
def rftbench_add_architectures():
    # The cards' sources: `config show` checks that a plugin provides them.
    return [ArchitectureSpec(name="recipe", description="Builds the mini backbones.", factory=_noop)]


@hookimpl
def rftbench_add_dataset_sources():
    return [DatasetSourceSpec(name="offline", description="Loads the offline datasets.", factory=_noop)]
