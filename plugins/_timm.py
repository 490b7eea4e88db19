"""The code of the built-in ``timm_source`` plugin (see :mod:`rftbench_plugins.timm_source`), imported when a backbone is built."""

from __future__ import annotations

from typing import Any

import torch

from rftbench.cards import RepresentationCard
from rftbench.errors import RftbenchError
from rftbench.fetch import FetchError, weights_file

from ._backbone import Backbone

DEFAULT_FILENAME = "model.safetensors"




class TimmBackbone(Backbone):
    """A timm model with ``num_classes=0``: its forward is the pooled penultimate features."""

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def feature_width(model: torch.nn.Module) -> int:
    """Width of what a ``num_classes=0`` timm model returns (``head_hidden_size`` where timm has one)."""
    return int(getattr(model, "head_hidden_size", None) or model.num_features)


def create(card: RepresentationCard, *, pretrained: bool, **kwargs: Any) -> torch.nn.Module:
    """``timm.create_model`` for a card, from the card's verified weights file when ``pretrained``."""
    import timm

    if not timm.is_model(card.model.split(".")[0]):
        from rftbench.errors import UnknownNameError

        raise UnknownNameError("timm model", card.model, timm.list_models(), hint=f"Fix the `model` field of card {card.id!r}.")
    args = {**card.args, **{k: v for k, v in kwargs.items() if v is not None}}
    if not pretrained:
        return timm.create_model(card.model, pretrained=False, num_classes=0, **args)
    path = weights_file(card, default_filename=DEFAULT_FILENAME)
    if path.suffix != ".safetensors":
        raise FetchError(
            f"representation {card.id!r}: the timm source loads only safetensors weights (got {path.name}); "
            "set weights.filename to the repo's model.safetensors"
        )
    model = timm.create_model(card.model, pretrained=False, num_classes=0, **args)
    load_strict(model, _read_safetensors(path), card, path)
    return model


def _read_safetensors(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path), device="cpu")


def load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], card: RepresentationCard, path: Any) -> None:
    """Load a timm-format state dict into a ``num_classes=0`` model, every key accounted for.

    timm's own loader turns strict checking off once it drops a classifier, which would let a
    wrong file load silently; here only the classifier keys named by the model's pretrained
    config are dropped and any other mismatch is an error.
    """
    classifier = (model.pretrained_cfg or {}).get("classifier") or ()
    heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    state = {k: v for k, v in state.items() if not any(k == h or k.startswith(h + ".") for h in heads)}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatch
        raise RftbenchError(f"representation {card.id!r}: {path} does not fit timm model {card.model!r}:\n  {err}") from None
    if missing or unexpected:
        raise RftbenchError(
            f"representation {card.id!r}: {path} does not fit timm model {card.model!r}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )


def build(card: RepresentationCard, *, pretrained: bool = True, drop_path_rate: float | None = None) -> TimmBackbone:
    """The ``timm`` architecture factory (contract in :func:`rftbench.hookspecs.rftbench_add_architectures`)."""
    model = create(card, pretrained=pretrained, drop_path_rate=drop_path_rate)
    return TimmBackbone(model, card, feature_width(model))
