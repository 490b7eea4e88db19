"""Deferred imports, so that listing plugins or printing a config does not import torch.

``torch = lazy_import("torch")`` binds a stand-in that imports the real module on the first
attribute access (``torch.zeros``), from any thread. Module-level code must not touch it (a
class body subclassing ``nn.Module`` would import torch at once): such code lives in a private
module that a :func:`rftbench.specs.lazy` factory imports when the contribution is built.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """A stand-in for the module ``name``: attribute access imports it (once; Python caches modules)."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # keep introspection (copy, pickle, inspect) from importing
        return getattr(importlib.import_module(self.__name__), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self.__name__!r}>"


def lazy_import(name: str) -> Any:
    """A stand-in for ``import name`` that imports on first use (see the module docstring)."""
    return LazyModule(name)


def forward_to(module: str, names: set[str] | None = None):
    """A module ``__getattr__`` that forwards (the given) missing names to the private module ``module``.

    A light plugin module keeps its public names importable (``from rftbench_plugins.timm_source
    import TimmBackbone``) while the heavy code lives in ``module``, imported on first access.
    """

    def __getattr__(name: str) -> Any:
        if (names is None and not name.startswith("__")) or (names is not None and name in names):
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module has no attribute {name!r}")

    return __getattr__


class _Package(types.ModuleType):
    """A package whose lazily re-exported names are not rebound to same-named submodules on import."""

    _lazy_names: frozenset[str] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self)._lazy_names and isinstance(value, types.ModuleType):
            return  # importing submodule `evaluate` must not replace the function `evaluate`
        super().__setattr__(name, value)


def protect_exports(package: str, names: set[str] | dict[str, str]) -> None:
    """Keep ``package.<name>`` the re-exported object when a submodule of the same name is imported.

    Python binds an imported submodule on its package (``rftbench.attacks.pgd`` the module would
    replace ``rftbench.attacks.pgd`` the function); a package that re-exports lazily, through a
    module ``__getattr__``, calls this once so that its public names stay what they document.
    """
    import sys

    cls = type(f"_{package.replace('.', '_')}_Package", (_Package,), {"_lazy_names": frozenset(names)})
    sys.modules[package].__class__ = cls


def lazy_exports(package: str, names: dict[str, str]) -> Any:
    """The module ``__getattr__`` of a package that re-exports ``names`` (name → submodule) on first access.

    ``__getattr__ = lazy_exports(__name__, {"evaluate": "evaluate"})`` imports
    ``package.evaluate`` (and torch with it) only when ``package.evaluate`` is first used, caches
    the object on the package, and keeps it from being replaced by the same-named submodule
    (:func:`protect_exports`).
    """
    import sys

    protect_exports(package, names)

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(importlib.import_module(f".{names[name]}", package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
