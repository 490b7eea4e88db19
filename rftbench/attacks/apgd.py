"""APGD-CE (Croce & Hein 2020, "Reliable evaluation of adversarial robustness…"), L∞ and L2.

Follows the reference *code* — pyautoattack's ``autopgd_base.py`` (``APGDAttack``, L∞ and L2),
which torchattacks' ``apgd.py`` copies — rather than the paper's recursion where they differ:

- initial step ``2·eps``; momentum 0.75, none on the first step (the reference's ``a = 1``);
- step-size checkpoints in integer windows: the first window is ``max(int(0.22·N), 1)`` steps, each
  next one ``max(int(0.03·N), 1)`` shorter, down to ``max(int(0.06·N), 1)``. The paper's
  ``ceil(p_j·N)`` with ``p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)`` gives the same
  checkpoints only at N = 100; at N = 10 the reference checks after every step from the 2nd on;
- at a checkpoint the step of a point is halved (and the point sent back to its best iterate and
  gradient) when at most ``0.75·window`` of the window's steps raised its loss (``<=``, as the
  reference), or when its step was not halved at the last checkpoint and its best loss has not
  risen since. As in the reference, the first step of the first window is compared with 0 (the
  reference reads a not-yet-written row of its loss history), so it counts as a rise whenever
  its loss is positive;
- projections and the L2 normalisation are written with the reference's arithmetic, so that the
  iterates agree to the last bit on CPU (``tests/test_attacks.py`` and ``tests/test_golden.py``
  check iterates and best points against ``pyautoattack`` at N = 5, 7, 10, 20 and 100).

Where rftbench departs, on purpose: with ``early_stop`` (evaluation), a point stops being attacked
once misclassified and its *first* misclassified iterate is returned, where the reference keeps
attacking it and returns its *last* one; which points are fooled is the same (each point's
trajectory is independent of the others).

Written here rather than wrapping ``torchattacks.APGD`` because that class always starts from a
random point (the reference study trains with *no* random start), reseeds the global RNG on
every call (which would replay the same data augmentation after each training batch), cannot
take TRADES' KL objective, and attacks every point for every step; this version also skips the
input gradient on the last iteration, which only needs the loss.
"""

from __future__ import annotations

import torch
from torch import nn

from ._core import Objective, compaction_points, cross_entropy, loss_and_grad
from .helpers import first_start

MOMENTUM = 0.75
RHO = 0.75


def _checkpoints(steps: int) -> set[int]:
    """Iterations (1-based counts of steps taken) at which the step size may be halved.

    The reference code's integer windows: first ``max(int(0.22·N), 1)``, then each window
    ``max(int(0.03·N), 1)`` shorter, never below ``max(int(0.06·N), 1)``.
    """
    window = max(int(0.22 * steps), 1)
    shrink, shortest = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    points, at = set(), window
    while at <= steps:
        points.add(at)
        window = max(window - shrink, shortest)
        at += window
    return points


def _normalize(t: torch.Tensor, norm: str) -> torch.Tensor:
    """``t`` over its per-example norm (+1e-12), as the reference's ``normalize``."""
    if norm == "linf":
        size = t.abs().view(t.shape[0], -1).max(1)[0]
    else:
        size = (t**2).view(t.shape[0], -1).sum(-1).sqrt()
    return t / (size.view(-1, *([1] * (t.dim() - 1))) + 1e-12)


