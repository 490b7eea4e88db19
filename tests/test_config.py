"""Run configs: YAML, --set overrides, ε as fractions, resolution against plugins, errors naming fields."""

from __future__ import annotations

import pytest

from rftbench.config import RunConfig, load_config
from rftbench.errors import ConfigError
from rftbench.specs import format_number, parse_number
from tests.plugins import minimal


@pytest.fixture
def manager(fresh_manager):
    fresh_manager.register(minimal, "minimal")
    return fresh_manager


def test_defaults_resolve_and_fill_parameters(manager):
    config = load_config()
    assert config.loss.name == "trades" and config.loss.params == {"beta": 1.0}
    assert config.threat.params == {"eps": "4/255", "steps": 10, "attack": "apgd-ce"}
    assert config.to_dict()["loss"] == {"name": "trades", "beta": 1.0}


def test_yaml_and_overrides(manager, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("loss: {name: trades, beta: 6}\nepochs: 5\nthreat: {name: linf, eps: 8/255}\n")
    config = load_config(path, ["loss.beta=3", "threat.steps=7", "optimizer.lr_head=0.01", "eps_schedule=two-hinge"])
    assert config.loss.params["beta"] == 3.0
    assert config.epochs == 5
    assert config.threat.params["eps"] == "8/255" and config.threat.params["steps"] == 7
    assert config.optimizer.lr_head == 0.01
    assert config.eps_schedule.params == {"t1": 0.25, "t2": 0.75}


def test_override_param_of_shorthand_component(manager):
    config = load_config(overrides=["loss=trades", "loss.beta=2"])
    assert config.loss.params["beta"] == 2.0


def test_hash_is_stable_and_ignores_where_the_run_happens(manager):
    a = load_config()
    b = load_config(overrides=["output_dir=/elsewhere", "device=cpu"])
    c = load_config(overrides=["threat.eps=0.01568627450980392"])  # = 4/255 written as a float
    d = load_config(overrides=["seed=1"])
    assert a.config_hash() == b.config_hash() == c.config_hash()
    assert a.config_hash() != d.config_hash()


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["threat.eps=8"], "threat.eps: Input should be less than or equal to 1 (got 8)"),
        (["threat.eps=-1/255"], "threat.eps: Input should be greater than or equal to 0"),
        (["threat.eps=four"], "threat.eps: 'four' is not a number or a fraction like '4/255'"),
        (["threat.attack=cw"], "threat.attack: Input should be 'pgd' or 'apgd-ce' (allowed: 'pgd' or 'apgd-ce') (got 'cw')"),
        (["loss=trade"], "loss: Unknown loss 'trade'.\n    Did you mean: trades?"),
        (["loss.betta=2"], "loss.betta: Extra inputs are not permitted"),
        (["eps_schedule=two-hinge", "eps_schedule.t1=0.9", "eps_schedule.t2=0.5"], "t1 (0.9) must not exceed t2 (0.5)"),
        (["lr_schedule=two-hinge"], "lr_schedule: schedule 'two-hinge' does not apply to lr (it targets epsilon)"),
        (["representation=mini_resnet.shapes"], "representation: Unknown representation 'mini_resnet.shapes'.\n    Did you mean: mini_resnet.shapes_standard?"),
        (["epochs=0"], "epochs: Input should be greater than or equal to 1"),
        (["precision=fp8"], "precision: Input should be 'auto', 'fp32', 'bf16' or 'fp16'"),
        (["effective_batch_size=100", "batch_size=64"], "effective_batch_size: must be a multiple of batch_size (64), e.g. 128"),
    ],
)
def test_errors_name_the_field_and_the_allowed_values(manager, overrides, expected):
    with pytest.raises(ConfigError) as info:
        load_config(overrides=overrides)
    assert expected in str(info.value)


def test_all_problems_are_reported_at_once(manager):
    with pytest.raises(ConfigError) as info:
        load_config(overrides=["loss=nope", "protocol=nada"])
    message = str(info.value)
    assert "loss: Unknown loss 'nope'" in message and "protocol: Unknown protocol 'nada'" in message


def test_unknown_top_level_field(manager, tmp_path):
    with pytest.raises(ConfigError, match="unknown config field 'epoch'. Did you mean: epochs"):
        load_config(overrides=["epoch=3"])
    path = tmp_path / "bad.yaml"
    path.write_text("epoch: 3\n")
    with pytest.raises(ConfigError, match=r"(?s)bad.yaml: invalid run config.*epoch: Extra inputs are not permitted.*did you mean epochs"):
        load_config(path)


def test_bad_files(manager, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_config(bad)
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(overrides=["epochs"])


def test_fraction_parsing_and_formatting():
    assert parse_number("4/255") == pytest.approx(4 / 255)
    assert parse_number(" 0.5 ") == 0.5
    assert parse_number(2) == 2
    assert format_number(8 / 255) == "8/255"
    assert format_number(0.3) == 0.3
    assert format_number(2.0) == 2.0  # L2 budgets stay numbers


def test_unresolved_config_needs_no_plugins():
    config = RunConfig.model_validate({"loss": {"name": "anything", "x": 1}})
    assert config.loss.params == {"x": 1}
