"""PGD (Madry et al. 2018) and FGSM with random start (Wong et al. 2020), L∞ and L2.

Written here rather than taken from torchattacks because the fused training step needs what
torchattacks' ``PGD``/``PGDL2`` do not offer together: one code path for both norms that keeps
the perturbation fp32 under an autocast context, input-only gradients with frozen parameters,
a caller-supplied objective (TRADES' KL inner maximisation), a ``torch.Generator`` instead of
the global RNG, and dropping points once broken for fast evaluation. With
``random_start=False`` the iterates equal torchattacks' (tested in ``tests/test_attacks.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from ._ball import ascent_direction, project, random_delta
from ._core import Objective, compaction_points, cross_entropy, loss_and_grad


def _step(x: torch.Tensor, x_adv: torch.Tensor, grad: torch.Tensor, norm: str, eps: float, alpha: float) -> torch.Tensor:
    x_adv = x_adv + alpha * ascent_direction(grad, norm)
    return (x + project(x_adv - x, norm, eps)).clamp(0.0, 1.0)


def start_point(x: torch.Tensor, x_init: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """``x_init`` moved into the ``norm`` ball of radius ``eps`` around ``x`` and into the box [0, 1]."""
    return (x + project(x_init.detach().float() - x, norm, eps)).clamp(0.0, 1.0)


def _init(x: torch.Tensor, norm: str, eps: float, random_start: bool, generator: torch.Generator | None,
          x_init: torch.Tensor | None = None) -> torch.Tensor:
    if x_init is not None:
        return start_point(x, x_init, norm, eps)
    if not random_start:
        return x.clone()
    return (x + random_delta(x, norm, eps, generator)).clamp(0.0, 1.0)


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
    x_adv = _init(x, norm, eps, random_start, generator, x_init)
    if not early_stop:
        for _ in range(steps):
            _, _, grad = loss_and_grad(model, x_adv, y, objective, index)
            x_adv = _step(x, x_adv, grad, norm, eps, alpha)
        return x_adv
    # Early stop: a point stops moving as soon as it is misclassified, keeping that point (masked at
    # once), and leaves the batch at the next compaction (compaction_points: at most 4 syncs).
    compact = compaction_points(steps)
    n = len(x)
    shape = (-1,) + (1,) * (x.dim() - 1)
    active = torch.arange(n, device=x.device)
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    for i in range(steps):
        xa = x_adv[active]
        logits, _, grad = loss_and_grad(model, xa, y[active], objective, active if index is None else index[active])
        alive = (logits.argmax(1) == y[active]) & ~done[active]
        done[active] = ~alive
        x_adv[active] = torch.where(alive.view(shape), _step(x[active], xa, grad, norm, eps, alpha), xa)
        if (i + 1) in compact and i < steps - 1:
            active = active[alive]
            if active.numel() == 0:
                break
    return x_adv


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
    if restarts <= 1:
        return _pgd_once(model, x, y, None, random_start=random_start, x_init=x_init, **kwargs)
    best = x.clone()
    best_loss = torch.full((len(x),), -float("inf"), device=x.device)
    todo = torch.arange(len(x), device=x.device)
    for r in range(restarts):
        xr, yr = x[todo], y[todo]
        first = x_init if r == 0 else None
        x_adv = _pgd_once(model, xr, yr, todo, random_start=random_start or r > 0, x_init=first, **kwargs)
        logits, loss, _ = loss_and_grad(model, x_adv, yr, objective, todo, need_grad=False)
        better = loss > best_loss[todo]
        if early_stop:
            fooled = logits.argmax(1) != yr
            better = better | fooled
        best[todo[better]] = x_adv[better]
        best_loss[todo[better]] = loss[better]
        if early_stop:
            todo = todo[~fooled]
            if todo.numel() == 0:
                break
    return best


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
