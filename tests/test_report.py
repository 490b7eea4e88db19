"""rftbench/report and `rftbench report`: the papers' analyses from results folders, entries and the published study."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict

import pytest
from scipy.stats import binomtest, kendalltau

from cli_helpers import run_cli
from report_helpers import AS_ORDER, record, study, write
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
    rows = _table(markdown, "Per condition (mean ± sd over seeds, %; 95% interval of the condition's accuracy covering seeds and "
                            "test points, or with one seed its Wilson interval covering the test points only)")
    by_cond = {r[1]: r for r in rows if r[0].startswith("digits · mini_resnet.shapes_standard")}
    # digits has 10 classes: chance + 5 points = 0.15; fixed ε crosses it at epoch 3, the schedule at 1
    assert by_cond["classic_at · ε constant linf 4/255"][8] == "3, 3, 3"
    assert by_cond["classic_at · ε epsilon-scheduling(t1=25%,t2=75%) linf 4/255"][8] == "1, 1, 1"
    assert by_cond["ce (clean fine-tuning)"][3] == "91.0 ± 1.0"
    # the recipe-level interval (seeds and test points), not a Wilson interval pooling 3 × 200 points as if 600
    half = math.hypot(4.302652729911275 * 0.01 / math.sqrt(3), 1.959963984540054 * math.sqrt(0.91 * 0.09 / 200))
    assert by_cond["ce (clean fine-tuning)"][4] == f"[{100 * (0.91 - half):.1f}, {100 * (0.91 + half):.1f}]"
    lo, hi = wilson(0.91, 600)
    assert by_cond["ce (clean fine-tuning)"][4] != f"[{100 * lo:.1f}, {100 * hi:.1f}]"
    transfer = _table(markdown, "L∞ 4/255 / clean accuracy by protocol (mean ± sd over seeds, %)")
    assert [r[1] for r in transfer] == ["mini_resnet.shapes_robust"]  # the only one fine-tuned with two protocols
    assert transfer[0][4:] == ["31.0 ± 1.0 / 70.0 ± 0.0", "51.0 ± 1.0 / 70.0 ± 0.0"]  # FFT, LP
    # the inputs are not monotone in the seed and LP and FFT disagree, so only the right pairing gives this τ
    tau_lp = kendalltau([0.5 + 0.1 * k for k in AS_ORDER], [0.50, 0.51, 0.52]).statistic
    tau_fft = kendalltau([0.5 + 0.1 * k for k in AS_ORDER], [0.32, 0.31, 0.30]).statistic
    assert f"{tau_lp:.2f}" == "0.33" and f"{tau_fft:.2f}" == "-0.33"
    assert f"Kendall τ between AS and LP robust accuracy = {tau_lp:.2f}" in markdown
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
    assert "no result carries a per-epoch validation curve of 2 or more epochs" in missing
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


def test_pairs_with_per_example_outcomes_get_recipe_level_tests_as_rftbench_compare(tmp_path):
    import numpy as np

    from report_helpers import with_outcomes
    from rftbench.comparison import adjust, compare

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    folder = tmp_path / "runs"
    recs = []
    for seed in range(3):
        for loss, robust_rate in (("trades", 0.55), ("classic_at", 0.40)):
            rate = robust_rate + rng.normal(0, 0.02)
            rec = record(f"{loss[:1]}{seed}" + "f" * 14, loss=loss, seed=seed, n=400)
            recs.append(with_outcomes(folder, rec, rng.random(400) < 0.8, rng.random(400) < rate, labels))
    # another setting with one seed per loss: two trained models, said to cover the test points only
    for loss in ("trades", "classic_at"):
        rec = record(f"{loss[:1]}7" + "e" * 14, loss=loss, seed=7, n=400, epochs=9)
        recs.append(with_outcomes(folder, rec, rng.random(400) < 0.8, rng.random(400) < 0.5, labels))
    recs.append(record("c9" + "f" * 14, loss="classic_at", seed=9))  # no outcomes, and no partner
    recs.append(record("t9" + "f" * 14, loss="trades", seed=9))
    write(folder, recs)
    report = build_report([str(folder)], tmp_path / "out")
    markdown = (tmp_path / "out" / "report.md").read_text()
    rows = _table(markdown, "trades vs classic_at per setting on the same test points")
    assert len(rows) == 4  # 2 settings × (clean, L∞)
    recipe = compare([folder / f"t{s}{'f' * 14}.json" for s in range(3)], [folder / f"c{s}{'f' * 14}.json" for s in range(3)])
    model = compare(folder / f"t7{'e' * 14}.json", folder / f"c7{'e' * 14}.json")
    expected = adjust([recipe, model])
    assert expected[0].level == "recipe" and expected[0].paired and expected[1].level == "model"
    shown = [r for r in rows if r[0].endswith("FFT-4")] + [r for r in rows if r[0].endswith("FFT-9")]
    for row, d in zip(shown, [*expected[0].differences, *expected[1].differences]):
        assert row[8] == f"{d.p_value:.2g}" and row[9] == f"{d.p_holm:.2g}" and row[6] == f"{100 * d.diff:+.1f}"
    assert [r[1:3] for r in shown] == [["3 vs 3 (paired)", "seeds + test points"]] * 2 + [["1 vs 1", "test points only (1 run per side)"]] * 2
    assert "2 result(s) have no per-example outcomes" in "\n".join(report.missing)
    assert "differences are significant at 5% after Holm" in markdown and "cover seeds and test points" in markdown
    assert "covers the test points only, not seed-to-seed variation" in markdown


def test_a_one_epoch_run_gets_no_per_epoch_plot(tmp_path):
    one = write(tmp_path / "one", [record("a" * 16, val_acc=[0.4]), record("b" * 16, seed=1, val_acc=[0.5])])
    report = build_report([str(one)], tmp_path / "out1")
    assert not (tmp_path / "out1" / "figures" / "eps-val-curves.png").exists()
    assert any("2 or more epochs" in m for m in report.missing)
    two = write(tmp_path / "two", [record("c" * 16, val_acc=[0.4, 0.6])])
    build_report([str(two)], tmp_path / "out2")
    assert (tmp_path / "out2" / "figures" / "eps-val-curves.png").is_file()


def test_the_heatmap_title_is_never_cut():
    from rftbench.report._figures import _figure, _fitted_title

    title = "Kendall τ between threat models (mean over dataset × protocol)"
    for width in (4.5, 6.0):
        fig = _figure(width, 3.6)
        fig.subplots()
        _fitted_title(fig, title)
        fig.canvas.draw()
        box = fig.texts[0].get_window_extent()
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
        assert " ".join(fig.texts[0].get_text().split()) == title  # wrapped, whole
