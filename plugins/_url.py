"""The code of the built-in ``url_source`` plugin (see :mod:`rftbench_plugins.url_source`), imported when a backbone is built."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rftbench.cards import RepresentationCard
from rftbench.errors import RftbenchError
from rftbench.fetch import weights_file

from ._timm import TimmBackbone, feature_width, load_strict

_STATE_KEYS = ("model", "state_dict", "model_ema")


class ConvStem(nn.Module):
    """Singh et al.'s convolutional stem: [3×3 conv (stride s) → LayerNorm2d → GELU]×n (→ 1×1 conv).

    Parameter names (``stem.0.weight``, ``stem.1.weight``, …) are those of the published
    checkpoints, so their state dicts load as they are.
    """

    def __init__(self, widths: list[int], strides: list[int], out: int | None = None, in_chans: int = 3):
        super().__init__()
        from timm.layers import LayerNorm2d

        if len(widths) != len(strides) or not widths:
            raise ValueError("stem.widths and stem.strides must be non-empty lists of the same length")
        layers: list[nn.Module] = []
        cin = in_chans
        for width, stride in zip(widths, strides):
            layers += [nn.Conv2d(cin, width, kernel_size=3, stride=stride, padding=1), LayerNorm2d(width, eps=1e-6), nn.GELU()]
            cin = width
        if out:
            layers.append(nn.Conv2d(cin, out, kernel_size=1))
        self.stem = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x)


def _set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    parent = model
    *parents, last = path.split(".")
    for name in parents:
        parent = getattr(parent, name)
    if not hasattr(parent, last):
        raise RftbenchError(f"{type(model).__name__} has no module {path!r} to replace with a ConvStem (args.stem.at)")
    setattr(parent, last, module)


def create(card: RepresentationCard) -> nn.Module:
    """The card's timm architecture (``num_classes=0``) with its ConvStem, if any; no weights."""
    import timm

    if not timm.is_model(card.model):
        from rftbench.errors import UnknownNameError

        raise UnknownNameError("timm model", card.model, timm.list_models(), hint=f"Fix the `model` field of card {card.id!r}.")
    model = timm.create_model(card.model, pretrained=False, num_classes=0, **card.args.get("timm_kwargs", {}))
    stem = card.args.get("stem")
    if stem:
        _set_module(model, stem.get("at", "stem"), ConvStem(stem["widths"], stem["strides"], stem.get("out")))
    return model


def read_checkpoint(path: Any, card_id: str) -> dict[str, Any]:
    """Load a checkpoint file safely (safetensors, or ``torch.load(weights_only=True)``)."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle.UnpicklingError and friends
        raise RftbenchError(
            f"representation {card_id!r}: {path} cannot be loaded safely (torch.load weights_only=True refused it: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}).\n"
            "rftbench never unpickles arbitrary objects; convert the checkpoint to safetensors and point the card at it."
        ) from None


def convert(checkpoint: dict[str, Any], card: RepresentationCard) -> dict[str, torch.Tensor]:
    """Map an original checkpoint onto timm key names following the card's ``args`` (see module doc)."""
    args = card.args
    key = args.get("checkpoint_key")
    if key:
        if key not in checkpoint:
            raise RftbenchError(f"representation {card.id!r}: the checkpoint has no top-level key {key!r} (args.checkpoint_key); it has {sorted(checkpoint)[:10]}")
        state = checkpoint[key]
    else:
        state = next((checkpoint[k] for k in _STATE_KEYS if isinstance(checkpoint.get(k), dict)), checkpoint)
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    _check_normalizer(state, card)
    keep = args.get("keep_prefix")
    if keep:
        state = {k[len(keep):]: v for k, v in state.items() if k.startswith(keep)}
    for prefix in args.get("strip_prefixes", []):
        state = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
    drop = tuple(args.get("drop_prefixes", []))
    if drop:
        state = {k: v for k, v in state.items() if not k.startswith(drop)}
    if not state:
        raise RftbenchError(f"representation {card.id!r}: no weights left after applying args (keep_prefix {keep!r})")
    return state


def _check_normalizer(state: dict[str, torch.Tensor], card: RepresentationCard) -> None:
    spec = card.args.get("normalizer")
    if not spec:
        return
    for field in ("mean", "std"):
        key = spec[field]
        if key not in state:
            raise RftbenchError(f"representation {card.id!r}: the checkpoint has no normaliser key {key!r} (args.normalizer.{field})")
        embedded = state[key].detach().float().flatten()
        expected = torch.tensor(getattr(card.input, field), dtype=torch.float32)
        if embedded.shape != expected.shape or not torch.allclose(embedded, expected, atol=1e-4):
            raise RftbenchError(
                f"representation {card.id!r}: the checkpoint was trained with {field} {embedded.tolist()}, "
                f"the card's input.{field} is {list(getattr(card.input, field))}; fix the card"
            )


def build(card: RepresentationCard, *, pretrained: bool = True) -> TimmBackbone:
    """The ``url`` architecture factory (contract in :func:`rftbench.hookspecs.rftbench_add_architectures`)."""
    model = create(card)
    if pretrained:
        path = weights_file(card)
        load_strict(model, convert(read_checkpoint(path, card.id), card), card, path)
    return TimmBackbone(model, card, feature_width(model))
