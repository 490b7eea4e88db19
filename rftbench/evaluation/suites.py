"""Named evaluation suites and the command line's short forms of suite items.

Short form of one item: ``NAME[:VALUE][:ATTACK][:key=value,…]``

- ``linf:4/255`` → ``{name: linf, eps: 4/255, attack: autoattack}`` (L∞/L2/L1 are measured by
  AutoAttack standard unless an attack is named: ``linf:4/255:apgd-ce`` is the fast path);
- ``corruptions:3`` → ``{name: corruptions, severity: 3}``;
- ``expected_robustness:eps=8/255,steps=20`` → a metric with parameters;
- any item may add ``key=value`` pairs (values parsed as YAML: ``steps=20`` is an int).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Component
from ..errors import ConfigError, UnknownNameError
from ..yamlfile import loads

LP_NORMS = ("linf", "l2", "l1")
#: The attack an Lp threat model named on the command line uses when none is given.
DEFAULT_EVAL_ATTACK = "autoattack"

SUITES: dict[str, list[dict[str, Any]]] = {
    # The reference study at 224 px: AutoAttack standard at its budgets, corruptions at severity 3, sum and geom.
    "study": [
        {"name": "linf", "eps": "4/255", "attack": "autoattack"},
        {"name": "l2", "eps": 2.0, "attack": "autoattack"},
        {"name": "l1", "eps": 75.0, "attack": "autoattack"},
        {"name": "corruptions", "severity": 3},
        {"name": "aggregates"},
    ],
    # RobustBench's budgets at 32 px.
    "robustbench32": [
        {"name": "linf", "eps": "8/255", "attack": "autoattack"},
        {"name": "l2", "eps": 0.5, "attack": "autoattack"},
        {"name": "corruptions", "severity": 3},
    ],
    # A quick look: fast APGD-CE (10 steps, broken points dropped) and corruptions.
    "quick": [
        {"name": "linf", "eps": "4/255", "attack": "apgd-ce", "steps": 10},
        {"name": "corruptions", "severity": 3},
    ],
    # The diagnostics of the literature at L∞ 4/255.
    "diagnostics": [
        {"name": "linf", "eps": "4/255", "attack": "autoattack"},
        {"name": "expected_robustness", "eps": "4/255"},
        {"name": "adversarial_sensitivity", "eps": "4/255"},
        {"name": "margin_consistency", "eps": "4/255"},
        {"name": "subset_estimate", "threat": {"name": "linf", "eps": "4/255", "attack": "autoattack"}},
    ],
}


def _value(text: str) -> Any:
    loaded = loads(text, f"suite item value {text!r}", ConfigError)
    return text if loaded is None else loaded


def _component(item: Any, where: str) -> Component:
    from pydantic import ValidationError

    from ..cards import format_validation_error

    try:
        return Component.model_validate(item)
    except ValidationError as err:
        raise ConfigError(f"{where}: not a suite item (e.g. {{name: linf, eps: 4/255}}):\n{format_validation_error(err)}") from None


def parse_item(text: str) -> Component:
    """One suite item from its short form (see the module docstring)."""
    parts = [p.strip() for p in text.strip().split(":")]
    if not parts or not parts[0]:
        raise ConfigError(f"suite item {text!r}: expected NAME[:VALUE][:ATTACK][:key=value,…], e.g. linf:4/255")
    name, params, positional = parts[0], {}, []
    for part in parts[1:]:
        if "=" in part:
            for pair in part.split(","):
                key, sep, value = pair.partition("=")
                if not sep or not key.strip():
                    raise ConfigError(f"suite item {text!r}: {pair!r} is not key=value")
                params[key.strip()] = _value(value.strip())
        elif part:
            positional.append(part)
    if name in LP_NORMS:
        keys = ("eps", "attack")
        params.setdefault("attack", DEFAULT_EVAL_ATTACK)
    elif name == "corruptions":
        keys = ("severity",)
    else:
        keys = ("eps",)
    if len(positional) > len(keys):
        raise ConfigError(f"suite item {text!r}: too many ':' parts for {name!r} (it takes {', '.join(keys)}); use key=value")
    for key, value in zip(keys, positional):
        if key in params and not (key == "attack" and params[key] == DEFAULT_EVAL_ATTACK and "attack=" not in text):
            raise ConfigError(f"suite item {text!r}: {key} given twice")
        params[key] = value if key == "eps" else _value(value)
    return _component({"name": name, "params": params}, f"suite item {text!r}")


def named_suite(name: str) -> list[Component]:
    """A named suite (``study``, ``robustbench32``, ``quick``, ``diagnostics``) or a YAML file holding a list of items."""
    if name in SUITES:
        return [Component.model_validate(item) for item in SUITES[name]]
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"suite file {name!r} does not exist")
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise ConfigError(f"{path}: cannot read the suite file ({err.strerror or err})") from None
        items = loads(raw, str(path), ConfigError)
        if isinstance(items, dict) and "evaluation" in items:
            items = items["evaluation"]
        if not isinstance(items, list):
            raise ConfigError(f"{path}: a suite file is a YAML list of items ({{name: linf, eps: 4/255}}, …) or a run config")
        return [_component(item, f"{path}: item {i}") for i, item in enumerate(items)]
    raise UnknownNameError("suite", name, SUITES, hint="Or pass a YAML file listing suite items.")
