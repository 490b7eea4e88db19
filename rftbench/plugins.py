"""Plugin discovery, validation and lookup by name.

Plugins are found through the entry-point group ``rftbench`` (the built-ins too). Two
environment variables control loading, as in pytest and datasette:

- ``RFTBENCH_DISABLE_PLUGINS=a,b``: skip these plugins (entry-point names);
- ``RFTBENCH_LOAD_PLUGINS=a,b``: load only these (an allow-list; empty string loads none).
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import logging
import os
import re
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from . import hookspecs
from .cards import CARD_CLASSES, format_validation_error, load_card, load_cards
from .errors import CardError, DuplicateNameError, PluginError, UnknownNameError, close_matches
from .specs import KINDS, SPEC_CLASSES

log = logging.getLogger("rftbench")

ENTRY_POINT_GROUP = "rftbench"
DISABLE_ENV = "RFTBENCH_DISABLE_PLUGINS"
LOAD_ENV = "RFTBENCH_LOAD_PLUGINS"


@dataclass
class PluginInfo:
    """What ``rftbench plugins`` shows for one plugin."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    status: str = "ok"  # ok | disabled | failed
    error: str | None = None
    contributions: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "contributions": {k: v for k, v in self.contributions.items() if v},
        }


def _env_names(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


def natural_key(text: str) -> list[Any]:
    """Sort key that orders ``resnet18`` before ``resnet101`` (as timm's list_models does)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


class PluginManager:
    """Discovers plugins and holds what they contribute, by kind and name."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.problems: list[str] = []
        self._items: dict[str, dict[str, Any]] | None = None
        self._aliases: dict[str, dict[str, str]] = {}
        self._owners: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------------ registration

    def load_entrypoints(
        self,
        group: str = ENTRY_POINT_GROUP,
        *,
        disable: Iterable[str] | None = None,
        only: Iterable[str] | None = None,
    ) -> None:
        """Load every plugin of the entry-point ``group``, honouring allow/deny lists.

        ``disable`` and ``only`` default to ``RFTBENCH_DISABLE_PLUGINS`` and
        ``RFTBENCH_LOAD_PLUGINS``. A plugin that raises on import is reported and skipped.
        """
        disabled = set(disable) if disable is not None else (_env_names(DISABLE_ENV) or set())
        allowed = set(only) if only is not None else _env_names(LOAD_ENV)
        for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            if ep.name in self.plugins:
                continue  # the same distribution seen twice on sys.path
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            info = PluginInfo(ep.name, ep.value, dist, version)
            if ep.name in disabled or (allowed is not None and ep.name not in allowed):
                info.status = "disabled"
                self.plugins[ep.name] = info
                continue
            try:
                module = ep.load()
            except Exception as err:  # noqa: BLE001 - any import failure is the plugin's
                self._fail(info, f"plugin {ep.name!r} ({ep.value}) failed to import: {type(err).__name__}: {err}")
                continue
            self.register(module, ep.name, distribution=dist, version=version, _info=info)

    def register(
        self,
        plugin: object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
        _info: PluginInfo | None = None,
    ) -> None:
        """Register a plugin object (usually a module) directly, e.g. in tests."""
        info = _info or PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), distribution, version)
        hooks = set(hookspecs.HOOK_FOR_KIND.values())
        unknown = sorted(a for a in dir(plugin) if a.startswith("rftbench_") and a not in hooks)
        if unknown:
            hint = close_matches(unknown[0], hooks)
            self._fail(
                info,
                f"plugin {name!r} implements unknown hook {unknown[0]!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else "")
                + f"\n  Hooks: {', '.join(sorted(hooks))}",
            )
            return
        try:
            self.pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as err:
            self._fail(info, f"plugin {name!r} could not be registered:\n  {err}")
            return
        self.plugins[name] = info
        self._items = None

    def _fail(self, info: PluginInfo, message: str) -> None:
        info.status, info.error = "failed", message
        self.plugins[info.name] = info
        self.problems.append(message)
        log.warning("%s", message)

    # ------------------------------------------------------------------ collection

    def _collect(self) -> dict[str, dict[str, Any]]:
        if self._items is not None:
            return self._items
        self._owners = {}
        items: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        aliases: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            hook = getattr(self.pm.hook, hookspecs.HOOK_FOR_KIND[kind])
            for impl in hook.get_hookimpls():  # registration order
                plugin = impl.plugin_name
                try:
                    returned = impl.function()
                except Exception as err:  # noqa: BLE001
                    detail = format_validation_error(err) if isinstance(err, ValidationError) else f"  {type(err).__name__}: {err}"
                    self._report(plugin, f"plugin {plugin!r}: {hook.name}() raised:\n{detail}")
                    continue
                if returned is None:
                    continue
                if not isinstance(returned, (list, tuple)):
                    self._report(plugin, f"plugin {plugin!r}: {hook.name}() must return a list, got {type(returned).__name__}")
                    continue
                for item in self._expand(kind, plugin, hook.name, returned):
                    self._add(items[kind], aliases[kind], kind, item, plugin)
        self._items, self._aliases = items, aliases
        return items

    def _expand(self, kind: str, plugin: str, hook_name: str, returned: Iterable[Any]) -> Iterable[Any]:
        """Turn a hook's list into validated items, reporting the invalid ones."""
        for raw in returned:
            try:
                if kind in CARD_CLASSES:
                    if isinstance(raw, (str, Path)):
                        path = Path(raw)
                        yield from (load_cards(path, kind) if path.is_dir() else [load_card(path, kind)])
                        continue
                    cls = CARD_CLASSES[kind]
                    yield raw if isinstance(raw, cls) else cls.model_validate(raw)
                else:
                    cls = SPEC_CLASSES[kind]
                    spec = raw if isinstance(raw, cls) else cls.model_validate(raw)
                    yield spec.model_copy(update={"plugin": plugin})
            except ValidationError as err:
                label = raw.get("name", raw.get("id", "?")) if isinstance(raw, dict) else "?"
                self._report(plugin, f"plugin {plugin!r}: {hook_name}() returned an invalid {kind} {label!r}:\n{format_validation_error(err)}")
            except CardError as err:
                self._report(plugin, f"plugin {plugin!r}: {err}")

    def _add(self, table: dict[str, Any], aliases: dict[str, str], kind: str, item: Any, plugin: str) -> None:
        name = item.name
        if name in table:
            other = self._owners[(kind, name)]
            raise DuplicateNameError(
                f"Two plugins contribute the {kind.replace('_', ' ')} {name!r}: {other!r} and {plugin!r}.\n"
                f"Rename one, or disable one with {DISABLE_ENV}={plugin}."
            )
        for alias in getattr(item, "aliases", ()):
            aliases[alias] = name
        table[name] = item
        self._owners[(kind, name)] = plugin

    def _report(self, plugin: str, message: str) -> None:
        self.problems.append(message)
        log.warning("%s", message)
        info = self.plugins.get(plugin)
        if info is not None and info.status == "ok":
            info.status = "partial"
            info.error = message

    # ------------------------------------------------------------------ lookup

    def names(self, kind: str, pattern: str | None = None) -> list[str]:
        """Names of one kind, naturally sorted, optionally filtered by a wildcard ``pattern``."""
        self._check_kind(kind)
        names = self._collect()[kind]
        selected = [n for n in names if pattern is None or fnmatch.fnmatchcase(n, pattern)]
        return sorted(selected, key=natural_key)

    def items(self, kind: str) -> list[Any]:
        """Every spec or card of one kind, naturally sorted by name."""
        table = self._collect()[kind]
        return [table[n] for n in self.names(kind)]

    def get(self, kind: str, name: str) -> Any:
        """The spec or card named ``name``; deprecated aliases resolve (with a warning)."""
        self._check_kind(kind)
        table = self._collect()[kind]
        if name in table:
            return table[name]
        target = self._aliases.get(kind, {}).get(name)
        if target is not None:
            log.warning("%s %r is deprecated; use %r", kind.replace("_", " "), name, target)
            return table[target]
        raise UnknownNameError(kind.replace("_", " "), name, table)

    def plugin_of(self, kind: str, name: str) -> str:
        """The plugin that contributed ``name``."""
        return self._owners[(kind, self.get(kind, name).name)]

    def _check_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise UnknownNameError("contribution kind", kind, KINDS)

    def describe(self) -> list[PluginInfo]:
        """Every plugin with what it contributes (collecting first, so problems are known)."""
        items = self._collect()
        for info in self.plugins.values():
            info.contributions = {}
        for kind, table in items.items():
            for name, item in table.items():
                owner = self._owners[(kind, name)]
                if owner in self.plugins:
                    self.plugins[owner].contributions.setdefault(kind, []).append(name)
        for info in self.plugins.values():
            for names in info.contributions.values():
                names.sort(key=natural_key)
        return sorted(self.plugins.values(), key=lambda i: i.name)


_default: PluginManager | None = None


def get_manager() -> PluginManager:
    """The process-wide manager, loading entry points on first use."""
    global _default
    if _default is None:
        manager = PluginManager()
        manager.load_entrypoints()
        _default = manager
    return _default


def set_manager(manager: PluginManager | None) -> None:
    """Replace the process-wide manager (tests use this to control loading)."""
    global _default
    _default = manager


def format_traceback(err: BaseException) -> str:
    return "".join(traceback.format_exception(type(err), err, err.__traceback__))


__all__ = [
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "LOAD_ENV",
    "PluginError",
    "PluginInfo",
    "PluginManager",
    "get_manager",
    "natural_key",
    "set_manager",
]
