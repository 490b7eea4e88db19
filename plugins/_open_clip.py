"""The code of the built-in ``open_clip_source`` plugin (see :mod:`rftbench_plugins.open_clip_source`), imported when a backbone is built."""

from __future__ import annotations

import torch

from rftbench.cards import RepresentationCard
from rftbench.errors import RftbenchError, UnknownNameError
from rftbench.fetch import weights_file

from ._backbone import Backbone

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
