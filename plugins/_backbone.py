"""The one interface every representation exposes, whatever builds it.

Architecture plugins wrap what their library builds in a :class:`Backbone`: it takes images
in [0, 1] at the card's resolution, normalises them inside (and flips channels where the
source expects BGR), and returns the penultimate features from ``forward_features``. The
linear head is not part of it: :class:`rftbench.model.Classifier` adds a fresh one.
"""

from __future__ import annotations

import torch
from torch import nn

from rftbench.cards import RepresentationCard
from rftbench.model import Normalize

from ._architecture import ArchitectureParams  # noqa: F401 - re-exported: where plugins have imported it from


class Backbone(nn.Module):
    """``forward_features(x) -> Tensor[B, num_features]`` for images ``x`` in [0, 1].

    Subclasses implement :meth:`extract` on normalised inputs; ``body`` is the library's
    module (a timm model, an open_clip image tower, a transformers model).
    """

    def __init__(self, body: nn.Module, card: RepresentationCard, num_features: int):
        super().__init__()
        self.normalize = Normalize(card.input.mean, card.input.std)
        self.body = body
        self.num_features = int(num_features)
        self.resolution = card.input.resolution
        self.bgr = card.input.channel_order == "bgr"
        self.card_id = card.id

    def extract(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of images ``x`` in [0, 1], shape (B, C, H, W)."""
        if self.bgr:
            x = x.flip(1)
        return self.extract(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)

    def extra_repr(self) -> str:
        return f"card={self.card_id!r}, num_features={self.num_features}, resolution={self.resolution}"
