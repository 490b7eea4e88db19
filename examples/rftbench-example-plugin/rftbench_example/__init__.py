"""An example rftbench plugin: the ``uniform-noise`` threat model.

Random noise drawn uniformly from the L∞ ball of radius ε: accuracy under it, next to
accuracy under an attack with the same budget, separates robustness to noise from
robustness to worst-case perturbations.
"""

from __future__ import annotations

import torch
from pydantic import Field

from rftbench import Epsilon, Params, ThreatModelSpec, hookimpl
from rftbench.specs import format_number


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
