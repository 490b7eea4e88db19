"""How many intra-op CPU threads a run uses: as many as the CPUs the process may really use.

``os.cpu_count()`` (and so PyTorch's default) counts the machine's cores, not the process's
share: under a cgroup CPU quota (Docker ``--cpus``, Kubernetes limits, SLURM) or a narrow
affinity mask, one thread per core oversubscribes, and OpenMP threads spin waiting for each
other (a run on a 2-core machine at load 5 took 20× its quiet time). ``threads: auto`` takes

- the affinity mask (``os.sched_getaffinity``: ``taskset``, SLURM's ``--cpus-per-task``), and
- the CPU quota of the process's cgroup and its ancestors: cgroup v2 ``cpu.max``
  (``"200000 100000"`` → 2 CPUs, ``"max …"`` → none) or v1 ``cpu.cfs_quota_us`` /
  ``cpu.cfs_period_us`` (quota −1 → none), rounded down, at least 1,

whichever is smaller, unless ``OMP_NUM_THREADS`` is set (then PyTorch's count, which follows
it, is kept). An integer in the config (``threads: 4``), or else ``RFTBENCH_THREADS``, sets it.

``auto`` also leaves the CPUs to processes that keep them busy: while a run builds its model
and data (:func:`rftbench.prepare.prepare`), :class:`OtherLoad` reads ``/proc/stat`` for the
CPUs of the affinity mask and subtracts the process's own CPU time; the run then uses the CPUs
left free, rounded, at least 1 (beside two busy processes on a 2-core machine: 1 thread, since
two threads there wait for each other at every barrier). A resumed run takes the thread count of
its first start (the checkpoint keeps it): floating-point reductions differ with the count, and a
resumed run must end bit-identical to the uninterrupted one.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from .._cpus import affinity_cpus  # the one count of the affinity mask (config.usable_cores is the same function)
from ..errors import ConfigError

ENV = "RFTBENCH_THREADS"
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class ThreadChoice:
    """The intra-op thread count and why it was chosen."""

    threads: int
    reason: str
    #: chosen by ``auto`` alone (no setting, no environment variable): the load and a resume may still change it
    auto: bool = False



def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _v2_quota(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")
    if not text:
        return None
    parts = text.split()
    if parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1]) if len(parts) > 1 else 100_000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(directory: Path) -> float | None:
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    try:
        q, p = int(quota or ""), int(period or "")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _ancestors(root: Path, relative: str) -> list[Path]:
    """``root/relative`` and each parent up to ``root`` (a container sees its own cgroup as ``/``)."""
    parts = [p for p in relative.strip().split("/") if p and p != ".."]
    return [root.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]


def cgroup_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> tuple[float | None, str]:
    """``(CPUs the cgroup quota allows or None, where it was read)``; the smallest over the cgroup's ancestors."""
    lines = (_read(proc_cgroup) or "").splitlines()
    found: list[tuple[float, str]] = []
    v2 = next((line.split(":", 2)[2] for line in lines if line.startswith("0::")), None)
    if v2 is not None or (root / "cpu.max").exists():
        for directory in _ancestors(root, v2 or "/"):
            quota = _v2_quota(directory)
            if quota is not None:
                found.append((quota, f"cgroup v2 {directory / 'cpu.max'}"))
    for line in lines:  # cgroup v1: "N:cpu,cpuacct:/path"
        fields = line.split(":", 2)
        if len(fields) == 3 and "cpu" in fields[1].split(","):
            for mount in (fields[1], "cpu", "cpu,cpuacct"):
                for directory in _ancestors(root / mount, fields[2]):
                    quota = _v1_quota(directory)
                    if quota is not None:
                        found.append((quota, f"cgroup v1 {directory / 'cpu.cfs_quota_us'}"))
                if found:
                    break
    if not found and not lines:  # no /proc/self/cgroup: look at the root alone
        for quota, where in ((_v2_quota(root), root / "cpu.max"), (_v1_quota(root / "cpu"), root / "cpu" / "cpu.cfs_quota_us")):
            if quota is not None:
                found.append((quota, str(where)))
    if not found:
        return None, "no cgroup CPU quota"
    return min(found)


def usable_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> tuple[int, str]:
    """``(CPUs this process may use, why)``: the affinity mask capped by the cgroup quota (rounded down, ≥ 1)."""
    mask = affinity_cpus()
    quota, where = cgroup_quota(root, proc_cgroup)
    if quota is not None and math.floor(quota) < mask:
        return max(math.floor(quota), 1), f"cgroup quota {quota:g} CPUs ({where}); affinity mask {mask} CPUs"
    extra = f"; cgroup quota {quota:g} CPUs" if quota is not None else f"; {where}"
    return mask, f"affinity mask {mask} CPUs{extra}"


def _parse(value: object, where: str, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"{where}: {value!r} is not a thread count; {fix}")
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not a thread count; {fix}") from None
    if n < 1:
        raise ConfigError(f"{where}: {n} threads; {fix}")
    return n


