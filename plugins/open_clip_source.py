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

import torch

from rftbench import ArchitectureSpec, hookimpl
from rftbench.cards import RepresentationCard
from rftbench.errors import RftbenchError, UnknownNameError
from rftbench.fetch import weights_file

from ._backbone import ArchitectureParams, Backbone

DEFAULT_FILENAME = "open_clip_pytorch_model.bin"


class OpenClipBackbone(Backbone):
    """An open_clip image tower; features are its image embedding."""

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def build(card: RepresentationCard, *, pretrained: bool = True) -> OpenClipBackbone:
    """The ``open_clip`` architecture factory (contract in :func:`rftbench.hookspecs.rftbench_add_architectures`)."""
    import open_clip

    config = open_clip.get_model_config(card.model)
    if config is None:
        raise UnknownNameError("open_clip model", card.model, open_clip.list_models(), hint=f"Fix the `model` field of card {card.id!r}.")
    source = None
    if pretrained:
        source = str(weights_file(card, default_filename=DEFAULT_FILENAME))
    try:
        model = open_clip.create_model(card.model, pretrained=source, weights_only=True, **card.args)
    except RuntimeError as err:  # state-dict mismatch
        raise RftbenchError(f"representation {card.id!r}: {source} does not fit open_clip model {card.model!r}:\n  {err}") from None
    except Exception as err:  # noqa: BLE001 - unpickling refused by weights_only, corrupt file
        if source is None:
            raise
        raise RftbenchError(
            f"representation {card.id!r}: could not load {source} safely ({type(err).__name__}: {err}).\n"
            "Only plain tensor checkpoints (weights_only) and safetensors are accepted."
        ) from None
    visual = model.visual
    del model  # the text tower is not needed
    return OpenClipBackbone(visual, card, int(config["embed_dim"]))


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
