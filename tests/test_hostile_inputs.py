"""Issue 23 §2: the last hostile inputs, each refused by name (exit 2 / a named problem), never a bug message."""

from __future__ import annotations

import json

import pytest

from rftbench.leaderboard.check import check_files
from rftbench.leaderboard.collect import entries_from_folder
from rftbench.leaderboard.entry import EntryError, load_entry

from tests.cli_helpers import run_cli as run
from tests.leaderboard_helpers import make_entry
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture


def _entry_dict():
    return json.loads(make_entry().to_json())


@pytest.mark.parametrize("where", ["metrics.extra", "threats.extra", "config"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_numbers_in_an_entry_are_named_problems(tmp_path, capsys, where, value):
    data = _entry_dict()
    if where == "metrics.extra":
        data["metrics"]["extra"] = {"x": value}
    elif where == "threats.extra":
        next(iter(data["metrics"]["threats"].values()))["extra"] = {"x": value}
    else:
        data["config"]["lr"] = value
    with pytest.raises(EntryError):  # a mapping (not only a file) is refused too
        load_entry(data)
    path = tmp_path / "entries" / f"{data['id']}.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))  # Python writes NaN / Infinity, which is not JSON
    report = check_files([path])
    assert report.problems and "non-finite" in " ".join(report.problems)
    good = tmp_path / "entries" / "good.json"
    good.write_text(make_entry("0123456789abcdef").to_json())
    problems: list[str] = []
    assert len(entries_from_folder(path.parent, problems=problems)) == 1 and problems  # one bad file skipped, not fatal
    code, _, err = run(capsys, "leaderboard", "check", str(path))
    assert code == 1 and "bug" not in err


def test_an_entry_nested_100000_deep_is_a_named_problem(tmp_path, capsys):
    path = tmp_path / "deep.json"
    path.write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    assert "nested too deeply" in " ".join(check_files([path]).problems)
    code, out, err = run(capsys, "leaderboard", "check", str(path))
    assert code == 1 and "RecursionError" not in err + out and "bug" not in err
    with pytest.raises(EntryError, match="nested too deeply"):
        load_entry(path)


# --------------------------------------------------------------------------- YAML: rows 4, 5, 10


def test_an_integer_over_4300_digits_is_a_named_error_in_config_set_and_card(tmp_path, capsys):
    from rftbench.cards import load_card
    from rftbench.errors import CardError

    big = "9" * 5000
    config = tmp_path / "c.yaml"
    config.write_text(f"seed: {big}\n")
    for argv in (["config", "show", str(config)], ["config", "show", "--set", f"seed={big}"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "4,300 digits" in err and "bug" not in err
        assert len(err) < 1000  # the reason is not buried under the number
    card = tmp_path / "x.y.yaml"
    card.write_text(f"id: x.y\nsource: timm\narch: {big}\n")
    with pytest.raises(CardError, match="4,300 digits"):
        load_card(card, "representation")


def test_a_long_string_aliased_many_times_is_refused_quickly():
    import time

    from rftbench.yamlfile import YamlError, loads

    text = "s: &s " + "x" * (1 << 20) + "\nl: [" + ", ".join(["*s"] * 50_000) + "]\n"
    start = time.process_time()
    with pytest.raises(YamlError, match="characters"):
        loads(text)
    assert time.process_time() - start < 20  # CPU time, not wall clock: it spun > 180 s before
    loads("s: &s " + "x" * 1000 + "\nl: [" + ", ".join(["*s"] * 100) + "]\n")  # ordinary aliases still work


def test_suggestions_are_bounded_in_name_and_candidate_length():
    from rftbench.errors import MAX_SUGGEST_LENGTH, close_matches

    long = "x" * (MAX_SUGGEST_LENGTH + 1)
    assert close_matches(long, [long[:-1]]) == []
    assert close_matches("trade", ["trades", long]) == ["trades"]


def test_a_repeated_merge_key_is_an_error_and_a_merge_list_still_works():
    from rftbench.yamlfile import YamlError, loads

    with pytest.raises(YamlError, match="merge key '<<' appears twice"):
        loads("a: &a {p: 1}\nb: &b {q: 2}\nc: {<<: *a, <<: *b}\n")
    assert loads("a: &a {p: 1}\nb: &b {q: 2}\nc: {<<: [*a, *b], r: 3}\n")["c"] == {"p": 1, "q": 2, "r": 3}


# --------------------------------------------------------------------------- schema: row 7


@pytest.mark.parametrize("assignment, field", [
    ("optimizer.betas=[2, 3]", "optimizer.betas"),
    ("optimizer.betas=[0.9, -0.1]", "optimizer.betas"),
    ("seed=99999999999999999999999", "seed"),
])
def test_out_of_range_values_are_refused_by_the_schema(capsys, assignment, field):
    code, _, err = run(capsys, "config", "show", "--set", assignment)
    assert code == 2 and field in err and "bug" not in err


# --------------------------------------------------------------------------- terminal: row 6


@pytest.mark.parametrize("fmt", ["table", "csv", "jsonl"])
def test_terminal_escapes_in_a_record_are_never_printed_raw(tmp_path, capsys, fmt):
    from rftbench.results import write_record
    from tests.leaderboard_helpers import make_record

    hostile = "evil\x1b]0;pwned\x07\x1b[2J\x9b31m"
    write_record(make_record("a1b2c3d4e5f60718", representation=hostile), tmp_path / "a1b2c3d4e5f60718.json")
    code, out, err = run(capsys, "results", str(tmp_path), "-F", fmt)
    assert code == 0, err
    assert not any(c in out + err for c in "\x1b\x07\x9b"), repr(out)
    assert "evil" in out
    if fmt == "csv":
        assert "\\x1b" in out  # shown, not dropped
        exact = tmp_path / "out.csv"
        assert run(capsys, "results", str(tmp_path), "-F", "csv", "-o", str(exact))[0] == 0
        assert hostile in exact.read_text()  # a file keeps the exact value


# --------------------------------------------------------------------------- devices, outcomes, suites, data: rows 9, 11, 12


@pytest.mark.parametrize("device", ["bogus", "mps", "cuda:99", "cuda:x"])
def test_a_bad_device_is_a_named_error(capsys, device):
    from rftbench.engine.hardware import parse_device
    from rftbench.errors import ConfigError

    with pytest.raises(ConfigError, match="device"):
        parse_device(device)
    code, _, err = run(capsys, "eval", "mini_resnet.shapes_standard", "-d", "digits", "-t", "linf:4/255", "--device", device)
    assert code == 2 and "device=" in err and "bug" not in err


def test_parse_device_accepts_what_torch_and_this_machine_have():
    import torch

    from rftbench.engine.hardware import parse_device

    assert parse_device("cpu") == parse_device(" CPU ") == torch.device("cpu")
    assert parse_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_an_npy_header_that_claims_more_than_the_member_holds_is_refused(tmp_path):
    import hashlib
    import io
    import zipfile

    import numpy as np

    from rftbench.outcomes import OutcomesError, read_outcomes

    header = np.lib.format.header_data_from_array_1_0(np.zeros(2, dtype=np.int64))
    header["shape"] = (10**12,)  # 8 TB claimed, 16 bytes present
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    member.write(np.zeros(2, dtype=np.int64).tobytes())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("format.npy", _npy(np.array([1])))
        archive.writestr("index.npy", member.getvalue())
    path = tmp_path / "forged.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(OutcomesError, match="corrupt or forged"):
        read_outcomes(path, hashlib.sha256(buffer.getvalue()).hexdigest())


def _npy(array):
    import io

    import numpy as np

    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


@pytest.mark.parametrize("suite", ["nosuch.yaml", "linf", {"name": "linf"}])
def test_evaluate_refuses_a_suite_that_is_not_a_list(suite):
    import torch

    from rftbench.errors import ConfigError
    from rftbench.evaluation import evaluate

    data = torch.utils.data.TensorDataset(torch.rand(4, 3, 8, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ConfigError, match="a suite is a list of components"):
        evaluate(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2)), data, suite, progress=False)


def test_results_sort_by_an_unknown_column_is_an_error(tmp_path, capsys):
    from rftbench.results import write_record
    from tests.leaderboard_helpers import make_record

    write_record(make_record("a1b2c3d4e5f60718"), tmp_path / "a1b2c3d4e5f60718.json")
    code, _, err = run(capsys, "results", str(tmp_path), "-s", "clean_ac")
    assert code == 2 and "no column 'clean_ac'" in err and "clean_acc" in err
    assert run(capsys, "results", str(tmp_path), "-s", "-clean_acc")[0] == 0


def test_a_directory_as_config_is_named_as_such(tmp_path, capsys):
    code, _, err = run(capsys, "config", "show", str(tmp_path))
    assert code == 2 and "is a directory" in err


def test_an_empty_train_split_is_named_as_such(monkeypatch):
    import torch

    import rftbench.data as data_mod
    from rftbench.errors import ConfigError
    from rftbench.zoo import get_dataset, get_representation

    empty = torch.utils.data.TensorDataset(torch.zeros(0, 3, 8, 8), torch.zeros(0, dtype=torch.long))
    monkeypatch.setattr(data_mod, "load_splits", lambda *a, **k: {"train": empty, "test": empty})
    with pytest.raises(ConfigError, match="train split is empty"):
        data_mod.build_data(get_representation("mini_resnet.shapes_standard"), get_dataset("digits"), batch_size=4)


# --------------------------------------------------------------------------- plugin author's trial (issue 23 §1)


def test_a_typo_in_a_loss_parameter_gets_did_you_mean(capsys):
    code, _, err = run(capsys, "config", "show", "--set", "loss.bta=3")
    assert code == 2 and "loss.bta" in err and "Did you mean: beta?" in err


def test_version_and_plugins_kind_filters(capsys):
    from importlib.metadata import version

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith(f"rftbench {version('rftbench')}")
    code, out, _ = run(capsys, "plugins", "--kind", "attack", "--json")
    rows = json.loads(out)["plugins"]
    assert rows and all(set(r["contributions"]) == {"attack"} and r["contributions"]["attack"] for r in rows)
    assert {r["name"] for r in rows} == {"attacks"}


def test_plugin_authors_have_public_names_for_architecture_params_and_splits():
    import rftbench
    from rftbench_plugins import datasets
    from rftbench_plugins._architecture import ArchitectureParams as old

    assert rftbench.ArchitectureParams is old and "pretrained" in rftbench.ArchitectureParams.model_fields
    assert rftbench.make_splits is datasets.make_splits and rftbench.DatasetError is datasets.DatasetError
    assert {"ArchitectureParams", "make_splits", "DatasetError"} <= set(rftbench.__all__)


def test_prepare_and_run_leave_the_callers_rng_alone_and_runs_stay_reproducible(engine_manager, tmp_path):
    import torch

    from rftbench import run
    from rftbench.config import load_config
    from rftbench.runner import prepare

    overrides = ["representation=micro_resnet.test", "dataset=digits_small", "epochs=1", "batch_size=16", "loss=trades",
                 "threat={name: linf, eps: 4/255, attack: pgd, steps: 1}", "evaluation=[]", "n_eval=16",
                 f"output_dir={tmp_path / 'runs'}", "seed=5"]
    manager = engine_manager
    config = load_config(overrides=overrides, manager=manager)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    setup = prepare(config, manager)
    assert torch.equal(torch.rand(3), expected)  # the caller's stream continues as if prepare had not run
    again = prepare(config, manager)
    assert torch.equal(setup.rng_state, again.rng_state)  # the build is seeded by config.seed alone
    torch.manual_seed(123)
    first = run(overrides=overrides, manager=manager)
    assert torch.equal(torch.rand(3), expected)  # run too
    second = run(overrides=[*overrides[:-2], f"output_dir={tmp_path / 'runs2'}", "seed=5"], manager=manager)
    timing = {"seconds", "images_per_s"}
    assert first.metrics["clean_acc"] == second.metrics["clean_acc"]
    assert {k: v for k, v in first.curves.items() if k not in timing} == {k: v for k, v in second.curves.items() if k not in timing}
    assert any(k in first.curves for k in ("loss", "train_loss"))  # the training curves themselves are compared


def test_attack_parameters_are_filterable_columns(tmp_path, capsys):
    from rftbench.results import write_record
    from tests.leaderboard_helpers import make_record

    for run_id, decay in (("a" * 16, 0.5), ("b" * 16, 0.9)):
        threat = {"name": "linf", "eps": "4/255", "attack": "apgd-ce", "attack_params": {"decay": decay}}
        write_record(make_record(run_id, threat=threat), tmp_path / f"{run_id}.json")
    code, out, err = run(capsys, "results", str(tmp_path), "-f", "threat.attack_params.decay=0.9", "-F", "jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == ["b" * 16] and rows[0]["threat.attack_params.decay"] == 0.9


def test_one_list_of_plugin_kinds():
    from rftbench import hookspecs
    from rftbench.cards import CARD_CLASSES
    from rftbench.specs import KINDS, SPEC_CLASSES

    assert tuple(hookspecs.HOOK_FOR_KIND) == KINDS
    assert all(callable(getattr(hookspecs, hook)) for hook in hookspecs.HOOK_FOR_KIND.values())  # every derived hook exists
    assert set(SPEC_CLASSES) | set(CARD_CLASSES) == set(KINDS)
