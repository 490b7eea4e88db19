"""What every attack shares: the objective, input-only gradients, and the attack mode of a model."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

#: ``objective(logits, y, index) -> per-example loss [B_active]`` to maximise; ``index`` holds the
#: positions, in the batch given to the attack, of the rows of ``logits`` (``None``: all rows, in order).
Objective = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]

#: Factor on the attack loss under fp16 autocast, so that small input gradients do not underflow
#: in half precision on their way back (sign and L2-normalised steps are scale-invariant).
FP16_ATTACK_LOSS_SCALE = 2.0**10


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """Per-example cross-entropy: the default objective (APGD-CE, PGD, FGSM)."""
    return F.cross_entropy(logits.float(), y, reduction="none")


def _fp16_autocast() -> bool:
    for device in ("cuda", "cpu"):
        if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.float16:
            return True
    return False


#: With early stop, the rows still attacked are recomputed after the first step and after these shares of the steps.
COMPACT_AT = (1 / 8, 1 / 4, 1 / 2)


def compaction_points(steps: int) -> set[int]:
    """Iterations (1-based counts of steps taken) after which an early-stopping attack drops its fooled rows.

    At most 4, whatever ``steps``: each is one host–device synchronisation (which rows are left).
    Between them a fooled row stays in the batch with every update of its state masked, so the
    attack returns what dropping it at once would (each row's trajectory is independent).
    """
    return {1} | {max(math.ceil(steps * share), 1) for share in COMPACT_AT}


def loss_and_grad(
    model: nn.Module,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    objective: Objective,
    index: torch.Tensor | None = None,
    *,
    need_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Logits, per-example loss and (optionally) the fp32 gradient of the loss w.r.t. ``x_adv`` only.

    Runs in whatever autocast context the caller set; the input stays fp32, so its gradient is
    fp32. Autograd is asked for the input gradient alone (``torch.autograd.grad``), so no
    parameter gradient is ever computed or accumulated.
    """
    if not need_grad:
        with torch.no_grad():
            logits = model(x_adv)
            return logits, objective(logits, y, index).float(), None
    x_adv = x_adv.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x_adv)
        loss = objective(logits, y, index).float()
        total = loss.sum()
        if _fp16_autocast():
            total = total * FP16_ATTACK_LOSS_SCALE
        (grad,) = torch.autograd.grad(total, x_adv)
    return logits.detach(), loss.detach(), grad.float()


@contextlib.contextmanager
def attack_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Model in eval mode with every parameter frozen, restored on exit (nesting is harmless).

    Attacks only need the gradient w.r.t. their input; freezing the parameters stops autograd
    from recording what a parameter gradient would need.
    """
    training = {m: m.training for m in model.modules()}
    requires = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in requires:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in requires:
            p.requires_grad_(flag)
        for m, flag in training.items():
            m.training = flag
