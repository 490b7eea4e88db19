"""Shared fixtures. Tests control plugin loading explicitly (never the process-wide default)."""

from __future__ import annotations

import pytest

from rftbench.plugins import PluginManager, set_manager


@pytest.fixture
def fresh_manager():
    """An empty plugin manager installed as the process-wide one for the test's duration."""
    manager = PluginManager()
    set_manager(manager)
    yield manager
    set_manager(None)


@pytest.fixture
def builtins(monkeypatch):
    """A manager with every installed entry-point plugin (the built-ins) loaded."""
    monkeypatch.delenv("RFTBENCH_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("RFTBENCH_LOAD_PLUGINS", raising=False)
    manager = PluginManager()
    manager.load_entrypoints()
    set_manager(manager)
    yield manager
    set_manager(None)
