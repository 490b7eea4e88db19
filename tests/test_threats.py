"""plugins/threats.py: the linf / l2 / l1 threat models, their parameter validation and runtime object."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from rftbench.config import load_config
from rftbench.errors import ConfigError
from rftbench.threat import ThreatModel


def test_threat_models_are_registered(builtins):
    assert {"linf", "l2", "l1"} <= set(builtins.names("threat_model"))
    assert builtins.get("threat_model", "linf").norm == "linf"


def test_defaults_are_filled_from_the_attack(builtins):
    params = builtins.get("threat_model", "linf").validate_params({"eps": "4/255"})
    assert params.attack == "apgd-ce" and params.steps == 10 and params.random_start is False
    assert params.model_dump(mode="json")["eps"] == "4/255"
    params = builtins.get("threat_model", "l2").validate_params({"attack": "fgsm"})
    assert params.steps == 1 and params.random_start is True and params.eps == 2.0


def test_linf_budget_on_the_wrong_scale_is_refused_naming_the_field(builtins):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["threat.eps=8"], manager=builtins)
    text = str(err.value)
    assert "threat.eps" in text and "8/255" in text and "at most 1" in text
    with pytest.raises(ConfigError, match=r"threat.eps: .*greater than or equal to 0"):
        load_config(overrides=["threat.eps=-0.1"], manager=builtins)


def test_unknown_or_unsupported_attack_is_refused(builtins):
    spec = builtins.get("threat_model", "linf")
    with pytest.raises(ValidationError, match="Did you mean: pgd"):
        spec.validate_params({"attack": "pgdd"})
    with pytest.raises(ConfigError, match=r"threat.attack: .*unknown attack 'nope'.*Attacks for linf: apgd-ce, .*fgsm, pgd"):
        load_config(overrides=["threat.attack=nope"], manager=builtins)


def test_l1_needs_an_installed_l1_attack(fresh_manager):
    from rftbench import AttackSpec, hookimpl
    from rftbench_plugins import threats

    fresh_manager.register(threats, "threats")
    spec = fresh_manager.get("threat_model", "l1")
    with pytest.raises(ValidationError, match="no installed attack supports the l1 norm"):
        spec.validate_params({})

    class Toy:
        @hookimpl
        def rftbench_add_attacks(self):
            return [AttackSpec(name="toy-l1", norms=("l1",), default_steps=3, description="shrinks x",
                               factory=lambda: lambda model, x, y, *, eps, **kw: x * (1 - 1e-3))]

    fresh_manager.register(Toy(), "toy")
    params = spec.validate_params({"eps": 12})
    assert (params.attack, params.steps) == ("toy-l1", 3)  # the only L1 attack is the default; its steps too
    threat = spec.build(**params.model_dump())
    x = torch.rand(2, 3, 4, 4)
    out = threat.perturb(nn.Flatten(), x, torch.zeros(2, dtype=torch.long))
    assert out.shape == x.shape and threat.label() == "l1:12"


def test_runtime_object_satisfies_the_protocol_and_attacks():
    torch.manual_seed(0)
    from rftbench_plugins.threats import LinfParams, LpThreat

    threat = LpThreat("linf", **LinfParams(eps="2/255", attack="pgd", steps=3, seed=7).model_dump())
    assert isinstance(threat, ThreatModel)
    assert threat.label() == "linf:2/255"
    from rftbench_plugins.threats import L2Params

    # only L∞ budgets are written in 255ths: 0.4 = 102/255 is an L2 budget of 0.4
    assert LpThreat("l2", **L2Params(eps=0.4).model_dump()).label() == "l2:0.4"
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 3)).train()
    x, y = torch.rand(8, 3, 4, 4), torch.randint(0, 3, (8,))
    a = threat.perturb(model, x, y)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert float((a - x).abs().max()) <= 2 / 255 + 1e-6
    big = threat.perturb(model, x, y, eps=8 / 255)
    assert float((big - x).abs().max()) > 2 / 255
    # the seeded generator's state round-trips, so a resumed run replays the same random starts
    state = threat.state_dict()
    c = threat.perturb(model, x, y)
    threat.load_state_dict(state)
    assert torch.equal(threat.perturb(model, x, y), c)


def test_an_attack_takes_its_own_parameters_through_the_threat_model(builtins):
    from pydantic import Field

    from rftbench import AttackSpec, Params, hookimpl
    from rftbench.config import load_config
    from rftbench.errors import ConfigError

    class ShrinkParams(Params):
        factor: float = Field(0.5, gt=0, lt=1, description="how far towards grey")

    def shrink(factor):
        return lambda model, x, y, *, eps, **kw: (x + (0.5 - x).clamp(-eps, eps) * factor).clamp(0, 1)

    class Toy:
        @hookimpl
        def rftbench_add_attacks(self):
            return [AttackSpec(name="shrink", norms=("linf",), params=ShrinkParams, factory=shrink, description="d")]

    builtins.register(Toy(), "toy")
    config = load_config(overrides=["threat.attack=shrink", "threat.attack_params.factor=0.25"], manager=builtins)
    assert config.to_dict()["threat"]["attack_params"] == {"factor": 0.25}
    threat = builtins.get("threat_model", "linf").build(**config.threat.params)
    x = torch.zeros(1, 3, 2, 2)
    assert torch.allclose(threat.perturb(nn.Flatten(), x, torch.zeros(1, dtype=torch.long)), torch.full_like(x, 0.25 * 4 / 255))
    with pytest.raises(ConfigError, match=r"threat\.attack_params: .*attack 'shrink': factor: Input should be less than 1"):
        load_config(overrides=["threat.attack=shrink", "threat.attack_params.factor=2"], manager=builtins)
    # Without attack parameters a config (and its hash) reads as before they existed.
    assert "attack_params" not in load_config(manager=builtins).to_dict()["threat"]
