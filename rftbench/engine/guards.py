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
import os
import platform
from dataclasses import dataclass, field

from torch import nn

log = logging.getLogger("rftbench")

#: oneDNN ISA caps (``ONEDNN_MAX_CPU_ISA``) below AVX-512, in oneDNN's spelling.
BELOW_AVX512 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2"})
#: CPU flags oneDNN's ``avx512_core`` ISA needs.
_AVX512_CORE = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}


def onednn_isa_cap() -> str | None:
    """The ISA cap set for oneDNN in the environment (``ONEDNN_MAX_CPU_ISA``, or its old name), upper-case."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return value.strip().upper() if value else None


def onednn_below_avx512(flags: frozenset[str] | None = None) -> bool | None:
    """Whether oneDNN runs below AVX-512 on this machine (``None`` off x86-64, where oneDNN's x86 kernels do not run)."""
    from .hardware import cpu_flags

    if platform.machine().lower() not in ("x86_64", "amd64", "x86", "i686"):
        return None
    flags = cpu_flags() if flags is None else flags
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
