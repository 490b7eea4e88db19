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


@pytest.fixture
def make_distribution(tmp_path, monkeypatch):
    """Fabricate an installed distribution (dist-info with real entry-point metadata) on sys.path.

    ``make_distribution("acme", {"acme": "acme_plugin"}, {"acme_plugin": "source…"})`` writes the
    modules and ``acme-1.0.dist-info/{METADATA,entry_points.txt}`` so that
    ``importlib.metadata.entry_points(group="rftbench")`` finds them, as it would after pip install.
    """
    import importlib
    import sys
    import textwrap

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []

    def make(dist: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.0"):
        for module, source in modules.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            created.append(module)
        # As a wheel installs it: the folder's name escapes '-' (importlib.metadata reads the name
        # up to the first '-', so `a-b-1.0.dist-info` would pass for, and shadow, distribution `a`).
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = ["[rftbench]"] + [f"{name} = {target}" for name, target in entry_points.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        importlib.invalidate_caches()
        return site

    yield make
    for module in created:
        sys.modules.pop(module, None)
