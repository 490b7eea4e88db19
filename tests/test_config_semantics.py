"""Config semantics a person can predict: --set order, parameter aliases, card sources checked at `config show`."""

from __future__ import annotations

import pytest
from pydantic import Field

from rftbench import LossSpec, Params, hookimpl
from rftbench.config import load_config
from rftbench.errors import ConfigError
from tests.cli_helpers import run_cli


class LamParams(Params):
    lam: float = Field(1.0, alias="lambda", ge=0, description="weight of the penalty")


class LamPlugin:
    @hookimpl
    def rftbench_add_losses(self):
        return [LossSpec(name="lam_loss", description="a loss with a keyword parameter", params=LamParams,
                         adversarial=False, factory=lambda lam: ("lam_loss", lam))]


def test_set_order_does_not_change_the_result(builtins):
    a = load_config(overrides=["loss.beta=6", "loss=trades"], manager=builtins)
    b = load_config(overrides=["loss=trades", "loss.beta=6"], manager=builtins)
    assert a.loss.params["beta"] == b.loss.params["beta"] == 6
    assert a.config_hash() == b.config_hash()
    # A parameter set for one loss, then another loss named: the parameter is not silently dropped.
    with pytest.raises(ConfigError, match=r"loss\.beta: Extra inputs are not permitted"):
        load_config(overrides=["loss.beta=6", "loss=classic_at"], manager=builtins)
    with pytest.raises(ConfigError, match="both set epochs"):
        load_config(overrides=["epochs=3", "epochs=4"], manager=builtins)


def test_naming_the_same_component_keeps_its_parameters(builtins, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("loss: {name: trades, beta: 3}\n")
    assert load_config(path, ["loss=trades"], manager=builtins).loss.params["beta"] == 3
    assert "beta" not in load_config(path, ["loss=classic_at"], manager=builtins).loss.params


def test_parameters_keep_the_name_the_user_wrote(builtins):
    builtins.register(LamPlugin(), "lam")
    for written in ("loss.lambda=0.1", "loss.lam=0.1"):
        config = load_config(overrides=["loss=lam_loss", written], manager=builtins)
        assert config.to_dict()["loss"] == {"name": "lam_loss", "lambda": 0.1}
        assert builtins.get("loss", "lam_loss").build(**config.loss.params) == ("lam_loss", 0.1)
    with pytest.raises(ConfigError, match=r"loss\.lambda: Input should be greater than or equal to 0"):
        load_config(overrides=["loss=lam_loss", "loss.lambda=-1"], manager=builtins)
    rows = builtins.get("loss", "lam_loss").param_table()
    assert rows[0]["name"] == "lambda" and rows[0]["default"] == 1.0

    from rftbench.results import ResultRecord
    from rftbench.sweep.export import filter_rows, flatten_record

    config = load_config(overrides=["loss=lam_loss", "loss.lambda=0.1"], manager=builtins)
    row = flatten_record(ResultRecord(id=config.config_hash(), config=config.to_dict(), status="complete"))
    assert row["loss.lambda"] == 0.1 and "loss.lam" not in row
    assert filter_rows([row], ["loss.lambda=0.1"]) == [row]


def test_config_show_checks_the_cards_sources(builtins, capsys):
    from rftbench import RepresentationCard

    card = builtins.get("representation", "mini_resnet.shapes_standard").model_dump()
    card.update(id="typo_net.v1", source="timmm")

    class Cards:
        @hookimpl
        def rftbench_add_representations(self):
            return [RepresentationCard.model_validate(card)]

    builtins.register(Cards(), "typo_cards")
    code, out, err = run_cli(capsys, "config", "show", "--set", "representation=typo_net.v1")
    assert code == 2
    assert "representation: card 'typo_net.v1' names source 'timmm', which no installed plugin provides" in err
    assert "Did you mean: timm?" in err and "contributed by plugin 'typo_cards'" in err


def test_the_readme_config_example_resolves(builtins, tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    (block,) = re.findall(r"```yaml\n(# my-run.yaml\n.*?)```", readme, re.S)
    path = tmp_path / "my-run.yaml"
    path.write_text(block)
    config = load_config(path, manager=builtins)
    assert config.eps_schedule.name == "epsilon-scheduling"
