"""The runtime contract of a threat model (what a ``threat_model`` spec's factory returns).

The engine uses it to craft training examples; the evaluator to measure robust accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class ThreatModel(Protocol):
    """A perturbation family with a budget.

    ``norm`` is ``linf``, ``l2``, ``l1``, ``corruption`` or ``other``; ``eps`` the budget on the
    [0, 1] pixel scale (for corruptions, the severity).
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
