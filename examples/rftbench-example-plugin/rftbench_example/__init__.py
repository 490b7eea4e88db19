"""An example rftbench plugin: the ``alp`` loss and the ``uniform-noise`` threat model.

- ``alp``: adversarial logit pairing (Kannan, Kurakin & Goodfellow 2018, mixed-minibatch form):
  ½·(CE(clean) + CE(adv)) + λ·mean ‖z_clean − z_adv‖², the attack maximising CE.
- ``uniform-noise``: random noise drawn uniformly from the L∞ ball of radius ε; accuracy under
  it, next to accuracy under an attack with the same budget, separates robustness to noise
  from robustness to worst-case perturbations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from rftbench import Epsilon, LossSpec, Params, ThreatModelSpec, hookimpl
from rftbench.specs import format_number


class AlpParams(Params):
    pairing: float = Field(0.5, ge=0, le=100, description="λ, the weight of the logit-pairing term")


class AdversarialLogitPairing:
    """The loss object of the engine's contract (see ``rftbench_add_losses`` in rftbench.hookspecs)."""

    adversarial = True
    uses_clean = True
    uses_adv = True

    def __init__(self, pairing: float):
        self.pairing = pairing

    def attack_objective(self, model, x, y):
        return None  # the attack maximises cross-entropy

    def __call__(self, y, *, clean=None, adv=None):
        clean, adv = clean.float(), adv.float()
        ce = 0.5 * (F.cross_entropy(clean, y) + F.cross_entropy(adv, y))
        return ce + self.pairing * (clean - adv).pow(2).sum(1).mean()


class UniformNoiseParams(Params):
    eps: Epsilon = Field(8 / 255, le=1, description="L∞ radius on the [0, 1] pixel scale")
    seed: int = Field(0, ge=0, description="seed of the noise (same seed and batch order, same noise)")


class UniformNoise:
    """Adds ``U(-ε, ε)`` noise per pixel and clips to [0, 1]."""

    norm = "linf"

    def __init__(self, eps: float, seed: int):
        self.eps, self.seed = eps, seed
        self._generator = torch.Generator(device="cpu").manual_seed(seed)

    def label(self) -> str:
        return f"uniform-noise:{format_number(self.eps)}"

    def perturb(self, model, x: torch.Tensor, y: torch.Tensor, *, eps: float | None = None) -> torch.Tensor:
        eps = self.eps if eps is None else eps
        noise = torch.rand(x.shape, generator=self._generator, dtype=torch.float32).to(x.device)
        return (x.float() + (2 * noise - 1) * eps).clamp(0, 1).to(x.dtype)


@hookimpl
def rftbench_add_losses():
    return [
        LossSpec(
            name="alp",
            description="Adversarial logit pairing: mixed clean/adversarial CE plus λ·‖z − z_adv‖².",
            params=AlpParams,
            factory=AdversarialLogitPairing,
            adversarial=True,
        )
    ]


@hookimpl
def rftbench_add_threat_models():
    return [
        ThreatModelSpec(
            name="uniform-noise",
            description="Uniform random noise in the L∞ ball (a non-adversarial baseline).",
            norm="linf",
            params=UniformNoiseParams,
            factory=UniformNoise,
        )
    ]
