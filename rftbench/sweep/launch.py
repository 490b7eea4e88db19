"""One rank of a multi-process run: ``python -m torch.distributed.run … -m rftbench.sweep.launch TASK.json MODULE:FUNCTION``.

Started by :func:`rftbench.sweep.worker.execute` for runs with ``nproc > 1``; every rank calls the
run function, and rank 0 writes the result record while the parent worker still owns the run's
claim (the claim token travels in the task file). The task file is JSON, validated before use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..results import ResultRecord
from .store import Claim, Store
from .worker import resolve_run_function, task_from_json


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -m rftbench.sweep.launch TASK.json MODULE:FUNCTION")
    task, token = task_from_json(Path(argv[0]).read_bytes(), argv[1])
    store = Store(task.root, claim_timeout=task.claim_timeout)
    claim = Claim(store.claim_path(task.hash), token, heartbeat_every=60.0)  # the parent heartbeats
    from ..results import guard_record_writes

    with guard_record_writes(lambda path: claim.check()):
        returned = resolve_run_function(task.run)(task.config)
        if int(os.environ.get("RANK", "0")) == 0 and returned is not None:
            record = returned if isinstance(returned, ResultRecord) else ResultRecord.model_validate(returned)
            store.write_result(record, claim)


if __name__ == "__main__":
    main(sys.argv[1:])
