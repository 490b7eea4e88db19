"""`rftbench eval TARGET`: run folders, checkpoints, representations with a head; short suite items; bad input."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from rftbench.engine.checkpoint import save_weights
from rftbench.evaluation.suites import named_suite, parse_item
from rftbench.model import build_classifier
from tests.plugins.evaluation import one_thread  # noqa: F401 - fixture
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture
from tests.cli_helpers import run_cli as run

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.usefixtures("one_thread")]

REP, DATA = "micro_resnet.test", "digits_small"


@pytest.fixture
def run_dir(engine_manager, tmp_path):
    """A finished run folder in the engine's on-disk layout: model.safetensors, model.json, config.yaml."""
    torch.manual_seed(0)
    model = build_classifier(REP, 10, pretrained=False, manager=engine_manager)
    folder = tmp_path / "runs" / "abc123"
    folder.mkdir(parents=True)
    sha = save_weights(model, folder / "model.safetensors", metadata={"config_hash": "abc123"})
    (folder / "model.json").write_text(json.dumps({"representation": REP, "num_classes": 10, "config_hash": "abc123", "sha256": sha}))
    (folder / "config.yaml").write_text(yaml.safe_dump({"representation": REP, "dataset": DATA}))
    return folder


def test_parse_short_items():
    assert parse_item("linf:4/255").as_config() == {"name": "linf", "eps": "4/255", "attack": "autoattack"}
    assert parse_item("linf:4/255:apgd-ce").as_config() == {"name": "linf", "eps": "4/255", "attack": "apgd-ce"}
    assert parse_item("l2:0.5:pgd:steps=20").as_config() == {"name": "l2", "eps": "0.5", "attack": "pgd", "steps": 20}
    assert parse_item("corruptions:3").as_config() == {"name": "corruptions", "severity": 3}
    assert parse_item("expected_robustness:eps=8/255,steps=20").as_config() == {"name": "expected_robustness", "eps": "8/255", "steps": 20}
    assert [c.name for c in named_suite("study")] == ["linf", "l2", "l1", "corruptions", "aggregates"]


def test_eval_a_run_folder_writes_result_and_plots(capsys, run_dir):
    code, out, err = run(capsys, "eval", str(run_dir), "-t", "linf:4/255:pgd:steps=2", "-t", "corruptions:3",
                         "-t", "aggregates", "-n", "8", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["n_examples"] == 8 and set(result["threats"]) == {"linf:4/255", "corruptions:3"}
    assert result["target"]["kind"] == "run" and result["target"]["dataset"] == DATA
    written = json.loads((run_dir / "eval" / "evaluation.json").read_text())
    assert written["clean_acc"] == result["clean_acc"]
    assert (run_dir / "eval" / "accuracy_per_threat.png").is_file()


def test_eval_a_checkpoint_and_a_record_path(capsys, run_dir, tmp_path):
    code, out, err = run(capsys, "eval", str(run_dir / "model.safetensors"), "-t", "linf:1/255:fgsm", "-n", "4", "--json",
                         "-o", str(tmp_path / "out"))
    assert code == 0, err
    assert json.loads(out)["target"]["kind"] == "checkpoint" and (tmp_path / "out" / "evaluation.json").is_file()
    record = run_dir.parent / "abc123.json"  # a run's record: the folder beside it is evaluated
    record.write_text("{}")
    code, out, err = run(capsys, "eval", str(record), "-t", "linf:1/255:fgsm", "-n", "4", "--json")
    assert code == 0, err
    assert json.loads(out)["target"]["run_dir"] == str(run_dir)


def test_eval_a_representation_needs_a_head(capsys, run_dir, engine_manager, tmp_path):
    code, out, err = run(capsys, "eval", REP, "-d", DATA, "-t", "linf:1/255:fgsm")
    assert code == 2 and "is not a classifier" in err and "--head" in err
    model = build_classifier(REP, 10, pretrained=False, manager=engine_manager)
    torch.save(model.head.state_dict(), tmp_path / "head.pt")
    code, out, err = run(capsys, "eval", REP, "-d", DATA, "--head", str(tmp_path / "head.pt"), "-t", "linf:1/255:fgsm", "-n", "4", "--json")
    assert code == 0, err
    assert json.loads(out)["target"]["kind"] == "representation"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-t", "linf:8"], "write 8/255"),
        (["-t", "corruptions:9"], "less than or equal to 5"),
        (["-t", "corruptions:3:severity=4"], "severity given twice"),
        (["-t", "corruptions:types=[fog]"], "unknown corruption 'fog'"),
        (["-t", "linf:4/255", "-n", "100000"], "n_examples=100000 is larger than the test set"),
        (["-t", "lnf:4/255"], "Did you mean: linf"),
        ([], "nothing to evaluate"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(capsys, run_dir, argv, message):
    code, out, err = run(capsys, "eval", str(run_dir), *argv)
    assert code == 2 and message in err.replace("\n", " ") and "Traceback" not in err
    assert not (run_dir / "eval").exists()


def test_unknown_target(capsys, engine_manager):
    code, out, err = run(capsys, "eval", "micro_resnet.tset", "-t", "linf:4/255")
    assert code == 2 and "Unknown evaluation target" in err and "micro_resnet.test" in err


def test_suite_files_and_unknown_suites(tmp_path):
    from rftbench.errors import ConfigError, UnknownNameError

    path = tmp_path / "suite.yaml"
    path.write_text("- {name: linf, eps: 4/255, attack: apgd-ce}\n- corruptions\n")
    assert [c.as_config() for c in named_suite(str(path))] == [{"name": "linf", "eps": "4/255", "attack": "apgd-ce"}, {"name": "corruptions"}]
    config = tmp_path / "run.yaml"
    config.write_text("evaluation: [{name: l2, eps: 0.5}]\n")  # a run config's evaluation list
    assert [c.name for c in named_suite(str(config))] == ["l2"]
    with pytest.raises(UnknownNameError, match="Did you mean: study"):
        named_suite("studdy")
    with pytest.raises(ConfigError, match="does not exist"):
        named_suite(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="too many ':' parts"):
        parse_item("corruptions:3:4")


@pytest.mark.parametrize("width", [80, 120])
def test_eval_table_fits_the_terminal_with_accuracies_whole(capsys, run_dir, monkeypatch, width):
    import re

    from rftbench.cli import _app

    monkeypatch.setattr(_app.console, "_width", width)
    code, out, err = run(capsys, "eval", str(run_dir), "-t", "linf:4/255:pgd:steps=2", "-t", "corruptions:3", "-n", "8")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line[:1] in "┏┃┡│└"]
    assert lines and all(len(line) <= width for line in lines) and "…" not in out
    values = [line.split("│")[2].strip() for line in lines if line.startswith("│") and "accuracy" in line]
    # clean, L∞, corruptions and the union over both (union_all)
    assert len(values) == 4 and all(re.fullmatch(r"\d+\.\d% \[\d+\.\d, \d+\.\d\]", v) for v in values), values
