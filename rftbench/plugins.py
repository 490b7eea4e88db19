"""Plugin discovery, validation and lookup by name.

Plugins are found through the entry-point group ``rftbench`` (the built-ins too). Two
environment variables control loading, as in pytest and datasette:

- ``RFTBENCH_DISABLE_PLUGINS=a,b``: skip these plugins (entry-point names);
- ``RFTBENCH_LOAD_PLUGINS=a,b``: load only these (an allow-list; empty string loads none).
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.metadata
import json
import logging
import os
import re
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
from pydantic import ValidationError

from . import hookspecs
from .cards import CARD_CLASSES, format_validation_error, load_card, load_cards
from .errors import (
    CardError,
    DuplicateNameError,
    PluginError,
    PluginRuntimeError,
    RftbenchError,
    UnknownNameError,
    close_matches,
)
from ._context import _ACTIVE, blame, using  # noqa: F401 - public here too (rftbench.plugins.using/blame)
from .specs import KINDS, SPEC_CLASSES, Spec

log = logging.getLogger("rftbench")

ENTRY_POINT_GROUP = "rftbench"
DISABLE_ENV = "RFTBENCH_DISABLE_PLUGINS"
LOAD_ENV = "RFTBENCH_LOAD_PLUGINS"
#: Plugin modules to load without packaging them (comma-separated ``module.path`` or ``module.path:object``),
#: as pytest's ``-p``; the CLI's ``--plugin/-p`` adds to it.
PLUGINS_ENV = "RFTBENCH_PLUGINS"
#: Modules named with ``rftbench --plugin`` for this process (read with ``RFTBENCH_PLUGINS`` by :func:`get_manager`).
CLI_MODULES: list[str] = []
#: The distribution that ships the built-in plugins: its entry points keep their bare names.
BUILTIN_DISTRIBUTION = "rftbench"


class Problem(str):
    """One thing wrong with the installed plugins: a message (it *is* the string) plus who it concerns.

    ``plugin`` is the plugin's name as ``rftbench plugins`` lists it, ``distribution`` and
    ``version`` where it came from, ``kind``/``name`` the contribution when there is one.
    """

    plugin: str | None
    distribution: str | None
    version: str | None
    kind: str | None
    name: str | None

    def __new__(cls, message: str, *, plugin: str | None = None, distribution: str | None = None,
                version: str | None = None, kind: str | None = None, name: str | None = None) -> Problem:
        self = super().__new__(cls, message)
        self.plugin, self.distribution, self.version, self.kind, self.name = plugin, distribution, version, kind, name
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "distribution": self.distribution, "version": self.version,
                "kind": self.kind, "name": self.name, "message": str(self)}


@dataclass
class PluginInfo:
    """What ``rftbench plugins`` shows for one plugin.

    ``name`` is the entry-point name, qualified as ``distribution:entry_point`` when another
    distribution declares an entry point of the same name (the built-ins keep bare names).
    """

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    status: str = "ok"  # ok | partial (some contributions refused) | conflict | disabled | failed
    error: str | None = None
    contributions: dict[str, list[str]] = field(default_factory=dict)
    entry_point: str | None = None

    def label(self) -> str:
        """``'name' (distribution 1.0)`` for messages."""
        where = " ".join(p for p in (self.distribution, self.version) if p)
        return f"{self.name!r}" + (f" (distribution {where})" if where else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entry_point": self.entry_point or self.name,
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


_HOOKS = frozenset(hookspecs.HOOK_FOR_KIND.values())


class PluginManager:
    """Discovers plugins and holds what they contribute, by kind and name.

    Nothing is lost silently: a plugin that fails to import, implements no hook, misspells
    one, raises in a hook or returns an invalid spec is listed with status ``failed`` or
    ``partial`` and a :class:`Problem` naming it and the fix; two contributions of one kind
    and name are a ``conflict``: both plugins stay listed, and :meth:`get` of that name raises
    :class:`~rftbench.errors.DuplicateNameError` naming both, while everything else works.
    """

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.problems: list[Problem] = []
        self._collect_problems: list[Problem] = []
        self._items: dict[str, dict[str, Any]] | None = None
        self._aliases: dict[str, dict[str, str]] = {}
        self._owners: dict[tuple[str, str], str] = {}
        self._conflicts: dict[tuple[str, str], list[str]] = {}
        self._qualified: dict[str, dict[str, tuple[Any, str]]] = {}
        self._modules: dict[str, str] = {}  # module name -> plugin, for attributing run-time errors
        # What each spec's factory built (id -> (weak reference, spec)) and the code of built functions
        # (code -> specs): a run-time error is blamed on the contribution whose object was running.
        self._built: dict[int, tuple[Any, Any]] = {}
        self._built_code: dict[Any, list[Any]] = {}

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
        ``RFTBENCH_LOAD_PLUGINS``; they match a plugin's listed name, its entry-point name or
        ``distribution:entry_point``. A plugin that raises on import is reported and skipped.
        Plugins are keyed by distribution *and* entry-point name: two distributions may both
        name an entry point ``losses``; the built-in keeps the bare name, the other is listed
        as ``distribution:losses``.
        """
        disabled = set(disable) if disable is not None else (_env_names(DISABLE_ENV) or set())
        allowed = set(only) if only is not None else _env_names(LOAD_ENV)
        found: dict[tuple[str | None, str], importlib.metadata.EntryPoint] = {}
        for ep in importlib.metadata.entry_points(group=group):
            dist = ep.dist.name if ep.dist else None
            found.setdefault((_canonical(dist), ep.name), ep)  # the same distribution twice on sys.path: the first wins, as for imports
        dists_of: dict[str, set[str | None]] = {}
        for dist, name in found:
            dists_of.setdefault(name, set()).add(dist)
        builtin = _canonical(BUILTIN_DISTRIBUTION)
        order = sorted(found.items(), key=lambda kv: (kv[0][0] != builtin, kv[0][1], kv[0][0] or ""))
        for (key_dist, ep_name), ep in order:
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            clash = len(dists_of[ep_name]) > 1
            name = ep_name if not clash or key_dist == builtin else f"{dist}:{ep_name}"
            info = PluginInfo(name, ep.value, dist, version, entry_point=ep_name)
            keys = {name, ep_name, f"{dist}:{ep_name}"}
            if keys & disabled or (allowed is not None and not keys & allowed):
                info.status = "disabled"
                self.plugins[name] = info
                continue
            try:
                module = ep.load()
            except Exception as err:  # noqa: BLE001 - any import failure is the plugin's
                self._fail(info, _import_failure(info, ep.value, err))
                continue
            self.register(module, name, distribution=dist, version=version, _info=info)

    def load_modules(self, modules: Iterable[str], *, disable: Iterable[str] | None = None) -> None:
        """Load plugins from importable modules, without packaging them (``RFTBENCH_PLUGINS``, ``--plugin``).

        Each item is ``module.path`` (the module is the plugin) or ``module.path:object``; it is
        listed under that text (distribution ``-``), loaded after the entry points. A name
        already taken, a module that does not import or one without hooks is a reported problem.
        """
        disabled = set(disable) if disable is not None else (_env_names(DISABLE_ENV) or set())
        for item in modules:
            target = item.strip()
            if not target or target in self.plugins:
                continue
            info = PluginInfo(target, target, None, None, entry_point=None)
            if target in disabled:
                info.status = "disabled"
                self.plugins[target] = info
                continue
            module_name, _, attr = target.partition(":")
            try:
                plugin: Any = importlib.import_module(module_name)
                for part in filter(None, attr.split(".")):
                    plugin = getattr(plugin, part)
            except Exception as err:  # noqa: BLE001 - any import failure is the plugin's
                self._fail(info, _import_failure(info, target, err))
                continue
            self.register(plugin, target, _info=info)

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
        info = _info or PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), distribution, version, entry_point=name)
        if name in self.plugins and self.plugins[name].status != "disabled":
            self._fail(PluginInfo(name, info.module, distribution, version, entry_point=name),
                       f"plugin {name!r}: a plugin of that name is already registered ({self.plugins[name].module}); "
                       "register it under another name", keep=True)
            return
        unknown = sorted(a for a in dir(plugin) if a.startswith("rftbench_") and a not in _HOOKS)
        if unknown:
            hint = close_matches(unknown[0], _HOOKS)
            self._fail(
                info,
                f"plugin {info.label()} implements unknown hook {unknown[0]!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else "")
                + f"\n  Hooks: {', '.join(sorted(_HOOKS))}",
            )
            return
        try:
            self.pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as err:
            self._fail(info, f"plugin {info.label()} could not be registered:\n  {err}")
            return
        if not self.pm.get_hookcallers(plugin):
            self.pm.unregister(plugin)
            unmarked = sorted(a for a in dir(plugin) if a in _HOOKS)
            if unmarked:
                fix = f"it defines {', '.join(unmarked)} without @rftbench.hookimpl: decorate each hook function with it"
            else:
                fix = f"the entry point {info.module!r} may name the wrong module; hooks: {', '.join(sorted(_HOOKS))}"
            self._fail(info, f"plugin {info.label()} implements no rftbench hook: {fix}")
            return
        self.plugins[name] = info
        module = getattr(plugin, "__name__", None)
        if isinstance(module, str):
            self._modules[module] = name
        self._items = None

    def _fail(self, info: PluginInfo, message: str, *, keep: bool = False) -> None:
        info.status, info.error = "failed", message
        if not keep:
            self.plugins[info.name] = info
        self.problems.append(Problem(message, plugin=info.name, distribution=info.distribution, version=info.version))
        log.warning("%s", message)

    # ------------------------------------------------------------------ collection

    def _collect(self) -> dict[str, dict[str, Any]]:
        if self._items is not None:
            return self._items
        for problem in self._collect_problems:  # a re-collection (after a late register) reports afresh
            if problem in self.problems:
                self.problems.remove(problem)
        self._collect_problems = []
        for info in self.plugins.values():
            if info.status in ("partial", "conflict"):
                info.status, info.error = "ok", None
        self._owners, self._conflicts, self._qualified = {}, {}, {}
        for plugin_name in list(self.plugins):
            self._check_unmarked(plugin_name)
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
                    where = _plugin_frame(err, impl.function)
                    self._report(plugin, f"plugin {self._label(plugin)}: {hook.name}() raised{where}:\n{detail}\n"
                                         f"  Fix the hook; until then the plugin's other contributions still load.", kind=kind)
                    continue
                if returned is None:
                    continue
                if not isinstance(returned, (list, tuple)):
                    self._report(plugin, f"plugin {self._label(plugin)}: {hook.name}() must return a list, got "
                                         f"{type(returned).__name__}; return [spec, …]", kind=kind)
                    continue
                for item in self._expand(kind, plugin, hook.name, returned):
                    self._add(items[kind], aliases[kind], kind, item, plugin)
        self._check_attack_defaults(items["attack"])
        self._items, self._aliases = items, aliases
        return items

    def _expand(self, kind: str, plugin: str, hook_name: str, returned: Iterable[Any]) -> Iterable[Any]:
        """Turn a hook's list into validated items, reporting the invalid ones."""
        info = self.plugins.get(plugin)
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
                    if isinstance(raw, Spec) and not isinstance(raw, cls):
                        raise TypeError(f"{hook_name}() returned a {type(raw).__name__} {raw.name!r}; it contributes "
                                        f"{cls.__name__}s (return it from {hookspecs.HOOK_FOR_KIND[raw.kind]}() instead)")
                    spec = raw if isinstance(raw, cls) else cls.model_validate(raw)
                    spec = spec.model_copy(update={"plugin": plugin, "distribution": getattr(info, "distribution", None),
                                                   "version": getattr(info, "version", None)})
                    spec._manager = self
                    yield spec
            except ValidationError as err:
                label = raw.get("name", raw.get("id", "?")) if isinstance(raw, dict) else getattr(raw, "name", "?")
                self._report(plugin, f"plugin {self._label(plugin)}: {hook_name}() returned an invalid {kind.replace('_', ' ')} "
                                     f"{label!r}:\n{format_validation_error(err)}", kind=kind, name=str(label))
            except TypeError as err:
                self._report(plugin, f"plugin {self._label(plugin)}: {err}", kind=kind)
            except CardError as err:
                self._report(plugin, f"plugin {self._label(plugin)}: {err}", kind=kind)

    def _is_builtin(self, plugin: str) -> bool:
        info = self.plugins.get(plugin)
        return info is not None and _canonical(info.distribution) == _canonical(BUILTIN_DISTRIBUTION)

    def _add(self, table: dict[str, Any], aliases: dict[str, str], kind: str, item: Any, plugin: str) -> None:
        """Add one contribution. Every one is also reachable as ``<plugin>:<name>`` (:meth:`get`).

        The rule for a name two plugins contribute: a built-in keeps the bare name and the
        third party's is used by its qualified name (a warning says so; nothing breaks, the
        default config included); two third parties make the bare name unusable until one is
        renamed or disabled, both staying reachable by their qualified names.
        """
        name = item.name
        self._qualified.setdefault(kind, {})[f"{plugin}:{name}"] = (item, plugin)
        if name in table:
            first = self._owners[(kind, name)]
            if self._is_builtin(first) and not self._is_builtin(plugin) and (kind, name) not in self._conflicts:
                self._report(plugin, f"plugin {self._label(plugin)} contributes the {kind.replace('_', ' ')} {name!r}, which the "
                                     f"built-in plugin {first!r} also provides: {name!r} stays the built-in's; use "
                                     f"{plugin + ':' + name!r} for this plugin's (or rename it)", kind=kind, name=name, status=None)
                return
            owners = self._conflicts.setdefault((kind, name), [self._owners[(kind, name)]])
            owners.append(plugin)
            labels = " and ".join(self._label(o) for o in owners)
            message = (f"Two plugins contribute the {kind.replace('_', ' ')} {name!r}: {labels}.\n"
                       f"  Rename one, or disable one with {DISABLE_ENV}={plugin}. Until then {name!r} cannot be used; "
                       "everything else works.")
            for owner in owners:
                if owner in self.plugins and self.plugins[owner].status in ("ok", "partial"):
                    self.plugins[owner].status, self.plugins[owner].error = "conflict", message
            self._report(plugin, message, kind=kind, name=name, status=None)
            return
        for alias in getattr(item, "aliases", ()):
            aliases[alias] = name
        table[name] = item
        self._owners[(kind, name)] = plugin

    def _check_attack_defaults(self, attacks: dict[str, Any]) -> None:
        claimed: dict[str, str] = {}
        for name, spec in attacks.items():
            for norm in getattr(spec, "default_for", ()):
                if norm in claimed:
                    self._report(spec.plugin, f"attacks {claimed[norm]!r} and {name!r} both declare themselves the default "
                                              f"for {norm}; {claimed[norm]!r} stays the default (name the attack in the threat "
                                              f"model, `attack: {name}`, to use the other)", kind="attack", name=name)
                else:
                    claimed[norm] = name

    def _check_unmarked(self, plugin_name: str) -> None:
        """Report hook functions a registered plugin defines without ``@hookimpl`` (pluggy skips them silently)."""
        obj = self.pm.get_plugin(plugin_name)
        if obj is None:
            return
        registered = {caller.name for caller in self.pm.get_hookcallers(obj) or []}
        unmarked = sorted(a for a in dir(obj) if a in _HOOKS and a not in registered and callable(getattr(obj, a, None)))
        if unmarked:
            one = len(unmarked) == 1
            self._report(plugin_name, f"plugin {self._label(plugin_name)} defines {', '.join(unmarked)} without @rftbench.hookimpl, "
                                      f"so {'it is' if one else 'they are'} never called and what {'it contributes' if one else 'they contribute'} "
                                      "is missing: decorate each hook function with @rftbench.hookimpl")

    def _report(self, plugin: str, message: str, *, kind: str | None = None, name: str | None = None,
                status: str | None = "partial") -> None:
        info = self.plugins.get(plugin)
        problem = Problem(message, plugin=plugin, distribution=getattr(info, "distribution", None),
                          version=getattr(info, "version", None), kind=kind, name=name)
        self.problems.append(problem)
        self._collect_problems.append(problem)
        log.warning("%s", message)
        if status and info is not None and info.status == "ok":
            info.status = status
            info.error = message

    def _label(self, plugin: str) -> str:
        info = self.plugins.get(plugin)
        return info.label() if info is not None else repr(plugin)

    # ------------------------------------------------------------------ lookup

    def names(self, kind: str, pattern: str | None = None) -> list[str]:
        """Names of one kind, naturally sorted, optionally filtered by a wildcard ``pattern``."""
        self._check_kind(kind)
        names = self._collect()[kind]
        selected = [n for n in names if pattern is None or fnmatch.fnmatchcase(n, pattern)]
        return sorted(selected, key=natural_key)

    def items(self, kind: str) -> list[Any]:
        """Every spec or card of one kind, naturally sorted by name (a conflicting name: its first contribution)."""
        table = self._collect()[kind]
        return [table[n] for n in self.names(kind)]

    def get(self, kind: str, name: str) -> Any:
        """The spec or card named ``name``; deprecated aliases resolve (with a warning).

        Raises :class:`~rftbench.errors.UnknownNameError` (with close matches) for an unknown
        name and :class:`~rftbench.errors.DuplicateNameError` for a name two plugins contribute.
        """
        self._check_kind(kind)
        table = self._collect()[kind]
        if name not in table and name in self._qualified.get(kind, {}):  # plugin:name, whoever holds the bare name
            return self._qualified[kind][name][0]
        if name not in table:
            target = self._aliases.get(kind, {}).get(name)
            if target is None:
                raise UnknownNameError(kind.replace("_", " "), name, table)
            log.warning("%s %r is deprecated; use %r", kind.replace("_", " "), name, target)
            name = target
        owners = self._conflicts.get((kind, name))
        if owners:
            raise DuplicateNameError(
                f"Two plugins contribute the {kind.replace('_', ' ')} {name!r}: {' and '.join(self._label(o) for o in owners)}.\n"
                f"Rename one, or disable one with {DISABLE_ENV}={owners[-1]}."
            )
        return table[name]

    def plugin_of(self, kind: str, name: str) -> str:
        """The plugin that contributed ``name`` (a bare or a qualified ``plugin:name``)."""
        self._collect()
        if name in self._qualified.get(kind, {}):
            return self._qualified[kind][name][1]
        return self._owners[(kind, self.get(kind, name).name)]

    def info_of(self, kind: str, name: str) -> PluginInfo | None:
        """The :class:`PluginInfo` of the plugin that contributed ``name``."""
        return self.plugins.get(self.plugin_of(kind, name))

    def _check_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise UnknownNameError("contribution kind", kind, KINDS)

    def describe(self) -> list[PluginInfo]:
        """Every plugin with what it contributes (collecting first, so problems are known)."""
        items = self._collect()
        for info in self.plugins.values():
            info.contributions = {}
        for kind, table in items.items():
            for name in table:
                for owner in self._conflicts.get((kind, name), [self._owners[(kind, name)]]):
                    if owner in self.plugins:
                        self.plugins[owner].contributions.setdefault(kind, []).append(name)
        for info in self.plugins.values():
            for names in info.contributions.values():
                names.sort(key=natural_key)
        return sorted(self.plugins.values(), key=lambda i: (i.distribution != BUILTIN_DISTRIBUTION, i.name))

    def check(self) -> list[Problem]:
        """Every problem with the installed plugins (for ``rftbench plugins`` and ``rftbench doctor``).

        Collects every contribution first, so invalid specs, raising hooks and conflicts are
        included besides import and registration failures. Never raises for a plugin's fault.
        """
        self._collect()
        return list(self.problems)

    # ------------------------------------------------------------------ run-time errors

    def plugin_of_module(self, module: str) -> str | None:
        """The plugin whose code ``module`` is: its own module or, for a third party, its top-level package."""
        if module in self._modules:
            return self._modules[module]
        for registered, plugin in self._modules.items():
            info = self.plugins.get(plugin)
            if info is None or info.distribution == BUILTIN_DISTRIBUTION:
                continue
            root = registered.split(".")[0]
            if module == root or module.startswith(root + "."):
                return plugin
        return None

    def remember(self, built: Any, spec: Any) -> None:
        """Note that ``spec``'s factory built ``built`` (called by :meth:`Spec.build <rftbench.specs.Spec.build>`).

        A run-time error is then blamed on the contribution whose object (or built function) was
        running when it was raised, whatever module the raising line is in (a helper module two
        plugins share, a class both instantiate). Objects without weak references are not noted.
        """
        import functools
        import weakref

        key = id(built)
        try:
            ref = weakref.ref(built, lambda _r, k=key: self._built.pop(k, None))
        except TypeError:
            ref = None
        if ref is not None:
            self._built[key] = (ref, spec)
        fn = built.func if isinstance(built, functools.partial) else getattr(built, "__func__", built)
        code = getattr(fn, "__code__", None)
        if code is not None:
            specs = self._built_code.setdefault(code, [])
            if all(s is not spec for s in specs):
                specs.append(spec)

    def _running_contribution(self, frame: Any) -> Any:
        """The spec whose built object runs in ``frame`` (its ``self``, or a built function's code), if one plugin's."""
        owner = frame.f_locals.get("self")
        if owner is not None:
            entry = self._built.get(id(owner))
            if entry is not None and entry[0]() is owner:
                return entry[1]
        specs = self._built_code.get(frame.f_code) or []
        if len({getattr(s, "plugin", None) for s in specs}) == 1:
            return specs[0]
        return None

    def attribute(self, err: BaseException) -> PluginRuntimeError | None:
        """A :class:`PluginRuntimeError` naming the plugin whose code raised ``err``, found from its traceback.

        Used where a plugin's object is called at run time (a threat model's ``perturb``, a
        loss, a metric's ``compute``…). The plugin is the one whose contribution was running: the
        innermost frame running an object (or function) a spec's factory built names the spec
        and its plugin, so code in a helper module shared by two plugins is blamed on the
        plugin whose object called it. Failing that (code not built by a factory), the innermost
        frame in a plugin's module names it. ``None`` when no plugin's code is in the traceback
        (or ``err`` already names one).
        """
        if isinstance(err, RftbenchError):
            return None
        frames = list(traceback.walk_tb(err.__traceback__))
        for i in range(len(frames) - 1, -1, -1):
            spec = self._running_contribution(frames[i][0])
            plugin = getattr(spec, "plugin", None)
            if plugin in self.plugins:
                kind = (getattr(spec, "kind", "") or "contribution").replace("_", " ")
                # where: the innermost frame of the contribution's own package (its helpers), else its own frame
                roots = {str(frames[i][0].f_globals.get("__name__", "")).split(".")[0], str(self.plugins[plugin].module).split(":")[0].split(".")[0]}
                inner = [f for f in frames[i:] if str(f[0].f_globals.get("__name__", "")).split(".")[0] in roots]
                frame, lineno = inner[-1] if inner else frames[i]
                return self._blamed(plugin, err, frame, lineno, f"{kind} {spec.name!r}")
        for frame, lineno in reversed(frames):
            plugin = self.plugin_of_module(frame.f_globals.get("__name__", ""))
            if plugin is not None:
                return self._blamed(plugin, err, frame, lineno, None)
        return None

    def _blamed(self, plugin: str, err: BaseException, frame: Any, lineno: int, running: str | None) -> PluginRuntimeError:
        info = self.plugins[plugin]
        where = f"{frame.f_code.co_name}() at {Path(frame.f_code.co_filename).name}:{lineno}"
        made = ", ".join(f"{k.replace('_', ' ')} {', '.join(repr(n) for n in v)}" for k, v in info.contributions.items())
        if not made:
            self.describe()
            made = ", ".join(f"{k.replace('_', ' ')} {', '.join(repr(n) for n in v)}" for k, v in info.contributions.items())
        return PluginRuntimeError(
            f"plugin {info.label()} raised in {where}{f' (running its {running})' if running else ''}: {type(err).__name__}: {err}\n"
            + (f"  It contributes: {made}.\n" if made else "")
            + f"  This is a bug in the plugin (or a use it does not support): report it to its authors, "
              f"or disable it with {DISABLE_ENV}={info.name}.",
            plugin=plugin, distribution=info.distribution,
        )


