"""The results directory of a sweep: what makes sweeps resumable, and safe with many workers at once.

Layout (on any filesystem all workers see, e.g. a cluster's shared disk)::

    RESULTS_DIR/<hash>.json            the result record of the run whose config hashes to <hash>
    RESULTS_DIR/claims/<hash>.claim    a worker is running it (JSON: token, host, pid, time)
    RESULTS_DIR/failures/<hash>.json   every failed attempt, with its traceback

- A run whose record exists is done and skipped.
- A worker claims a run by creating its claim file with ``O_CREAT | O_EXCL``, which exactly one
  worker can win. While it runs, a heartbeat thread touches the file; a claim whose heartbeat is
  older than ``claim_timeout`` (or whose process is gone, on the same host) is *stale*, and another
  worker may take it over. Take-overs are serialised by a second exclusive file, so a fresh claim
  is never mistaken for a stale one.
- A run that raises gets a failure record (appended, never overwritten); it is tried again until
  it has failed ``max_attempts`` times, and the other runs go on.

No database server and no lock daemon: only atomic ``open(O_EXCL)``, ``rename`` and ``replace``.
"""

from __future__ import annotations

import json
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

from ..results import ResultRecord, atomic_write_text, read_record, write_record
from .errors import SweepError

HOST = socket.gethostname()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Claim:
    """A worker's exclusive hold on one run; a context manager that heartbeats while held."""

    def __init__(self, path: Path, token: str, heartbeat_every: float):
        self.path, self.token, self._every = path, token, heartbeat_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def heartbeat(self) -> None:
        """Mark the claim alive now (touch its file)."""
        try:
            os.utime(self.path)
        except FileNotFoundError:
            pass

    def still_mine(self) -> bool:
        """Whether the claim file is still this claim (it is not if it went stale and was taken over)."""
        try:
            return json.loads(self.path.read_text()).get("token") == self.token
        except (FileNotFoundError, json.JSONDecodeError):
            return False

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
        """Whether a complete result record exists for this config hash."""
        path = self.result_path(digest)
        if not path.is_file():
            return False
        try:
            return read_record(path).status == "complete"
        except Exception:  # noqa: BLE001 - an unreadable record is not a result
            return False

    def done(self) -> set[str]:
        """Hashes of every complete record in the directory."""
        return {p.stem for p in self.root.glob("*.json") if self.is_done(p.stem)}

    def write_result(self, record: ResultRecord) -> Path:
        """Write a record atomically under its id (the config hash)."""
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
        except (json.JSONDecodeError, OSError):
            data, stat = {}, path.stat()  # being written right now: treat as live
        return ClaimInfo(data.get("host", "?"), int(data.get("pid", -1)), data.get("token", ""), data.get("started", ""), time.time() - stat.st_mtime)

    def is_stale(self, info: ClaimInfo) -> bool:
        """Stale: no heartbeat for ``claim_timeout`` seconds, or its process is gone (same host)."""
        if info.age > self.claim_timeout:
            return True
        return info.host == HOST and info.pid > 0 and not _pid_alive(info.pid)

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
        try:
            return json.loads(self.failure_path(digest).read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as err:
            raise SweepError(f"{self.failure_path(digest)}: broken failure record ({err}); delete it to retry the run") from None

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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True
