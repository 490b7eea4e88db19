"""Built-in plugin ``attacks``: PGD, FGSM, APGD-CE, APGD-L1 and AutoAttack.

Registered through the same ``rftbench_add_attacks`` hook a third party uses. The algorithms
live in :mod:`rftbench.attacks` (and pyautoattack for AutoAttack and L1-APGD); each factory
imports its module, and torch, only when a threat model first builds the attack.
"""

from __future__ import annotations

from typing import Any

from rftbench import AttackSpec, hookimpl

#: AutoAttack's iterations for APGD and FAB (rftbench.attacks.autoattack.STANDARD_ITERATIONS).
AUTOATTACK_ITERATIONS = 100


def _function(module: str, name: str):
    def factory() -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)

    factory.__name__ = f"load_{name}"
    return factory


@hookimpl
def rftbench_add_attacks() -> list[AttackSpec]:
    return [
        AttackSpec(name="pgd", norms=("linf", "l2"), factory=_function("rftbench.attacks.pgd", "pgd"),
                   description="PGD with random start (Madry et al. 2018)"),
        AttackSpec(name="fgsm", norms=("linf", "l2"), default_steps=1, factory=_function("rftbench.attacks.pgd", "fgsm"),
                   description="FGSM with random start, step 1.25·eps (Wong et al. 2020)"),
        AttackSpec(name="apgd-ce", norms=("linf", "l2"), random_start=False, default_for=("linf", "l2"),
                   factory=_function("rftbench.attacks.apgd", "apgd_ce"),
                   description="APGD on cross-entropy (Croce & Hein 2020); starts at the clean point, as the reference study trains"),
        AttackSpec(name="apgd-l1", norms=("l1",), default_steps=AUTOATTACK_ITERATIONS, default_for=("l1",),
                   factory=_function("rftbench.attacks.autoattack", "run_apgd_l1"),
                   description="L1-APGD on the cross-entropy, AutoAttack's (Croce & Hein 2021)"),
        AttackSpec(name="autoattack", norms=("linf", "l2", "l1"), default_steps=AUTOATTACK_ITERATIONS,
                   factory=_function("rftbench.attacks.autoattack", "run_autoattack"),
                   description="AutoAttack standard: APGD-CE, APGD-T, FAB-T, Square, worst case per point (pyautoattack)"),
    ]
