"""Import of the reference study's 1,440 published results (the real CSV shipped in leaderboard/data)."""

from __future__ import annotations

import csv
import statistics

import pytest

from rftbench.leaderboard.entry import read_entries_jsonl
from rftbench.leaderboard.errors import EntryError
from rftbench.leaderboard.importer import import_guide2025, import_published
from rftbench_leaderboard import ENTRIES_DIR, GUIDE2025_CSV


@pytest.fixture(scope="module")
def entries():
    return import_guide2025(GUIDE2025_CSV)


def test_all_rows_imported_and_marked(entries):
    assert len(entries) == 1440
    assert len({e.id for e in entries}) == 1440
    assert all(e.source.kind == "imported" and "2508.14079" in e.source.reference for e in entries)
    assert sorted(e.source.row for e in entries) == list(range(1440))
    assert {e.setup.dataset for e in entries} >= {"caltech101", "flowers-102", "stanford_cars"}
    assert {(e.setup.protocol, e.setup.epochs) for e in entries} == {("fft", 50), ("fft", 5), ("lp", 50)}
    assert {e.setup.loss for e in entries} == {"trades", "classic_at"}
    assert {e.model.family for e in entries} == {"convolutional", "attention", "hybrid"}


def test_means_reproduce_the_paper(entries):
    """REFERENCES.md: FFT-50 TRADES means over datasets and backbones: .658 .324 .343 .234 .547."""
    sel = [e for e in entries if (e.setup.protocol, e.setup.epochs, e.setup.loss) == ("fft", 50, "trades")]
    assert len(sel) == 240
    means = [statistics.mean(e.metrics.clean_acc for e in sel)]
    means += [statistics.mean(e.metrics.threats[k].acc for e in sel) for k in ("linf:4/255", "l2:2", "l1:75", "corruptions:3")]
    assert [round(m, 3) for m in means] == [0.658, 0.324, 0.343, 0.234, 0.547]


def test_evaluation_configs_validate_and_labels_are_plain_numbers_off_linf(entries, builtins):
    """The entries' evaluation suite resolves against the built-in threat models (no made-up names)."""
    from rftbench.config import RunConfig, resolve_config
    from rftbench.leaderboard.entry import threat_label

    suites = {repr(e.config["evaluation"]) for e in entries}
    assert len(suites) == 1
    config = dict(entries[0].config, representation="convnext_base.fb_in22k", dataset="caltech101")  # cards in the zoo
    resolved = resolve_config(RunConfig.model_validate(config), builtins)
    by_name = {c.name: c.params for c in resolved.evaluation}
    assert {n: by_name[n]["attack"] for n in ("linf", "l2", "l1")} == dict.fromkeys(("linf", "l2", "l1"), "autoattack")
    assert by_name["corruptions"]["mode"] == "round_robin" and by_name["corruptions"]["severity"] == 3
    assert threat_label("l2", 0.4) == "l2:0.4" and threat_label("l1", 1.0) == "l1:1"
    assert threat_label("linf", 4 / 255) == "linf:4/255" and threat_label("linf", 0.5) == "linf:0.5"


def test_shipped_jsonl_is_the_import_of_the_csv(entries):
    shipped = read_entries_jsonl(ENTRIES_DIR / "guide2025.jsonl")
    assert {e.content_hash for e in shipped} == {e.content_hash for e in entries}


def test_corrupted_row_is_refused(tmp_path):
    rows = list(csv.reader(GUIDE2025_CSV.open()))
    rows[5][2] = "0.9"  # Linf_acc changed, sum/geom not
    bad = tmp_path / "bad.csv"
    csv.writer(bad.open("w", newline="")).writerows(rows)
    with pytest.raises(EntryError, match=r"bad.csv:6: the row's sum/geom .* disagree"):
        import_guide2025(bad)


def test_unknown_values_and_missing_columns(tmp_path):
    rows = list(csv.reader(GUIDE2025_CSV.open()))
    header = rows[0]
    rows[1][header.index("ft_strategy")] = "LP-FT (10 epochs)"
    bad = tmp_path / "bad.csv"
    csv.writer(bad.open("w", newline="")).writerows(rows[:3])
    with pytest.raises(EntryError, match=r"ft_strategy has 'LP-FT \(10 epochs\)'"):
        import_guide2025(bad)
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    with pytest.raises(EntryError, match="missing columns clean_acc"):
        import_guide2025(tmp_path / "cols.csv")
    with pytest.raises(EntryError, match="unknown published source 'nope'"):
        import_published("nope", GUIDE2025_CSV, tmp_path / "x.jsonl")
