"""rftbench/report and `rftbench report`: the papers' analyses from results folders, entries and the published study."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict

import pytest
from scipy.stats import binomtest, kendalltau

from cli_helpers import run_cli
from report_helpers import record, study, write
from rftbench.errors import RftbenchError
from rftbench.leaderboard.entry import read_entries_jsonl
from rftbench.report import build_report, load_inputs
from rftbench.report._analyses import first_adapted
from rftbench.report._build import md
from rftbench.report._stats import wilson
from rftbench_leaderboard import ENTRIES_DIR


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The published study plus a local study, reported once for the module."""
    root = tmp_path_factory.mktemp("report")
    local = study(root / "runs")
    report = build_report(["guide2025", str(local)], root / "out")
    return report, (root / "out" / "index.html").read_text(), (root / "out" / "report.md").read_text()


def _table(markdown: str, caption: str) -> list[list[str]]:
    """The rows of the Markdown table under ``*caption*`` (cells unescaped)."""
    lines = markdown.split(f"*{md(caption)}*", 1)[1].strip().splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().replace("\\", "") for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_published_win_rate_and_factor_means_match_the_entries(full):
    _, _, markdown = full
    entries = read_entries_jsonl(ENTRIES_DIR / "guide2025.jsonl")
    by = defaultdict(dict)
    for e in entries:
        by[(e.setup.representation, e.setup.dataset, e.setup.protocol, e.setup.epochs)][e.setup.loss] = e.metrics.sum
    fft50 = [v for k, v in by.items() if k[2:] == ("fft", 50)]
    wins = sum(v["trades"] > v["classic_at"] for v in fft50)
    losses = sum(v["trades"] < v["classic_at"] for v in fft50)
    rows = {r[0]: r for r in _table(markdown, "trades vs classic_at on sum")}
    assert rows["FFT-50"][2:4] == [str(wins), str(losses)]
    assert rows["FFT-50"][5] == f"{100 * wins / (wins + losses):.1f}"  # ≈ 75%, the paper's "about 75% of pairs"
    ci = binomtest(wins, wins + losses).proportion_ci(method="wilson")
    assert rows["FFT-50"][6] == f"[{100 * ci.low:.1f}, {100 * ci.high:.1f}]"
    # factor means: clean accuracy by loss over all 1,440 published results
    by_loss = {r[0]: r for r in _table(markdown, "By loss")}
    trades = [e.metrics.clean_acc for e in entries if e.setup.loss == "trades"]
    assert by_loss["trades"][1] == str(len(trades)) and by_loss["trades"][2] == f"{100 * sum(trades) / len(trades):.1f}"
    sizes = [r[0] for r in _table(markdown, "By size")]
    assert sizes[:3] == ["small", "medium", "large"]


def test_rank_agreement_is_scipys_kendall_averaged_over_groups(full):
    _, _, markdown = full
    entries = read_entries_jsonl(ENTRIES_DIR / "guide2025.jsonl")
    groups = defaultdict(list)
    for e in entries:
        groups[(e.setup.dataset, e.setup.protocol, e.setup.epochs)].append((e.metrics.acc("linf:4/255"), e.metrics.acc("l2:2")))
    taus = [kendalltau([a for a, _ in g], [b for _, b in g]).statistic for g in groups.values()]
    taus = [t for t in taus if math.isfinite(t)]
    row = next(r for r in _table(markdown, "Mean rank correlation between threats") if r[:2] == ["L∞ 4/255", "L2 2"])
    assert row[2] == f"{sum(taus) / len(taus):.2f}" and row[4] == str(len(taus))


