"""Built-in plugin ``schedules``: ε and learning-rate schedules as multipliers over training time.

Every schedule object is called as ``schedule(t, total) -> float``, ``t`` the training time in
epochs (fractional within an epoch, ``0 ≤ t ≤ total``) and ``total`` the number of epochs; the
engine multiplies the base ε or base learning rate by the result. Time points are written as
epochs (``12``, ``2.5``) or as a share of training (``"25%"``).

Shapes (α is the multiplier):

- ``constant``: α = 1.
- ``linear-warmup``: α rises linearly from ``start`` to 1 over ``[0, warmup]``, then stays 1.
- ``epsilon-scheduling`` (Ngnawé et al. 2025): α = 0 for t < T1, (t − T1)/(T2 − T1) for
  T1 ≤ t < T2, 1 for t ≥ T2; ``granularity="epoch"`` evaluates it at the integer epoch, as in
  the paper; ``"step"`` at every micro-batch's training time (an ε schedule is read per
  micro-batch; an LR schedule at the first micro-batch of each accumulation window). T1 = 0 is a linear warm-up, T1 = T2 = 0 fixed ε.
  A share of training (the default T1 = ``"25%"``, T2 = ``"75%"``) is rounded *down* to whole
  epochs, as the paper's default over 50 epochs: T1 = 12, T2 = 37 (not 12.5 and 37.5).
- ``cosine``: α = m + (1 − m)·(1 + cos(π t / total))/2, m = ``min_factor``.
- ``warmup-cosine``: linear from ``start`` to 1 over ``[0, warmup]``, then cosine from 1 to
  ``min_factor`` over the rest.
- ``slow-start-fast-decay`` (after Jeddi et al. 2020, whose exact schedule is not published):
  linear from ``start`` to 1 over ``[0, warmup]`` (the slow start), then exponential decay from 1
  to ``end`` over ``[warmup, warmup + decay]`` (the fast decay), then ``end`` until the end.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from rftbench import NoParams, Params, ScheduleSpec, hookimpl
from rftbench.errors import ConfigError

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _time_point(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a time point is a number of epochs (e.g. 12) or a share of training (e.g. '25%')")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a time point must be ≥ 0 epochs (got {value})")
        return value
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match:
            share = float(match.group(1))
            if share > 100:
                raise ValueError(f"a share of training must be between 0% and 100% (got {value!r})")
            return f"{share:g}%"
        try:
            return _time_point(float(value))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a time point: write epochs (e.g. 12) or a share of training (e.g. '25%')")


#: A point in training time: epochs (``12``, ``2.5``) or a share of training (``"25%"``).
TimePoint = Annotated[float | str, BeforeValidator(_time_point)]


def epochs_at(point: float | str, total: float) -> float:
    """The time point in epochs for a run of ``total`` epochs."""
    if isinstance(point, str):
        return float(point.rstrip("%")) / 100.0 * total
    return float(point)


def _ramp(t: float, start_t: float, end_t: float, start: float = 0.0) -> float:
    """Linear from ``start`` at ``start_t`` to 1 at ``end_t`` (1 from then on, ``start`` before)."""
    if t >= end_t:
        return 1.0
    if t <= start_t:
        return start
    return start + (1.0 - start) * (t - start_t) / (end_t - start_t)


class Constant:
    """α = 1."""

    def __call__(self, t: float, total: float) -> float:
        return 1.0


class LinearWarmup:
    def __init__(self, warmup: float | str, start: float):
        self.warmup, self.start = warmup, start

    def __call__(self, t: float, total: float) -> float:
        return _ramp(t, 0.0, epochs_at(self.warmup, total), self.start)


class EpsilonScheduling:
    """The two-hinge schedule of Epsilon-Scheduling (arXiv 2509.23325).

    A time point given as a share of training becomes whole epochs, rounded down (the paper's
    T1 = 12, T2 = 37 of 50 epochs for 25% and 75%); one given in epochs is used as written.
    """

    def __init__(self, t1: float | str, t2: float | str, granularity: str):
        self.t1, self.t2, self.granularity = t1, t2, granularity

    def hinges(self, total: float) -> tuple[float, float]:
        """(T1, T2) in epochs for a run of ``total`` epochs."""
        return tuple(  # type: ignore[return-value]
            float(math.floor(epochs_at(p, total) + 1e-9)) if isinstance(p, str) else float(p)
            for p in (self.t1, self.t2)
        )

    def validate(self, total: float) -> None:
        """Raise a :class:`ConfigError` when T1 > T2 for a run of ``total`` epochs."""
        t1, t2 = self.hinges(total)
        if t1 > t2:
            raise ConfigError(
                f"eps_schedule.t1 ({self.t1!r} = {t1:g} epochs) must not come after eps_schedule.t2 "
                f"({self.t2!r} = {t2:g} epochs) in a {total:g}-epoch run; swap them or lower t1"
            )

    def __call__(self, t: float, total: float) -> float:
        self.validate(total)
        if self.granularity == "epoch":
            t = math.floor(t + 1e-9)
        t1, t2 = self.hinges(total)
        if t >= t2:
            return 1.0
        if t < t1:
            return 0.0
        return (t - t1) / (t2 - t1)


class Cosine:
    def __init__(self, min_factor: float):
        self.min_factor = min_factor

    def __call__(self, t: float, total: float) -> float:
        progress = min(max(t / total, 0.0), 1.0) if total > 0 else 1.0
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


class WarmupCosine:
    def __init__(self, warmup: float | str, start: float, min_factor: float):
        self.warmup, self.start, self.min_factor = warmup, start, min_factor

    def __call__(self, t: float, total: float) -> float:
        w = min(epochs_at(self.warmup, total), total)
        if t < w:
            return _ramp(t, 0.0, w, self.start)
        rest = total - w
        progress = min(max((t - w) / rest, 0.0), 1.0) if rest > 0 else 1.0
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


class SlowStartFastDecay:
    def __init__(self, warmup: float | str, decay: float | str, start: float, end: float):
        self.warmup, self.decay, self.start, self.end = warmup, decay, start, end

    def __call__(self, t: float, total: float) -> float:
        w, d = epochs_at(self.warmup, total), epochs_at(self.decay, total)
        if t < w:
            return _ramp(t, 0.0, w, self.start)
        if d <= 0 or t >= w + d:
            return self.end
        return self.end ** ((t - w) / d)


Factor = Annotated[float, Field(ge=0.0, le=1.0)]


class WarmupParams(Params):
    warmup: TimePoint = Field("25%", description="end of the ramp (epochs or share of training)")
    start: Factor = Field(0.0, description="multiplier at t = 0")


class EpsilonSchedulingParams(Params):
    t1: TimePoint = Field("25%", description="T1: ε stays 0 before it (the paper: 12 of 50 epochs)")
    t2: TimePoint = Field("75%", description="T2: ε reaches its full value there (the paper: 37 of 50 epochs)")
    granularity: Literal["epoch", "step"] = Field("epoch", description="evaluate at integer epochs (the paper) or every micro-batch")

    @field_validator("t2")
    @classmethod
    def _ordered(cls, t2: float | str, info: ValidationInfo) -> float | str:
        t1 = info.data.get("t1")
        if t1 is not None and isinstance(t1, str) == isinstance(t2, str) and epochs_at(t1, 100) > epochs_at(t2, 100):
            raise ValueError(f"T2 ({t2}) must not come before T1 ({t1}); swap them or lower t1")
        return t2


class CosineParams(Params):
    min_factor: Factor = Field(0.0, description="multiplier at the end of training")


class WarmupCosineParams(Params):
    warmup: TimePoint = Field("10%", description="length of the linear warm-up")
    start: Factor = Field(0.01, description="multiplier at t = 0")
    min_factor: Factor = Field(0.0, description="multiplier at the end of training")


class SlowStartFastDecayParams(Params):
    warmup: TimePoint = Field("20%", description="length of the slow start (linear ramp)")
    decay: TimePoint = Field("30%", description="length of the fast (exponential) decay after the ramp")
    start: Factor = Field(0.1, description="multiplier at t = 0")
    end: Annotated[float, Field(gt=0.0, le=1.0)] = Field(0.01, description="multiplier after the decay")


@hookimpl
def rftbench_add_schedules() -> list[ScheduleSpec]:
    return [
        ScheduleSpec(name="constant", targets=("epsilon", "lr"), params=NoParams, factory=Constant,
                     description="the base value throughout"),
        ScheduleSpec(name="linear-warmup", targets=("epsilon", "lr"), params=WarmupParams, factory=LinearWarmup,
                     description="linear ramp from start to 1 over the warm-up, then 1"),
        ScheduleSpec(name="epsilon-scheduling", targets=("epsilon",), params=EpsilonSchedulingParams, factory=EpsilonScheduling,
                     description="two-hinge ε schedule of Epsilon-Scheduling: 0 before T1, linear to 1 at T2, then 1"),
        ScheduleSpec(name="cosine", targets=("lr",), params=CosineParams, factory=Cosine,
                     description="cosine annealing from 1 to min_factor over training"),
        ScheduleSpec(name="warmup-cosine", targets=("lr",), params=WarmupCosineParams, factory=WarmupCosine,
                     description="linear warm-up, then cosine annealing to min_factor"),
        ScheduleSpec(name="slow-start-fast-decay", targets=("lr",), params=SlowStartFastDecayParams, factory=SlowStartFastDecay,
                     description="adversarial fine-tuning's schedule (Jeddi et al. 2020): slow linear start, fast exponential decay"),
    ]
