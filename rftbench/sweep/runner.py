"""Drive a sweep through an executor: skip what is done, keep the executor busy, retry failures,
show live progress (queued / running / done / failed, with an ETA) and end with a summary.

The runner holds no state that matters: every run's fate is in the results directory (records,
claims, failure records), so killing the runner at any moment and starting it again loses nothing.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..plugins import PluginManager, get_manager
from .executor import Executor
from .spec import Sweep, SweepRun
from .store import Store
from .worker import DEFAULT_RUN, Outcome, RunFunction, RunTask, execute

State = Literal["queued", "running", "elsewhere", "done", "failed"]


@dataclass
class RunProgress:
    """Where one run of the sweep stands in this invocation."""

    run: SweepRun
    state: State = "queued"
    started: float | None = None
    seconds: float | None = None
    attempts: int = 0
    error: str | None = None
    before: bool = False  # done before this invocation started
    not_before: float = 0.0


@dataclass
class SweepSummary:
    """The outcome of one invocation of a sweep."""

    name: str
    results_dir: Path
    total: int
    done_now: int = 0
    done_before: int = 0
    done_elsewhere: int = 0
    failed: list[RunProgress] = field(default_factory=list)
    elapsed: float = 0.0
    interrupted: bool = False
    source: Path | None = None

    @property
    def complete(self) -> bool:
        return not self.failed and not self.interrupted and self.done == self.total

    @property
    def done(self) -> int:
        return self.done_now + self.done_before + self.done_elsewhere

    def render(self) -> Table:
        """A table for the console: counts, where the results are, what failed and why."""
        table = Table(title=f"sweep {self.name}: {self.done}/{self.total} runs done", show_header=False, title_justify="left")
        table.add_column("", style="bold")
        table.add_column("")
        table.add_row("ran now", f"{self.done_now} in {_duration(self.elapsed)}")
        table.add_row("done before", str(self.done_before))
        if self.done_elsewhere:
            table.add_row("done by other workers", str(self.done_elsewhere))
        table.add_row("failed", str(len(self.failed)))
        if self.interrupted:
            table.add_row("interrupted", "re-run the same command to resume; nothing done is lost")
        table.add_row("results", str(self.results_dir))
        if self.failed:
            store = Store(self.results_dir)
            for p in self.failed[:10]:
                table.add_row(f"  {p.run.hash}", f"{p.run.label}: {p.error or 'failed'} ({p.attempts} attempts) → {store.failure_path(p.run.hash)}")
            if len(self.failed) > 10:
                table.add_row("", f"… and {len(self.failed) - 10} more in {store.failures}")
            table.add_row("retry", f"rftbench sweep {self.source or 'SWEEP.yaml'} --retry-failed")
        table.add_row("export", f"rftbench results {self.results_dir} --format csv -o results.csv")
        return table


def build_executor(sweep: Sweep, name: str | None = None, overrides: dict[str, Any] | None = None, manager: PluginManager | None = None) -> Executor:
    """The sweep's executor, or ``name`` (with the sweep file's parameters when it names the same one)."""
    manager = manager or get_manager()
    chosen = name or sweep.spec.executor.name
    spec = manager.get("executor", chosen)
    params = dict(sweep.spec.executor.params) if chosen == sweep.spec.executor.name else {}
    params.update(overrides or {})
    from pydantic import ValidationError

    from ..cards import format_validation_error
    from .errors import SweepError

    try:
        return spec.build(**params)
    except ValidationError as err:
        raise SweepError(f"invalid parameters for executor {chosen!r}:\n{format_validation_error(err, prefix='executor.')}") from None


def run_sweep(
    sweep: Sweep,
    executor: Executor | None = None,
    *,
    run: RunFunction | str = DEFAULT_RUN,
    retry_failed: bool = False,
    console: Console | None = None,
    progress: Literal["live", "lines", "none"] | None = None,
    poll: float = 0.2,
) -> SweepSummary:
    """Run every run of ``sweep`` that has no result yet; returns the summary.

    ``run`` is the run function (a callable or ``module:function``; it must be importable where
    the executor runs it). ``progress``: a live table (the default on a terminal), one line per
    finished run (the default otherwise) or nothing. The results directory is checked and the
    executor started before any run, so their errors come first.
    """
    console = console or Console(stderr=True)
    progress = progress or ("live" if console.is_terminal else "lines")
    store = Store(sweep.results_dir, claim_timeout=sweep.spec.claim_timeout)
    store.check_writable()
    executor = executor or build_executor(sweep)
    max_attempts = 1 + sweep.spec.retries

    board = _Board(sweep, [RunProgress(r) for r in sweep.runs], executor)
    done = store.done()
    for p in board.runs:
        if p.run.hash in done:
            p.state, p.before = "done", True
            continue
        if retry_failed:
            store.clear_failures(p.run.hash)
        p.attempts = store.attempts(p.run.hash)
        if p.attempts >= max_attempts:
            p.state = "failed"
            p.error = _last_error(store, p.run.hash)
    executor.start(sweep.results_dir)

    summary = SweepSummary(sweep.name, sweep.results_dir, len(sweep.runs), source=sweep.source)
    queue = deque(p for p in board.runs if p.state == "queued")
    in_flight: dict[Any, RunProgress] = {}
    recheck = max(poll, min(1.0, sweep.spec.claim_timeout / 4))  # how often to look at runs another worker holds

    def task(p: RunProgress) -> RunTask:
        return RunTask(
            str(sweep.results_dir), p.run.hash, p.run.config, p.run.label, run, sweep.spec.claim_timeout, max_attempts,
            nproc=int(getattr(executor, "procs_per_run", 1)),
        )

    def finish(p: RunProgress, outcome: Outcome) -> None:
        p.seconds = outcome.seconds
        if outcome.status == "done":
            p.state = "done"
            summary.done_now += 1
        elif outcome.status == "skipped":
            p.state = "done"
            summary.done_elsewhere += 1
        elif outcome.status in ("busy", "lost"):
            p.state, p.not_before = "elsewhere", time.monotonic() + recheck
        elif outcome.status == "interrupted":  # Ctrl-C / SIGTERM reached the run: stop, count no attempt
            p.state, p.error = "queued", outcome.error
            summary.interrupted = True
        else:
            p.attempts = max(p.attempts + 1, outcome.attempts)
            p.error = outcome.error
            if outcome.status == "failed" and p.attempts < max_attempts:
                p.state = "queued"
                queue.append(p)
                board.finished(p, "retry")
                return
            p.state = "failed"
        board.finished(p, outcome.status)

    display = Live(board, console=console, refresh_per_second=4, transient=False) if progress == "live" else None
    board.lines = console if progress == "lines" else None
    start = time.monotonic()
    previous = _stop_on_signals()
    try:
        if display is not None:
            display.start()
        while not summary.interrupted or in_flight:
            if summary.interrupted:
                queue.clear()  # let the runs in flight save their checkpoints, start nothing new
            now = time.monotonic()
            for p in board.runs:  # runs another worker holds: done yet, or abandoned?
                if p.state == "elsewhere" and p.not_before <= now:
                    if store.is_done(p.run.hash):
                        p.state = "done"
                        summary.done_elsewhere += 1
                        board.finished(p, "skipped")
                        continue
                    info = store.claim_info(p.run.hash)
                    if info is not None and not store.is_stale(info):
                        p.not_before = now + recheck
                        continue
                    p.state = "queued"
                    queue.append(p)
            if not queue and not in_flight:
                if summary.interrupted or not any(p.state == "elsewhere" for p in board.runs):
                    break
                time.sleep(poll)
                continue
            free = len(queue) if executor.slots is None else max(0, executor.slots - len(in_flight))
            if summary.interrupted:
                free = 0
            batch = [queue.popleft() for _ in range(min(free, len(queue)))]
            if batch:
                for p in batch:
                    p.state, p.started = "running", time.monotonic()
                for p, handle in zip(batch, executor.submit(execute, [task(p) for p in batch])):
                    in_flight[handle] = p
            if in_flight:
                for handle in executor.wait(list(in_flight), timeout=poll):
                    p = in_flight.pop(handle)
                    try:
                        outcome = executor.result(handle)
                    except Exception as err:  # noqa: BLE001 - the worker itself died (killed, OOM, lost node)
                        count = store.record_failure(p.run.hash, p.run.config.to_dict(), err)
                        outcome = Outcome(p.run.hash, "failed", time.monotonic() - (p.started or now), f"worker died: {type(err).__name__}: {err}", count)
                    finish(p, outcome)
            elif queue:
                time.sleep(poll)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        summary.elapsed = time.monotonic() - start
        executor.shutdown()
        if display is not None:
            display.stop()
    summary.done_before = sum(p.before for p in board.runs)
    summary.failed = [p for p in board.runs if p.state == "failed"]
    return summary


#: How ``--progress lines`` names each outcome of a run (every :data:`~.worker.Status` but ``busy``, plus ``retry``).
_LINE_WORDS = {
    "done": "done",
    "skipped": "done elsewhere",
    "failed": "failed",
    "exhausted": "failed",
    "retry": "failed (will retry)",
    "lost": "taken over by another worker (its claim went stale; waiting for that worker)",
    "interrupted": "interrupted (a checkpoint was kept; re-run to resume)",
}


class _Board:
    """The live progress table (a rich renderable re-drawn by ``Live``)."""

    def __init__(self, sweep: Sweep, runs: list[RunProgress], executor: Executor):
        self.sweep, self.runs, self.executor = sweep, runs, executor
        self.start = time.monotonic()
        self.recent: deque[RunProgress] = deque(maxlen=5)
        self.finished_now = 0
        self.lines: Console | None = None

    def finished(self, p: RunProgress, status: str) -> None:
        if status in ("done", "failed", "exhausted", "skipped"):
            self.finished_now += 1
            self.recent.appendleft(p)
        if self.lines is not None and status != "busy":
            counts = self.counts()
            word = _LINE_WORDS.get(status, status)
            tail = f" ({p.seconds:.2f}s)" if p.seconds else ""
            error = f": {p.error}" if status in ("failed", "exhausted", "retry") else ""
            self.lines.print(
                f"[{counts['done'] + counts['failed']}/{len(self.runs)}] {word} {p.run.hash} {p.run.label}{tail}{error}",
                markup=False,
                highlight=False,
            )

    def counts(self) -> dict[str, int]:
        out = {"queued": 0, "running": 0, "elsewhere": 0, "done": 0, "failed": 0}
        for p in self.runs:
            out[p.state] += 1
        return out

    def eta(self) -> str:
        counts = self.counts()
        left = counts["queued"] + counts["running"] + counts["elsewhere"]
        elapsed = time.monotonic() - self.start
        if not left:
            return "0s"
        if not self.finished_now:
            return "—"
        return _duration(left * elapsed / self.finished_now)

    def __rich__(self) -> Group:
        counts = self.counts()
        elapsed = time.monotonic() - self.start
        head = Text.assemble(
            (f"sweep {self.sweep.name}", "bold"),
            f"  {len(self.runs)} runs · ",
            (f"queued {counts['queued']}", "cyan"),
            " · ",
            (f"running {counts['running'] + counts['elsewhere']}", "yellow"),
            " · ",
            (f"done {counts['done']}", "green"),
            " · ",
            (f"failed {counts['failed']}", "red"),
            f" · elapsed {_duration(elapsed)} · ETA {self.eta()}",
        )
        table = Table(expand=False, show_edge=False, pad_edge=False)
        table.add_column("state")
        table.add_column("run", no_wrap=True)
        table.add_column("config")
        table.add_column("time", justify="right")
        now = time.monotonic()
        shown = [p for p in self.runs if p.state in ("running", "elsewhere")][:10]
        for p in shown:
            where = "running" if p.state == "running" else "elsewhere"
            table.add_row(Text(where, "yellow"), p.run.hash, p.run.label, _duration(now - (p.started or now)))
        for p in self.recent:
            style = "green" if p.state == "done" else "red" if p.state == "failed" else "cyan"
            table.add_row(Text(p.state, style), p.run.hash, p.run.label, _duration(p.seconds or 0.0))
        return Group(head, table)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> dict[int, Any]:
    """Ctrl-C and SIGTERM (what SLURM and Kubernetes send before killing a job) stop the sweep, for its duration.

    Installed whatever handled them before (the CLI's, or a library's such as Ray's, which exits on
    SIGTERM) and restored afterwards; returns the previous handlers. A run in training installs its
    own (save a checkpoint, then stop) and restores these.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}


def _last_error(store: Store, digest: str) -> str | None:
    record = store.failure_record(digest)
    return record["attempts"][-1]["error"] if record and record["attempts"] else None


def _duration(seconds: float) -> str:
    from ..progress import duration

    return duration(seconds)
