"""The loader never loses a plugin silently: keys, empty plugins, conflicts, run-time errors, missing plugins."""

from __future__ import annotations

import json

import pytest

from rftbench.errors import DuplicateNameError, PluginRuntimeError, UnknownNameError
from rftbench.plugins import PluginManager, missing_plugin_hint, record_provenance
from tests.cli_helpers import run_cli

LOSS_PLUGIN = """
from rftbench import LossSpec, hookimpl

@hookimpl
def rftbench_add_losses():
    return [LossSpec(name="acme_ce", description="d", adversarial=False, factory=lambda: "acme")]
"""

THREAT_PLUGIN = """
from rftbench import ThreatModelSpec, hookimpl

class Broken:
    norm, eps = "other", 0.0

    def label(self):
        return "broken"

    def perturb(self, model, x, y, **kw):
        raise ValueError("no gradient here")

def make():
    return Broken()

def explode():
    raise KeyError("missing setting")

@hookimpl
def rftbench_add_threat_models():
    return [ThreatModelSpec(name="broken", description="d", factory=make),
            ThreatModelSpec(name="explodes", description="d", factory=explode)]
"""


def test_a_third_party_entry_point_named_like_a_builtin_loses_nothing(make_distribution, monkeypatch):
    monkeypatch.delenv("RFTBENCH_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("RFTBENCH_DISABLE_PLUGINS", raising=False)
    make_distribution("acme-rft", {"losses": "acme_losses"}, {"acme_losses": LOSS_PLUGIN}, version="2.1")
    manager = PluginManager()
    manager.load_entrypoints()
    assert {"trades", "classic_at", "acme_ce"} <= set(manager.names("loss"))
    assert manager.plugin_of("loss", "trades") == "losses"  # the built-in keeps its bare name
    assert manager.plugin_of("loss", "acme_ce") == "acme-rft:losses"
    info = manager.plugins["acme-rft:losses"]
    assert (info.distribution, info.version, info.entry_point, info.status) == ("acme-rft", "2.1", "losses", "ok")
    assert manager.get("loss", "acme_ce").distribution == "acme-rft"
    assert not manager.check()
    # Disabling by the qualified name leaves the built-in alone.
    manager = PluginManager()
    manager.load_entrypoints(disable={"acme-rft:losses"})
    assert "trades" in manager.names("loss") and "acme_ce" not in manager.names("loss")


def test_a_plugin_implementing_no_hook_is_reported_with_the_fix(make_distribution, fresh_manager):
    make_distribution("forgetful", {"forgetful": "forgetful_plugin", "empty": "empty_plugin"}, {
        "forgetful_plugin": "from rftbench import LossSpec\n\ndef rftbench_add_losses():\n    return []\n",
        "empty_plugin": "X = 1\n",
    })
    fresh_manager.load_entrypoints(only={"forgetful", "empty"})
    forgetful, empty = fresh_manager.plugins["forgetful"], fresh_manager.plugins["empty"]
    assert forgetful.status == empty.status == "failed"
    assert "implements no rftbench hook: it defines rftbench_add_losses without @rftbench.hookimpl" in forgetful.error
    assert "distribution forgetful 1.0" in forgetful.error
    assert "implements no rftbench hook: the entry point 'empty_plugin' may name the wrong module" in empty.error
    assert len(fresh_manager.check()) == 2


def test_a_hookimpl_forgotten_on_one_of_two_hooks_is_reported(make_distribution, fresh_manager):
    make_distribution("halfdone", {"halfdone": "halfdone_plugin"}, {"halfdone_plugin": (
        "from rftbench import LossSpec, ThreatModelSpec, hookimpl\n\n"
        "@hookimpl\ndef rftbench_add_threat_models():\n    return []\n\n"
        "def rftbench_add_losses():\n    return []\n")})
    fresh_manager.load_entrypoints(only={"halfdone"})
    fresh_manager.names("loss")  # collection runs
    info = fresh_manager.plugins["halfdone"]
    assert info.status == "partial" and "rftbench_add_losses without @rftbench.hookimpl" in info.error
    assert any("rftbench_add_losses without @rftbench.hookimpl" in str(p) for p in fresh_manager.check())


def test_a_missing_dependency_names_the_package_to_install(make_distribution, fresh_manager):
    make_distribution("needy", {"needy": "needy_plugin"}, {"needy_plugin": "import not_a_real_package_xyz\n"})
    fresh_manager.load_entrypoints(only={"needy"})
    (problem,) = fresh_manager.check()
    assert "No module named 'not_a_real_package_xyz'" in problem
    assert "Fix: it needs 'not_a_real_package_xyz': pip install not_a_real_package_xyz" in problem
    assert problem.plugin == "needy" and problem.distribution == "needy"


def test_a_missing_module_with_another_distribution_name_gets_that_name(make_distribution, fresh_manager):
    make_distribution("seer", {"seer": "seer_plugin"}, {"seer_plugin": "import cv2\n"})
    import sys

    sys.modules.pop("cv2", None)
    sys.modules["cv2"] = None  # as if OpenCV were not installed (an import of it raises ModuleNotFoundError)
    try:
        fresh_manager.load_entrypoints(only={"seer"})
    finally:
        del sys.modules["cv2"]
    (problem,) = fresh_manager.check()
    assert "pip install opencv-python" in problem and "pip install cv2" not in problem


def test_a_spec_returned_from_the_wrong_hook_is_refused_by_name(fresh_manager):
    from rftbench import LossSpec, hookimpl

    class Mixed:
        @hookimpl
        def rftbench_add_metrics(self):
            return [LossSpec(name="oops", description="d", factory=lambda: None)]

    fresh_manager.register(Mixed(), "mixed")
    assert fresh_manager.names("metric") == []
    assert "returned a LossSpec 'oops'; it contributes MetricSpecs (return it from rftbench_add_losses() instead)" in fresh_manager.problems[0]


def test_a_clash_with_a_builtin_keeps_the_builtin_and_the_plugins_command_shows_it(make_distribution, monkeypatch, capsys):
    """The rule (docs/plugins.md): a built-in keeps its bare name; the third party's is used as plugin:name."""
    monkeypatch.setenv("RFTBENCH_LOAD_PLUGINS", "losses,clash")
    make_distribution("clashing", {"clash": "clash_plugin"}, {"clash_plugin": LOSS_PLUGIN.replace("acme_ce", "trades")})
    from rftbench.plugins import set_manager

    set_manager(None)
    try:
        code, out, err = run_cli(capsys, "plugins")
        assert code == 0
        assert "'trades' stays the built-in's" in out and "use 'clash:trades'" in out
        code, out, err = run_cli(capsys, "plugins", "--json")
        data = json.loads(out)
        statuses = {p["name"]: p["status"] for p in data["plugins"] if p["status"] != "disabled"}
        assert statuses == {"clash": "ok", "losses": "ok"}
        assert data["problems"][0]["kind"] == "loss" and data["problems"][0]["distribution"] == "clashing"
        from rftbench.plugins import get_manager

        manager = get_manager()  # only `losses` and `clash` load here, so no whole config: look the names up
        assert manager.plugin_of("loss", "trades") == "losses"  # the default config's loss is not taken down
        assert manager.plugin_of("loss", "clash:trades") == "clash"
    finally:
        set_manager(None)


def test_two_third_parties_with_one_name_make_it_unusable_but_both_stay_reachable(make_distribution, monkeypatch, capsys):
    monkeypatch.setenv("RFTBENCH_LOAD_PLUGINS", "one,two")
    make_distribution("one-dist", {"one": "one_plugin"}, {"one_plugin": LOSS_PLUGIN.replace("acme_ce", "same")})
    make_distribution("two-dist", {"two": "two_plugin"}, {"two_plugin": LOSS_PLUGIN.replace("acme_ce", "same")})
    manager = PluginManager()
    manager.load_entrypoints()
    with pytest.raises(DuplicateNameError, match="Two plugins contribute the loss 'same'"):
        manager.get("loss", "same")
    assert manager.plugin_of("loss", "one:same") == "one" and manager.plugin_of("loss", "two:same") == "two"
    assert {manager.plugins["one"].status, manager.plugins["two"].status} == {"conflict"}


def test_a_plugin_raising_at_run_time_is_named_with_its_distribution(make_distribution, fresh_manager):
    make_distribution("acme-threats", {"acme_threats": "acme_threats"}, {"acme_threats": THREAT_PLUGIN}, version="0.3")
    fresh_manager.load_entrypoints(only={"acme_threats"})
    with pytest.raises(PluginRuntimeError) as info:  # a factory: wrapped where it is called
        fresh_manager.get("threat_model", "explodes").build()
    message = str(info.value)
    assert "threat model 'explodes' of plugin 'acme_threats' (distribution acme-threats 0.3) raised in its factory" in message
    assert "KeyError: 'missing setting'" in message and isinstance(info.value.__cause__, KeyError)

    threat = fresh_manager.get("threat_model", "broken").build()
    with pytest.raises(ValueError) as raised:  # a method called at run time: attributed from its traceback
        threat.perturb(None, None, None)
    blamed = fresh_manager.attribute(raised.value)
    assert blamed is not None and blamed.plugin == "acme_threats" and blamed.distribution == "acme-threats"
    assert "plugin 'acme_threats' (distribution acme-threats 0.3) raised in perturb() at acme_threats.py:" in str(blamed)
    assert "ValueError: no gradient here" in str(blamed) and "threat model 'broken', 'explodes'" in str(blamed)
    assert fresh_manager.attribute(ValueError("not from a plugin")) is None


def test_a_missing_plugin_names_the_distribution_its_record_used(tmp_path, fresh_manager):
    record = tmp_path / "abc.json"
    record.write_text(json.dumps({"provenance": {"plugins": {"representation": {
        "name": "acme_net.v1", "plugin": "acme", "distribution": "acme-models", "version": "1.4.2"}}}}))
    with pytest.raises(UnknownNameError) as info, missing_plugin_hint(record_provenance(tmp_path / "abc")):
        fresh_manager.get("representation", "acme_net.v1")
    message = str(info.value)
    assert message.startswith("Unknown representation 'acme_net.v1'.")
    assert "came from plugin 'acme' of distribution acme-models 1.4.2" in message and "pip install 'acme-models==1.4.2'" in message
    with pytest.raises(DuplicateNameError), missing_plugin_hint({}):  # other errors pass through
        raise DuplicateNameError("x")


def test_the_cli_names_the_plugin_whose_perturb_raised_during_eval(make_distribution, tmp_path, monkeypatch, capsys):
    from safetensors.torch import save_file

    from rftbench.model import build_classifier
    from rftbench.plugins import set_manager
    from rftbench.testing import MICRO_REPRESENTATION, TINY_DATASET, plugin_manager

    make_distribution("acme-threats", {"acme_threats": "acme_threats"}, {"acme_threats": THREAT_PLUGIN}, version="0.3")
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "cache"))
    manager = plugin_manager("acme_threats")
    model = build_classifier(MICRO_REPRESENTATION, TINY_DATASET.num_classes, pretrained=False, manager=manager)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
    set_manager(manager)
    try:
        code, out, err = run_cli(capsys, "eval", str(tmp_path / "model.safetensors"), "-r", MICRO_REPRESENTATION.id,
                                 "-d", TINY_DATASET.id, "-t", "broken", "-n", "8", "--data-root", str(tmp_path / "data"))
    finally:
        set_manager(None)
    assert code == 1
    assert "Traceback" not in err  # the traceback only with RFTBENCH_DEBUG=1, as for any other error …
    last = err[err.rindex("error:"):]  # … and the user a last line naming the plugin and its distribution
    assert "plugin 'acme_threats' (distribution acme-threats 0.3) raised in perturb()" in last
    assert "ValueError: no gradient here" in last and "RFTBENCH_DISABLE_PLUGINS=acme_threats" in last
    assert "RFTBENCH_DEBUG=1" in last
    monkeypatch.setenv("RFTBENCH_DEBUG", "1")
    set_manager(manager)
    try:
        code, _, err = run_cli(capsys, "eval", str(tmp_path / "model.safetensors"), "-r", MICRO_REPRESENTATION.id,
                               "-d", TINY_DATASET.id, "-t", "broken", "-n", "8", "--data-root", str(tmp_path / "data"))
    finally:
        set_manager(None)
    assert code == 1 and "Traceback" in err and "acme_threats" in err[err.rindex("error:"):]


