"""Public building blocks of a gradient attack: starts, projections, the step loop with early stop, restarts.

The built-in ``pgd`` is these helpers put together, and ``apgd-ce``/``fgsm-rs``/``n-fgsm`` take
their starts from them, so a third-party attack written with them keeps what a threat model asks
for (``random_start``, ``x_init``, ``early_stop``, ``restarts``) exactly as the built-ins do::

    from rftbench.attacks import ascent_direction, first_start, iterate, project_to_ball, with_restarts

    def my_attack(model, x, y, *, norm, eps, steps, step_size=None, restarts=1, random_start=True,
                  generator=None, early_stop=False, objective=None, x_init=None, **_):
        alpha = step_size or 2.5 * eps / max(steps, 1)

        def once(xs, ys, index, *, random_start, x_init):
            start = first_start(xs, norm, eps, random_start=random_start, generator=generator, x_init=x_init)
            step = lambda x0, xa, grad: project_to_ball(x0, xa + alpha * ascent_direction(grad, norm), norm, eps)
            return iterate(model, xs, ys, start, step, steps=steps, early_stop=early_stop, objective=objective, index=index)

        return with_restarts(once, model, x, y, restarts=restarts, random_start=random_start, x_init=x_init,
                             early_stop=early_stop, objective=objective)

Everything runs in fp32 whatever autocast context the caller is in (``x`` is made fp32 by the
caller; the helpers never create low-precision tensors).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._ball import ascent_direction, lp_norm, project, random_delta
from ._core import Objective, compaction_points, cross_entropy, loss_and_grad

#: ``step(x, x_adv, grad) -> x_adv``: one update of the iterates ``x_adv`` of the clean points ``x``
#: from the objective's gradient at ``x_adv`` (all three of the active rows only).
Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def project_to_ball(x: torch.Tensor, x_adv: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """``x_adv`` moved into the ``norm`` ball of radius ``eps`` around ``x`` (Euclidean projection), then into the box [0, 1]."""
    return (x + project(x_adv - x, norm, eps)).clamp(0.0, 1.0)


def random_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random point of the ``norm`` ball of radius ``eps`` around ``x``, clipped to [0, 1] (from ``generator``)."""
    return (x + random_delta(x, norm, eps, generator)).clamp(0.0, 1.0)


def start_point(x: torch.Tensor, x_init: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """``x_init`` moved into the ``norm`` ball of radius ``eps`` around ``x`` and into the box [0, 1]."""
    return project_to_ball(x, x_init.detach().float(), norm, eps)


def first_start(x: torch.Tensor, norm: str, eps: float, *, random_start: bool, generator: torch.Generator | None = None,
                x_init: torch.Tensor | None = None) -> torch.Tensor:
    """Where an attack's start begins, as the built-ins decide it.

    ``x_init`` when given (the loss's start, e.g. TRADES' KL: moved into the ball and the box);
    else a random point of the ball with ``random_start`` (:func:`random_start`); else a copy of ``x``.
    """
    if x_init is not None:
        return start_point(x, x_init, norm, eps)
    if not random_start:
        return x.clone()
    return (x + random_delta(x, norm, eps, generator)).clamp(0.0, 1.0)


def iterate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor, step: Step, *, steps: int,
            early_stop: bool = False, objective: Objective | None = None, index: torch.Tensor | None = None) -> torch.Tensor:
    """``steps`` gradient steps from ``x_adv``: ``x_adv = step(x, x_adv, ∇ objective(x_adv))``; returns the last iterates.

    ``objective`` defaults to cross-entropy; ``index`` are the rows' positions in the caller's
    batch (passed on to the objective). With ``early_stop`` (evaluation) a point leaves the active
    set as soon as the model misclassifies its iterate, keeping that iterate; the batch is
    compacted a fixed number of times per run (at most 4 host–device synchronisations, whatever
    ``steps``), so ``step`` may also see rows already fooled (their result is discarded).
    """
    objective = objective or cross_entropy
    if not early_stop:
        for _ in range(steps):
            _, _, grad = loss_and_grad(model, x_adv, y, objective, index)
            x_adv = step(x, x_adv, grad)
        return x_adv
    # A point stops moving as soon as it is misclassified, keeping that iterate (masked at once), and
    # leaves the batch at the next compaction (compaction_points: at most 4 synchronisations per run).
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
        x_adv[active] = torch.where(alive.view(shape), step(x[active], xa, grad), xa)
        if (i + 1) in compact and i < steps - 1:
            active = active[alive]
            if active.numel() == 0:
                break
    return x_adv


#: ``once(x, y, index, *, random_start, x_init) -> x_adv``: one start of an attack on the rows ``x``
#: (``index``: their positions in the batch, ``None`` for the whole batch in order).
Once = Callable[..., torch.Tensor]


def with_restarts(once: Once, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, restarts: int, random_start: bool,
                  x_init: torch.Tensor | None = None, early_stop: bool = False, objective: Objective | None = None) -> torch.Tensor:
    """Run ``once`` ``restarts`` times and keep, per point, the best start (the built-in ``pgd``'s rule).

    The first start follows ``random_start`` and begins at ``x_init`` when given; later starts are
    random. Best: the highest final ``objective`` (default cross-entropy); with ``early_stop`` a
    start that fools the model wins, and a fooled point is not attacked again. One start
    (``restarts ≤ 1``) is ``once`` itself.
    """
    if restarts <= 1:
        return once(x, y, None, random_start=random_start, x_init=x_init)
    objective = objective or cross_entropy
    best = x.clone()
    best_loss = torch.full((len(x),), -float("inf"), device=x.device)
    todo = torch.arange(len(x), device=x.device)
    for r in range(restarts):
        xr, yr = x[todo], y[todo]
        first = x_init if r == 0 else None
        x_adv = once(xr, yr, todo, random_start=random_start or r > 0, x_init=first)
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


__all__ = ["Once", "Step", "ascent_direction", "first_start", "iterate", "lp_norm", "project", "project_to_ball",
           "random_start", "start_point", "with_restarts"]
