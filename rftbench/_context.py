"""The active plugin manager and blaming a contribution's code: below :mod:`rftbench.specs` and :mod:`rftbench.plugins`.

Specs validate and build with their manager active (:func:`using`) and re-raise what a factory
raises as a :class:`~rftbench.errors.PluginRuntimeError` naming it (:func:`blame`); both are
re-exported by :mod:`rftbench.plugins`, which adds :func:`~rftbench.plugins.current_manager`.
Keeping them here lets ``specs`` import them at the top, without an import cycle through ``plugins``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from .errors import PluginRuntimeError, RftbenchError

#: The manager whose contribution is being validated or built (see ``rftbench.plugins.current_manager``).
_ACTIVE: contextvars.ContextVar[Any] = contextvars.ContextVar("rftbench_manager", default=None)


@contextlib.contextmanager
def using(manager: Any) -> Iterator[None]:
    """Make ``manager`` the one :func:`rftbench.plugins.current_manager` returns inside the block (no-op for ``None``)."""
    if manager is None:
        yield
        return
    token = _ACTIVE.set(manager)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


@contextlib.contextmanager
def blame(spec: Any, what: str) -> Iterator[None]:
    """Re-raise an unexpected exception from a contribution's code as a :class:`PluginRuntimeError` naming it.

    ``spec`` is a spec (with ``kind``, ``name``, ``plugin``, ``distribution``, ``version``);
    ``what`` says what was called (``"factory"``, ``"perturb()"``…). Errors that are already
    rftbench's own (a :class:`~rftbench.errors.RftbenchError`, e.g. a plugin's ConfigError)
    pass through unchanged, as do interrupts.
    """
    try:
        yield
    except RftbenchError:
        raise
    except Exception as err:  # noqa: BLE001
        plugin = getattr(spec, "plugin", None)
        dist = " ".join(p for p in (getattr(spec, "distribution", None), getattr(spec, "version", None)) if p)
        kind = getattr(spec, "kind", "") or "contribution"
        raise PluginRuntimeError(
            f"{kind.replace('_', ' ')} {getattr(spec, 'name', '?')!r} of plugin {plugin!r}"
            + (f" (distribution {dist})" if dist else "")
            + f" raised in its {what}: {type(err).__name__}: {err}",
            plugin=plugin, distribution=getattr(spec, "distribution", None),
        ) from err


__all__ = ["blame", "using"]
