"""A well-behaved plugin: one loss and one schedule."""

from pydantic import Field

from rftbench import LossSpec, Params, ScheduleSpec, hookimpl


class ScaledParams(Params):
    scale: float = Field(1.0, ge=0, le=10, description="multiplier of the cross-entropy")


def make_scaled_ce(scale: float):
    return ("scaled_ce", scale)


@hookimpl
def rftbench_add_losses():
    return [
        LossSpec(name="scaled_ce", description="Cross-entropy times a constant.", params=ScaledParams, factory=make_scaled_ce, adversarial=False)
    ]


@hookimpl
def rftbench_add_schedules():
    # A dict validates as a spec just like a spec object does.
    return [{"name": "always_one", "description": "Constant 1.", "factory": lambda: (lambda t, total: 1.0)}]
