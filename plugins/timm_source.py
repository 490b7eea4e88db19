"""Built-in plugin ``timm``: architectures built by timm, weights from the Hugging Face Hub.

A card with ``source: timm`` names a timm model in ``model`` (``arch.tag``, as timm names
it) and its Hub weights in ``weights.hub_id`` (``timm/arch.tag``). The backbone is
``timm.create_model(model, num_classes=0)``: timm's own head with the classifier removed, so
``forward`` returns the pooled penultimate features (after timm's pre-logits layers, e.g.
MobileNetV3's ``conv_head``). Weights are the Hub's ``model.safetensors`` at the card's
pinned revision (or the one ``rftbench zoo fetch`` recorded), read with safetensors (never
unpickled) and loaded strictly: only the classifier keys named by timm's pretrained config
are dropped, any other mismatch is an error.
"""

from __future__ import annotations

from pydantic import Field

from rftbench import ArchitectureSpec, hookimpl
from rftbench._lazy import forward_to
from rftbench.specs import lazy

from ._architecture import ArchitectureParams


class TimmParams(ArchitectureParams):
    drop_path_rate: float | None = Field(None, ge=0.0, lt=1.0, description="stochastic depth rate (timm's default if unset)")


#: The factory: imports :mod:`rftbench_plugins._timm` (torch, the library) only when a backbone is built.
build = lazy("rftbench_plugins._timm:build")


@hookimpl
def rftbench_add_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="timm",
            description="timm models (timm.create_model, num_classes=0) with Hub safetensors weights at a pinned revision",
            params=TimmParams,
            factory=build,
        )
    ]


#: Everything else (``TimmBackbone``, …) lives in :mod:`rftbench_plugins._timm`.
__getattr__ = forward_to("rftbench_plugins._timm")