def test_local_study_sections(full):
    report, html, markdown = full
    figures = {p.name for p in (report.out / "figures").iterdir()}
    assert {"published-factors.png", "published-ranks.png", "published-pareto.png", "eps-val-curves.png",
            "eps-accuracy-vs-eps.png", "transfer-as-vs-lp.png", "cost-robust-vs-epochs.png"} <= figures
    for name in figures:
        assert f"figures/{name}" in html and f"(figures/{name})" in markdown
    rows = _table(markdown, "Per condition (mean ± sd over seeds, %; the pooled clean accuracy with its 95% Wilson interval over all seeds' test points)")
    by_cond = {r[1]: r for r in rows if r[0].startswith("digits · mini_resnet.shapes_standard")}
    # digits has 10 classes: chance + 5 points = 0.15; fixed ε crosses it at epoch 3, the schedule at 1
    assert by_cond["classic_at · ε constant linf 4/255"][7] == "3, 3, 3"
    assert by_cond["classic_at · ε epsilon-scheduling(t1=25%,t2=75%) linf 4/255"][7] == "1, 1, 1"
    assert by_cond["ce (clean fine-tuning)"][3] == "91.0 ± 1.0"
    lo, hi = wilson(0.91, 600)
    assert by_cond["ce (clean fine-tuning)"][4] == f"91.0 [{100 * lo:.1f}, {100 * hi:.1f}]"
    transfer = _table(markdown, "L∞ 4/255 / clean accuracy by protocol (mean ± sd over seeds, %)")
    assert [r[1] for r in transfer] == ["mini_resnet.shapes_robust"]  # the only one fine-tuned with two protocols
    assert transfer[0][4:] == ["31.0 ± 1.0 / 70.0 ± 0.0", "51.0 ± 1.0 / 70.0 ± 0.0"]  # FFT, LP
    assert "Kendall τ between AS and LP robust accuracy = 1.00" in markdown
    cost = _table(markdown, "L∞ 4/255 accuracy per schedule and budget (mean ± sd over seeds, %)")
    assert [r[2] for r in cost if r[0] == "shapes"] == ["constant", "constant", "slow-start-fast-decay(warmup=20%)", "slow-start-fast-decay(warmup=20%)"]


