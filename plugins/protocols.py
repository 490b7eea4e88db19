"""Built-in plugin ``protocols``: LP, FFT, LP-FT and partial-k fine-tuning.

A protocol object answers one question, at the start of every epoch:
``trainable(model, epoch, epochs) -> set[str]``, the names (as in
``model.named_parameters()``) of the parameters that learn during that epoch. The engine
freezes the others and keeps every backbone module none of whose parameters learn in eval
mode (so a frozen backbone's batch-norm statistics and dropout stay fixed).
"""

from __future__ import annotations

import re

from pydantic import Field

from rftbench import NoParams, Params, ProtocolSpec, hookimpl
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
    ]
