"""The `rftbench` command: help that teaches, plugins, zoo and config commands, clean errors."""

from __future__ import annotations

import json

import pytest

from tests.plugins import cards, minimal
from tests.cli_helpers import run_cli as run


@pytest.fixture
def manager(fresh_manager):
    fresh_manager.register(minimal, "minimal")
    fresh_manager.register(cards, "cards")
    return fresh_manager


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], ["plugins", "zoo", "config"]),
        (["plugins", "--help"], ["RFTBENCH_DISABLE_PLUGINS", "--json", "--kind"]),
        (["zoo", "--help"], ["list", "show"]),
        (["zoo", "list", "--help"], ["Wildcard", "--filter", "family", "--json"]),
        (["zoo", "show", "--help"], ["card id"]),
        (["config", "show", "--help"], ["--set", "loss.beta=6", "config hash"]),
    ],
)
def test_help_teaches(capsys, argv, expected):
    code, out, _ = run(capsys, *argv, *([] if argv else ["--help"]))
    assert code == 0
    for text in expected:
        assert text in out, f"{text!r} missing from `rftbench {' '.join(argv)} --help`"


def test_plugins_json(manager, capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    assert code == 0
    data = json.loads(out)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["minimal"]["contributions"]["loss"] == ["classic_at", "trades"]
    assert by_name["cards"]["status"] == "ok"


def test_plugins_table_and_kind_filter(manager, capsys):
    code, out, _ = run(capsys, "plugins", "--kind", "loss")
    assert code == 0 and "classic_at, trades" in out and "representation" not in out
    code, _, err = run(capsys, "plugins", "--kind", "losses")
    assert code == 2 and "Unknown contribution kind 'losses'" in err


def test_zoo_list_and_show(manager, capsys):
    code, out, _ = run(capsys, "zoo", "list", "--json", "-f", "family=attention")
    assert code == 0 and [c["id"] for c in json.loads(out)] == ["tinynet_b.in22k"]
    code, out, _ = run(capsys, "zoo", "list", "tinynet*")
    assert code == 0 and "tinynet_a.in1k" in out and "representations (2)" in out
    code, out, _ = run(capsys, "zoo", "list", "--kind", "dataset")
    assert code == 0 and "digits" in out
    code, out, _ = run(capsys, "zoo", "show", "tinynet_a.in1k", "--json")
    assert code == 0 and json.loads(out)["input"]["resolution"] == 32
    code, out, _ = run(capsys, "zoo", "show", "tinynet_a.in1k")
    assert code == 0 and "pretraining.strategy" in out and "cards" in out


def test_zoo_errors_are_clean(manager, capsys):
    code, out, err = run(capsys, "zoo", "show", "tinynet")
    assert code == 2 and out == ""
    assert "error: Unknown representation 'tinynet'." in err and "Did you mean" in err and "Traceback" not in err
    code, _, err = run(capsys, "zoo", "list", "-f", "colour=red")
    assert code == 2 and "Unknown filter 'colour'" in err
    code, _, err = run(capsys, "zoo", "list", "--kind", "model")
    assert code == 2 and "not a card kind" in err


def test_config_show(manager, capsys, tmp_path):
    code, out, _ = run(capsys, "config", "show", "--json", "--set", "loss.beta=6", "--set", "threat.eps=8/255")
    assert code == 0
    data = json.loads(out)
    assert data["config"]["loss"] == {"name": "trades", "beta": 6.0}
    assert data["config"]["threat"]["eps"] == "8/255"
    assert len(data["hash"]) == 16
    code, out, _ = run(capsys, "config", "show")
    assert code == 0 and "representation: mini_resnet.shapes_standard" in out and "# config hash:" in out


def test_config_errors_are_clean(manager, capsys):
    code, out, err = run(capsys, "config", "show", "--set", "threat.eps=8")
    assert code == 2 and out == ""
    assert "threat.eps: Input should be less than or equal to 1" in err


def _walk(command, path=()):
    yield path, command
    if hasattr(command, "commands"):  # a group (Typer's groups are not click.Group subclasses)
        for name, sub in command.commands.items():
            yield from _walk(sub, path + (name,))


def test_every_command_and_option_is_documented():
    """`--help` must teach: every command has a description, every parameter a help text."""
    import typer

    from rftbench.cli import app

    root = typer.main.get_command(app)
    missing = []
    walked = list(_walk(root))
    assert len(walked) > 8  # the walk reaches the subcommands
    for path, command in walked:
        name = " ".join(("rftbench",) + path)
        if not (command.help or command.short_help):
            missing.append(f"{name}: no description")
        for param in command.params:
            kind = param.param_type_name
            if kind == "option" and not param.help and "--help" not in param.opts:
                missing.append(f"{name} {param.opts[0]}: no help")
            if kind == "argument" and not getattr(param, "help", None):
                missing.append(f"{name} {param.name.upper()}: no help")
    assert not missing, "undocumented:\n" + "\n".join(missing)