def _canonical(dist: str | None) -> str | None:
    return re.sub(r"[-_.]+", "-", dist).lower() if dist else dist


#: Modules whose PyPI distribution has another name (``import cv2`` → ``pip install opencv-python``).
PIP_NAMES = {
    "cv2": "opencv-python", "PIL": "pillow", "sklearn": "scikit-learn", "skimage": "scikit-image", "yaml": "pyyaml",
    "bs4": "beautifulsoup4", "attr": "attrs", "dateutil": "python-dateutil", "dotenv": "python-dotenv", "jwt": "pyjwt",
    "google": "protobuf", "Crypto": "pycryptodome", "fitz": "pymupdf", "serial": "pyserial", "magic": "python-magic",
    "OpenGL": "PyOpenGL", "gi": "PyGObject", "usb": "pyusb", "wx": "wxPython", "git": "GitPython", "zmq": "pyzmq",
    "lightning_fabric": "lightning", "pytorch_lightning": "lightning", "mpl_toolkits": "matplotlib",
}


def pip_name(module: str) -> str:
    """The distribution to ``pip install`` for a missing top-level ``module`` (see :data:`PIP_NAMES`)."""
    return PIP_NAMES.get(module, module)


def _import_failure(info: PluginInfo, target: str, err: BaseException) -> str:
    where = " ".join(p for p in (info.distribution, info.version) if p)
    message = (f"plugin {info.name!r} ({target}" + (f", distribution {where}" if where else "")
               + f") failed to import: {type(err).__name__}: {err}")
    if isinstance(err, ModuleNotFoundError) and err.name:
        top = err.name.split(".")[0]
        if top == target.split(":")[0].split(".")[0] and info.entry_point is None:  # --plugin / RFTBENCH_PLUGINS
            fix = (f"module {target.split(':')[0]!r} is not importable from here: check its name, and put its folder "
                   "on PYTHONPATH (e.g. PYTHONPATH=. for a file in the current directory)")
        elif top == target.split(":")[0].split(".")[0]:
            fix = f"the entry point names module {target!r}, which is not installed: fix the entry point or reinstall the distribution"
        else:
            fix = f"it needs {top!r}: pip install {pip_name(top)} (or the distribution's missing extra)"
        message += f"\n  Fix: {fix}; the other plugins still load."
    else:
        message += "\n  The other plugins still load; run `python -c 'import " + target.split(":")[0] + "'` to see the traceback."
    return message


