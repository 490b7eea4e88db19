"""What a person sees in a terminal: `results`, `zoo list` and the run summary fit 80 and 120 columns, values whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console

from rftbench.cli import _app
from rftbench.cli._fit import FitColumn, build_fitted, fit, wrap
from rftbench.cli.run import summary_table
from rftbench.cli.sweep import _cell
from rftbench.results import read_record
from rftbench.stats import format_accuracy
from rftbench.sweep.export import is_accuracy, load_rows
from tests.cli_helpers import run_cli as cli

STUDIES = Path(__file__).resolve().parents[1] / "examples" / "studies"
STUDY03 = STUDIES / "03-reference-comparisons" / "records"
STUDY02 = STUDIES / "02-robustness-transfer" / "records"
ACCURACY = re.compile(r"\d+\.\d(?: ± \d+\.\d)? \[\d+\.\d, \d+\.\d\]")


@pytest.fixture
def width(monkeypatch, request):
    """The CLI's console set to ``request.param`` characters (Rich's width), as a terminal of that size."""
    monkeypatch.setattr(_app.console, "_width", request.param)
    return request.param


def _body(out: str) -> list[list[str]]:
    """The cells of each line of a rendered table body (lines starting with │)."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]


def _check_fits(out: str, width: int) -> None:
    assert "…" not in out
    table = [line for line in out.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and all(len(line) <= width for line in table), max(map(len, table))


@pytest.mark.parametrize("width", [80, 120], indirect=True)
@pytest.mark.parametrize("group", [False, True])
def test_results_fit_the_terminal_and_show_every_accuracy_whole(capsys, width, group):
    args = ["-g", "representation,loss"] if group else []
    code, out, err = cli(capsys, "results", str(STUDY03 if not group else STUDY02), *args)
    assert code == 0, err
    _check_fits(out, width)
    rows = load_rows(STUDY03 if not group else STUDY02)
    accuracy_cells = [cell for line in _body(out) for cell in line if ACCURACY.fullmatch(cell)]
    assert accuracy_cells, out  # the clean accuracy at least, each on one line, whole
    # every accuracy cell printed is one a row has, as a whole value
    if not group:
        expected = {_cell(r[c], r, c) for r in rows for c in r if is_accuracy(c) and isinstance(r[c], float)}
        assert set(accuracy_cells) <= expected
        assert {_cell(r["clean_acc"], r, "clean_acc") for r in rows} <= set(accuracy_cells)
    # identity columns that vary are shown; those that do not are not (they are named in the caption)
    header = " ".join(line for line in out.splitlines() if line.startswith("┃"))
    assert "representation" in header and "loss" in header
    if not group:
        assert "protocol" in header and "seed" in header and "dataset" not in header and "every row: dataset=textures" in out
        assert "id" not in header.split()  # representation × protocol × loss × seed tell the 24 runs apart
    if width == 80:
        assert "not shown to fit 80 characters" in out and "--wide" in out


def test_results_wide_and_chosen_columns_are_never_cut(capsys, monkeypatch):
    monkeypatch.setattr(_app.console, "_width", 80)
    code, out, _ = cli(capsys, "results", str(STUDY03), "--wide")
    assert code == 0 and "…" not in out and "not shown" not in out
    header = "".join(line for line in out.splitlines() if line.startswith("┃"))
    assert "timings.train_images_per_s" in header and "optimizer.lr_head" in header
    assert max(len(line) for line in out.splitlines()) > 80  # wider than the terminal, uncropped
    code, out, _ = cli(capsys, "results", str(STUDY03), "-c", "id,clean_acc,threats.*.acc")
    assert code == 0 and "…" not in out
    cells = [c for line in _body(out) for c in line]
    assert len([c for c in cells if ACCURACY.fullmatch(c)]) == 24 * 4  # chosen columns are all shown, even past 80


@pytest.mark.parametrize("width", [80, 120], indirect=True)
@pytest.mark.parametrize("kind", ["representation", "dataset"])
def test_zoo_list_fits_and_keeps_ids_whole(capsys, width, kind):
    from rftbench.zoo import list_cards

    code, out, err = cli(capsys, "zoo", "list", "--kind", kind)
    assert code == 0, err
    _check_fits(out, width)
    ids = [line[0] for line in _body(out) if line[0]]  # a wrapped cell adds lines with no id
    assert ids == [c.id for c in list_cards(kind, None, {})]
    assert len(_body(out)[0]) >= 2  # more than the id fits
    code, out, _ = cli(capsys, "zoo", "list", "--kind", kind, "--wide")
    assert code == 0 and "not shown" not in out and "…" not in out


@pytest.mark.parametrize("width", [80, 120], indirect=True)
def test_run_summary_fits_with_accuracies_whole(width):
    path = sorted(STUDY03.glob("*.json"))[0]
    record = read_record(path)
    console = Console(width=width, record=True)
    console.print(summary_table(record, path, width))
    out = console.export_text()
    _check_fits(out, width)
    n = record.metrics["n_examples"]
    lines = out.splitlines()
    for label, result in record.metrics["threats"].items():
        assert any(format_accuracy(result["acc"], result.get("n", n)) in line for line in lines), label
    assert any(format_accuracy(record.metrics["clean_acc"], n) in line for line in lines)
    assert str(path) in "".join(line[1] for line in _body(out) if len(line) > 1)  # the path, wrapped, whole


def test_fit_drops_columns_before_cutting_and_wraps_only_after_punctuation():
    cols = [FitColumn("name", ["mini_resnet.shapes_standard"], breakable=True, required=True),
            FitColumn("clean_acc", ["76.9 [74.2, 79.4]"], required=True),
            FitColumn("threats.linf:4/255.acc", ["35.6 [32.7, 38.6]"]),
            FitColumn("threats.l2:0.25.acc", ["53.1 [50.0, 56.2]"])]
    shown, dropped = fit(cols, 60)
    assert [c.key for c, _ in shown] == ["name", "clean_acc", "threats.linf:4/255.acc"] and [c.key for c in dropped] == ["threats.l2:0.25.acc"]
    table, total, _ = build_fitted(cols, 60)
    assert total <= 60
    assert wrap("threats.linf:4/255.acc", 12) == "threats.\nlinf:4/255.\nacc"  # never inside 4/255
    assert wrap("beta=1.25, inner=ce", 9) == "beta=1.25,\ninner=ce"  # never inside a number
    shown, dropped = fit(cols, 10)  # required columns alone too wide: shown anyway, wider than asked
    assert [c.key for c, _ in shown] == ["name", "clean_acc"] and all(w >= c.min_width() for c, w in shown)


def test_run_summary_names_no_training_threat_for_a_clean_loss(builtins):
    ce = read_record(sorted(STUDY02.glob("*.json"))[0])
    trades = read_record(sorted(STUDY03.glob("*.json"))[0])
    assert ce.config["loss"] == "ce" or ce.config["loss"]["name"] == "ce"
    text = {}
    for name, record in (("ce", ce), ("trades", trades)):
        console = Console(width=120, record=True)
        console.print(summary_table(record, None, 120))
        text[name] = console.export_text()
    assert "none (the loss trains on clean images)" in text["ce"] and "linf (eps=" not in text["ce"]
    assert "linf (eps=4/255" in text["trades"]


def test_results_of_one_run_and_of_none(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(_app.console, "_width", 80)
    code, out, _ = cli(capsys, "results", str(STUDY03), "-f", "seed=0", "-f", "loss=trades", "-f", "protocol=lp",
                       "-f", "representation=*standard")
    header = " ".join(line for line in out.splitlines() if line.startswith("┃"))
    assert code == 0 and "1 results" in out and "id" in header.split() and "clean_acc" in header
    assert "the run:" in out and "loss=trades" in " ".join(out.split())  # its identity, in the caption
    _check_fits(out, 80)
    code, out, _ = cli(capsys, "results", str(tmp_path))
    assert code == 0 and " ".join(out.split()) == f"0 results in {tmp_path}"  # rich may wrap a long path
