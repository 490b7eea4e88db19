"""What every zoo architecture's spec shares, importable without torch (plugin discovery reads it)."""

from __future__ import annotations

from pydantic import Field

from rftbench.specs import Params


class ArchitectureParams(Params):
    """Parameters every zoo architecture takes (``build_backbone`` passes ``pretrained`` through ``spec.build``)."""

    pretrained: bool = Field(True, description="load the card's pinned pretrained weights (False: random init, no download)")
