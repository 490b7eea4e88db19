"""Built-in plugin ``open_clip``: CLIP image towers built by open_clip, a fresh linear head on top.

A card with ``source: open_clip`` names an open_clip model config in ``model`` (e.g.
``convnext_base_w``) and its weights: ``weights.hub_id`` + ``weights.filename`` (the LAION
repos' ``open_clip_pytorch_model.bin``), or a ``weights.url`` with its sha256. open_clip builds
the CLIP model and loads the checkpoint itself (``torch.load(weights_only=True)``, or
safetensors), then only the image tower ``model.visual`` is kept: its output, the CLIP image
embedding (``embed_dim`` wide, before L2 normalisation), is the representation. CLIP mean/std
come from the card and are applied inside the model.
"""

from __future__ import annotations

from rftbench import ArchitectureSpec, hookimpl
from rftbench._lazy import forward_to
from rftbench.specs import lazy

from ._architecture import ArchitectureParams

#: The factory: imports :mod:`rftbench_plugins._open_clip` (torch, the library) only when a backbone is built.
build = lazy("rftbench_plugins._open_clip:build")


@hookimpl
def rftbench_add_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="open_clip",
            description="open_clip image towers (CLIP image embedding) with CLIP normalisation inside",
            params=ArchitectureParams,
            factory=build,
        )
    ]


#: Everything else (``build``, …) lives in :mod:`rftbench_plugins._open_clip`.
__getattr__ = forward_to("rftbench_plugins._open_clip")
