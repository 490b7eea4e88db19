"""``rftbench doctor``: what this environment is, and what ``auto`` chooses on it and why.

Like ``python -m torch.utils.collect_env`` or ``hf env``: paste its output into bug reports.
Every probe is independent and best effort: what cannot be determined is reported as such
(``"unknown: <reason>"``), never raised.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Distributions whose versions matter to rftbench's numbers.
PACKAGES = ("rftbench", "torch", "torchvision", "timm", "open_clip_torch", "transformers", "torchattacks", "pyautoattack",
            "numpy", "scipy", "pydantic", "pluggy", "huggingface_hub", "safetensors")
#: CPU flags that decide kernels and precision, in the order they are shown.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")
#: Environment variables that change what rftbench does or where it keeps things.
ENV_VARS = ("RFTBENCH_CACHE", "RFTBENCH_DISABLE_PLUGINS", "RFTBENCH_LOAD_PLUGINS", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE",
            "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "XDG_CACHE_HOME", "TORCH_HOME", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "CUDA_VISIBLE_DEVICES")


def _safe(probe: Callable[[], Any]) -> Any:
    """Run one probe; what fails is reported as ``unknown: …``."""
    try:
        return probe()
    except Exception as err:  # noqa: BLE001 - doctor never fails
        return f"unknown: {type(err).__name__}: {err}"


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _threads_auto() -> str:
    """What ``threads: auto`` picks here now, and why (affinity mask, cgroup quota, other processes' load, RFTBENCH_THREADS)."""
    from .engine.threads import OtherLoad, choose_threads, under_load
    from .errors import ConfigError

    try:
        choice = choose_threads("auto")
    except ConfigError as err:
        return f"error: {err}"
    if choice.auto:
        choice = under_load(choice, OtherLoad(min_seconds=0.2).busy())
    return f"{choice.threads} ({choice.reason})"


def _cpu() -> dict[str, Any]:
    import torch

    from .engine.guards import onednn_below_avx512, onednn_isa_cap
    from .engine.hardware import cpu_flags, cpu_has_bf16, cpu_name

    flags = cpu_flags()
    return {
        "model": cpu_name(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "threads_auto": _threads_auto(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "instruction_sets": [f for f in ISA_FLAGS if f in flags] if flags else "unknown: no /proc/cpuinfo flags",
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": onednn_isa_cap() or "not capped",
        "onednn_below_avx512": onednn_below_avx512(),
        "native_bf16": cpu_has_bf16(),
        "mkldnn_available": torch.backends.mkldnn.is_available(),
    }


def _gpus() -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {"cuda_build": torch.version.cuda, "cudnn": None, "available": torch.cuda.is_available(), "devices": []}
    if not out["available"]:
        return out
    out["cudnn"] = torch.backends.cudnn.version()
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        memory = _safe(lambda i=i: torch.cuda.mem_get_info(i))
        free = memory[0] if isinstance(memory, tuple) else None
        out["devices"].append({
            "index": i, "name": p.name, "capability": f"{p.major}.{p.minor}",
            "memory_gib": round(p.total_memory / 2**30, 1),
            "free_gib": round(free / 2**30, 1) if free is not None else None,
            "bf16": torch.cuda.is_bf16_supported(),
        })
    return out


def _auto_choices() -> list[dict[str, Any]]:
    """What ``auto`` chooses on each device, for the default configuration's backbone, and why."""
    import torch

    from .engine.guards import decide_channels_last
    from .engine.hardware import choose_precision

    devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0)]
    model = _default_backbone()
    rows = []
    for name in devices:
        device = torch.device(name)
        precision = choose_precision("auto", device)
        if device.type == "cuda":
            why = "bf16 supported by the GPU" if precision.name == "bf16" else "no bf16 on this GPU: fp16 with a GradScaler"
        else:
            why = "native bf16 (AVX512-BF16/AMX)" if precision.name == "bf16" else "no native bf16 on this CPU (or ONEDNN_MAX_CPU_ISA caps it)"
        row: dict[str, Any] = {"device": name, "precision": precision.name, "precision_reason": why}
        if isinstance(model, str):
            row["channels_last"] = model
        else:
            choice = decide_channels_last("auto", model, device)
            row["channels_last"] = choice.channels_last
            row["channels_last_reason"] = f"{_DEFAULT_REPRESENTATION}: {choice.reason}"
        row["compile"] = ("off unless `compile: true`; applies on CUDA" if device.type == "cuda"
                          else "off: `compile: true` is ignored on CPU")
        rows.append(row)
    return rows


_DEFAULT_REPRESENTATION = "mini_resnet.shapes_standard"


def _default_backbone() -> Any:
    """The default configuration's backbone architecture (random weights: only its shapes matter here)."""
    try:
        from .model import build_backbone
        from .plugins import get_manager

        card = get_manager().get("representation", _DEFAULT_REPRESENTATION)
        return build_backbone(card, pretrained=False)
    except Exception as err:  # noqa: BLE001
        return f"unknown: {type(err).__name__}: {err}"


def _disk(path: Path) -> dict[str, Any]:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return {"path": str(path), "exists": path.exists(), "free_gib": round(usage.free / 2**30, 1)}


def _storage() -> dict[str, Any]:
    from .paths import cache_path

    cache = cache_path()
    hf_home = Path(os.environ.get("HF_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"))
    hub_cache = Path(os.environ.get("HF_HUB_CACHE", hf_home / "hub"))
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return {
        "rftbench_cache": _safe(lambda: _disk(cache)),
        "data_root": _safe(lambda: _disk(cache / "datasets")),
        "hf_home": _safe(lambda: _disk(hf_home)),
        "hf_hub_cache": _safe(lambda: _disk(hub_cache)),
        "hf_hub_offline": offline,
        "environment": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
    }


def _plugins() -> dict[str, Any]:
    from .plugins import get_manager

    manager = get_manager()
    infos = manager.describe()
    return {
        "plugins": [{"name": i.name, "distribution": i.distribution, "version": i.version, "status": i.status} for i in infos],
        "problems": [str(p) for p in manager.check()],
    }


def _guards() -> Any:
    from .engine.guards import active_guards

    return active_guards()


def collect() -> dict[str, Any]:
    """Everything ``rftbench doctor`` reports, as a JSON-able dict; never raises."""
    return {
        "versions": _safe(_versions),
        "platform": _safe(platform.platform),
        "cpu": _safe(_cpu),
        "gpu": _safe(_gpus),
        "auto": _safe(_auto_choices),
        "guards": _safe(_guards),
        "storage": _safe(_storage),
        "plugins": _safe(_plugins),
    }


__all__ = ["collect"]
