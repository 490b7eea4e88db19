"""The runtime contract of a threat model (what a ``threat_model`` spec's factory returns).

The engine uses it to craft training examples; the evaluator to measure robust accuracy.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class ThreatModel(Protocol):
    """A perturbation family with a budget.

    ``norm`` is ``linf``, ``l2``, ``l1``, ``corruption`` or ``other``; ``eps`` the budget on the
    [0, 1] pixel scale (for corruptions, the severity).

    Optional members (not required by ``isinstance``): ``state_dict()`` / ``load_state_dict()``
    (RNG state kept in checkpoints); ``attack``, the :class:`rftbench.attacks.Attack` it runs when
    it runs a registered one (what :func:`rftbench.attacks.get_attack` returns; the attack spec's
    ``evaluator`` then measures evaluation batches, see :func:`batch_evaluator`); the methods of
    :class:`BatchEvaluator` / :class:`SetEvaluator` to measure evaluation batches itself, and
    ``report()`` (:class:`Reporter`).
    """

    norm: str
    eps: float

    def label(self) -> str:
        """Short key used in result records, e.g. ``linf:4/255`` or ``corruptions:3``."""
        ...

    def perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float | None = None,
        objective: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        x_init: torch.Tensor | None = None,
        early_stop: bool = False,
    ) -> torch.Tensor:
        """Perturbed copies of ``x`` (images in [0, 1]), within the budget (``eps`` overrides it).

        The caller puts ``model`` in eval mode and freezes its parameters; the perturbation and
        its projection are computed in fp32 whatever autocast context the caller runs in.

        :param eps: the budget for this call (the ε schedule's value in training); ``None``: ``self.eps``.
        :param objective: ``(logits, y, index) -> Tensor[B]`` to maximise instead of cross-entropy
            (a loss's attack objective, e.g. TRADES' KL; ``index``: rows' positions in ``x``).
            Passed in training when the loss has one.
        :param x_init: where the first start begins (a loss's ``attack_start``, e.g. TRADES'
            x + 0.001·N(0, 1)); the attack must start there, not at ``x`` (whose gradient may be
            zero). Passed in training when the loss has one.
        :param early_stop: the evaluator's request to stop working on points once broken (passed
            only when ``perturb`` accepts it).
        """
        ...


@runtime_checkable
class BatchEvaluator(Protocol):
    """Measures evaluation batches itself, instead of the evaluator calling ``perturb``.

    A threat model is one when it has ``evaluate_batch`` (the ``corruptions`` threat model); an
    attack supplies one for the threat models that run it through its spec's ``evaluator``
    (``AttackSpec(evaluator=make)``, ``make(threat) -> BatchEvaluator``; ``autoattack`` does, to
    report the accuracy after each attack of its ensemble). :func:`batch_evaluator` says which
    one, if any, measures a threat model. Optionally it also has ``report() -> dict`` (see
    :class:`Reporter`).
    """

    def evaluate_batch(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-point outcomes of one batch (on its device, model in eval mode, parameters frozen).

        ``index``: the images' positions in the evaluated set. The result holds ``"correct"`` (bool
        or float ``Tensor[B]``); other keys (``"after/apgd-ce"``, ``"a/b"`` nested) are averaged
        into the threat's result.
        """
        ...


@runtime_checkable
class SetEvaluator(BatchEvaluator, Protocol):
    """A :class:`BatchEvaluator` that can also take the whole evaluated set at once (it batches it itself).

    The final evaluation prefers :meth:`evaluate_all` when it is there (AutoAttack: the points
    still robust after APGD-CE across the whole set are attacked together, in few large batches);
    the in-training monitor keeps calling :meth:`evaluate_batch`.
    """

    def evaluate_all(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, index: torch.Tensor,
                     batch_size: int, device: torch.device | str) -> dict[str, torch.Tensor]:
        """As :meth:`evaluate_batch` on the whole set (CPU tensors), moved to ``device`` in chunks of ``batch_size``."""
        ...


@runtime_checkable
class Reporter(Protocol):
    """Has ``report() -> dict``: fields and ``"flags"`` added to a threat's result once all its batches ran.

    Called once per evaluated threat (and to reset after a partial use); it forgets what it
    accumulated since the last call.
    """

    def report(self) -> dict:
        ...


def batch_evaluator(threat: object) -> BatchEvaluator | None:
    """What measures ``threat``'s evaluation batches, if not its ``perturb`` (one rule, used by every evaluation path).

    The threat model itself when it is a :class:`BatchEvaluator`; else, when it runs a registered
    attack (``threat.attack`` an :class:`rftbench.attacks.Attack`, as the built-in ``linf``/``l2``/
    ``l1`` threat models do) whose spec has an ``evaluator``, the object that builds for ``threat``;
    else ``None`` (the evaluator calls ``perturb``). Call it once per evaluation: the object may
    accumulate what its ``report()`` returns.
    """
    from .attacks import Attack
    from .errors import PluginRuntimeError

    if isinstance(threat, BatchEvaluator):
        return threat
    attack = getattr(threat, "attack", None)  # the optional ``attack`` of ThreatModel
    if not isinstance(attack, Attack) or attack.evaluator is None:
        return None
    from types import SimpleNamespace

    from ._context import blame

    with blame(SimpleNamespace(kind="attack", name=attack.name, plugin=attack.plugin), "spec's evaluator(threat)"):
        made = attack.evaluator(threat)
    if not isinstance(made, BatchEvaluator):
        raise PluginRuntimeError(
            f"attack {attack.name!r}{f' (plugin {attack.plugin})' if attack.plugin else ''}: its spec's evaluator(threat) returned "
            f"{type(made).__name__}, not an object with evaluate_batch(model, x, y, *, index) (rftbench.threat.BatchEvaluator)",
            plugin=attack.plugin)
    return made


def takes_early_stop(threat: object) -> bool:
    """Whether ``threat.perturb`` accepts ``early_stop=`` (the evaluators pass ``early_stop=True`` then); asked once per function."""
    perturb = threat.perturb  # type: ignore[attr-defined]
    try:
        return _accepts_early_stop(getattr(perturb, "__func__", perturb))
    except TypeError:  # an unhashable callable: ask directly
        return _accepts_early_stop.__wrapped__(perturb)


@functools.lru_cache(maxsize=256)
def _accepts_early_stop(fn: object) -> bool:
    try:
        return "early_stop" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