def test_missing_data_is_reported_and_the_rest_written(tmp_path):
    # one dataset, no curves, no expected robustness, no AS, one loss, mixed with a record of another suite
    folder = write(tmp_path / "runs", [record("a" * 16), record("b" * 16, dataset="shapes", threats={"l2:0.5": 0.3})])
    (folder / "broken.json").write_text("{not json")
    (folder / "other.json").write_text(json.dumps({"config": {}, "metrics": {"clean_acc": 7}}))
    report = build_report([str(folder)], tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text()
    missing = "\n".join(report.missing)
    assert "no result carries per-epoch validation curves" in missing
    assert "no result carries the expected_robustness metric's curve" in missing
    assert "no matched trades/classic_at pairs" in missing
    assert "broken.json: not readable JSON" in missing and "other.json: not a valid result record" in missing
    assert "2 different threat suites" in text and "Several datasets are mixed" in text
    assert (tmp_path / "out" / "index.html").is_file() and "Every local result" in text


def test_an_empty_folder_still_writes_a_report(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, out, err = run_cli(capsys, "report", str(tmp_path / "empty"), "-o", str(tmp_path / "out"), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["results"] == 0 and any("no result records or entries found" in m for m in summary["not_drawn"])
    assert "nothing to analyse" in (tmp_path / "out" / "index.html").read_text()


def test_user_errors_exit_2(tmp_path, capsys):
    code, _, err = run_cli(capsys, "report", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out"))
    assert code == 2 and "error:" in err and "no such file or folder" in err and "Traceback" not in err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("keep me")
    (tmp_path / "runs").mkdir()
    code, _, err = run_cli(capsys, "report", str(tmp_path / "runs"), "-o", str(busy))
    assert code == 2 and "not empty and holds no earlier report" in err and (busy / "thesis.tex").read_text() == "keep me"
    # an earlier report is replaced, its stale figures removed
    build_report([str(tmp_path / "runs")], tmp_path / "rep")
    (tmp_path / "rep" / "figures" / "stale.png").write_bytes(b"x")
    build_report([str(tmp_path / "runs")], tmp_path / "rep")
    assert not (tmp_path / "rep" / "figures" / "stale.png").exists()


def test_strings_from_records_are_escaped(tmp_path):
    evil = '<script>alert("x")</script>|*evil*'
    folder = write(tmp_path / "runs", [record("a" * 16, representation=evil, dataset="<img src=x onerror=alert(1)>"),
                                       record("b" * 16, representation=evil, loss="trades")])
    build_report([str(folder)], tmp_path / "out")
    html = (tmp_path / "out" / "index.html").read_text()
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "<img src=x" not in markdown and "<script>" not in markdown
    assert "&lt;script&gt;alert(\"x\")&lt;/script&gt;\\|\\*evil\\*" in markdown


def test_md_escapes_markup():
    assert md("a|b_c*d`e<f>&") == "a\\|b\\_c\\*d\\`e&lt;f&gt;&amp;"


def test_symlinks_out_of_the_folder_are_not_followed(tmp_path):
    outside = write(tmp_path / "outside", [record("c" * 16)])
    folder = write(tmp_path / "runs", [record("a" * 16)])
    (folder / "link.json").symlink_to(outside / f"{'c' * 16}.json")
    loaded = load_inputs([str(folder)])
    assert [r.id for r in loaded.rows] == ["a" * 16]


def test_sweep_file_reads_its_results_dir_and_wilson_matches_scipy(tmp_path):
    write(tmp_path / "study" / "results", [record("a" * 16)])
    (tmp_path / "study" / "sweep.yaml").write_text("results_dir: results\naxes: {seed: [0]}\n")
    loaded = load_inputs([str(tmp_path / "study" / "sweep.yaml")])
    assert [r.id for r in loaded.rows] == ["a" * 16] and loaded.rows[0].family == "convolutional"
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(RftbenchError, match="expected a results folder"):
        load_inputs([str(tmp_path / "notes.txt")])
    assert wilson(0.5, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert first_adapted([0.1, None, 0.2, 0.3], 0.15) == 3 and first_adapted([0.1], 0.5) is None


def test_entry_files_and_collections_are_inputs(tmp_path):
    from leaderboard_helpers import make_entry
    from rftbench.leaderboard.entry import write_entries_jsonl, write_entry

    write_entry(make_entry("1" * 16, clean=0.7), tmp_path / "one.json")
    write_entries_jsonl([make_entry("2" * 16, clean=0.6), make_entry("3" * 16, clean=0.5)], tmp_path / "many.jsonl")
    tampered = make_entry("4" * 16).model_dump(mode="json") | {"submitter": "mallory"}
    (tmp_path / "bad.json").write_text(json.dumps(tampered, default=str))
    loaded = load_inputs([str(tmp_path / "one.json"), str(tmp_path / "many.jsonl"), str(tmp_path / "bad.json")])
    assert sorted(r.clean for r in loaded.rows) == [0.5, 0.6, 0.7] and {r.origin for r in loaded.rows} == {"entry"}
    assert loaded.rows[0].threats["linf:4/255"] == 0.42 and loaded.rows[0].loss == "trades"
    assert len(loaded.problems) == 1 and "bad.json" in loaded.problems[0]


def test_pairs_with_per_example_outcomes_get_paired_tests_as_rftbench_compare(tmp_path):
    import numpy as np

    from rftbench.comparison import adjust, compare
    from rftbench.outcomes import from_evaluation, write_outcomes

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    folder = tmp_path / "runs"
    recs = []
    for seed in range(2):
        for loss, robust_rate in (("trades", 0.55), ("classic_at", 0.40)):
            run_id = f"{loss[:1]}{seed}" + "f" * 14
            logits = rng.normal(size=(400, 10))
            logits[np.arange(400), labels] += 3.0  # mostly correct clean
            robust = rng.random(400) < robust_rate
            outcomes = from_evaluation(logits, labels, {"linf:4/255": {"correct": robust}}, points={"dataset": "digits"})
            ref = write_outcomes(outcomes, (folder / run_id).mkdir(parents=True) or folder / run_id)
            rec = record(run_id, loss=loss, seed=seed, n=400, clean=float(outcomes.clean.mean()), linf=float(robust.mean()))
            rec["metrics"]["outcomes"] = {**ref, "file": f"{run_id}/{ref['file']}"}
            recs.append(rec)
    recs.append(record("c9" + "f" * 14, loss="classic_at", seed=9))  # no outcomes, and no partner
    recs.append(record("t9" + "f" * 14, loss="trades", seed=9))
    write(folder, recs)
    report = build_report([str(folder)], tmp_path / "out")
    markdown = (tmp_path / "out" / "report.md").read_text()
    rows = _table(markdown, "trades vs classic_at, pair by pair on the same test points")
    assert len(rows) == 4  # 2 pairs × (clean, L∞)
    expected = adjust([compare(folder / f"t{s}{'f' * 14}.json", folder / f"c{s}{'f' * 14}.json") for s in range(2)])
    shown = {(r[0].rsplit("seed ", 1)[1], r[1]): r for r in rows}
    for seed, c in enumerate(expected):
        for d in c.differences:
            row = shown[(str(seed), "clean" if d.threat == "clean" else next(k[1] for k in shown if k[1] != "clean"))]
            assert row[8] == f"{d.p_value:.2g}" and row[9] == f"{d.p_holm:.2g}" and row[4] == f"{100 * d.diff:+.1f}"
    assert "1 of 3 pairs have no per-example outcomes" in "\n".join(report.missing)
    assert "differences are significant at 5% after Holm" in markdown
