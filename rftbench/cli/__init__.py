"""The ``rftbench`` command. Each command group lives in its own module and attaches to ``app``."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import typer
from rich.logging import RichHandler
from rich.text import Text

from ._app import app, err_console
from ._errors import report as report_error, shorten  # not `report`: that name is the `rftbench report` command module

try:  # recent typer vendors click; older ones use the click package
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - depends on the typer version
    from click import exceptions as _click_errors

# Importing a command module registers its commands on `app`.
from . import plugins as _plugins  # noqa: E402,F401
from . import zoo as _zoo  # noqa: E402,F401
from . import config as _config  # noqa: E402,F401
from . import sweep as _sweep  # noqa: E402,F401
from . import leaderboard as _leaderboard  # noqa: E402,F401
from . import eval as _eval  # noqa: E402,F401
from . import run as _run  # noqa: E402,F401
from . import doctor as _doctor  # noqa: E402,F401
from . import compare as _compare  # noqa: E402,F401
from . import report as _report  # noqa: E402,F401


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rftbench`` console script (``argv`` for tests)."""
    logger = logging.getLogger("rftbench")
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        logger.addHandler(RichHandler(console=err_console, show_time=False, show_path=False, markup=False))
        logger.propagate = False
    previous = _stop_on_sigterm()
    try:
        status = app(args=argv, prog_name="rftbench", standalone_mode=False)
    except SystemExit:
        raise
    except _click_errors.ClickException as err:  # bad usage: click's message, printed as plain text
        status = _usage_error(err)
    except typer.Abort:
        status = report_error(KeyboardInterrupt(), err_console)
    except BaseException as err:  # noqa: BLE001 - the one error path: a message and an exit status
        status = report_error(err, err_console)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    sys.exit(status if isinstance(status, int) else 0)


def _usage_error(err: Exception) -> int:
    ctx = getattr(err, "ctx", None)
    if isinstance(err, getattr(_click_errors, "NoArgsIsHelpError", ())):
        err.show()
        return err.exit_code
    if ctx is not None:
        err_console.print(ctx.get_usage(), soft_wrap=True)
        err_console.print(f"Try '{ctx.command_path} -h' for help.", soft_wrap=True)
    err_console.print(Text.assemble(("error:", "bold red"), " ", shorten(err.format_message())), soft_wrap=True)
    return err.exit_code


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> object | None:
    """SIGTERM (what SLURM, Kubernetes and ``kill`` send) stops a command like Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signal.SIGTERM, _sigterm)
    except ValueError:
        return None


__all__ = ["app", "main"]
