"""Built-in plugin ``protocols``: LP, FFT, LP-FT, partial-k, and the parameter-efficient LoRA, LP-LoRA, BitFit, adapters and any ``peft`` method.

A protocol object answers one question, for every epoch, all asked once up front before
training starts: ``trainable(model, epoch, epochs) -> set[str]``, the names (as in
``model.named_parameters()``) of the parameters that learn during that epoch. The engine
freezes the others and keeps every backbone module none of whose parameters learn in eval
mode (so a frozen backbone's batch-norm statistics and dropout stay fixed).

A protocol that adds layers (``lora``, ``lp-lora``, ``adapter``, ``peft``) also has
``prepare(model)``, called once before training (see :func:`rftbench.hookspecs.rftbench_add_protocols`);
their torch code is in :mod:`rftbench_plugins._peft`, imported when a run builds one.
"""

from __future__ import annotations

import re

from typing import Any

from pydantic import Field, field_validator, model_validator

from rftbench import NoParams, Params, ProtocolSpec, hookimpl
from rftbench.specs import lazy
from rftbench.errors import ConfigError
from rftbench._lazy import lazy_import
from rftbench_plugins.schedules import TimePoint, epochs_at

nn = lazy_import("torch.nn")  # imported when a protocol first inspects a model

#: Names of containers whose children are a network's blocks (timm, open_clip, HF, torchvision).
BLOCK_CONTAINERS = ("blocks", "stages", "layers", "layer", "resblocks", "features")
_NUMBERED_LAYER = re.compile(r"^layer\d+$")


def _head(model: nn.Module) -> set[str]:
    return {n for n, _ in model.named_parameters() if n.startswith("head.")}


def find_blocks(backbone: nn.Module) -> list[tuple[str, nn.Module]]:
    """The backbone's blocks in forward order, as ``(qualified name, module)`` pairs.

    In order of preference: ``backbone.rftbench_blocks()`` if the architecture defines it; the
    children of the largest ``nn.Sequential``/``nn.ModuleList`` named like a block container
    (``blocks``, ``stages``, ``layers``, ``encoder.layer``, ``resblocks``…); numbered
    ``layer1…layerN`` children (torchvision/timm ResNets); else the top-level children that
    hold parameters.
    """
    if hasattr(backbone, "rftbench_blocks"):
        return list(backbone.rftbench_blocks())
    best: tuple[int, str, nn.Module] | None = None
    for name, module in backbone.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(module, (nn.Sequential, nn.ModuleList)) and leaf in BLOCK_CONTAINERS and len(module) > 1:
            size = sum(p.numel() for p in module.parameters())
            if best is None or size > best[0]:
                best = (size, name, module)
    if best is not None:
        _, name, module = best
        return [(f"{name}.{child}", m) for child, m in module.named_children()]
    for name, module in backbone.named_modules():
        numbered = [(f"{name}.{c}" if name else c, m) for c, m in module.named_children() if _NUMBERED_LAYER.match(c)]
        if len(numbered) > 1:
            return numbered
    return [(n, m) for n, m in backbone.named_children() if any(True for _ in m.parameters())]


class LinearProbe:
    """LP: only the head learns; the backbone is frozen and kept in eval mode."""

    def trainable(self, model: nn.Module, epoch: int, epochs: int) -> set[str]:
        return _head(model)


class FullFineTuning:
    """FFT: every parameter learns."""

    def trainable(self, model: nn.Module, epoch: int, epochs: int) -> set[str]:
        return {n for n, _ in model.named_parameters()}


class LPFT:
    """LP-FT (Kumar et al. 2022): LP for the first ``lp_epochs``, then full fine-tuning."""

    def __init__(self, lp_epochs: float | str):
        self.lp_epochs = lp_epochs

    def trainable(self, model: nn.Module, epoch: int, epochs: int) -> set[str]:
        if epoch < epochs_at(self.lp_epochs, epochs) - 1e-9:
            return LinearProbe().trainable(model, epoch, epochs)
        return FullFineTuning().trainable(model, epoch, epochs)


class Partial:
    """Partial-k: the last ``k`` blocks of the backbone, whatever follows them (final norm) and the head.

    Blocks are found by :func:`find_blocks`; parameters registered after the last block (a
    final norm, timm's ``fc_norm``) learn too, those before the first trained block do not.
    """

    def __init__(self, k: int):
        self.k = k

    def trainable(self, model: nn.Module, epoch: int, epochs: int) -> set[str]:
        backbone = model.backbone
        blocks = find_blocks(backbone)
        if self.k > len(blocks):
            raise ConfigError(
                f"protocol.k = {self.k}, but the backbone {type(backbone).__name__} has {len(blocks)} blocks "
                f"({', '.join(n for n, _ in blocks[:8])}{' …' if len(blocks) > 8 else ''}); use k ≤ {len(blocks)}"
            )
        names = [n for n, _ in backbone.named_parameters()]
        chosen: set[str] = set()
        if self.k > 0:
            prefixes = tuple(f"{n}." for n, _ in blocks[-self.k :])
            chosen = {n for n in names if n.startswith(prefixes)}
            last_block = tuple(f"{blocks[-1][0]}.")
            last_index = max(i for i, n in enumerate(names) if n.startswith(last_block))
            chosen |= set(names[last_index + 1 :])
        return {f"backbone.{n}" for n in chosen} | _head(model)


