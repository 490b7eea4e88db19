"""Optimiser construction: separate LR and weight decay for backbone and head, none on biases and norms."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..config import OptimizerConfig

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def no_decay_names(model: nn.Module) -> set[str]:
    """Parameters that never get weight decay: biases and other 0/1-D tensors, norm layers' parameters,
    and what a module lists in ``no_weight_decay()`` (timm's position embeddings, class tokens)."""
    names: set[str] = set()
    for mname, module in model.named_modules():
        prefix = f"{mname}." if mname else ""
        own = dict(module.named_parameters(recurse=False))
        if isinstance(module, _NORMS) or type(module).__name__.lower().endswith(("norm", "norm2d", "rmsnorm")):
            names.update(prefix + n for n in own)
        if hasattr(module, "no_weight_decay") and callable(module.no_weight_decay):
            try:
                listed = module.no_weight_decay()
            except Exception:  # noqa: BLE001 - a foreign API; best effort
                listed = ()
            names.update(prefix + n for n in listed)
    names.update(n for n, p in model.named_parameters() if p.ndim <= 1)
    return names


def param_groups(model: nn.Module, names: Iterable[str], cfg: OptimizerConfig) -> list[dict]:
    """Up to four groups (backbone/head × decay/no-decay) over the parameters ``names``.

    Each group carries ``base_lr`` (what LR schedules multiply) and a ``group`` label.
    """
    wanted = set(names)
    skip = no_decay_names(model)
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if name not in wanted:
            continue
        part = "head" if name.startswith("head.") else "backbone"
        groups.setdefault((part, name not in skip), []).append(p)
    out = []
    for (part, decay), params in sorted(groups.items()):
        lr = cfg.lr_head if part == "head" else cfg.lr_backbone
        wd = (cfg.weight_decay_head if part == "head" else cfg.weight_decay_backbone) if decay else 0.0
        out.append({"params": params, "lr": lr, "base_lr": lr, "weight_decay": wd, "group": f"{part}{'' if decay else '/no_decay'}"})
    return out


def build_optimizer(model: nn.Module, names: Iterable[str], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """AdamW or SGD over :func:`param_groups` (parameters frozen in an epoch have no grad and are skipped)."""
    groups = param_groups(model, names, cfg)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, betas=cfg.betas)
    return torch.optim.SGD(groups, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Set every group's LR to its ``base_lr`` times ``factor`` (the LR schedule's value)."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
