"""What a run cost: FLOPs, forward/backward passes, peak memory and device-seconds.

- **FLOPs** come from :class:`torch.utils.flop_counter.FlopCounterMode`, counted once per
  signature, never per step: a training step is counted the first time its signature (image
  shape, whether it attacks, whether it steps the optimiser, the protocol phase) occurs and that
  count is reused for every later step with the same signature, scaled by the batch size where
  it differs (an epoch's last batch); evaluation FLOPs are the counted
  forward and backward images times the FLOPs of one image's forward pass and of one image's
  backward pass to the input (measured once, in evaluation mode, for the evaluated image shape).
- **Passes** are counted by a forward hook on the classifier (a Python integer per call, no
  device synchronisation): ``forward_passes`` calls and ``forward_images`` images; a backward
  pass is counted when a gradient reaches the classifier's output (``backward_passes`` /
  ``backward_images``), so an attack's input-gradient pass counts as a backward pass too.
- **Peak memory**: device memory from ``torch.cuda.max_memory_allocated`` (CUDA only, ``None``
  on CPU) per phase; host memory from ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the
  process's peak resident set so far, which cannot be reset: it covers everything before it).
- **Device-seconds**: GPU-seconds on CUDA (wall time of the phase × 1 device); on the CPU,
  core-seconds (the process's CPU time, ``time.process_time``, summed over its threads).

A record without cost information (the imported reference study) shows it as unknown, never 0.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

#: The counters every phase keeps (integers, plus FLOPs and device-seconds).
COUNTS = ("forward_passes", "forward_images", "backward_passes", "backward_images")


def empty_phase() -> dict[str, Any]:
    """A phase's counters at zero."""
    return {**{k: 0 for k in COUNTS}, "flops": 0, "device_seconds": 0.0, "peak_device_memory_bytes": None}


def host_peak_bytes() -> int:
    """The process's peak resident set size in bytes (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _flop_counter() -> Any:
    """A :class:`~torch.utils.flop_counter.FlopCounterMode` counting globally, without its per-module tracker.

    The tracker's backward hooks raise inside ``torch.autograd.grad`` on a leaf input (what every
    attack calls: "A leaf node was passed to _will_engine_execute_node…", torch 2.x); only the
    total is needed here, and it is the same without them.
    """
    from torch.utils import flop_counter

    class GlobalFlopCounter(flop_counter.FlopCounterMode):
        def __enter__(self) -> Any:
            self.flop_counts.clear()
            self.mode = flop_counter._FlopCounterMode(self)
            self.mode.__enter__()
            return self

        def __exit__(self, *args: Any) -> Any:
            done = self.mode.__exit__(*args)
            self.mode = None
            return done

    if not hasattr(flop_counter, "_FlopCounterMode"):  # pragma: no cover - an older torch: the plain counter
        return flop_counter.FlopCounterMode(display=False)
    return GlobalFlopCounter(display=False)


def count_flops(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """``(fn(*args, **kwargs), FLOPs it executed)`` under :class:`~torch.utils.flop_counter.FlopCounterMode`."""
    mode = _flop_counter()
    with mode:
        out = fn(*args, **kwargs)
    return out, int(mode.get_total_flops())


class PassCounter:
    """Counts forward and backward passes of ``model`` through hooks into the current phase's counters.

    ``with counter.into(phase_dict):`` directs the counts of the block there (phases nest: the
    innermost gets them); outside any block nothing is counted. ``remove()`` takes the hook off.
    """

    def __init__(self, model: nn.Module):
        self._targets: list[dict[str, Any]] = []
        self._handle = model.register_forward_hook(self._forward)

    def _forward(self, module: nn.Module, args: Any, output: Any) -> None:
        if not self._targets or not isinstance(output, torch.Tensor):
            return
        target = self._targets[-1]
        n = int(output.shape[0]) if output.dim() else 1
        target["forward_passes"] = target.get("forward_passes", 0) + 1
        target["forward_images"] = target.get("forward_images", 0) + n
        if output.requires_grad:
            output.register_hook(lambda grad, t=target, n=n: self._backward(t, n))

    @staticmethod
    def _backward(target: dict[str, Any], n: int) -> None:
        target["backward_passes"] = target.get("backward_passes", 0) + 1
        target["backward_images"] = target.get("backward_images", 0) + n

    @contextmanager
    def into(self, target: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self._targets.append(target)
        try:
            yield target
        finally:
            self._targets.pop()

    def remove(self) -> None:
        self._handle.remove()


class DeviceClock:
    """Device-seconds of a phase: GPU wall seconds on CUDA, process CPU seconds on the CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.unit = "gpu-seconds" if self.cuda else "core-seconds"

    def now(self) -> float:
        return time.perf_counter() if self.cuda else time.process_time()


