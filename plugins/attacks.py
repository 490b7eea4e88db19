"""Built-in plugin ``attacks``: PGD, FGSM, FGSM-RS, N-FGSM, APGD-CE, APGD-L1 and AutoAttack.

Registered through the same ``rftbench_add_attacks`` hook a third party uses. The algorithms
live in :mod:`rftbench.attacks` (and pyautoattack for AutoAttack and L1-APGD); each factory
imports its module, and torch, only when a threat model first builds the attack.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rftbench import AttackSpec, Params, hookimpl
from rftbench.specs import lazy

#: AutoAttack's iterations for APGD and FAB (rftbench.attacks.autoattack.STANDARD_ITERATIONS).
AUTOATTACK_ITERATIONS = 100


def _function(module: str, name: str):
    def factory() -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)

    factory.__name__ = f"load_{name}"
    return factory


class FgsmRsParams(Params):
    """FGSM-RS (Wong, Rice & Kolter 2020, arXiv 2001.03994)."""

    alpha: float = Field(1.25, gt=0, le=100, description="step in units of eps when the threat sets no step_size (the paper: 1.25)")


class NFgsmParams(Params):
    """N-FGSM (de Jorge et al. 2022, arXiv 2202.01181)."""

    k: float = Field(2.0, ge=0, le=100, description="noise U(-k·eps, k·eps) around x (the paper: 2)")
    alpha: float = Field(1.0, gt=0, le=100, description="step in units of eps when the threat sets no step_size (the paper: 1)")
    clip: float | None = Field(None, gt=0, le=100, description="project onto the ball of radius clip·eps (the paper: none)")


def _fast(name: str):
    def factory(**params: Any) -> Any:
        import functools
        import importlib

        run = getattr(importlib.import_module("rftbench.attacks.fast"), name)
        return functools.partial(run, **params)

    factory.__name__ = f"load_{name}"
    return factory


@hookimpl
def rftbench_add_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(name="pgd", norms=("linf", "l2"), factory=_function("rftbench.attacks.pgd", "pgd"),
                   description="PGD with random start (Madry et al. 2018)"),
        AttackSpec(name="fgsm", norms=("linf", "l2"), default_steps=1, factory=_function("rftbench.attacks.pgd", "fgsm"),
                   description="FGSM with random start, step 1.25·eps (Wong et al. 2020)"),
        AttackSpec(name="fgsm-rs", norms=("linf", "l2"), default_steps=1, params=FgsmRsParams, factory=_fast("fgsm_rs"),
                   description="FGSM-RS, fast AT (Wong, Rice & Kolter 2020, arXiv 2001.03994): uniform start in the eps-ball, "
                               "one signed step of 1.25·eps, projection onto the ball and [0, 1]"),
        AttackSpec(name="n-fgsm", norms=("linf", "l2"), default_steps=1, params=NFgsmParams, factory=_fast("n_fgsm"),
                   description="N-FGSM, fast AT (de Jorge et al. 2022, arXiv 2202.01181): noise U(-2·eps, 2·eps), one signed "
                               "step of eps, no projection onto the eps-ball (points up to 3·eps away: a training attack)"),
        AttackSpec(name="apgd-ce", norms=("linf", "l2"), random_start=False, default_for=("linf", "l2"),
                   factory=_function("rftbench.attacks.apgd", "apgd_ce"),
                   description="APGD on cross-entropy (Croce & Hein 2020); starts at the clean point, as the reference study trains"),
        AttackSpec(name="apgd-l1", norms=("l1",), default_steps=AUTOATTACK_ITERATIONS, default_for=("l1",),
                   factory=_function("rftbench.attacks.autoattack", "run_apgd_l1"),
                   description="L1-APGD on the cross-entropy, AutoAttack's (Croce & Hein 2021)"),
        AttackSpec(name="autoattack", norms=("linf", "l2", "l1"), default_steps=AUTOATTACK_ITERATIONS,
                   factory=_function("rftbench.attacks.autoattack", "run_autoattack"),
                   evaluator=lazy("rftbench.attacks.autoattack:autoattack_batch_runner"),
                   description="AutoAttack standard: APGD-CE, APGD-T, FAB-T, Square, worst case per point (pyautoattack)"),
    ]