class LPFTParams(Params):
    lp_epochs: TimePoint = Field("50%", description="length of the linear-probe phase (epochs or share of training)")


class PartialParams(Params):
    k: int = Field(1, ge=0, le=10_000, description="number of final backbone blocks that learn (0: the head only)")


TARGETS_HELP = ("layers to adapt: module names, name suffixes on a '.' boundary (qkv, attn.proj) or regular expressions "
                "matching a whole name; unset: the architecture family's default (docs/plugins.md)")


def _need_peft(protocol: str) -> None:
    from rftbench_plugins import _peft_check

    if _peft_check.peft_missing():
        raise ValueError(f"{protocol!r} needs the Hugging Face peft library, which is not installed; install it with: "
                         f"{_peft_check.PIP}")


class LoRAParams(Params):
    r: int = Field(8, ge=1, le=4096, description="rank of the update B·A of each target layer (at most the layer's width)")
    alpha: float = Field(8.0, gt=0, le=1e6, description="LoRA's alpha: the update is scaled by alpha / r (peft's lora_alpha)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the input of the LoRA branch (peft's lora_dropout)")
    target_modules: list[str] | None = Field(None, min_length=1, description=TARGETS_HELP)

    @model_validator(mode="after")
    def _peft_installed(self) -> Any:
        _need_peft("lora")
        return self


class LPLoRAParams(LoRAParams):
    lp_epochs: TimePoint = Field("50%", description="length of the linear-probe phase (epochs or share of training)")


class AdapterParams(Params):
    bottleneck: int = Field(16, ge=1, le=65_536, description="hidden width of each adapter (at most the adapted layer's width)")
    scale: float = Field(1.0, gt=0, le=1e3, description="the adapter's output is multiplied by scale before it is added")
    target_modules: list[str] | None = Field(None, min_length=1, description=TARGETS_HELP)


class BitFitParams(Params):
    include_norm: bool = Field(True, description="train the biases of normalisation layers too (as BitFit does on BERT)")


class PeftParams(Params):
    method: str = Field(description="a method of the Hugging Face peft library by name (lora, loha, lokr, ia3, oft, boft, vera, hra, …)")
    config: dict[str, Any] = Field(default_factory=dict, validate_default=True, description="fields of the method's peft config class (e.g. r, alpha)")
    target_modules: list[str] | None = Field(None, min_length=1, description=TARGETS_HELP)

    @field_validator("method")
    @classmethod
    def _known(cls, value: str) -> str:
        _need_peft("peft")
        from rftbench_plugins._peft import config_classes

        value = value.strip().lower().replace("-", "_")
        if value not in config_classes():
            from rftbench_plugins._peft import check_peft_config

            check_peft_config(value, {})  # raises, listing close matches
        return value

    @field_validator("config")
    @classmethod
    def _valid(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        method = info.data.get("method")
        if method is None:  # the method failed its own check
            return value
        from rftbench_plugins._peft import check_peft_config

        return check_peft_config(method, value)


@hookimpl
def rftbench_add_protocols() -> list[ProtocolSpec]:
    return [
        ProtocolSpec(name="lp", params=NoParams, factory=LinearProbe,
                     description="linear probe: head only; backbone frozen and in eval mode"),
        ProtocolSpec(name="fft", params=NoParams, factory=FullFineTuning,
                     description="full fine-tuning: every parameter"),
        ProtocolSpec(name="lp-ft", params=LPFTParams, factory=LPFT,
                     description="linear probe for lp_epochs, then full fine-tuning (Kumar et al. 2022)"),
        ProtocolSpec(name="partial", params=PartialParams, factory=Partial,
                     description="the last k backbone blocks (and what follows them) plus the head"),
        ProtocolSpec(name="lora", params=LoRAParams, factory=lazy("rftbench_plugins._peft:LoRA"),
                     description="LoRA (Hu et al. 2022) on the family's default layers, via peft; the head learns"),
        ProtocolSpec(name="lp-lora", params=LPLoRAParams, factory=lazy("rftbench_plugins._peft:LPLoRA"),
                     description="linear probe for lp_epochs, then LoRA (as LP-FT does)"),
        ProtocolSpec(name="bitfit", params=BitFitParams, factory=lazy("rftbench_plugins._peft:BitFit"),
                     description="BitFit (Ben Zaken et al. 2022): the backbone's biases and the head"),
        ProtocolSpec(name="adapter", params=AdapterParams, factory=lazy("rftbench_plugins._peft:Adapter"),
                     description="bottleneck adapters (Houlsby et al. 2019) after each block's output layers; the head learns"),
        ProtocolSpec(name="peft", params=PeftParams, factory=lazy("rftbench_plugins._peft:GenericPeft"),
                     description="any method of the Hugging Face peft library by name, its config validated against peft's"),
    ]
