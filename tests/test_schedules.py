"""plugins/schedules.py: ε and learning-rate schedules."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from rftbench.config import load_config
from rftbench.errors import ConfigError
from rftbench_plugins.schedules import (
    Constant,
    Cosine,
    EpsilonScheduling,
    LinearWarmup,
    SlowStartFastDecay,
    WarmupCosine,
    epochs_at,
)


def test_targets(builtins):
    targets = {s.name: s.targets for s in builtins.items("schedule")}
    assert targets["epsilon-scheduling"] == ("epsilon",)
    assert targets["cosine"] == ("lr",) and targets["slow-start-fast-decay"] == ("lr",)
    assert set(targets["constant"]) == {"epsilon", "lr"} == set(targets["linear-warmup"])


def test_epsilon_scheduling_matches_the_paper():
    s = EpsilonScheduling(t1=12, t2=37, granularity="epoch")
    assert [s(t, 50) for t in (0, 11, 12)] == [0, 0, 0]
    assert s(13, 50) == pytest.approx(1 / 25)
    assert s(24.9, 50) == pytest.approx(12 / 25)  # evaluated at the integer epoch
    assert s(37, 50) == 1 and s(49.5, 50) == 1
    smooth = EpsilonScheduling(t1=12, t2=37, granularity="step")
    assert smooth(24.5, 50) == pytest.approx(12.5 / 25)
    default = EpsilonScheduling(t1="25%", t2="75%", granularity="step")
    assert default(12.5, 50) == pytest.approx(0.5 / 25) and default(24.5, 50) == pytest.approx(0.5)
    assert default(36.9, 50) < 1 and default(37, 50) == 1
    assert EpsilonScheduling(0, 0, "epoch")(0, 10) == 1  # fixed ε
    assert EpsilonScheduling(0, 10, "step")(5, 10) == pytest.approx(0.5)  # linear warm-up


def test_epsilon_scheduling_default_hinges_are_whole_epochs_rounded_down(builtins):
    """The paper's default over 50 epochs: T1 = 12, T2 = 37 (25% / 75%, rounded down)."""
    params = builtins.get("schedule", "epsilon-scheduling").validate_params({})
    s = EpsilonScheduling(**params.model_dump())
    assert s.hinges(50) == (12.0, 37.0) and s.hinges(5) == (1.0, 3.0) and s.hinges(8) == (2.0, 6.0)
    paper = EpsilonScheduling(t1=12, t2=37, granularity="epoch")
    assert [s(t, 50) for t in range(50)] == [paper(t, 50) for t in range(50)]
    assert s(13, 50) == pytest.approx(1 / 25) and s(36, 50) == pytest.approx(24 / 25) and s(37, 50) == 1


def test_t1_after_t2_is_refused_naming_the_field(builtins):
    spec = builtins.get("schedule", "epsilon-scheduling")
    with pytest.raises(ValidationError, match=r"t2\n.*must not come before T1"):
        spec.validate_params({"t1": 30, "t2": 20})
    with pytest.raises(ConfigError, match=r"eps_schedule.t2: .*T2 \(60%\) must not come before T1 \(70%\)"):
        load_config(overrides=["eps_schedule=epsilon-scheduling", "eps_schedule.t1=70%", "eps_schedule.t2=60%"], manager=builtins)
    mixed = EpsilonScheduling(t1=8, t2="50%", granularity="epoch")  # only known to be wrong for a 10-epoch run
    mixed.validate(20)
    with pytest.raises(ConfigError, match=r"eps_schedule.t1 \(8 = 8 epochs\) must not come after eps_schedule.t2"):
        mixed.validate(10)


def test_time_points(builtins):
    spec = builtins.get("schedule", "linear-warmup")
    assert spec.validate_params({"warmup": "10 %"}).warmup == "10%"
    assert spec.validate_params({"warmup": "3"}).warmup == 3.0
    assert epochs_at("25%", 8) == 2 and epochs_at(3, 8) == 3
    for bad in ("soon", "120%", -1, True):
        with pytest.raises(ValidationError, match="warmup"):
            spec.validate_params({"warmup": bad})


def test_lr_schedules():
    assert Constant()(3, 10) == 1
    c = Cosine(min_factor=0.1)
    assert c(0, 10) == 1 and c(10, 10) == pytest.approx(0.1) and c(5, 10) == pytest.approx(0.55)
    w = WarmupCosine(warmup=2, start=0.0, min_factor=0.0)
    assert w(0, 10) == 0 and w(1, 10) == pytest.approx(0.5) and w(2, 10) == 1
    assert w(6, 10) == pytest.approx(0.5) and w(10, 10) == pytest.approx(0)
    s = SlowStartFastDecay(warmup="20%", decay="30%", start=0.1, end=0.01)
    assert s(0, 10) == pytest.approx(0.1) and s(2, 10) == pytest.approx(1)
    assert s(3.5, 10) == pytest.approx(0.1) and s(5, 10) == pytest.approx(0.01) and s(9, 10) == pytest.approx(0.01)
    values = [s(t / 10, 10) for t in range(0, 101)]
    peak = values.index(max(values))
    assert all(a <= b for a, b in zip(values[:peak], values[1 : peak + 1]))  # slow start rises
    assert all(a >= b for a, b in zip(values[peak:], values[peak + 1 :]))  # then decays
    lw = LinearWarmup(warmup="50%", start=0.2)
    assert lw(0, 4) == pytest.approx(0.2) and lw(1, 4) == pytest.approx(0.6) and lw(3, 4) == 1
    assert not math.isnan(Cosine(0)(0, 0))
