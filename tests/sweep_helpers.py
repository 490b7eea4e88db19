"""Shared by the sweep tests: a plugin manager with the test contributions, sweep files, execution logs.

Run as a script (``python -m tests.sweep_helpers SWEEP.yaml SECONDS LOG [EXECUTOR_PARAMS_JSON]``) it
drives a sweep of synthetic runs in a child process, so that tests can kill it or race two of them
(``SWEEP_HELPER_BARRIER=FOLDER:PARTIES`` in the environment makes racing children start together).
"""

from __future__ import annotations

import collections
import functools
import json
import os
import sys
import time
from pathlib import Path

import pytest

from rftbench.plugins import PluginManager, set_manager
from rftbench.sweep.synthetic import synthetic_run

REPO = Path(__file__).resolve().parents[1]


def sweep_manager() -> PluginManager:
    from rftbench_plugins import executors
    from tests.plugins import minimal, sweep_cards

    manager = PluginManager()
    manager.register(minimal, "minimal")
    manager.register(sweep_cards, "sweep_cards")
    manager.register(executors, "executors")
    return manager


@pytest.fixture
def manager():
    """The sweep test plugins, installed as the process-wide manager for the test (import it into a test module)."""
    manager = sweep_manager()
    set_manager(manager)
    yield manager
    set_manager(None)


def write_sweep(folder: Path, seeds: int, extra: str = "") -> Path:
    path = folder / "sweep.yaml"
    path.write_text(f"name: t\nresults_dir: results\nbase: {{epochs: 1}}\naxes:\n  seed: {list(range(seeds))}\n{extra}")
    return path


def synthetic(log: Path, seconds: float = 0.0, **kwargs):
    return functools.partial(synthetic_run, seconds=seconds, log=str(log), **kwargs)


def events(log: Path) -> dict[str, collections.Counter]:
    """``{"start": Counter(hash → n), "end": Counter(hash → n)}`` from a synthetic run log."""
    out = {"start": collections.Counter(), "end": collections.Counter()}
    if log.exists():
        for line in log.read_text().splitlines():
            event, digest, _pid = line.split()
            out[event][digest] += 1
    return out


def ddp_run(config):
    """A run function for torchrun: joins the process group (gloo, CPU) and all-reduces its rank."""
    import os

    import torch
    import torch.distributed as dist

    from rftbench.results import ResultRecord

    dist.init_process_group("gloo")
    try:
        value = torch.tensor([float(dist.get_rank() + 1)])
        dist.all_reduce(value)
        return ResultRecord(
            id=config.config_hash(),
            config=config.to_dict(),
            metrics={"world_size": dist.get_world_size(), "rank_sum": float(value), "local_rank": int(os.environ["LOCAL_RANK"])},
        )
    finally:
        dist.destroy_process_group()


def wait_at_barrier(folder: str, parties: int, timeout: float = 120.0) -> None:
    """Start together: mark this process ready in ``folder``, then wait until ``parties`` processes are.

    (Racing children otherwise start seconds apart on a loaded machine, as long as their imports take,
    and the first one can finish the whole sweep before the second begins.)
    """
    Path(folder, f"{os.getpid()}.ready").touch()
    deadline = time.monotonic() + timeout
    while len(list(Path(folder).glob("*.ready"))) < parties:
        if time.monotonic() > deadline:
            raise SystemExit(f"barrier {folder}: fewer than {parties} processes arrived in {timeout:.0f} s")
        time.sleep(0.01)


def main(argv: list[str]) -> None:
    from rftbench.sweep import build_executor, load_sweep, run_sweep

    set_manager(sweep_manager())
    sweep = load_sweep(argv[0])
    params = json.loads(argv[3]) if len(argv) > 3 else {}
    executor = build_executor(sweep, overrides=params)
    if os.environ.get("SWEEP_HELPER_BARRIER"):  # "FOLDER:PARTIES": start together with the other children
        folder, parties = os.environ["SWEEP_HELPER_BARRIER"].rsplit(":", 1)
        wait_at_barrier(folder, int(parties))
    summary = run_sweep(sweep, executor, run=synthetic(Path(argv[2]), float(argv[1])), progress="lines")
    print("DONE_NOW", summary.done_now, "ELSEWHERE", summary.done_elsewhere, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
