"""The fused adversarial step: attack, forward, backward and (at the end of an accumulation) the update.

Cost model (DESIGN.md): PGD-k with input-only gradients costs about 2k + 3 forward-equivalents
per batch, clean training 3. The step sits on that floor and lowers the cost of each forward:

- attack phase: model in eval mode with parameters frozen (autograd records nothing for them)
  and the gradient taken w.r.t. the input only; the perturbation and its projection stay fp32
  (:mod:`rftbench.attacks`); forwards under autocast (bf16 on CPUs with native bf16 and on
  recent GPUs, fp16 elsewhere on CUDA, the attack loss then scaled against underflow);
  channels_last inputs for conv nets; no attack at all while the ε schedule is at 0;
- update phase: one autocast forward of ``cat([x, x_adv])`` when the loss needs both and no
  batch norm is in train mode (two forwards otherwise, so batch statistics are unchanged),
  the loss in fp32, backward through a GradScaler under fp16, one optimiser step per
  accumulation window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..attacks import attack_mode
from ..errors import RftbenchError
from .hardware import Precision


class NonFiniteLossError(RftbenchError):
    """The training loss became NaN or infinite."""


def has_training_batchnorm(model: nn.Module) -> bool:
    """Whether a batch norm computes batch statistics (so clean and adversarial batches must not be mixed)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules())


@dataclass
class StepOutput:
    """Detached per-batch statistics (tensors, so that reading them is the caller's choice of sync point)."""

    loss: torch.Tensor
    correct: torch.Tensor
    n: int


class FusedStep:
    """One training step of ``loss`` against ``threat`` on ``model`` (see the module docstring).

    ``accumulation``: micro-batches per optimiser step; each micro-batch's loss is divided by
    it. Call :meth:`refresh` after the protocol changes which modules train.
    ``check_finite``: raise :class:`NonFiniteLossError` before the backward of a NaN/inf loss;
    that reads the loss on the host (one synchronisation per call), so the trainer turns it off
    and checks the losses it reads every ``log_every`` steps instead.
    ``adversarial``: whether the loss trains on adversarial examples, the loss spec's
    ``adversarial`` (the trainer passes it; the loss object is not asked); ``None``: whether a
    ``threat`` is given.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: Any,
        threat: Any | None,
        optimizer: torch.optim.Optimizer,
        precision: Precision,
        *,
        channels_last: bool = False,
        accumulation: int = 1,
        scaler: torch.amp.GradScaler | None = None,
        compiled: nn.Module | None = None,
        check_finite: bool = True,
        adversarial: bool | None = None,
    ):
        self.model, self.loss, self.threat, self.optimizer = model, loss, threat, optimizer
        self.precision, self.channels_last, self.accumulation = precision, channels_last, accumulation
        self.scaler, self.check_finite = scaler, check_finite
        self.adversarial = threat is not None if adversarial is None else bool(adversarial)
        self.forward_model = compiled or model
        self.concat = True
        #: called before each optimiser update (the trainer sets it to an all-reduce under torch.distributed)
        self.sync_grads: Any = None
        self.refresh()

    def refresh(self) -> None:
        """Re-read which batch norms train (after the protocol set train/eval modes)."""
        self.concat = not has_training_batchnorm(self.model)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def attack(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        """Adversarial examples at budget ``eps`` (fp32), crafted in eval mode with frozen parameters."""
        with attack_mode(self.model), self.precision.autocast():
            objective = self.loss.attack_objective(self.forward_model, x, y)
            kwargs = {"objective": objective} if objective is not None else {}
            start = getattr(self.loss, "attack_start", None)
            x_init = start(x) if start is not None else None
            if x_init is not None:
                kwargs["x_init"] = x_init
            x_adv = self.threat.perturb(self.forward_model, x, y, eps=eps, **kwargs)
        return self._prepare(x_adv.detach())

    def logits(self, x: torch.Tensor, x_adv: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Clean and adversarial logits the loss needs, in train mode under autocast."""
        uses_clean, uses_adv = self.loss.uses_clean, self.loss.uses_adv and x_adv is not None
        model = self.forward_model
        with self.precision.autocast():
            if x_adv is x:  # ε = 0: one forward serves both
                out = model(x)
                return (out if uses_clean else None), (out if uses_adv else None)
            if uses_clean and uses_adv and self.concat:
                clean, adv = model(torch.cat([x, x_adv])).chunk(2)
                return clean, adv
            clean = model(x) if uses_clean else None
            adv = model(x_adv) if uses_adv else None
        return clean, adv

    def __call__(self, x: torch.Tensor, y: torch.Tensor, eps: float, *, update: bool = True) -> StepOutput:
        """Train on one micro-batch (``x`` in [0, 1], on the device); step the optimiser when ``update``."""
        x = self._prepare(x)
        x_adv = self.attack(x, y, eps) if self.adversarial and self.threat is not None and eps > 0 else None
        if self.adversarial and x_adv is None:
            x_adv = x  # ε = 0 (e.g. before T1 of an ε schedule): the adversarial batch is the clean one
        clean, adv = self.logits(x, x_adv)
        value = self.loss(y, clean=clean, adv=adv)
        if self.check_finite and not math.isfinite(value.item()):
            raise NonFiniteLossError(f"the training loss is {value.item()}")
        scaled = value / self.accumulation
        if self.scaler is not None:
            self.scaler.scale(scaled).backward()
        else:
            scaled.backward()
        if update:
            if self.sync_grads is not None:  # distributed: average gradients across processes before the update
                self.sync_grads()
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        shown = adv if adv is not None else clean
        correct = (shown.detach().argmax(1) == y).sum()
        return StepOutput(value.detach(), correct, len(y))
