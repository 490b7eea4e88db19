"""Built-in plugin ``hf``: vision backbones from Hugging Face transformers (EfficientNet, MobileViT, …).

A card with ``source: hf`` names the transformers ``model_type`` in ``model`` (``efficientnet``,
``mobilevit``) and the Hub repo in ``weights.hub_id``; ``args.config`` holds the config
values of the architecture so that it builds without any download (``pretrained=False``).
With weights, ``config.json`` and the card's weights file are read from the Hub at the
pinned revision into the Hub cache and ``AutoModel.from_pretrained`` loads that snapshot
(safetensors, or ``pytorch_model.bin`` through transformers' ``weights_only`` loader). The
representation is the model's ``pooler_output`` (global-average-pooled last feature map).
Preprocessing that the repos' image processors do (normalisation, MobileViT's RGB→BGR flip)
is applied inside the model from the card's ``input`` section.
"""

from __future__ import annotations

from rftbench import ArchitectureSpec, hookimpl
from rftbench._lazy import forward_to
from rftbench.specs import lazy

from ._architecture import ArchitectureParams

#: The factory: imports :mod:`rftbench_plugins._hf` (torch, the library) only when a backbone is built.
build = lazy("rftbench_plugins._hf:build")


@hookimpl
def rftbench_add_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="hf",
            description="Hugging Face transformers vision backbones (pooler_output), e.g. EfficientNet-B0, MobileViT-S",
            params=ArchitectureParams,
            factory=build,
        )
    ]


#: Everything else (``build``, …) lives in :mod:`rftbench_plugins._hf`.
__getattr__ = forward_to("rftbench_plugins._hf")
