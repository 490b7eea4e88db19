"""Known backend bugs, guarded in one place.

Each guard names its upstream issue, says which models and machines it affects, and what
rftbench does instead. Remove a guard once the fixed library version is the minimum rftbench
requires (and delete its tests' expectation that the guard fires).

Guards
------
``onednn-6035`` — oneDNN issue #6035, "1x1 convolution backward_weights writes past the rtus
workspace (nhwc, IC < ic_block)". oneDNN's AVX2 1×1 convolution kernel (``jit_1x1:avx2``)
computes the weight gradient of a **1×1 convolution with a stride above 1 and fewer than 8
input channels per group, in channels_last (NHWC)** through a "reduce to unit stride" buffer
that it overruns: with one thread the process aborts (``corrupted size vs. prev_size``) or
segfaults; with several it can hang or return wrong weight gradients. Reproduced with torch
2.14.1 under ``ONEDNN_MAX_CPU_ISA=AVX2`` (input channels 4 and 7 crash at 16 and 32 px; 8 and
more do not); the AVX-512 kernels (ic_block 16) are not affected, nor is the contiguous
layout. Affected machines: x86-64 CPUs on which oneDNN runs below AVX-512 — CPUs without
AVX-512, or any CPU with ``ONEDNN_MAX_CPU_ISA``/``DNNL_MAX_CPU_ISA`` capped at an AVX2-class
ISA. What rftbench does: keeps the model in the contiguous layout (``channels_last`` off) for
models holding such a convolution, on such machines only; everything else keeps channels_last.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field

import torch
from torch import nn

from . import hardware
from .hardware import BELOW_AVX512, MemoryFormat, has_conv, onednn_isa_cap  # noqa: F401 - BELOW_AVX512, onednn_isa_cap: public here too

log = logging.getLogger("rftbench")

#: CPU flags oneDNN's ``avx512_core`` ISA needs.
_AVX512_CORE = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}


def onednn_below_avx512(flags: frozenset[str] | None = None) -> bool | None:
    """Whether oneDNN runs below AVX-512 on this machine (``None`` off x86-64, where oneDNN's x86 kernels do not run)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "x86", "i686"):
        return None
    flags = hardware.cpu_flags() if flags is None else flags  # looked up at call time (tests replace it)
    cap = onednn_isa_cap()
    if cap in BELOW_AVX512:
        return True
    if not flags:  # flags unknown (not Linux): assume the worst, the guard only costs speed
        return True
    return not _AVX512_CORE <= flags


@dataclass(frozen=True)
class GuardDecision:
    """What a guard decided for one model on this machine."""

    guard: str
    upstream: str
    applies: bool
    modules: tuple[str, ...] = field(default_factory=tuple)
    reason: str = ""


ONEDNN_6035 = "onednn-6035"
ONEDNN_6035_URL = "https://github.com/uxlfoundation/oneDNN/issues/6035"


def affected_1x1_convolutions(model: nn.Module) -> list[str]:
    """Names of the model's 2-D convolutions with a 1×1 kernel, a stride above 1 and fewer than 8 input channels per group."""
    hits = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == (1, 1) and tuple(module.stride) != (1, 1):
            if module.in_channels // module.groups < 8:
                hits.append(name or "<model>")
    return hits


def channels_last_guard(model: nn.Module) -> GuardDecision:
    """Whether ``onednn-6035`` forbids channels_last for ``model`` on this machine, and why."""
    below = onednn_below_avx512()
    modules = tuple(affected_1x1_convolutions(model))
    if not modules:
        return GuardDecision(ONEDNN_6035, ONEDNN_6035_URL, False, (), "no 1x1 strided convolution with < 8 input channels")
    if not below:
        return GuardDecision(ONEDNN_6035, ONEDNN_6035_URL, False, modules, "oneDNN runs AVX-512 kernels here (not affected)")
    shown = ", ".join(modules[:3]) + (f" and {len(modules) - 3} more" if len(modules) > 3 else "")
    return GuardDecision(
        ONEDNN_6035, ONEDNN_6035_URL, True, modules,
        f"oneDNN bug #6035 ({ONEDNN_6035_URL}): the weight gradient of a 1x1 strided convolution with < 8 input "
        f"channels in channels_last crashes or is wrong on CPUs where oneDNN runs below AVX-512 ({shown})",
    )


_logged: set[tuple[str, ...]] = set()


def log_once(level: int, message: str, *key: str) -> None:
    """Log ``message`` once per process for ``key``."""
    if key not in _logged:
        _logged.add(key)
        log.log(level, message)


def active_guards() -> list[dict[str, str]]:
    """The guards that can fire on this machine (for ``rftbench doctor``)."""
    out = []
    if onednn_below_avx512():
        out.append({"guard": ONEDNN_6035, "upstream": ONEDNN_6035_URL,
                    "effect": "channels_last off for models with a 1x1 strided convolution of < 8 input channels (CPU)"})
    return out


def decide_channels_last(requested: str, model: nn.Module, device: torch.device | str = "cpu") -> MemoryFormat:
    """``on``/``off``, or ``auto`` (on for networks with 2-D convolutions), minus what a known backend bug forbids.

    A guard that overrides ``on`` warns (naming the bug and what is done instead); one that
    overrides ``auto`` logs at info level; each once per process.
    """
    if requested == "off":
        return MemoryFormat(False, "channels_last: off (config)")
    if requested == "auto" and not has_conv(model):
        return MemoryFormat(False, "auto: no 2-D convolution")
    wanted = "channels_last: on (config)" if requested == "on" else "auto: the network has 2-D convolutions"
    if torch.device(device).type == "cpu":
        guard = channels_last_guard(model)
        if guard.applies:
            level = logging.WARNING if requested == "on" else logging.INFO
            log_once(level, f"{guard.reason}; training in the contiguous layout instead of channels_last "
                            f"(guard {guard.guard} in rftbench/engine/guards.py)", guard.guard, requested, *guard.modules)
            return MemoryFormat(False, f"guard {guard.guard}: {guard.reason}", guard.guard)
    return MemoryFormat(True, wanted)


def choose_channels_last(requested: str, model: nn.Module, device: torch.device | str = "cpu") -> bool:
    """Whether to train ``model`` in channels_last on ``device`` (see :func:`decide_channels_last`)."""
    return decide_channels_last(requested, model, device).channels_last
