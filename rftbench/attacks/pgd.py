"""PGD (Madry et al. 2018) and FGSM with random start (Wong et al. 2020), L∞ and L2.

Written here rather than taken from torchattacks because the fused training step needs what
torchattacks' ``PGD``/``PGDL2`` do not offer together: one code path for both norms that keeps
the perturbation fp32 under an autocast context, input-only gradients with frozen parameters,
a caller-supplied objective (TRADES' KL inner maximisation), a ``torch.Generator`` instead of
the global RNG, and dropping points once broken for fast evaluation. It is the public helpers of
:mod:`rftbench.attacks.helpers` put together (a third-party attack gets the same starts, early
stop and restarts from them). With
``random_start=False`` the iterates equal torchattacks' (tested in ``tests/test_attacks.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from ._ball import ascent_direction
from ._core import Objective, cross_entropy
from .helpers import first_start, iterate, project_to_ball, start_point, with_restarts  # noqa: F401 - start_point: old home


def _step(x: torch.Tensor, x_adv: torch.Tensor, grad: torch.Tensor, norm: str, eps: float, alpha: float) -> torch.Tensor:
    return project_to_ball(x, x_adv + alpha * ascent_direction(grad, norm), norm, eps)


def _pgd_once(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    index: torch.Tensor | None,
    *,
    norm: str,
    eps: float,
    steps: int,
    alpha: float,
    random_start: bool,
    generator: torch.Generator | None,
    early_stop: bool,
    objective: Objective,
    x_init: torch.Tensor | None = None,
) -> torch.Tensor:
    x_adv = first_start(x, norm, eps, random_start=random_start, generator=generator, x_init=x_init)
    return iterate(model, x, y, x_adv, lambda x0, xa, grad: _step(x0, xa, grad, norm, eps, alpha), steps=steps,
                   early_stop=early_stop, objective=objective, index=index)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    restarts: int = 1,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    early_stop: bool = False,
    objective: Objective | None = None,
    x_init: torch.Tensor | None = None,
    **_: object,
) -> torch.Tensor:
    """Projected gradient ascent on ``objective`` (default CE) within the ``norm`` ball of radius ``eps``.

    ``x_init``: where the first start begins (moved into the ball and the box), instead of ``x``
    or a random point; later restarts are random. ``step_size`` defaults to ``2.5·eps/steps``. Returns the last iterate; with ``restarts > 1``
    the restart with the highest final loss per example (with ``early_stop``, the first restart
    that breaks it). With ``early_stop`` a point stops being attacked once misclassified.
    """
    objective = objective or cross_entropy
    x = x.detach().float()
    if eps == 0 or steps == 0:
        return x.clone()
    alpha = step_size if step_size is not None else 2.5 * eps / steps
    kwargs = dict(norm=norm, eps=eps, steps=steps, alpha=alpha, generator=generator, early_stop=early_stop, objective=objective)

    def once(xs: torch.Tensor, ys: torch.Tensor, index: torch.Tensor | None, *, random_start: bool,
             x_init: torch.Tensor | None) -> torch.Tensor:
        return _pgd_once(model, xs, ys, index, random_start=random_start, x_init=x_init, **kwargs)

    return with_restarts(once, model, x, y, restarts=restarts, random_start=random_start, x_init=x_init,
                         early_stop=early_stop, objective=objective)


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str,
    eps: float,
    step_size: float | None = None,
    restarts: int = 1,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    early_stop: bool = False,
    objective: Objective | None = None,
    x_init: torch.Tensor | None = None,
    **_: object,
) -> torch.Tensor:
    """One signed (L∞) or normalised (L2) gradient step, from a random start by default.

    ``step_size`` defaults to ``1.25·eps`` (Wong, Rice & Kolter 2020, "Fast is better than free").
    """
    alpha = step_size if step_size is not None else 1.25 * eps
    return pgd(
        model, x, y, norm=norm, eps=eps, steps=1, step_size=alpha, restarts=restarts,
        random_start=random_start, generator=generator, early_stop=early_stop, objective=objective, x_init=x_init,
    )
