"""The results directory of a sweep: what makes sweeps resumable, and safe with many workers at once.

Layout (on any filesystem all workers see, e.g. a cluster's shared disk)::

    RESULTS_DIR/<hash>.json            the result record of the run whose config hashes to <hash>
    RESULTS_DIR/claims/<hash>.claim    a worker is running it (JSON: token, host, pid, time)
    RESULTS_DIR/failures/<hash>.json   every failed attempt, with its traceback

- A run whose record exists is done and skipped.
- A worker claims a run by creating its claim file with ``O_CREAT | O_EXCL``, which exactly one
  worker can win. While it runs, a heartbeat thread touches the file; a claim whose heartbeat is
  older than ``claim_timeout`` is *stale*, and another worker may take it over. Only the heartbeat's
  age counts, never whether a PID looks alive: PIDs mean nothing across containers or hosts.
  Take-overs are serialised by a second exclusive file, so a fresh claim is never mistaken for a
  stale one.
- Only the claim's owner writes the run's record: ownership (the token in the claim file) is
  checked again just before the write, so a worker that was paused past ``claim_timeout`` and
  resumes does not record the run a second time.
- A record or failure record that cannot be read is moved aside to ``corrupt/`` with a warning,
  and the run is treated as not done (it runs again).
- A run that raises gets a failure record (appended, never overwritten); it is tried again until
  it has failed ``max_attempts`` times, and the other runs go on.

No database server and no lock daemon: only atomic ``open(O_EXCL)``, ``rename`` and ``replace``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import RftbenchError
from ..results import ResultRecord, atomic_write_text, read_record, write_record
from .errors import SweepError

HOST = socket.gethostname()
log = logging.getLogger("rftbench")


class ClaimLost(RftbenchError):
    """This worker's claim went stale and another worker took the run over: it must not write the record."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Claim:
    """A worker's exclusive hold on one run; a context manager that heartbeats while held."""

    def __init__(self, path: Path, token: str, heartbeat_every: float):
        self.path, self.token, self._every = path, token, heartbeat_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def heartbeat(self) -> None:
        """Mark the claim alive now (touch its file), only while the file is still this claim."""
        if not self.still_mine():
            return
        try:
            os.utime(self.path)
        except FileNotFoundError:
            pass

    def check(self, path: Path | None = None) -> None:
        """Raise :class:`ClaimLost` unless this worker still owns the claim (called before writing a record)."""
        if not self.still_mine():
            raise ClaimLost(
                f"{self.path}: the claim on this run went stale (no heartbeat for the claim timeout) and another "
                "worker took it over; this worker's result is not written"
            )

    def still_mine(self) -> bool:
        """Whether the claim file is still this claim (it is not if it went stale and was taken over)."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and data.get("token") == self.token

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file, if it is still this claim."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.still_mine():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Claim:
        def beat() -> None:
            while not self._stop.wait(self._every):
                self.heartbeat()

        self._thread = threading.Thread(target=beat, name=f"claim-heartbeat-{self.path.stem}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


@dataclass(frozen=True)
class ClaimInfo:
    """Who holds a claim, and how long ago it last showed a sign of life."""

    host: str
    pid: int
    token: str
    started: str
    age: float


class Store:
    """A sweep's results directory: records by config hash, claims, failure records."""

    def __init__(self, root: str | Path, *, claim_timeout: float = 3600.0):
        self.root = Path(root)
        self.claim_timeout = float(claim_timeout)
        self.claims = self.root / "claims"
        self.failures = self.root / "failures"

    # ------------------------------------------------------------------ set-up

    def check_writable(self) -> None:
        """Create the directories and prove a file can be written there; else a :class:`SweepError`."""
        try:
            for folder in (self.root, self.claims, self.failures):
                folder.mkdir(parents=True, exist_ok=True)
            probe = self.claims / f".probe-{uuid.uuid4().hex}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise SweepError(
                f"results directory {str(self.root)!r} is not writable ({err.strerror or err}).\n"
                "Choose another with `results_dir:` in the sweep file or `--results-dir`, or fix its permissions."
            ) from None

    # ------------------------------------------------------------------ results

    def result_path(self, digest: str) -> Path:
        return self.root / f"{digest}.json"

    def is_done(self, digest: str) -> bool:
        """Whether a complete result record exists for this config hash (an unreadable one is not)."""
        return self.record_state(digest) == "done"

    def record_state(self, digest: str) -> str:
        """``done``, ``missing``, ``failed`` (a record with another status) or ``unreadable``."""
        path = self.result_path(digest)
        if not path.is_file():
            return "missing"
        try:
            return "done" if read_record(path).status in ("complete", "stopped") else "failed"  # stopped: ended by a warning, on purpose
        except RftbenchError:
            return "unreadable"

    def quarantine(self, path: Path, why: str) -> Path | None:
        """Move an unreadable file aside to ``corrupt/`` (kept for inspection, never deleted); warn."""
        folder = self.root / "corrupt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{path.name}.{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            os.replace(path, target)
        except FileNotFoundError:
            return None  # another worker moved it first
        log.warning("%s: %s; moved to %s and the run will be done again", path, why, target)
        return target

    def done(self) -> set[str]:
        """Hashes of every complete record in the directory."""
        return {p.stem for p in self.root.glob("*.json") if self.is_done(p.stem)}

    def write_result(self, record: ResultRecord, claim: Claim | None = None) -> Path:
        """Write a record atomically under its id (the config hash); with ``claim``, only while it is still owned."""
        if claim is not None:
            claim.check()
        return write_record(record, self.result_path(record.id))

    # ------------------------------------------------------------------ claims

    def claim_path(self, digest: str) -> Path:
        return self.claims / f"{digest}.claim"

    def claim(self, digest: str) -> Claim | None:
        """Claim a run for this process, or ``None`` if a live worker holds it.

        A stale claim is taken over (see the module docstring).
        """
        path = self.claim_path(digest)
        for _ in range(2):
            token = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex}"
            if _create_exclusive(path, {"token": token, "host": HOST, "pid": os.getpid(), "started": _now()}):
                return Claim(path, token, heartbeat_every=max(0.05, min(60.0, self.claim_timeout / 4)))
            if not self._take_over_if_stale(digest):
                return None
        return None

    def claim_info(self, digest: str) -> ClaimInfo | None:
        """The current holder of a run's claim, or ``None`` if unclaimed."""
        path = self.claim_path(digest)
        try:
            stat = path.stat()
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            try:
                data, stat = {}, path.stat()  # being written right now: judged by its age alone
            except FileNotFoundError:
                return None
        if not isinstance(data, dict):
            data = {}
        pid = data.get("pid")
        return ClaimInfo(str(data.get("host", "?")), pid if isinstance(pid, int) and not isinstance(pid, bool) else -1,
                         str(data.get("token", "")), str(data.get("started", "")), time.time() - stat.st_mtime)

    def is_stale(self, info: ClaimInfo) -> bool:
        """Stale: no heartbeat for ``claim_timeout`` seconds (the holder's PID is never consulted)."""
        return info.age > self.claim_timeout

    def _take_over_if_stale(self, digest: str) -> bool:
        """Remove a stale claim under the take-over lock; ``True`` if the run may be claimed again."""
        info = self.claim_info(digest)
        if info is None:
            return True
        if not self.is_stale(info):
            return False
        lock = self.claims / f"{digest}.takeover"
        if not _create_exclusive(lock, {"host": HOST, "pid": os.getpid(), "started": _now()}):
            try:  # a take-over that died half-way leaves its lock: clear it once it is old
                if time.time() - lock.stat().st_mtime > min(self.claim_timeout, 60.0):
                    lock.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            return False
        try:
            again = self.claim_info(digest)  # re-check under the lock: it may have been renewed
            if again is None:
                return True
            if again.token != info.token or not self.is_stale(again):
                return False
            tomb = self.claims / f".{digest}.stale-{uuid.uuid4().hex}"
            try:
                os.rename(self.claim_path(digest), tomb)
                tomb.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            return True
        finally:
            lock.unlink(missing_ok=True)

    def running(self) -> dict[str, ClaimInfo]:
        """Live claims by hash (what other workers are running now)."""
        out = {}
        for path in self.claims.glob("*.claim"):
            info = self.claim_info(path.stem)
            if info is not None and not self.is_stale(info):
                out[path.stem] = info
        return out

    # ------------------------------------------------------------------ failures

    def failure_path(self, digest: str) -> Path:
        return self.failures / f"{digest}.json"

    def failure_record(self, digest: str) -> dict[str, Any] | None:
        """The failure record of a run (``id``, ``config``, ``attempts``), or ``None``."""
        path = self.failure_path(digest)
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            self.quarantine(path, f"unreadable failure record ({err})")
            return None
        if not (isinstance(data, dict) and isinstance(data.get("attempts"), list)
                and all(isinstance(a, dict) for a in data["attempts"])):
            self.quarantine(path, "not a failure record (needs a list of attempts)")
            return None
        return data

    def attempts(self, digest: str) -> int:
        """How many attempts of this run failed so far."""
        record = self.failure_record(digest)
        return len(record["attempts"]) if record else 0

    def record_failure(self, digest: str, config: dict[str, Any], error: BaseException | str, *, seconds: float | None = None) -> int:
        """Append a failed attempt (message and traceback) to the run's failure record; returns the count.

        Only the claim holder calls this, so the read-modify-write needs no further lock.
        """
        if isinstance(error, BaseException):
            message = f"{type(error).__name__}: {error}"
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        else:
            message, text = error.strip().splitlines()[-1] if error.strip() else "failed", error
        record = self.failure_record(digest) or {"id": digest, "config": config, "attempts": []}
        record["attempts"].append(
            {"time": _now(), "host": HOST, "pid": os.getpid(), "seconds": seconds, "error": message, "traceback": text}
        )
        atomic_write_text(self.failure_path(digest), json.dumps(record, indent=2, default=str))
        return len(record["attempts"])

    def clear_failures(self, digest: str) -> None:
        """Forget a run's failed attempts, so that it gets the full number of attempts again."""
        self.failure_path(digest).unlink(missing_ok=True)


def _create_exclusive(path: Path, content: dict[str, Any]) -> bool:
    """Create ``path`` only if it does not exist (atomic, also on NFSv3+); ``True`` if this call created it."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(content))
    return True
