"""The ``rftbench`` command. Each command group lives in its own module and attaches to ``app``."""

from __future__ import annotations

import logging
import sys

from rich.logging import RichHandler

from ._app import app, err_console
from ..errors import RftbenchError

# Importing a command module registers its commands on `app`.
from . import plugins as _plugins  # noqa: E402,F401
from . import zoo as _zoo  # noqa: E402,F401
from . import config as _config  # noqa: E402,F401
from . import sweep as _sweep  # noqa: E402,F401
from . import leaderboard as _leaderboard  # noqa: E402,F401
from . import eval as _eval  # noqa: E402,F401
from . import run as _run  # noqa: E402,F401
from . import report as _report  # noqa: E402,F401


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rftbench`` console script (``argv`` for tests)."""
    logger = logging.getLogger("rftbench")
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        logger.addHandler(RichHandler(console=err_console, show_time=False, show_path=False, markup=False))
        logger.propagate = False
    try:
        app(args=argv, prog_name="rftbench")
    except RftbenchError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(2)


__all__ = ["app", "main"]
