"""Progress a person can read on a terminal and in a log file.

On a terminal, training shows Rich's live bar with durations that read one way only
(``45.2s``, ``16m05s``, ``1h02m``: never ``0:16`` for sixteen minutes). Off a terminal (a log
file, ``nohup``, SLURM, CI, a pipe) a live bar prints nothing until it stops, so
:func:`make_progress` gives a :class:`LineProgress` instead: one plain line when an epoch ends
and at least every ``RFTBENCH_PROGRESS_SECONDS`` (default 30) seconds during it, with
step/total, images/s, elapsed time and ETA. :class:`Ticker` does the same for an evaluation's
threat models, batch by batch.
"""

from __future__ import annotations

import os
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

__all__ = ["DurationColumn", "LineProgress", "Ticker", "duration", "interval", "make_progress"]

#: Seconds between two progress lines off a terminal unless ``RFTBENCH_PROGRESS_SECONDS`` says otherwise.
DEFAULT_INTERVAL = 30.0


def duration(seconds: float | None) -> str:
    """``45.2s``, ``16m05s``, ``1h02m``: a duration with its unit, unambiguous at a glance (``-`` when unknown)."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def interval() -> float:
    """Seconds between progress lines: ``RFTBENCH_PROGRESS_SECONDS`` (a number ≥ 0) or 30."""
    raw = os.environ.get("RFTBENCH_PROGRESS_SECONDS")
    if raw is None or not raw.strip():
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        from .errors import ConfigError

        raise ConfigError(f"RFTBENCH_PROGRESS_SECONDS={raw!r}: give a number of seconds (e.g. 30), or unset it") from None
    if not value >= 0:
        from .errors import ConfigError

        raise ConfigError(f"RFTBENCH_PROGRESS_SECONDS={raw!r}: must be 0 or more seconds")
    return value


class DurationColumn(ProgressColumn):
    """A live bar's elapsed time (``which="elapsed"``) or time left (``"remaining"``, shown ``ETA 2m30s``)."""

    def __init__(self, which: str = "elapsed"):
        super().__init__()
        self.which = which

    def render(self, task: Task) -> Text:
        if self.which == "elapsed":
            return Text(duration(task.finished_time if task.finished else task.elapsed), style="progress.elapsed")
        left = task.time_remaining  # Rich's, from the recent speed; before it has one, from the average so far
        if left is None and task.total is not None and task.completed and task.elapsed:
            left = (task.total - task.completed) * task.elapsed / task.completed
        return Text(f"ETA {duration(left)}", style="progress.remaining")


class LineProgress:
    """The part of :class:`rich.progress.Progress` the trainer uses, printing plain lines.

    A line when a task completes and, in between, when ``every`` seconds have passed since the
    last one: ``epoch 2/5: step 37/120 (31%) · 410 img/s · elapsed 1m05s · ETA 2m30s · <stats>``.
    ``images_per_step`` turns steps into images for the rate.
    """

    def __init__(self, console: Console, *, images_per_step: int | None = None, every: float | None = None):
        self.console, self.images_per_step = console, images_per_step
        self.every = interval() if every is None else every
        self._tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields: Any) -> int:
        task_id = len(self._tasks)
        now = time.monotonic()
        self._tasks[task_id] = {"description": description, "total": total, "completed": completed, "start": completed,
                                "started": now, "last": now, "fields": dict(fields)}
        return task_id

    def update(self, task_id: int, *, completed: float | None = None, advance: float | None = None, **fields: Any) -> None:
        task = self._tasks[task_id]
        if completed is not None:
            task["completed"] = completed
        if advance is not None:
            task["completed"] += advance
        task["fields"].update(fields)
        now = time.monotonic()
        finished = task["total"] is not None and task["completed"] >= task["total"]
        if finished or now - task["last"] >= self.every:
            task["last"] = now
            self.console.print(self.line(task_id, now), markup=False, highlight=False, soft_wrap=True)

    def line(self, task_id: int, now: float | None = None) -> str:
        """The progress line of a task as it stands."""
        task = self._tasks[task_id]
        now = time.monotonic() if now is None else now
        elapsed = now - task["started"]
        done, total = task["completed"], task["total"]
        steps = done - task["start"]  # this session's steps (a resumed epoch starts part-way)
        parts = [f"{task['description']}: step {done:g}/{total:g}" + (f" ({100 * done / total:.0f}%)" if total else "")]
        if self.images_per_step and elapsed > 0:
            parts.append(f"{steps * self.images_per_step / elapsed:.0f} img/s")
        parts.append(f"elapsed {duration(elapsed)}")
        if total is not None:
            parts.append("done" if done >= total else f"ETA {duration((total - done) * elapsed / steps) if steps > 0 else '-'}")
        stats = task["fields"].get("stats")
        if stats:
            parts.append(" ".join(str(stats).split()))
        return " · ".join(parts)


def make_progress(console: Console | None, *, enabled: bool = True, images_per_step: int | None = None) -> Progress | LineProgress:
    """A live Rich bar on a terminal, plain :class:`LineProgress` lines otherwise (nothing when not ``enabled``)."""
    from rich import get_console

    console = console or get_console()
    if enabled and not console.is_terminal:
        return LineProgress(console, images_per_step=images_per_step)
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), DurationColumn("elapsed"),
        DurationColumn("remaining"), TextColumn("{task.fields[stats]}"),
        console=console, disable=not enabled, transient=False,
    )


class Ticker:
    """Progress lines for one piece of work of known size (an evaluation's threat model).

    ``tick(done)`` prints ``eval linf:4/255: 640/1000 images (64%) · 52 img/s · elapsed 12.3s ·
    ETA 6.9s`` when ``every`` seconds have passed since the last line; ``begin()`` prints a first
    line, ``finish()`` the last one. Nothing when not ``enabled``.
    """

    def __init__(self, label: str, total: int, *, enabled: bool = True, console: Console | None = None,
                 unit: str = "images", every: float | None = None):
        self.label, self.total, self.enabled, self.unit = label, total, enabled, unit
        self.console = console or Console(stderr=True, highlight=False, markup=False, emoji=False)
        self.every = interval() if every is None and enabled else (every or 0.0)
        self.started = self.last = time.monotonic()
        self.done = 0

    def tick(self, done: int) -> None:
        self.done = done
        if self.enabled:
            now = time.monotonic()
            if now - self.last >= self.every and done < self.total:
                self.last = now
                self._print(now)

    def begin(self) -> None:
        """A first line, for work that reports nothing until it ends (an attack taking the whole set)."""
        if self.enabled:
            self.console.print(f"eval {self.label}: {self.total} {self.unit}…", markup=False, highlight=False, soft_wrap=True)

    def finish(self) -> None:
        if self.enabled:
            self.done = self.total
            self._print(time.monotonic())

    def _print(self, now: float) -> None:
        elapsed = now - self.started
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        parts = [f"eval {self.label}: {self.done}/{self.total} {self.unit}{pct}"]
        if elapsed > 0:
            parts.append(f"{self.done / elapsed:.0f} img/s")
        parts.append(f"elapsed {duration(elapsed)}")
        parts.append("done" if self.done >= self.total else f"ETA {duration((self.total - self.done) * elapsed / self.done) if self.done else '-'}")
        self.console.print(" · ".join(parts), markup=False, highlight=False, soft_wrap=True)
