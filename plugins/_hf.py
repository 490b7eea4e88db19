"""The code of the built-in ``hf_source`` plugin (see :mod:`rftbench_plugins.hf_source`), imported when a backbone is built."""

from __future__ import annotations

import torch

from rftbench.cards import RepresentationCard
from rftbench.errors import RftbenchError
from rftbench.fetch import hub_file, pin_of

from ._backbone import Backbone

#: Side of the dummy input used to measure the feature width (a multiple of 32, as MobileViT needs).
_PROBE = 64


class HFBackbone(Backbone):
    """A transformers vision model; features are its ``pooler_output``."""

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(pixel_values=x)
        pooled = out.pooler_output
        return pooled.flatten(1)


def _config(card: RepresentationCard):
    from transformers import AutoConfig

    try:
        return AutoConfig.for_model(card.model, **card.args.get("config", {}))
    except ValueError as err:
        raise RftbenchError(f"representation {card.id!r}: transformers has no model type {card.model!r} ({err})") from None


def build(card: RepresentationCard, *, pretrained: bool = True) -> HFBackbone:
    """The ``hf`` architecture factory (contract in :func:`rftbench.hookspecs.rftbench_add_architectures`)."""
    from transformers import AutoModel

    if not pretrained:
        model = AutoModel.from_config(_config(card))
    else:
        if not card.weights.hub_id:
            raise RftbenchError(f"representation {card.id!r}: the hf source needs weights.hub_id")
        revision = pin_of(card)["revision"]
        config_path = hub_file(card.weights.hub_id, "config.json", revision=revision, card_id=card.id)
        filename = card.weights.filename or "model.safetensors"
        hub_file(card.weights.hub_id, filename, revision=revision, card_id=card.id)
        model, info = AutoModel.from_pretrained(
            str(config_path.parent), use_safetensors=filename.endswith(".safetensors"), output_loading_info=True
        )
        missing = list(info.get("missing_keys") or []) + [str(m) for m in info.get("mismatched_keys") or []]
        if missing:  # transformers would initialise these randomly and only warn
            raise RftbenchError(
                f"representation {card.id!r}: {card.weights.hub_id}/{filename} does not fit {card.model!r}: "
                f"{len(missing)} missing or mismatched weights (e.g. {missing[:3]})"
            )
        if model.config.model_type != card.model:
            raise RftbenchError(
                f"representation {card.id!r}: {card.weights.hub_id} holds a {model.config.model_type!r} model, "
                f"the card says {card.model!r}"
            )
    model.eval()
    with torch.no_grad():
        width = model(pixel_values=torch.zeros(1, 3, _PROBE, _PROBE)).pooler_output.flatten(1).shape[1]
    return HFBackbone(model, card, width)
