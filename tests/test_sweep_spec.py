"""Sweep files: axes, zoo filters, product and zip, expansion into resolved runs, errors before any run."""

from __future__ import annotations

import pytest

from rftbench.sweep import SweepError, load_sweep
from rftbench.sweep.spec import assign
from rftbench_plugins import executors
from tests.plugins import minimal, sweep_cards


@pytest.fixture
def manager(fresh_manager):
    fresh_manager.register(minimal, "minimal")
    fresh_manager.register(sweep_cards, "sweep_cards")
    fresh_manager.register(executors, "executors")
    return fresh_manager


def write(tmp_path, text: str):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def test_product_of_axes_in_file_order(manager, tmp_path):
    sweep = load_sweep(write(tmp_path, "axes:\n  loss: [trades, classic_at]\n  seed: [0, 1, 2]\n"))
    assert len(sweep.runs) == 6
    assert [r.label for r in sweep.runs[:3]] == ["loss=trades seed=0", "loss=trades seed=1", "loss=trades seed=2"]
    assert sweep.runs[3].config.loss.name == "classic_at" and sweep.runs[3].config.seed == 0
    assert len({r.hash for r in sweep.runs}) == 6
    assert all(r.config.output_dir == str(tmp_path / "runs/sweep") for r in sweep.runs)
    assert sweep.runs[0].config.loss.params == {"beta": 1.0}  # resolved: defaults filled


def test_zip_varies_fields_together_and_multiplies_the_axes(manager, tmp_path):
    sweep = load_sweep(write(tmp_path, "axes:\n  seed: [0, 1]\nzip:\n  - {epochs: [5, 50], loss.beta: [1, 6]}\n"))
    assert [(r.config.seed, r.config.epochs, r.config.loss.params["beta"]) for r in sweep.runs] == [
        (0, 5, 1.0), (0, 50, 6.0), (1, 5, 1.0), (1, 50, 6.0)
    ]


def test_zoo_filters_and_wildcards_expand_to_card_ids(manager, tmp_path):
    sweep = load_sweep(write(tmp_path, "axes:\n  representation: {family: convolutional, size: small}\n  dataset: ['*']\n"))
    assert [(r.config.representation, r.config.dataset) for r in sweep.runs] == [
        ("conv_small.a", "digits"), ("conv_small.a", "shapes"), ("conv_small.b", "digits"), ("conv_small.b", "shapes")
    ]
    sweep = load_sweep(write(tmp_path, "axes:\n  representation: ['vit_small.a', {pattern: 'conv_*', size: large}]\n"))
    assert [r.config.representation for r in sweep.runs] == ["vit_small.a", "conv_large.a"]


def test_components_dotted_params_and_nested_fields(manager, tmp_path):
    text = (
        "base: {epochs: 1, loss: trades}\n"
        "axes:\n"
        "  loss.beta: [1, 6]\n"
        "  optimizer.lr_head: [1.0e-3]\n"
        "  eps_schedule: [constant, {name: two-hinge, t1: 0.1, t2: 0.2}]\n"
    )
    sweep = load_sweep(write(tmp_path, text))
    assert len(sweep.runs) == 4
    last = sweep.runs[-1].config
    assert last.loss.params["beta"] == 6.0 and last.optimizer.lr_head == 1e-3 and last.epochs == 1
    assert last.eps_schedule.name == "two-hinge" and last.eps_schedule.params == {"t1": 0.1, "t2": 0.2}
    assert sweep.runs[-1].label == "loss.beta=6 optimizer.lr_head=0.001 eps_schedule=two-hinge(t1=0.1,t2=0.2)"


def test_base_file_relative_to_the_sweep_file_and_duplicates_dropped(manager, tmp_path):
    (tmp_path / "base.yaml").write_text("epochs: 2\nloss: classic_at\n")
    # `device` does not change the result, so both values give the same config hash
    sweep = load_sweep(write(tmp_path, "base: base.yaml\nresults_dir: out\naxes:\n  device: [cpu, auto]\n  seed: [0, 1]\n"))
    assert len(sweep.runs) == 2 and sweep.duplicates == 2
    assert sweep.results_dir == tmp_path / "out"
    assert {r.config.loss.name for r in sweep.runs} == {"classic_at"}


def test_assign_turns_a_bare_component_into_a_mapping():
    data = {"loss": "trades"}
    assign(data, "loss.beta", 6)
    assign(data, "threat.eps", "8/255")
    assert data == {"loss": {"name": "trades", "beta": 6}, "threat": {"name": "linf", "eps": "8/255"}}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("axes:\n  loss: [trades, trade]\n", ["axes.loss[1] = 'trade'", "Unknown loss 'trade'", "Did you mean: trades?"]),
        ("axes:\n  representation: {family: hybrid}\n", ["axes.representation", "matches no representation card"]),
        ("axes:\n  dataset: ['cifar*']\n", ["axes.dataset", "wildcard 'cifar*' matches no dataset card"]),
        ("axes:\n  representation: {famly: convolutional}\n", ["Unknown filter 'famly'", "Did you mean: family?"]),
        ("axes:\n  sed: [0, 1]\n", ["axes.sed: unknown config field 'sed'", "Did you mean: seed?"]),
        ("axes:\n  output_dir: [a, b]\n", ["axes.output_dir", "set results_dir"]),
        ("zip:\n  - {seed: [0, 1], epochs: [1]}\n", ["zip[0]: zipped axes need value lists of equal length", "seed: 2, epochs: 1"]),
        ("axes:\n  seed: [0]\nzip:\n  - {seed: [1]}\n", ["zip[0].seed: already varied by axes.seed"]),
        ("axes:\n  threat.eps: [4/255, 8]\n", ["axes.threat.eps[1] = '8'", "threat.eps: Input should be less than or equal to 1"]),
        ("executor: {name: rayy}\n", ["executor: Unknown executor 'rayy'", "Did you mean: ray?"]),
        ("executor: {name: local, processes: -1}\n", ["executor.processes: Input should be greater than or equal to 0"]),
        ("axis:\n  seed: [0]\n", ["axis: Extra inputs are not permitted", "did you mean axes?"]),
        ("seed: 3\n", ["seed is a run-config field: put it under `base:`"]),
        ("base: {epochs: 0}\n", ["invalid base config", "base.epochs"]),
        ("base: missing.yaml\n", ["base:", "does not exist"]),
        ("retries: -1\n", ["retries: Input should be greater than or equal to 0"]),
    ],
)
def test_bad_sweep_files_fail_naming_the_place(manager, tmp_path, text, expected):
    with pytest.raises(SweepError) as info:
        load_sweep(write(tmp_path, text))
    for part in expected:
        assert part in str(info.value)


def test_every_problem_is_reported_at_once(manager, tmp_path):
    with pytest.raises(SweepError) as info:
        load_sweep(write(tmp_path, "axes:\n  loss: [trade]\n  protocol: [ftt]\n"))
    assert "axes.loss[0]" in str(info.value) and "axes.protocol[0]" in str(info.value)


def test_missing_file_and_bad_yaml(manager, tmp_path):
    with pytest.raises(SweepError, match="does not exist"):
        load_sweep(tmp_path / "nope.yaml")
    with pytest.raises(SweepError, match="not valid YAML"):
        load_sweep(write(tmp_path, "axes: [\n"))
