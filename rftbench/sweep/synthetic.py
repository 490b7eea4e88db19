"""A synthetic run function: deterministic, fast, no model, no data.

It stands in for :func:`rftbench.run` where what is tested or measured is the sweep machinery
itself: the executors' per-run overhead, resumability, claim races. Its metrics are a function of
the config hash only, so two executors must produce byte-identical metrics. Use it from the CLI
with ``rftbench sweep SWEEP.yaml --run-function rftbench.sweep.synthetic:synthetic_run``.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from ..config import RunConfig
from ..results import ResultRecord


def synthetic_run(
    config: RunConfig,
    *,
    seconds: float = 0.0,
    work: int = 0,
    log: str | None = None,
    fail_seeds: tuple[int, ...] = (),
    fail_times: int = 1_000_000,
) -> ResultRecord:
    """A fake run: sleep ``seconds``, spin ``work`` loop iterations of CPU, return metrics from the hash.

    ``log``: append ``start``/``end`` lines (``event hash pid``) to this file, to count executions.
    ``fail_seeds``: raise for configs with these seeds, on their first ``fail_times`` attempts
    (attempts are counted from the ``log``; without a log, always).
    """
    digest = config.config_hash()
    if log:
        _append(log, f"start {digest} {os.getpid()}\n")
    if config.seed in fail_seeds:
        started = _count(log, f"start {digest} ") if log else 0
        if not log or started <= fail_times:
            raise RuntimeError(f"synthetic failure of seed {config.seed} (attempt {started or 1})")
    t0 = time.perf_counter()
    acc = 0
    for i in range(work):
        acc = (acc + i * i) % 1_000_003
    if seconds:
        time.sleep(seconds)
    values = hashlib.sha256(digest.encode()).digest()
    record = ResultRecord(
        id=digest,
        config=config.to_dict(),
        metrics={"clean_acc": values[0] / 255, "linf:4/255": {"acc": values[1] / 255}},
        timings={"total_s": round(time.perf_counter() - t0, 6)},
        provenance={"run_function": "rftbench.sweep.synthetic:synthetic_run", "work_checksum": acc},
    )
    if log:
        _append(log, f"end {digest} {os.getpid()}\n")
    return record


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _count(path: str, prefix: str) -> int:
    try:
        return sum(1 for line in Path(path).read_text().splitlines() if line.startswith(prefix))
    except FileNotFoundError:
        return 0


def synthetic_trial(config: RunConfig, report, *, seconds: float = 0.0) -> None:
    """A fake tuning trial: reports a validation loss per epoch, smallest near lr_head = 1e-3,
    lr_backbone = 1e-4 and weight decays of 1e-4, and falling with the epochs.

    Stands in for the engine's trial function in tests and demos of ``rftbench tune``.
    """
    import math

    opt = config.optimizer
    distance = sum(
        (math.log10(value) - math.log10(best)) ** 2
        for value, best in (
            (opt.lr_head, 1e-3),
            (opt.lr_backbone, 1e-4),
            (max(opt.weight_decay_head, 1e-12), 1e-4),
            (max(opt.weight_decay_backbone, 1e-12), 1e-4),
        )
    )
    for epoch in range(config.epochs):
        if seconds:
            time.sleep(seconds)
        report({"epoch": epoch + 1, "val_loss": distance + 1.0 / (epoch + 1), "val_acc": 1.0 / (1.0 + distance)})
