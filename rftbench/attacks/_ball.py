"""Geometry of the perturbation balls: random starts, steepest-ascent directions, projections.

Everything here runs in fp32 whatever autocast context the caller is in: ``delta`` and
gradients are kept fp32 by the attacks, and these helpers never create low-precision tensors.
"""

from __future__ import annotations

import torch

_TINY = 1e-12


def _flat_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    """Per-example ``p``-norm of a batch, shaped ``[B, 1, 1, …]`` for broadcasting."""
    norms = t.flatten(1).norm(p=p, dim=1)
    return norms.view(-1, *([1] * (t.dim() - 1)))


def random_delta(x: torch.Tensor, norm: str, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random perturbation inside the ball (uniform in each coordinate for L∞, uniform radius for L2)."""
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=torch.float32)
        return (2 * u - 1) * eps
    if norm == "l2":
        d = torch.randn(x.shape, generator=generator, device=x.device, dtype=torch.float32)
        r = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator, device=x.device)
        return d / (_flat_norm(d, 2) + _TINY) * r * eps
    if norm == "l1":
        # Laplace directions scaled to a uniform radius: a point of the L1 ball.
        e = torch.empty(x.shape, device=x.device).exponential_(generator=generator)
        sign = torch.randint(0, 2, x.shape, generator=generator, device=x.device) * 2 - 1
        d = e * sign
        r = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator, device=x.device)
        return d / (_flat_norm(d, 1) + _TINY) * r * eps
    raise ValueError(f"unsupported norm {norm!r}")


def ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The unit steepest-ascent direction of ``grad`` for the norm (sign for L∞, normalised for L2)."""
    if norm == "linf":
        return grad.sign()
    if norm == "l2":
        return grad / (_flat_norm(grad, 2) + _TINY)
    raise ValueError(f"no steepest-ascent step implemented for norm {norm!r}")


def project(delta: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """Project ``delta`` onto the ``norm`` ball of radius ``eps`` (Euclidean projection for L∞/L2/L1)."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    if norm == "l2":
        n = _flat_norm(delta, 2)
        return delta * torch.clamp(eps / (n + _TINY), max=1.0)
    if norm == "l1":
        return _project_l1(delta, eps)
    raise ValueError(f"unsupported norm {norm!r}")


def _project_l1(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Euclidean projection onto the L1 ball (Duchi et al. 2008, sort-based)."""
    flat = delta.flatten(1)
    inside = flat.abs().sum(1) <= eps
    u = flat.abs().sort(dim=1, descending=True).values
    css = u.cumsum(1)
    k = torch.arange(1, u.shape[1] + 1, device=u.device, dtype=u.dtype)
    cond = u - (css - eps) / k > 0
    rho = cond.float().cumsum(1).argmax(1, keepdim=True)  # last index where cond holds
    theta = (css.gather(1, rho) - eps) / (rho + 1).to(u.dtype)
    proj = flat.sign() * (flat.abs() - theta).clamp(min=0)
    out = torch.where(inside.unsqueeze(1), flat, proj)
    return out.view_as(delta)


def clip_to_box(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``delta`` shrunk so that ``x + delta`` stays in the image box [0, 1]."""
    return (x + delta).clamp(0.0, 1.0) - x


def lp_norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-example size of ``delta`` in ``norm`` (a flat ``[B]`` tensor)."""
    p = {"linf": float("inf"), "l2": 2.0, "l1": 1.0}[norm]
    return delta.flatten(1).norm(p=p, dim=1)
