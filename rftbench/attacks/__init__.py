"""Adversarial attacks for training and evaluation, looked up by name through the plugin manager.

An attack is a contribution like any other: a plugin returns an
:class:`~rftbench.specs.AttackSpec` from ``rftbench_add_attacks`` (the built-ins ``pgd``,
``fgsm``, ``fgsm-rs``, ``n-fgsm``, ``apgd-ce``, ``apgd-l1`` and ``autoattack`` come from the ``attacks`` plugin), and
threat models pick theirs with :func:`get_attack`. The spec's factory returns the run function::

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

Public helpers to write an attack that honours ``random_start``, ``x_init``, ``early_stop`` and
``restarts`` as the built-ins do (the built-in ``pgd`` is made of them; see
:mod:`rftbench.attacks.helpers` and ``docs/plugins.md``): :func:`first_start`,
:func:`random_start`, :func:`start_point`, :func:`project` / :func:`project_to_ball`,
:func:`ascent_direction`, :func:`iterate` (the step loop, with early stop), :func:`with_restarts`,
:func:`loss_and_grad`, :func:`lp_norm`.

This package imports torch only when an algorithm (``pgd``, ``apgd_ce``…) is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports
from ..errors import RftbenchError

if TYPE_CHECKING:  # pragma: no cover
    from ..plugins import PluginManager


@dataclass(frozen=True)
class Attack:
    """An attack ready to run: its name, the norms it supports and the function that runs it."""

    name: str
    norms: tuple[str, ...]
    run: Callable[..., Any]
    description: str = ""
    #: Default number of steps when a threat model does not set one.
    default_steps: int = 10
    #: Whether it starts from a random point of the ball when a threat model does not say.
    random_start: bool = True
    #: The plugin that contributed it.
    plugin: str | None = None
    #: ``evaluator(threat) -> BatchEvaluator`` from its spec, or ``None`` (see :func:`rftbench.threat.batch_evaluator`).
    evaluator: Callable[..., Any] | None = None

    def __call__(self, model: Any, x: Any, y: Any, **kwargs: object) -> Any:
        return self.run(model, x, y, **kwargs)


def _manager(manager: PluginManager | None) -> PluginManager:
    from ..plugins import current_manager

    return manager or current_manager()


def attacks_for(norm: str, manager: PluginManager | None = None) -> list[str]:
    """Names of the installed attacks that support ``norm``, naturally sorted."""
    return [s.name for s in _manager(manager).items("attack") if norm in s.norms]


def default_attack(norm: str, manager: PluginManager | None = None) -> str | None:
    """The attack used for ``norm`` when none is named: the one declaring ``default_for`` it, else the first supporting it."""
    specs = [s for s in _manager(manager).items("attack") if norm in s.norms]
    preferred = [s.name for s in specs if norm in s.default_for]
    return (preferred or [s.name for s in specs] or [None])[0]


def get_attack(name: str, norm: str | None = None, manager: PluginManager | None = None,
               params: Mapping[str, Any] | None = None) -> Attack:
    """The attack ``name`` built with ``params`` (its spec's parameters); with ``norm``, an error if it does not support it."""
    m = _manager(manager)
    spec = m.get("attack", name)
    if norm is not None and norm not in spec.norms:
        raise RftbenchError(
            f"attack {name!r} does not support the {norm} norm (it supports {', '.join(spec.norms)}); "
            f"attacks for {norm}: {', '.join(attacks_for(norm, m)) or '(none installed)'}"
        )
    return Attack(spec.name, tuple(spec.norms), spec.build(**dict(params or {})), spec.description, spec.default_steps, spec.random_start,
                  spec.plugin, spec.evaluator)


#: Algorithms and helpers re-exported from their modules, imported (with torch) on first use.
_LAZY = {
    "apgd_ce": "apgd",
    "fgsm": "pgd",
    "fgsm_rs": "fast",
    "n_fgsm": "fast",
    "pgd": "pgd",
    "lp_norm": "_ball",
    "project": "_ball",
    "ascent_direction": "_ball",
    "first_start": "helpers",
    "iterate": "helpers",
    "project_to_ball": "helpers",
    "random_start": "helpers",
    "start_point": "helpers",
    "with_restarts": "helpers",
    "FP16_ATTACK_LOSS_SCALE": "_core",
    "Objective": "_core",
    "attack_mode": "_core",
    "cross_entropy": "_core",
    "loss_and_grad": "_core",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "FP16_ATTACK_LOSS_SCALE",
    "Attack",
    "Objective",
    "apgd_ce",
    "ascent_direction",
    "attack_mode",
    "attacks_for",
    "cross_entropy",
    "default_attack",
    "fgsm",
    "fgsm_rs",
    "first_start",
    "get_attack",
    "iterate",
    "loss_and_grad",
    "lp_norm",
    "n_fgsm",
    "pgd",
    "project",
    "project_to_ball",
    "random_start",
    "start_point",
    "with_restarts",
]
