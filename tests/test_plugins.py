"""The plugin system: discovery, validation, duplicates, lookup, allow/deny lists."""

from __future__ import annotations

import inspect

import pytest

import rftbench.hookspecs as hookspecs
from rftbench import LossSpec, Params
from rftbench.errors import DuplicateNameError, UnknownNameError
from rftbench.plugins import PluginManager
from rftbench.specs import KINDS, SPEC_CLASSES
from tests.plugins import cards, duplicate, good, invalid_spec


def test_register_and_lookup(fresh_manager):
    fresh_manager.register(good, "good")
    spec = fresh_manager.get("loss", "scaled_ce")
    assert spec.plugin == "good"
    assert spec.build(scale=2.0) == ("scaled_ce", 2.0)
    assert spec.build() == ("scaled_ce", 1.0)  # default
    assert fresh_manager.names("schedule") == ["always_one"]  # a dict validated as a spec
    assert fresh_manager.plugin_of("schedule", "always_one") == "good"


def test_params_are_validated_with_ranges(fresh_manager):
    fresh_manager.register(good, "good")
    with pytest.raises(Exception, match="less than or equal to 10"):
        fresh_manager.get("loss", "scaled_ce").build(scale=11)
    with pytest.raises(Exception, match="Extra inputs are not permitted"):
        fresh_manager.get("loss", "scaled_ce").build(sclae=1)


def test_duplicate_name_names_both_plugins(fresh_manager):
    fresh_manager.register(good, "good")
    fresh_manager.register(duplicate, "dupe")
    # Listing and diagnosing still work: the conflict is a problem naming both, and both plugins show it.
    assert fresh_manager.names("loss") == ["scaled_ce"]
    (problem,) = fresh_manager.check()
    assert "'good' and 'dupe'" in problem and (problem.kind, problem.name, problem.plugin) == ("loss", "scaled_ce", "dupe")
    infos = {i.name: i for i in fresh_manager.describe()}
    assert infos["good"].status == infos["dupe"].status == "conflict"
    assert infos["dupe"].contributions["loss"] == ["scaled_ce"]
    assert fresh_manager.get("schedule", "always_one")  # the other contributions are usable
    # Using the name is the error.
    with pytest.raises(DuplicateNameError) as info:
        fresh_manager.get("loss", "scaled_ce")
    message = str(info.value)
    assert "'scaled_ce'" in message and "'good'" in message and "'dupe'" in message
    assert "RFTBENCH_DISABLE_PLUGINS=dupe" in message


def test_unknown_name_lists_close_matches(fresh_manager):
    fresh_manager.register(good, "good")
    with pytest.raises(UnknownNameError) as info:
        fresh_manager.get("loss", "scaled_cee")
    message = str(info.value)
    assert message.startswith("Unknown loss 'scaled_cee'.")
    assert "Did you mean: scaled_ce?" in message
    assert "Available: scaled_ce (1 total)." in message


def test_unknown_kind(fresh_manager):
    with pytest.raises(UnknownNameError, match="(?s)Unknown contribution kind 'losses'.*Did you mean: loss"):
        fresh_manager.names("losses")


def test_invalid_spec_refused_with_plugin_name_and_pydantic_error(fresh_manager):
    fresh_manager.register(invalid_spec, "sloppy")
    assert fresh_manager.names("loss") == ["fine_loss"]  # the valid one still loads
    (problem,) = fresh_manager.problems
    assert "plugin 'sloppy'" in problem and "invalid loss 'Bad Name!'" in problem
    assert "name: String should match pattern" in problem
    assert "description: String should have at least 1 character" in problem
    assert "factory: Input should be callable" in problem
    assert fresh_manager.plugins["sloppy"].status == "partial"


def test_hook_raising_is_reported_and_skipped(fresh_manager):
    class Raising:
        @hookspecs.hookimpl
        def rftbench_add_losses(self):
            # A spec built wrongly inside the hook raises pydantic's error there.
            return [LossSpec(name="x", description="d", factory=lambda: None, params=int)]

    fresh_manager.register(good, "good")
    fresh_manager.register(Raising(), "raising")
    assert fresh_manager.names("loss") == ["scaled_ce"]
    (problem,) = fresh_manager.problems
    assert "plugin 'raising': rftbench_add_losses() raised" in problem
    assert "params: Input should be a subclass of BaseModel" in problem


def test_hook_must_return_a_list(fresh_manager):
    class NotAList:
        @hookspecs.hookimpl
        def rftbench_add_losses(self):
            return LossSpec(name="x", description="d", factory=lambda: None)

    fresh_manager.register(NotAList(), "lonely")
    assert fresh_manager.names("loss") == []
    assert "must return a list, got LossSpec" in fresh_manager.problems[0]


