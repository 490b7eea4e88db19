"""Built-in plugin ``url``: checkpoints in their original layout, converted onto a timm architecture.

For robust models that are not timm Hub repos: the MadryLab ``robustness`` ResNet-50
(``madrylab/robust-imagenet-models`` on the Hub) and the Singh, Croce & Hein (2023) ConvStem
ConvNeXt/ViT checkpoints (plain URLs). A card with ``source: url`` names the timm
architecture in ``model`` and points at the file with ``weights.url`` (+ ``sha256``) or
``weights.hub_id`` + ``weights.filename``. The file is loaded safely only: safetensors, or
``torch.load(weights_only=True)``, which refuses pickled objects other than tensors and
containers. ``args`` says how the original state dict maps onto timm's keys, declaratively:

``checkpoint_key``
    top-level key that holds the state dict (``model`` for robustness checkpoints); if
    unset, the first of ``model``, ``state_dict``, ``model_ema`` present, else the file itself.
``keep_prefix``
    only keys under this prefix are weights (robustness: ``module.model.``; it also stores
    an attacker copy and a normaliser), and the prefix is stripped.
``strip_prefixes``
    prefixes removed from every key, in order (``module.``, ``base_model.``, …).
``drop_prefixes``
    keys under these prefixes are ignored (an embedded normaliser, for instance).
``normalizer``
    ``{mean: key, std: key}`` of a normaliser embedded in the checkpoint: it is checked
    against the card's ``input.mean``/``std`` (which the model applies), so a card that
    normalises differently from how the checkpoint was trained is an error.
``stem``
    ``{at: stem | patch_embed.proj, widths: [...], strides: [...], out: int | null}``: the
    convolutional stem (ConvStem) of Singh et al. replacing timm's patchify stem: 3×3 convs
    with channels-first LayerNorm and GELU, then an optional 1×1 conv to ``out`` channels.

After conversion the classifier keys are dropped and the rest must match the architecture
exactly (a missing or unexpected key is an error naming a few of them).
"""

from __future__ import annotations

from rftbench import ArchitectureSpec, hookimpl
from rftbench._lazy import forward_to
from rftbench.specs import lazy

from ._architecture import ArchitectureParams

#: The factory: imports :mod:`rftbench_plugins._url` (torch, the library) only when a backbone is built.
build = lazy("rftbench_plugins._url:build")


@hookimpl
def rftbench_add_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="url",
            description="checkpoints in their original layout (URL + sha256, or a Hub file), converted onto timm architectures",
            params=ArchitectureParams,
            factory=build,
        )
    ]


#: Everything else (``build``, …) lives in :mod:`rftbench_plugins._url`.
__getattr__ = forward_to("rftbench_plugins._url")
