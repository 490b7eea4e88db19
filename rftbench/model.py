"""Models: a representation (backbone) with a replaceable linear head, taking images in [0, 1].

Architectures (plugins) build backbones; the core wraps them in a :class:`Classifier`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .cards import RepresentationCard
from .plugins import PluginManager, get_manager


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel: architectures put this first so models take [0, 1] images."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class Classifier(nn.Module):
    """A backbone (``forward_features`` → penultimate features) followed by a linear ``head``."""

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        if not hasattr(backbone, "forward_features") or not hasattr(backbone, "num_features"):
            raise TypeError(f"{type(backbone).__name__} is not a representation: it needs forward_features() and num_features")
        self.backbone = backbone
        self.num_classes = num_classes
        self.head = nn.Linear(backbone.num_features, num_classes)
        #: the representation card's ``input`` when built from a card (:func:`build_classifier`): the
        #: images it takes are ``channels × resolution × resolution`` (the evaluator checks them)
        self.input: Any = None
        #: the representation card's id, when built from a card
        self.representation: str | None = None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features g(x) of images ``x`` in [0, 1]."""
        return self.backbone.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def reset_head(self, num_classes: int) -> None:
        """Replace the head with a fresh one for ``num_classes`` classes."""
        self.num_classes = num_classes
        self.head = nn.Linear(self.backbone.num_features, num_classes).to(self.head.weight.device)


def build_backbone(
    card: RepresentationCard | str, *, pretrained: bool = True, manager: PluginManager | None = None, **params: Any
) -> nn.Module:
    """Build the backbone of a representation through the architecture plugin its card names."""
    manager = manager or get_manager()
    if isinstance(card, str):
        card = manager.get("representation", card)
    spec = manager.get("architecture", card.source)
    return spec.build(card, pretrained=pretrained, **params)


def build_classifier(
    card: RepresentationCard | str, num_classes: int, *, pretrained: bool = True, manager: PluginManager | None = None
) -> Classifier:
    """A :class:`Classifier` over the representation ``card`` with a fresh ``num_classes`` head (``model.input``: the card's)."""
    manager = manager or get_manager()
    if isinstance(card, str):
        card = manager.get("representation", card)
    model = Classifier(build_backbone(card, pretrained=pretrained, manager=manager), num_classes)
    model.input, model.representation = card.input, card.id
    return model
