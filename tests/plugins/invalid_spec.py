"""A plugin returning one invalid spec (as a dict) next to a valid one."""

from rftbench import LossSpec, hookimpl


@hookimpl
def rftbench_add_losses():
    return [
        {"name": "Bad Name!", "description": "", "factory": "not callable"},
        LossSpec(name="fine_loss", description="Valid.", factory=lambda: None),
    ]
