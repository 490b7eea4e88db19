"""Counting host–device synchronisations: a regression guard for the hot path.

A GPU runs ahead of the Python loop until the host asks for a value the device has not yet
computed (``.item()``, ``bool(tensor)``, boolean-mask indexing, ``nonzero``…); each such request
drains the device's queue. On a CPU nothing stalls, but the same requests show up as aten ops,
so :func:`count_syncs` runs code under :mod:`torch.profiler` on the CPU and counts them:

- the ops in :data:`SYNC_OPS` (an op nested inside another counted op, e.g. the
  ``aten::_local_scalar_dense`` under ``aten::item``, is the same sync and counted once);
- the ranges the trainer marks with :func:`host_read` (a deliberate read, e.g. of the running
  loss every ``log_every`` steps: on CUDA a device-to-host copy, invisible as an op on the CPU);
- but nothing inside the data loader's ``__next__`` or a :func:`host_work` range: those ops
  run on CPU tensors the loader produced (labels checked before they move to the device), and
  never wait for a device;
- nor the ``item()`` calls inside an optimiser's ``step``: PyTorch keeps each parameter's step
  counter (``state["step"]``) on the CPU unless the optimiser is ``capturable`` or ``fused``, so
  reading it never waits for a GPU (other sync ops there still count).

On CUDA, ``torch.cuda.set_sync_debug_mode("error")`` is the ground truth
(``tests/test_cuda.py``).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

#: aten ops that copy a device value to the host or need one to size their output.
SYNC_OPS = frozenset({
    "aten::item", "aten::_local_scalar_dense", "aten::is_nonzero", "aten::nonzero", "aten::masked_select",
    "aten::unique", "aten::_unique", "aten::_unique2", "aten::unique_dim", "aten::unique_consecutive",
    "aten::equal", "aten::allclose", "aten::tolist", "aten::repeat_interleave", "aten::bincount",
    "aten::histc", "aten::_assert_async", "aten::masked_scatter_",
})
#: Name of the profiler range around a deliberate host read (counted as one sync).
READ = "rftbench::host_read"
#: Name of the profiler range around host-only work on CPU tensors (not counted).
HOST = "rftbench::host_work"
#: Ranges whose ops are not counted: the data loader fetching a batch, host-only work.
EXCLUDED_PREFIXES = ("enumerate(DataLoader)", HOST)


def host_read() -> contextlib.AbstractContextManager:
    """Mark a deliberate device-to-host read (counted as one sync by :func:`count_syncs`)."""
    return torch.profiler.record_function(READ)


def host_work() -> contextlib.AbstractContextManager:
    """Mark work on CPU tensors that never waits for a device (not counted)."""
    return torch.profiler.record_function(HOST)


@dataclass
class SyncCount:
    """Syncs counted in a profiled block: ``total`` and per op (``rftbench::host_read`` for marked reads)."""

    by_op: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.by_op.values())

    def __str__(self) -> str:
        ops = ", ".join(f"{name} ×{n}" for name, n in self.by_op.most_common())
        return f"{self.total} syncs" + (f" ({ops})" if ops else "")


#: Ranges in which reading a scalar reads a CPU tensor (the optimiser's step counters).
CPU_SCALAR_PREFIXES = ("Optimizer.step#",)
_SCALAR_READS = frozenset({"aten::item", "aten::_local_scalar_dense"})


def _excluded(event: Any) -> bool:
    scalar = event.name in _SCALAR_READS
    while event is not None:
        if event.name.startswith(EXCLUDED_PREFIXES) or (scalar and event.name.startswith(CPU_SCALAR_PREFIXES)):
            return True
        event = event.cpu_parent
    return False


def _inside_counted(event: Any) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name in SYNC_OPS or parent.name == READ:
            return True
        parent = parent.cpu_parent
    return False


def tally(events: Any) -> SyncCount:
    """Count the syncs among a profiler's ``events()`` (see the module docstring)."""
    count = SyncCount()
    for event in events:
        if (event.name in SYNC_OPS or event.name == READ) and not _inside_counted(event) and not _excluded(event):
            count.by_op[event.name] += 1
    return count


@contextlib.contextmanager
def sync_counter() -> Iterator[SyncCount]:
    """``with sync_counter() as count: …`` — profile the block on the CPU; ``count`` is filled on exit."""
    count = SyncCount()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        yield count
    count.by_op.update(tally(prof.events()).by_op)


def count_syncs(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, SyncCount]:
    """Run ``fn(*args, **kwargs)`` under the CPU profiler; returns ``(its result, the syncs it made)``."""
    with sync_counter() as count:
        result = fn(*args, **kwargs)
    return result, count


__all__ = ["EXCLUDED_PREFIXES", "HOST", "READ", "SYNC_OPS", "SyncCount", "count_syncs", "host_read", "host_work",
           "sync_counter", "tally"]
