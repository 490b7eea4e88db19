"""Adversarial attacks for training and evaluation, and the registry threat models pick them from.

An attack is a function::

    run(model, x, y, *, norm, eps, steps, step_size, restarts, random_start,
        generator, early_stop, objective, **_) -> x_adv

``x`` are images in [0, 1] (fp32, any memory format), ``y`` int labels. It returns perturbed
copies within the ``norm`` ball of radius ``eps`` and the [0, 1] box, computing the
perturbation and its projection in fp32 whatever autocast context the caller runs in.
``step_size=None`` means the attack's default; ``generator`` (a ``torch.Generator`` or
``None`` for the global RNG) drives random starts; ``early_stop=True`` attacks only points
still classified correctly and drops each one once broken (fast evaluation);
``objective(logits, y, index) -> per-example loss`` replaces cross-entropy (``index``: the
rows' positions in ``x``). Arguments an attack has no use for are accepted and ignored.
The caller puts the model in eval mode with parameters frozen (:func:`attack_mode`).

:data:`ATTACKS` maps each name to an :class:`Attack` saying which norms it supports;
:func:`register_attack` adds one (the AutoAttack entry of the evaluation package registers
itself so), and threat models accept any registered attack that supports their norm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import RftbenchError, UnknownNameError
from ._ball import lp_norm, project
from ._core import FP16_ATTACK_LOSS_SCALE, Objective, attack_mode, cross_entropy, loss_and_grad
from .apgd import apgd_ce
from .pgd import fgsm, pgd


@dataclass(frozen=True)
class Attack:
    """A registered attack: its name, the norms it supports and the function that runs it."""

    name: str
    norms: tuple[str, ...]
    run: Callable[..., torch.Tensor]
    description: str = ""
    #: Default number of steps when a threat model does not set one.
    default_steps: int = 10

    def __call__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, **kwargs: object) -> torch.Tensor:
        return self.run(model, x, y, **kwargs)


#: Every registered attack, by name.
ATTACKS: dict[str, Attack] = {}

#: Per norm, the attack a threat model uses when its ``attack`` parameter is not set
#: (the reference study trains with APGD-CE; an L1 attack becomes the default once registered).
DEFAULT_ATTACK: dict[str, str] = {"linf": "apgd-ce", "l2": "apgd-ce"}


def register_attack(
    name: str,
    norms: tuple[str, ...],
    run: Callable[..., torch.Tensor],
    *,
    description: str = "",
    default_steps: int = 10,
    default_for: tuple[str, ...] = (),
    replace: bool = False,
) -> Attack:
    """Add an attack to :data:`ATTACKS` (``default_for``: norms for which it becomes the default)."""
    if name in ATTACKS and not replace:
        raise RftbenchError(f"attack {name!r} is already registered ({ATTACKS[name].run.__module__}); pass replace=True to override it")
    attack = Attack(name, tuple(norms), run, description, default_steps)
    ATTACKS[name] = attack
    for norm in default_for:
        DEFAULT_ATTACK[norm] = name
    return attack


def attacks_for(norm: str) -> list[str]:
    """Names of the registered attacks that support ``norm``, sorted."""
    return sorted(n for n, a in ATTACKS.items() if norm in a.norms)


def default_attack(norm: str) -> str | None:
    """The attack used for ``norm`` when none is named: the preferred one, else the first that supports it."""
    preferred = DEFAULT_ATTACK.get(norm)
    if preferred in ATTACKS and norm in ATTACKS[preferred].norms:
        return preferred
    names = attacks_for(norm)
    return names[0] if names else None


def get_attack(name: str, norm: str | None = None) -> Attack:
    """The attack ``name``; with ``norm``, an error if it does not support that norm."""
    if name not in ATTACKS:
        raise UnknownNameError("attack", name, ATTACKS)
    attack = ATTACKS[name]
    if norm is not None and norm not in attack.norms:
        raise RftbenchError(
            f"attack {name!r} does not support the {norm} norm (it supports {', '.join(attack.norms)}); "
            f"attacks for {norm}: {', '.join(attacks_for(norm)) or '(none registered)'}"
        )
    return attack


register_attack("pgd", ("linf", "l2"), pgd, description="PGD with random start (Madry et al. 2018)")
register_attack("fgsm", ("linf", "l2"), fgsm, description="FGSM with random start, step 1.25·eps (Wong et al. 2020)", default_steps=1)
register_attack("apgd-ce", ("linf", "l2"), apgd_ce, description="APGD on cross-entropy (Croce & Hein 2020)")

# AutoAttack's standard ensemble (L∞/L2/L1) and L1-APGD (the default L1 attack), from the evaluation suite.
from .autoattack import register as _register_autoattack  # noqa: E402

_register_autoattack()

__all__ = [
    "ATTACKS",
    "DEFAULT_ATTACK",
    "FP16_ATTACK_LOSS_SCALE",
    "Attack",
    "Objective",
    "apgd_ce",
    "attack_mode",
    "attacks_for",
    "cross_entropy",
    "default_attack",
    "fgsm",
    "get_attack",
    "loss_and_grad",
    "lp_norm",
    "pgd",
    "project",
    "register_attack",
]