def _project(z: torch.Tensor, x0: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """``z`` projected onto the ``norm`` ball around ``x0`` and the box, in the reference's arithmetic."""
    if norm == "linf":
        return torch.min(torch.max(z, x0 - eps), x0 + eps).clamp(0.0, 1.0)
    d = z - x0
    size = (d**2).view(d.shape[0], -1).sum(-1).sqrt().view(-1, *([1] * (d.dim() - 1)))
    return (x0 + _normalize(d, norm) * torch.clamp(size, max=eps)).clamp(0.0, 1.0)


def _ascent(g: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "linf":
        return torch.sign(g)
    if norm == "l2":
        return _normalize(g, norm)
    raise ValueError(f"APGD has no steepest-ascent step for norm {norm!r}")


def _apgd_all(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    index: torch.Tensor,
    *,
    norm: str,
    eps: float,
    steps: int,
    step_size: float | None,
    random_start: bool,
    generator: torch.Generator | None,
    objective: Objective,
    x_init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """APGD attacking every point for every step (training): no host–device synchronisation.

    The same iterates as the early-stop path with nothing dropped, written as masked selections
    (``torch.where``) instead of boolean indexing, so that no step waits for the device to say
    which rows changed; the best iterate is the only one kept (training never returns the first
    fooling point).
    """
    n = len(x)
    shape = (n,) + (1,) * (x.dim() - 1)
    x_adv = first_start(x, norm, eps, random_start=random_start, generator=generator, x_init=x_init)
    logits, loss, grad = loss_and_grad(model, x_adv, y, objective, index)
    fooled = logits.argmax(1) != y
    x_best, loss_best, grad_best = x_adv, loss, grad
    step = torch.full(shape, 2.0 * eps if step_size is None else step_size, device=x.device)
    x_old = x_adv
    prev_loss = torch.zeros_like(loss)  # the reference compares the first step with 0
    n_up = torch.zeros(n, device=x.device)  # steps that raised the loss since the last checkpoint
    best_at_check = loss_best
    reduced_at_check = torch.ones(n, dtype=torch.bool, device=x.device)
    checks = _checkpoints(steps)
    last_check = 0
    for i in range(steps):
        a_mom = MOMENTUM if i > 0 else 1.0
        z = _project(x_adv + step * _ascent(grad, norm), x, norm, eps)
        z = _project(x_adv + (z - x_adv) * a_mom + (x_adv - x_old) * (1 - a_mom), x, norm, eps)
        x_old, x_adv = x_adv, z
        last = i == steps - 1
        logits, loss, g_new = loss_and_grad(model, z, y, objective, index, need_grad=not last)
        fooled = fooled | (logits.argmax(1) != y)
        n_up = n_up + (loss > prev_loss).float()
        prev_loss = loss
        better = loss > loss_best
        rows = better.view(shape)
        x_best, loss_best = torch.where(rows, z, x_best), torch.where(better, loss, loss_best)
        if g_new is not None:
            grad = g_new
            grad_best = torch.where(rows, g_new, grad_best)
        if (i + 1) in checks and not last:
            window = (i + 1) - last_check
            halve = (n_up <= RHO * window) | (~reduced_at_check & (best_at_check >= loss_best))
            reduced_at_check, best_at_check = halve, loss_best
            back = halve.view(shape)
            step = torch.where(back, step / 2.0, step)
            x_adv = torch.where(back, x_best, x_adv)
            grad = torch.where(back, grad_best, grad)
            n_up = torch.zeros_like(n_up)
            last_check = i + 1
    return x_best, loss_best, fooled


def _apgd_once(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    index: torch.Tensor,
    *,
    norm: str,
    eps: float,
    steps: int,
    step_size: float | None,
    random_start: bool,
    generator: torch.Generator | None,
    early_stop: bool,
    objective: Objective,
    x_init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One APGD run; returns (adversarial points, their loss, fooled mask).

    Without ``early_stop`` every point is attacked for every step (:func:`_apgd_all`, sync-free);
    with it a point leaves the active set once misclassified: its state is frozen at once (masked)
    and its row dropped from the batch at the next compaction (:func:`~rftbench.attacks._core.compaction_points`), which needs
    the device to say which rows are left: at most 5 synchronisations per run, whatever ``steps``.
    """
    if not early_stop:
        return _apgd_all(model, x, y, index, norm=norm, eps=eps, steps=steps, step_size=step_size,
                         random_start=random_start, generator=generator, objective=objective, x_init=x_init)
    n = len(x)
    shape = (n,) + (1,) * (x.dim() - 1)

    x_adv = first_start(x, norm, eps, random_start=random_start, generator=generator, x_init=x_init)
    logits, loss, grad = loss_and_grad(model, x_adv, y, objective, index)
    fooled = logits.argmax(1) != y
    x_best, loss_best, grad_best = x_adv.clone(), loss.clone(), grad.clone()
    x_fool = x_adv.clone()  # first point found that breaks each example
    step = torch.full(shape, 2.0 * eps if step_size is None else step_size, device=x.device)
    x_old = x_adv.clone()
    prev_loss = torch.zeros_like(loss)  # the reference compares the first step with 0
    n_up = torch.zeros(n, device=x.device)  # steps that raised the loss since the last checkpoint
    best_at_check = loss_best.clone()
    reduced_at_check = torch.ones(n, dtype=torch.bool, device=x.device)
    checks = _checkpoints(steps)
    compact = compaction_points(steps)
    last_check = 0
    # The rows attacked: recomputed (one synchronisation) only after the iterations in ``compact``
    # (at most 4, whatever ``steps``). In between, a row fooled since the last compaction is still
    # in the batch but ``live`` masks every update of its state, so it keeps exactly what it had
    # when it was fooled, as if it had been dropped at once (each row's trajectory is independent).
    active = torch.arange(n, device=x.device)[~fooled]

    for i in range(steps):
        if active.numel() == 0:
            break
        a = active
        live = ~fooled[a]
        lv = live.view((-1,) + shape[1:])
        xa, xo, g, s = x_adv[a], x_old[a], grad[a], step[a]
        x0 = x[a]
        a_mom = MOMENTUM if i > 0 else 1.0
        z = _project(xa + s * _ascent(g, norm), x0, norm, eps)
        z = _project(xa + (z - xa) * a_mom + (xa - xo) * (1 - a_mom), x0, norm, eps)
        x_old[a] = torch.where(lv, xa, xo)
        x_adv[a] = torch.where(lv, z, xa)
        last = i == steps - 1
        logits, loss, g_new = loss_and_grad(model, z, y[a], objective, index[a], need_grad=not last)
        if g_new is not None:
            grad[a] = torch.where(lv, g_new, g)
        fool_now = (logits.argmax(1) != y[a]) & live
        x_fool[a] = torch.where(fool_now.view_as(lv), z, x_fool[a])
        fooled[a] = fooled[a] | fool_now
        n_up[a] += ((loss > prev_loss[a]) & live).float()
        prev_loss[a] = torch.where(live, loss, prev_loss[a])
        better = (loss > loss_best[a]) & live
        rows = better.view_as(lv)
        x_best[a], loss_best[a] = torch.where(rows, z, x_best[a]), torch.where(better, loss, loss_best[a])
        if g_new is not None:
            grad_best[a] = torch.where(rows, g_new, grad_best[a])
        if (i + 1) in checks and not last:
            window = (i + 1) - last_check
            osc = n_up <= RHO * window
            no_gain = ~reduced_at_check & (best_at_check >= loss_best)
            halve = osc | no_gain
            reduced_at_check, best_at_check = halve, loss_best.clone()
            back = halve.view(shape)
            step = torch.where(back, step / 2.0, step)
            x_adv = torch.where(back, x_best, x_adv)
            grad = torch.where(back, grad_best, grad)
            n_up.zero_()
            last_check = i + 1
        if (i + 1) in compact and not last:
            active = a[~fooled[a]]
    out = torch.where(fooled.view(shape), x_fool, x_best)
    return out, loss_best, fooled


def apgd_ce(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    restarts: int = 1,
    random_start: bool = False,
    generator: torch.Generator | None = None,
    early_stop: bool = False,
    objective: Objective | None = None,
    x_init: torch.Tensor | None = None,
    **_: object,
) -> torch.Tensor:
    """APGD maximising ``objective`` (default CE) within the ``norm`` ball of radius ``eps``.

    Returns, per example, the highest-loss point found (training semantics); with
    ``early_stop`` a point stops being attacked once misclassified and its first misclassified
    point is returned (evaluation semantics). ``step_size`` overrides the initial ``2·eps``.
    ``x_init``: where the first start begins (moved into the ball and the box; the reference's
    ``x_init``), instead of ``x`` or a random point (``random_start``).
    Restarts after the first start at random points and attack only the points not yet broken.
    """
    objective = objective or cross_entropy
    x = x.detach().float()
    if eps == 0 or steps == 0:
        return x.clone()
    kwargs = dict(norm=norm, eps=eps, steps=steps, step_size=step_size, generator=generator, early_stop=early_stop, objective=objective)
    todo = torch.arange(len(x), device=x.device)
    best, best_loss, _ = _apgd_once(model, x, y, todo, random_start=random_start, x_init=x_init, **kwargs)
    for _r in range(1, restarts):
        if early_stop:
            with torch.no_grad():
                fooled_now = model(best[todo]).argmax(1) != y[todo]
            todo = todo[~fooled_now]
        if todo.numel() == 0:
            break
        out, loss, fooled = _apgd_once(model, x[todo], y[todo], todo, random_start=True, **kwargs)
        if not early_stop:  # every point is attacked again: a masked selection, no synchronisation
            better = loss > best_loss
            best = torch.where(better.view((-1,) + (1,) * (x.dim() - 1)), out, best)
            best_loss = torch.where(better, loss, best_loss)
            continue
        better = (loss > best_loss[todo]) | fooled
        best[todo[better]] = out[better]
        best_loss[todo[better]] = loss[better]
    return best
