"""Contributes a loss whose name clashes with tests.plugins.good."""

from rftbench import LossSpec, hookimpl


@hookimpl
def rftbench_add_losses():
    return [LossSpec(name="scaled_ce", description="Another one.", factory=lambda: None)]