def reset_device_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def device_peak(device: torch.device) -> int | None:
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


def image_flops(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """FLOPs of one image's forward pass and of one image's backward pass to the input, in evaluation mode.

    Measured once on two images of ``x``'s shape (conv and linear FLOPs grow linearly with the
    batch) with the parameters frozen, as attacks run; the model's modes are restored.
    """
    from ..attacks import attack_mode

    probe = x[:2].detach().clone()
    if len(probe) == 1:
        probe = probe.repeat(2, *([1] * (probe.dim() - 1)))
    probe = probe.float()
    with attack_mode(model):
        with torch.no_grad():
            _, forward = count_flops(model, probe)
        delta = torch.zeros_like(probe, requires_grad=True)
        out = model(probe + delta)
        _, backward = count_flops(torch.autograd.grad, out.float().sum(), delta)
    return {"forward": forward // 2, "backward": backward // 2}


class StepFlops:
    """FLOPs of training steps, counted once per step signature and reused for every later step with it.

    The signature leaves out the batch size: a step of another batch size (an epoch's last, shorter batch) is
    charged the counted step's FLOPs scaled by the ratio of the batch sizes, since the FLOPs
    :class:`~torch.utils.flop_counter.FlopCounterMode` counts (convolutions, matrix products, attention) grow
    linearly with the batch. A counted step runs ~1.2× slower (the mini ResNet at 32 px, one thread), so
    counting once per signature instead of once per shape halves the counting on the offline default.
    """

    def __init__(self) -> None:
        self.by_signature: dict[tuple, tuple[int, int]] = {}  # signature -> (counted batch size, its FLOPs)

    def run(self, signature: tuple, batch: int, fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, int]:
        """``fn(*args, **kwargs)`` and its FLOPs: counted now if ``signature`` is new, else scaled to ``batch``."""
        known = self.by_signature.get(signature)
        if known is not None:
            counted_batch, flops = known
            return fn(*args, **kwargs), flops if batch == counted_batch else flops * batch // counted_batch
        out, flops = count_flops(fn, *args, **kwargs)
        self.by_signature[signature] = (batch, flops)
        return out, flops


@contextmanager
def phase(counter: PassCounter | None, clock: DeviceClock, into: dict[str, Any], per_image: dict[str, int] | None = None
          ) -> Iterator[None]:
    """Count the block's passes and device-seconds into ``into``; with ``per_image``, add its FLOPs from the images."""
    before = {k: int(into.get(k) or 0) for k in COUNTS}
    start = clock.now()
    try:
        if counter is not None:
            with counter.into(into):
                yield
        else:
            yield
    finally:
        into["device_seconds"] = round(float(into.get("device_seconds") or 0.0) + clock.now() - start, 6)
        if per_image is not None and counter is not None:  # without a counter the images, and so the FLOPs, are unknown
            into["flops"] = int(into.get("flops") or 0) \
                + (int(into.get("forward_images") or 0) - before["forward_images"]) * per_image["forward"] \
                + (int(into.get("backward_images") or 0) - before["backward_images"]) * per_image["backward"]


class EvalCost:
    """Per-label cost of an evaluation (``evaluate(..., cost=EvalCost(...))``): passes, FLOPs, device-seconds, peak memory."""

    def __init__(self, model: nn.Module, device: torch.device, per_image: dict[str, int]):
        self.counter = PassCounter(model)
        self.clock = DeviceClock(device)
        self.device, self.per_image = device, per_image
        self.phases: dict[str, dict[str, Any]] = {}

    @contextmanager
    def measure(self, label: str) -> Iterator[None]:
        into = self.phases.setdefault(label, empty_phase())
        reset_device_peak(self.device)
        with phase(self.counter, self.clock, into, self.per_image):
            yield
        into["peak_device_memory_bytes"] = device_peak(self.device)

    def close(self) -> dict[str, dict[str, Any]]:
        self.counter.remove()
        return self.phases


__all__ = ["EvalCost", "COUNTS", "DeviceClock", "PassCounter", "StepFlops", "count_flops", "device_peak", "empty_phase",
           "host_peak_bytes", "image_flops", "phase", "reset_device_peak"]