def test_a_plugin_module_loads_without_packaging(tmp_path, monkeypatch, capsys):
    """--plugin module.path and RFTBENCH_PLUGINS, as pytest's -p: no distribution, no entry point."""
    import sys

    from rftbench import plugins

    (tmp_path / "try_me_plugin.py").write_text(
        "from rftbench import LossSpec, hookimpl\n"
        "from rftbench_plugins.losses import CrossEntropy\n\n"
        "@hookimpl\ndef rftbench_add_losses():\n"
        "    return [LossSpec(name='try-me-ce', description='CE under another name', adversarial=False, factory=CrossEntropy)]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "_default", None)
    try:
        code, out, err = run_cli(capsys, "-p", "try_me_plugin", "plugins", "--kind", "loss", "--json")
        assert code == 0, err
        rows = {r["name"]: r for r in json.loads(out)["plugins"]}
        assert rows["try_me_plugin"]["contributions"] == {"loss": ["try-me-ce"]} and rows["try_me_plugin"]["status"] == "ok"
        code, out, err = run_cli(capsys, "plugins", "--kind", "loss", "--json")  # not given again: gone
        assert "try_me_plugin" not in {r["name"] for r in json.loads(out)["plugins"]}
        monkeypatch.setenv("RFTBENCH_PLUGINS", "try_me_plugin, nosuch_module_xyz")
        plugins.set_manager(None)
        manager = plugins.get_manager()
        assert "try-me-ce" in manager.names("loss")
        assert any("nosuch_module_xyz" in p and "PYTHONPATH" in p for p in manager.check())
    finally:
        plugins.CLI_MODULES.clear()
        plugins.set_manager(None)
        sys.modules.pop("try_me_plugin", None)


CLASHING_LOSS = """
from rftbench import LossSpec, hookimpl
from rftbench_plugins.losses import CrossEntropy


class MyTrades(CrossEntropy):
    pass


@hookimpl
def rftbench_add_losses():
    return [LossSpec(name="trades", description="a third party's trades", adversarial=False, factory=MyTrades)]
"""


def test_a_third_party_contribution_named_like_a_builtin_keeps_the_builtin_and_is_reachable_qualified(
        make_distribution, monkeypatch, tmp_path):
    from rftbench.config import load_config

    monkeypatch.delenv("RFTBENCH_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("RFTBENCH_DISABLE_PLUGINS", raising=False)
    make_distribution("acme-trades", {"acme": "acme_trades"}, {"acme_trades": CLASHING_LOSS}, version="1.0")
    manager = PluginManager()
    manager.load_entrypoints()
    assert manager.plugin_of("loss", "trades") == "losses"  # the default config's loss still works
    assert manager.get("loss", "trades").description != "a third party's trades"
    assert manager.get("loss", "acme:trades").description == "a third party's trades"
    assert manager.get("loss", "losses:trades") is manager.get("loss", "trades")
    assert manager.plugin_of("loss", "acme:trades") == "acme"
    assert any("use 'acme:trades'" in p for p in manager.check())
    assert manager.plugins["acme"].status == "ok" and manager.plugins["losses"].status == "ok"
    assert load_config(manager=manager).loss.name == "trades"
    config = load_config(overrides=["loss=acme:trades"], manager=manager)
    assert config.loss.name == "acme:trades"  # stays qualified in the resolved config (and so in the record)


SHARED_HELPER = """
import torch


class Noise:
    '''A threat model class both plugins instantiate; the helper raises for the one that asks it to.'''

    norm, eps = "other", 0.0

    def __init__(self, name, fail):
        self.name, self.fail = name, fail

    def label(self):
        return self.name

    def perturb(self, model, x, y, **kw):
        return shift(x, self.fail)


def shift(x, fail):
    if fail:
        raise ValueError("the shared helper was asked to fail")
    return x.clone()
"""

SHARING_PLUGIN = """
from rftbench import ThreatModelSpec, hookimpl
from acme_pair._shared import Noise


@hookimpl
def rftbench_add_threat_models():
    return [ThreatModelSpec(name="{name}-noise", description="d", factory=lambda: Noise("{name}-noise", {fail}))]
"""


def _sharing_package(root):
    package = root / "acme_pair"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_shared.py").write_text(SHARED_HELPER)
    (package / "alpha.py").write_text(SHARING_PLUGIN.format(name="alpha", fail=False))
    (package / "beta.py").write_text(SHARING_PLUGIN.format(name="beta", fail=True))


def test_an_error_in_a_helper_two_plugins_share_blames_the_plugin_whose_contribution_ran(tmp_path, monkeypatch, capsys):
    """Attributed by the contribution whose object was running, not by the module the raising line is in."""
    import sys

    import torch
    from safetensors.torch import save_file

    from rftbench import plugins
    from rftbench.model import build_classifier
    from rftbench.testing import MICRO_REPRESENTATION, TINY_DATASET, plugin_manager

    _sharing_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("RFTBENCH_PLUGINS", "acme_pair.alpha, acme_pair.beta")
    monkeypatch.setattr(plugins, "_default", None)
    try:
        manager = plugins.get_manager()
        assert {"alpha-noise", "beta-noise"} <= set(manager.names("threat_model"))
        threat = manager.get("threat_model", "beta-noise").build()
        manager.get("threat_model", "alpha-noise").build().perturb(None, torch.zeros(1), None)  # alpha's works
        with pytest.raises(ValueError) as raised:
            threat.perturb(None, torch.zeros(1), None)
        blamed = manager.attribute(raised.value)
        assert blamed is not None and blamed.plugin == "acme_pair.beta", blamed
        assert "raised in shift() at _shared.py:" in str(blamed) and "(running its threat model 'beta-noise')" in str(blamed)
        assert "RFTBENCH_DISABLE_PLUGINS=acme_pair.beta" in str(blamed)
        # the CLI's last line, for `rftbench eval -t beta-noise` with both plugins (and the testing cards) loaded
        import importlib

        monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "cache"))
        cli_manager = plugin_manager(importlib.import_module("acme_pair.alpha"), importlib.import_module("acme_pair.beta"))
        model = build_classifier(MICRO_REPRESENTATION, TINY_DATASET.num_classes, pretrained=False, manager=cli_manager)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
        plugins.set_manager(cli_manager)
        code, _, err = run_cli(capsys, "eval", str(tmp_path / "model.safetensors"), "-r", MICRO_REPRESENTATION.id,
                               "-d", TINY_DATASET.id, "-t", "beta-noise", "-n", "8", "--data-root", str(tmp_path / "data"))
        last = err[err.rindex("error:"):]
        assert code == 1 and "plugin 'acme_pair.beta'" in last and "'acme_pair.alpha'" not in last, err
        assert "ValueError: the shared helper was asked to fail" in last
    finally:
        plugins.CLI_MODULES.clear()
        plugins.set_manager(None)
        for name in [m for m in sys.modules if m.startswith("acme_pair")]:
            sys.modules.pop(name, None)
