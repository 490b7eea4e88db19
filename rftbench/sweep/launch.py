"""One rank of a multi-process run: ``python -m torch.distributed.run … -m rftbench.sweep.launch TASK``.

Started by :func:`rftbench.sweep.worker.execute` for runs with ``nproc > 1``; every rank calls the
run function, and rank 0 writes the result record (the parent worker holds the run's claim).
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

from ..results import ResultRecord
from .store import Store
from .worker import resolve_run_function


def main(argv: list[str]) -> None:
    task = pickle.loads(Path(argv[0]).read_bytes())
    returned = resolve_run_function(task.run)(task.config)
    if int(os.environ.get("RANK", "0")) == 0 and returned is not None:
        record = returned if isinstance(returned, ResultRecord) else ResultRecord.model_validate(returned)
        Store(task.root, claim_timeout=task.claim_timeout).write_result(record)


if __name__ == "__main__":
    main(sys.argv[1:])