def choose_threads(requested: int | str = "auto", env: Mapping[str, str] | None = None, *,
                   root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> ThreadChoice:
    """Resolve the ``threads`` setting (see the module docstring); a count above the usable CPUs is a :class:`ConfigError`."""
    env = os.environ if env is None else env
    cpus, why = usable_cpus(root, proc_cgroup)
    if requested != "auto":
        n = _parse(requested, "threads", "use an integer ≥ 1 or auto")
        source = "threads in the config"
    elif env.get(ENV, "").strip():
        n = _parse(env[ENV], ENV, f"set {ENV} to an integer ≥ 1, or unset it for auto")
        source = f"{ENV}={env[ENV].strip()}"
    elif env.get("OMP_NUM_THREADS", "").strip():
        n = torch.get_num_threads()
        return ThreadChoice(n, f"OMP_NUM_THREADS={env['OMP_NUM_THREADS'].strip()} ({why})")
    else:
        return ThreadChoice(cpus, f"auto: {why}", auto=True)
    if n > cpus:
        raise ConfigError(f"{source}: {n} threads, but this process may use only {cpus} CPUs ({why}); "
                          f"use at most {cpus}, or threads=auto")
    return ThreadChoice(n, f"{source} ({why})")


PROC_STAT = Path("/proc/stat")


def _cpu_ticks(text: str, cpus: set[int]) -> tuple[int, int, int] | None:
    """``(busy ticks, all ticks, CPUs read)`` over the ``cpuN`` lines of ``/proc/stat`` whose N is in ``cpus``."""
    busy = total = seen = 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or not name[3:].isdigit() or int(name[3:]) not in cpus:
            continue
        try:
            fields = [int(v) for v in rest.split()[:8]]  # user nice system idle iowait irq softirq steal
        except ValueError:
            return None
        if len(fields) < 5:
            return None
        idle = fields[3] + fields[4]
        busy, total, seen = busy + sum(fields) - idle, total + sum(fields), seen + 1
    return (busy, total, seen) if seen else None


class OtherLoad:
    """How many CPUs of the affinity mask other processes keep busy, measured over a stretch of this process's work.

    ``OtherLoad()`` starts the measurement; ``busy()`` ends it: the busy time of the mask's CPUs (``/proc/stat``,
    steal included) minus this process's own CPU time, in CPUs' worth (``None`` where ``/proc/stat`` cannot be read).
    A stretch shorter than ``min_seconds`` is made up by sleeping (the clock ticks at 100 Hz).
    """

    def __init__(self, *, stat: Path = PROC_STAT, cpus: set[int] | None = None, min_seconds: float = 0.1,
                 clock: Callable[[], float] = time.perf_counter, own: Callable[[], float] = time.process_time,
                 sleep: Callable[[float], None] = time.sleep):
        self.stat, self.min_seconds, self.clock, self.own, self.sleep = stat, min_seconds, clock, own, sleep
        self.cpus = cpus if cpus is not None else (os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set())
        self._start = (self.clock(), self.own(), _cpu_ticks(_read(stat) or "", self.cpus))

    def busy(self) -> float | None:
        wall0, own0, ticks0 = self._start
        left = self.min_seconds - (self.clock() - wall0)
        if left > 0:
            self.sleep(left)
        ticks1 = _cpu_ticks(_read(self.stat) or "", self.cpus)
        seconds, own = self.clock() - wall0, self.own() - own0
        if ticks0 is None or ticks1 is None or ticks1[2] != ticks0[2] or ticks1[1] <= ticks0[1] or seconds <= 0:
            return None
        busy_cpus = (ticks1[0] - ticks0[0]) / (ticks1[1] - ticks0[1]) * ticks1[2]  # the busy share × the CPUs read
        return max(0.0, busy_cpus - own / seconds)


def under_load(choice: ThreadChoice, busy: float | None) -> ThreadChoice:
    """``choice`` (from ``auto``) lowered to the CPUs other processes leave free: ``round(mask − busy)``, at least 1."""
    if not choice.auto or busy is None:
        return choice
    mask = affinity_cpus()
    free = max(1, min(choice.threads, math.floor(mask - busy + 0.5)))
    if free >= choice.threads:
        return ThreadChoice(choice.threads, f"{choice.reason}; {busy:.1f} CPUs busy with other processes", auto=True)
    return ThreadChoice(free, f"{choice.reason}; {busy:.1f} of the {mask} CPUs busy with other processes: {free}", auto=True)


def apply_threads(requested: int | str = "auto") -> ThreadChoice:
    """Choose the thread count and set it with ``torch.set_num_threads``; returns the choice."""
    choice = choose_threads(requested)
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    return choice


def as_first_start(choice: ThreadChoice, first: int | None) -> ThreadChoice:
    """A resumed run's thread count under ``auto``: its first start's ``first`` (capped by the usable CPUs)."""
    if not choice.auto or not first or int(first) == choice.threads:
        return choice
    n = max(1, min(int(first), usable_cpus()[0]))
    return ThreadChoice(n, f"{choice.reason}; resumed with its first start's {int(first)} threads (a bit-identical resume)",
                        auto=True)


def set_threads(choice: ThreadChoice) -> ThreadChoice:
    """``torch.set_num_threads(choice.threads)`` where it differs; returns ``choice``."""
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    return choice


__all__ = ["ENV", "OtherLoad", "ThreadChoice", "affinity_cpus", "apply_threads", "as_first_start", "cgroup_quota", "choose_threads",
           "set_threads", "under_load", "usable_cpus"]
