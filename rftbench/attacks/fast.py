"""Single-step attacks of fast adversarial training: FGSM-RS and N-FGSM.

- **FGSM-RS** (Wong, Rice & Kolter, "Fast is better than free: revisiting adversarial
  training", ICLR 2020, arXiv 2001.03994): δ₀ ~ U(−ε, ε) clipped to the image box, one signed
  gradient step of α = 1.25·ε, then projection onto the ε-ball and the box.
- **N-FGSM** (de Jorge et al., "Make some noise: reliable and efficient single-step adversarial
  training", NeurIPS 2022, arXiv 2202.01181): noise η ~ U(−k·ε, k·ε) with k = 2 clipped to the
  box, one signed step of α = ε from x + η, and **no** projection onto the ε-ball (clipping to
  the box only; the authors' ``--clip`` option, off by default, is ``clip`` here). Its points
  lie up to (k + α/ε)·ε = 3ε from x in L∞: it is a training attack, not a way to measure
  robustness at ε.

Both cost one forward-backward for the input gradient (the training step then adds its own
forward-backward): about 2·1 + 3 = 5 forward-equivalents per batch against 2·10 + 3 = 23 for
PGD-10. Both run sync-free (no ``.item()``, no data-dependent branching), also with
``early_stop`` and ``restarts``.

Departures from the authors' code, both shared with every rftbench attack: the attack runs
with the model in eval mode (the authors' run it in train mode, so batch-norm layers use batch
statistics during the attack), and the L2 variants (normalised-gradient step; noise of uniform
radius in the ball) are rftbench's extension — the papers are L∞ only.
"""

from __future__ import annotations

import torch
from torch import nn

from ._ball import ascent_direction, project
from ._core import Objective, cross_entropy, loss_and_grad
from .helpers import random_start as random_start_point  # the parameter `random_start` shadows the name
from .helpers import start_point

#: FGSM-RS step in units of ε (Wong et al. 2020).
FGSM_RS_ALPHA = 1.25
#: N-FGSM noise magnitude k and step α, in units of ε (de Jorge et al. 2022).
N_FGSM_K = 2.0
N_FGSM_ALPHA = 1.0


def _single_step(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str,
    eps: float,
    noise: float,
    alpha: float,
    radius: float | None,
    random_start: bool,
    generator: torch.Generator | None,
    early_stop: bool,
    objective: Objective,
    index: torch.Tensor | None,
    x_init: torch.Tensor | None,
) -> torch.Tensor:
    """One start (noise of size ``noise``, else ``x_init``, else x), one step of ``alpha``, projection onto ``radius`` (None: none), box."""
    if random_start and noise > 0:
        start = random_start_point(x, noise, norm, generator)
    elif x_init is not None:
        start = start_point(x, x_init, norm, noise if noise > 0 else eps)
    else:
        start = x.clone()
    logits, _, grad = loss_and_grad(model, start, y, objective, index)
    x_adv = start + alpha * ascent_direction(grad, norm)
    if radius is not None:
        x_adv = x + project(x_adv - x, norm, radius)
    x_adv = x_adv.clamp(0.0, 1.0)
    if early_stop:
        # A point already misclassified at its start keeps the start (as PGD's early stop does),
        # chosen with ``torch.where`` rather than by dropping rows, so nothing syncs.
        fooled = (logits.argmax(1) != y).view(-1, *([1] * (x.dim() - 1)))
        x_adv = torch.where(fooled, start, x_adv)
    return x_adv


def _run(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str,
    eps: float,
    steps: int,
    noise: float,
    alpha: float,
    radius: float | None,
    restarts: int,
    random_start: bool,
    generator: torch.Generator | None,
    early_stop: bool,
    objective: Objective | None,
    x_init: torch.Tensor | None,
) -> torch.Tensor:
    objective = objective or cross_entropy
    x = x.detach().float()
    if eps == 0 or steps == 0:
        return x.clone()
    kwargs = dict(norm=norm, eps=eps, noise=noise, alpha=alpha, radius=radius, generator=generator,
                  early_stop=early_stop, objective=objective, index=None)
    if restarts <= 1:
        return _single_step(model, x, y, random_start=random_start, x_init=x_init, **kwargs)
    # Restarts: per point, the restart with the highest loss (with early_stop, a fooling one first);
    # each restart costs one more forward to score its point. Selection by ``torch.where``: no sync.
    best = x.clone()
    best_score = torch.full((len(x),), -float("inf"), device=x.device)
    shape = (-1,) + (1,) * (x.dim() - 1)
    for r in range(restarts):
        x_adv = _single_step(model, x, y, random_start=random_start or r > 0, x_init=x_init if r == 0 else None, **kwargs)
        logits, loss, _ = loss_and_grad(model, x_adv, y, objective, None, need_grad=False)
        score = loss
        if early_stop:
            score = torch.where(logits.argmax(1) != y, torch.full_like(loss, float("inf")), loss)
        better = score > best_score
        best = torch.where(better.view(shape), x_adv, best)
        best_score = torch.where(better, score, best_score)
    return best


def fgsm_rs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str,
    eps: float,
    steps: int = 1,
    step_size: float | None = None,
    restarts: int = 1,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    early_stop: bool = False,
    objective: Objective | None = None,
    x_init: torch.Tensor | None = None,
    alpha: float = FGSM_RS_ALPHA,
    **_: object,
) -> torch.Tensor:
    """FGSM with random start (Wong, Rice & Kolter 2020, arXiv 2001.03994).

    δ₀ ~ U(−ε, ε) (``random_start``; without it, plain FGSM from x, or from ``x_init`` when
    given), one step of ``step_size`` (default ``alpha·ε``, α = 1.25), projected onto the ε-ball
    and [0, 1]. ``steps`` only switches the attack off at 0 (it is single-step by definition).
    A random start takes precedence over ``x_init`` (TRADES' KL start), since the noise is what
    the method is.
    """
    step = step_size if step_size is not None else alpha * eps
    return _run(model, x, y, norm=norm, eps=eps, steps=steps, noise=eps, alpha=step, radius=eps, restarts=restarts,
                random_start=random_start, generator=generator, early_stop=early_stop, objective=objective, x_init=x_init)


def n_fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str,
    eps: float,
    steps: int = 1,
    step_size: float | None = None,
    restarts: int = 1,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    early_stop: bool = False,
    objective: Objective | None = None,
    x_init: torch.Tensor | None = None,
    k: float = N_FGSM_K,
    alpha: float = N_FGSM_ALPHA,
    clip: float | None = None,
    **_: object,
) -> torch.Tensor:
    """N-FGSM (de Jorge et al. 2022, arXiv 2202.01181): noise U(−k·ε, k·ε), one step, no ε-ball projection.

    ``k`` (2): noise magnitude in units of ε; the step is ``step_size`` (default ``alpha·ε``,
    α = 1); ``clip`` (default ``None``, the paper's): when set, project onto the ball of
    radius ``clip·ε`` (the authors' ``--clip``). Always clipped to [0, 1]. The result lies
    within (k + α)·ε of x (3ε by default), not within ε. Without ``random_start`` it starts at
    x (or ``x_init``); ``steps`` only switches the attack off at 0.
    """
    step = step_size if step_size is not None else alpha * eps
    radius = None if clip is None else clip * eps
    return _run(model, x, y, norm=norm, eps=eps, steps=steps, noise=k * eps, alpha=step, radius=radius, restarts=restarts,
                random_start=random_start, generator=generator, early_stop=early_stop, objective=objective, x_init=x_init)