def _plugin_frame(err: BaseException, function: Any) -> str:
    """`` at file.py:LINE`` of the innermost frame in the hook's own file, if any."""
    code = getattr(function, "__code__", None)
    frames = list(traceback.walk_tb(err.__traceback__))
    for frame, lineno in reversed(frames):
        if code is not None and frame.f_code.co_filename == code.co_filename:
            return f" at {Path(code.co_filename).name}:{lineno}"
    return ""


def current_manager() -> PluginManager:
    """The manager whose contribution is being validated or built, else the process-wide one."""
    return _ACTIVE.get() or get_manager()


@contextlib.contextmanager
def missing_plugin_hint(provenance: dict[str, Any] | None) -> Iterator[None]:
    """Add to an unknown-name error which plugin and distribution a run's record used for that name.

    ``provenance`` is a result record's ``provenance`` (its ``plugins`` mapping is what
    :func:`rftbench.run` wrote: field → name, plugin, distribution, version).
    """
    try:
        yield
    except UnknownNameError as err:
        used = (provenance or {}).get("plugins") or {}
        hits = [u for u in used.values() if isinstance(u, dict) and u.get("name") == err.name]
        if not hits:
            raise
        u = hits[0]
        dist, version = u.get("distribution"), u.get("version")
        pin = f"{dist}=={version}" if dist and version else (dist or "?")
        raise UnknownNameError(
            err.kind, err.name, err.available,
            hint=f"The run's record says {err.name!r} came from plugin {u.get('plugin')!r} of distribution {dist or '?'} "
                 f"{version or ''}".rstrip() + f", which is not installed (or is disabled): pip install '{pin}'",
        ) from None


def record_provenance(run_dir: str | Path) -> dict[str, Any]:
    """The ``provenance`` of the result record beside a run folder (``runs/<hash>.json``), or ``{}``."""
    path = Path(run_dir)
    record = path if path.suffix == ".json" else path.with_suffix(".json")
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    prov = data.get("provenance") if isinstance(data, dict) else None
    return prov if isinstance(prov, dict) else {}


_default: PluginManager | None = None


def get_manager() -> PluginManager:
    """The process-wide manager, loading entry points on first use."""
    global _default
    if _default is None:
        manager = PluginManager()
        manager.load_entrypoints()
        manager.load_modules([*sorted(_env_names(PLUGINS_ENV) or ()), *CLI_MODULES])
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
    "Problem",
    "blame",
    "current_manager",
    "missing_plugin_hint",
    "using",
    "get_manager",
    "natural_key",
    "set_manager",
]
