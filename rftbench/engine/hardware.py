"""Hardware detection: the device, the autocast precision and the memory format a run uses.

``auto`` picks the fastest setting that keeps training correct:

- device: CUDA when available, else CPU;
- precision: on CUDA, bf16 where the GPU computes it natively (compute capability ≥ 8.0:
  Ampere, Ada, Hopper and later), else fp16 with a GradScaler (V100, T4, … where
  ``torch.cuda.is_bf16_supported()`` says yes because it counts slow *emulated* bf16); on CPU,
  bf16 where the CPU has native bf16 arithmetic (AVX512-BF16 or AMX), else fp32;
- channels_last: on for networks with 2-D convolutions (oneDNN and cuDNN run NHWC convolutions
  fastest, in particular in bf16/fp16), off otherwise — and off where a known backend bug
  would make it crash or compute wrong gradients (:mod:`rftbench.engine.guards`, which decides
  it: ``decide_channels_last``; this module sits below it).

The CPU's abilities are read from its flags and capped by ``ONEDNN_MAX_CPU_ISA`` (so a run
under ``ONEDNN_MAX_CPU_ISA=AVX2`` chooses as it would on an AVX2-only CPU).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError

log = logging.getLogger("rftbench")

#: oneDNN ISA caps (``ONEDNN_MAX_CPU_ISA``) below AVX-512, in oneDNN's spelling.
BELOW_AVX512 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2"})


def onednn_isa_cap() -> str | None:
    """The ISA cap set for oneDNN in the environment (``ONEDNN_MAX_CPU_ISA``, or its old name), upper-case."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return value.strip().upper() if value else None


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()




def cpu_has_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX), so bf16 autocast is faster than fp32.

    ``ONEDNN_MAX_CPU_ISA`` capped below AVX512_CORE_BF16 counts as no.
    """
    if onednn_isa_cap() in BELOW_AVX512 | {"AVX512_CORE", "AVX512_CORE_VNNI"}:  # caps without native bf16 kernels
        return False
    flags = cpu_flags()
    if flags:
        return bool({"avx512_bf16", "amx_bf16"} & flags)
    try:  # non-Linux: ask oneDNN
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and platform.machine() in ("x86_64", "AMD64")
    except (AttributeError, RuntimeError):
        return False


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parse_device(requested: str | torch.device, what: str = "device") -> torch.device:
    """The one parser of a device from outside (config, ``--device``, ``evaluate(device=…)``).

    ``auto`` → CUDA if available else CPU; ``cpu``, ``cuda``, ``cuda:N``. Anything else, CUDA
    without a GPU, or ``cuda:N`` past the GPUs here is a :class:`ConfigError` naming ``what``.
    """
    if isinstance(requested, torch.device):
        device = requested
    else:
        text = str(requested).strip().lower()
        if text == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(text)
        except (RuntimeError, ValueError, TypeError):
            raise ConfigError(f"{what}={str(requested)[:80]!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{what}={str(requested)!r}: rftbench runs on cpu or cuda (cuda:N); use one of those")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{what} = {str(requested)!r}, but no CUDA GPU is available (CUDA is not available here); use {what}=auto or {what}=cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{what}={str(requested)!r}: this machine has {torch.cuda.device_count()} GPU(s) (cuda:0 …)")
    return device


def resolve_device(requested: str | torch.device) -> torch.device:
    """``auto`` → CUDA if available else CPU; ``cuda`` without a GPU is a :class:`ConfigError` (see :func:`parse_device`)."""
    return parse_device(requested)


@dataclass(frozen=True)
class Precision:
    """An autocast setting: ``fp32`` (none), ``bf16`` or ``fp16`` (the latter with a GradScaler)."""

    name: str
    device_type: str

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def use_scaler(self) -> bool:
        return self.name == "fp16"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of forward passes (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


#: The first CUDA compute capability with native bf16 tensor-core arithmetic (Ampere).
NATIVE_BF16_CAPABILITY = (8, 0)


def cuda_has_native_bf16(device: torch.device | int | None = None) -> bool:
    """Whether the GPU computes bf16 natively (compute capability ≥ 8.0), emulation not counted.

    ``torch.cuda.is_bf16_supported()`` (also what Accelerate asks) answers yes on pre-Ampere
    GPUs too, where bf16 is emulated and slower than fp16; ``including_emulation=False`` does not.
    """
    if torch.version.hip:  # ROCm: bf16 on every supported AMD GPU; capabilities are not CUDA's
        return bool(torch.cuda.is_bf16_supported())
    index = device.index if isinstance(device, torch.device) else device
    if tuple(torch.cuda.get_device_capability(index)) < NATIVE_BF16_CAPABILITY:
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch before 2.3: no emulation counted by this check at capability ≥ 8.0
        return bool(torch.cuda.is_bf16_supported())


def choose_precision(requested: str, device: torch.device) -> Precision:
    """Resolve ``auto``/``fp32``/``bf16``/``fp16`` for ``device`` (see the module docstring)."""
    kind = device.type
    if requested == "auto":
        if kind == "cuda":
            return Precision("bf16" if cuda_has_native_bf16(device) else "fp16", kind)
        return Precision("bf16" if kind == "cpu" and cpu_has_bf16() else "fp32", kind)
    if requested == "fp16" and kind != "cuda":
        raise ConfigError("precision = 'fp16' needs a CUDA GPU (fp16 autocast with a GradScaler); on CPU use bf16 or fp32")
    if requested == "bf16" and kind == "cpu" and not cpu_has_bf16():
        log.warning("precision=bf16 on a CPU without native bf16 (AVX512-BF16/AMX): expect it to be slower than fp32")
    if requested == "bf16" and kind == "cuda" and not cuda_has_native_bf16(device):
        log.warning("precision=bf16 on a GPU of compute capability %s (bf16 is emulated below 8.0): expect it to be slower "
                    "than precision=fp16 (with a GradScaler), which auto picks here", ".".join(map(str, torch.cuda.get_device_capability(device.index))))
    return Precision(requested, kind)


def has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


@dataclass(frozen=True)
class MemoryFormat:
    """The channels_last decision for one model on one device, with its reason and the guard that set it (if any)."""

    channels_last: bool
    reason: str
    guard: str | None = None


def describe_device(device: torch.device) -> str:
    """A short human-readable name of the device (GPU name, or CPU model and thread count)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({torch.get_num_threads()} threads)"