def test_unknown_hook_is_refused_at_registration(fresh_manager):
    class Typo:
        @hookspecs.hookimpl
        def rftbench_add_lossess(self):
            return []

    fresh_manager.register(Typo(), "typo")
    assert fresh_manager.plugins["typo"].status == "failed"
    assert "plugin 'typo' implements unknown hook 'rftbench_add_lossess'; did you mean 'rftbench_add_losses'?" in fresh_manager.problems[0]


def test_wildcards_and_natural_sort(fresh_manager):
    class Many:
        @hookspecs.hookimpl
        def rftbench_add_losses(self):
            return [LossSpec(name=n, description="d", factory=lambda: None) for n in ("at10", "at2", "at1", "trades")]

    fresh_manager.register(Many(), "many")
    assert fresh_manager.names("loss") == ["at1", "at2", "at10", "trades"]
    assert fresh_manager.names("loss", "at*") == ["at1", "at2", "at10"]


def test_card_aliases_resolve_with_deprecation(fresh_manager, caplog):
    fresh_manager.register(cards, "cards")
    assert fresh_manager.get("representation", "tinynet_a.old").id == "tinynet_a.in1k"
    assert "deprecated; use 'tinynet_a.in1k'" in caplog.text


# --------------------------------------------------------------------------- entry points


def test_entry_point_discovery(make_distribution, fresh_manager):
    make_distribution("acme-rft", {"acme": "acme_plugin"}, {"acme_plugin": inspect.getsource(good)}, version="2.3")
    fresh_manager.load_entrypoints(only={"acme"})
    info = fresh_manager.plugins["acme"]
    assert (info.status, info.distribution, info.version) == ("ok", "acme-rft", "2.3")
    assert fresh_manager.get("loss", "scaled_ce").plugin == "acme"


def test_plugin_failing_to_import_is_reported_and_skipped(make_distribution, fresh_manager):
    make_distribution(
        "mixed",
        {"fine": "fine_plugin", "broken": "broken_plugin"},
        {"fine_plugin": inspect.getsource(good), "broken_plugin": "raise RuntimeError('boom on import')\n"},
    )
    fresh_manager.load_entrypoints(only={"fine", "broken"})
    assert fresh_manager.plugins["broken"].status == "failed"
    assert "plugin 'broken' (broken_plugin, distribution mixed 1.0) failed to import: RuntimeError: boom on import" in fresh_manager.problems[0]
    assert fresh_manager.names("loss") == ["scaled_ce"]  # the others still load


def test_disable_and_allow_list_from_environment(make_distribution, monkeypatch):
    make_distribution("two", {"one": "one_plugin", "other": "other_plugin"},
                      {"one_plugin": inspect.getsource(good), "other_plugin": inspect.getsource(duplicate)})
    monkeypatch.setenv("RFTBENCH_LOAD_PLUGINS", "one,other")
    monkeypatch.setenv("RFTBENCH_DISABLE_PLUGINS", "other")
    manager = PluginManager()
    manager.load_entrypoints()
    assert manager.plugins["other"].status == "disabled"
    assert manager.get("loss", "scaled_ce").plugin == "one"  # no duplicate: 'other' is off
    others = {name: info.status for name, info in manager.plugins.items() if name not in {"one", "other"}}
    assert others and set(others.values()) == {"disabled"}  # the allow-list kept every other plugin out


def test_builtins_load_cleanly(builtins):
    assert "zoo" in builtins.plugins
    assert builtins.plugins["zoo"].distribution == "rftbench"
    assert [p for p in builtins.problems if "rftbench_plugins" in p] == []


# --------------------------------------------------------------------------- the hookspecs are the manual


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_documented_hook(kind):
    hook = getattr(hookspecs, hookspecs.HOOK_FOR_KIND[kind])
    doc = inspect.getdoc(hook) or ""
    assert len(doc) > 80 and ":return:" in doc, f"{hook.__name__} needs a docstring stating its contract"


def test_every_hook_is_mapped_to_a_kind():
    hooks = {n for n in dir(hookspecs) if n.startswith("rftbench_")}
    assert hooks == set(hookspecs.HOOK_FOR_KIND.values())
    assert set(SPEC_CLASSES) | {"representation", "dataset"} == set(KINDS)


def test_params_base_forbids_unknown_keys():
    class P(Params):
        a: int = 1

    with pytest.raises(Exception, match="Extra inputs"):
        P(b=2)
