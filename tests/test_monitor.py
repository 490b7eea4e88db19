"""In-training evaluation (monitor), Pareto AUC, best-by-robust, early warnings, cost on every result."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from rftbench import run
from rftbench.config import load_config
from rftbench.engine import RunInterrupted
from rftbench.errors import ConfigError
from rftbench.evaluation.pareto import pareto_auc, pareto_front
from rftbench.results import read_record
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def tiny(tmp_path: Path, **extra) -> list[str]:
    values = {
        "representation": "micro_resnet.test", "dataset": "digits_small", "epochs": 2, "batch_size": 16,
        "threat": "{name: linf, eps: 4/255, attack: pgd, steps: 2}", "loss": "trades",
        "evaluation": "[{name: linf, eps: 4/255, attack: pgd, steps: 3}]", "n_eval": 16,
        "output_dir": str(tmp_path / "runs"), "optimizer.lr_backbone": 0.01, "optimizer.lr_head": 0.01,
        "seed": 0, "monitor.n": 12, "monitor.threat": "{name: linf, eps: 4/255, attack: apgd-ce, steps: 3}",
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items() if v is not None]


# ---------------------------------------------------------------------- Pareto AUC


def test_pareto_auc_is_the_area_under_the_staircase_frontier():
    assert pareto_auc([0.5], [0.4]) == pytest.approx(0.2)  # one point: a rectangle from the origin
    # (0.9, 0.1) and (0.5, 0.4) are on the front; (0.4, 0.3) is dominated by (0.5, 0.4)
    assert pareto_front([0.9, 0.5, 0.4], [0.1, 0.4, 0.3]) == [(0.5, 0.4), (0.9, 0.1)]
    assert pareto_auc([0.9, 0.5, 0.4], [0.1, 0.4, 0.3]) == pytest.approx(0.5 * 0.4 + 0.4 * 0.1)
    assert pareto_auc([1.0], [1.0]) == 1.0 and pareto_auc([], []) is None
    with pytest.raises(ValueError, match="not a fraction"):
        pareto_auc([float("nan")], [0.1])


# ---------------------------------------------------------------------- config / bad input


def test_monitor_config_is_validated_and_absent_keeps_hashes(engine_manager, tmp_path):
    plain = load_config(overrides=tiny(tmp_path, **{"monitor.n": None, "monitor.threat": None}), manager=engine_manager)
    assert "monitor" not in plain.to_dict() and plain.monitor is None
    with pytest.raises(ConfigError, match="monitor.every_steps"):
        load_config(overrides=tiny(tmp_path, **{"monitor.every_steps": 0}), manager=engine_manager)
    with pytest.raises(ConfigError, match=r"monitor.threat: Unknown threat model 'linfx'"):
        load_config(overrides=tiny(tmp_path, **{"monitor.threat": "linfx"}), manager=engine_manager)


def test_a_subset_larger_than_the_val_split_is_refused_before_training(engine_manager, tmp_path):
    with pytest.raises(ConfigError, match=r"monitor.n: 5000 is more than the \d+ images of the val split"):
        run(overrides=tiny(tmp_path, **{"monitor.n": 5000}), manager=engine_manager)
    assert not list((tmp_path / "runs").glob("*.json"))


def test_cli_bad_monitor_input_is_an_error_line_and_exit_2(engine_manager, tmp_path, capsys):
    from rftbench.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["run", *[a for o in tiny(tmp_path, **{"monitor.every_steps": 0}) for a in ("--set", o)]])
    code, err = exit_.value.code, capsys.readouterr().err
    assert code == 2 and "error:" in err and "monitor.every_steps" in err and "Traceback" not in err


# ---------------------------------------------------------------------- curves, record, resume


def test_monitor_curves_auc_and_cost_in_the_record(engine_manager, tmp_path):
    record = run(overrides=tiny(tmp_path), manager=engine_manager)
    mon = record.monitor
    assert mon["threat"] == "linf:4/255" and mon["n"] == 12
    pts = mon["points"]
    per_epoch = record.cost["train"]["steps"] // 2
    assert pts["epoch"] == [1.0, 2.0] and pts["step"] == [per_epoch, 2 * per_epoch]
    assert all(0 <= v <= 1 for v in pts["clean_acc"] + pts["robust_acc"])
    assert all(r <= c for c, r in zip(pts["clean_acc"], pts["robust_acc"]))
    assert mon["pareto_auc"] == pytest.approx(pareto_auc(pts["clean_acc"], pts["robust_acc"]))
    assert mon["kept"] == {"keep": "last"}
    cost = record.cost
    train = cost["train"]
    steps = train["steps"]
    assert steps == 2 * per_epoch and train["flops"] > 0 and train["flops_per_step"] == train["flops"] // steps
    # TRADES + PGD-2, per step: 2 attack forwards and backwards (to the input), then the clean and the adversarial
    # batch (apart: the micro net's batch norms train) forward and backward: 4 passes of 16 images each way
    assert train["forward_passes"] == 4 * steps and train["backward_passes"] == 4 * steps, train
    assert train["forward_images"] == 64 * steps and train["backward_images"] == 64 * steps
    assert cost["monitor"]["points"] == 2 and cost["monitor"]["forward_images"] > 0 and cost["monitor"]["flops"] > 0
    phases = cost["evaluation"]["phases"]
    assert set(phases) == {"clean", "linf:4/255"} and phases["clean"]["forward_images"] == 16
    assert phases["clean"]["backward_passes"] == 0 and phases["linf:4/255"]["backward_passes"] > 0
    assert phases["clean"]["flops"] == 16 * cost["flops_per_image"]["forward"]
    assert cost["device_seconds"] > 0 and cost["device_seconds_unit"] == "core-seconds"
    assert cost["peak_host_memory_bytes"] > 10_000_000 and cost["peak_device_memory_bytes"] is None


def test_the_monitor_does_not_change_what_training_computes(engine_manager, tmp_path):
    plain = run(overrides=tiny(tmp_path / "a", **{"monitor.n": None, "monitor.threat": None}), manager=engine_manager)
    watched = run(overrides=tiny(tmp_path / "b"), manager=engine_manager)
    assert plain.curves["train_loss"] == watched.curves["train_loss"]
    assert _weights(plain) == _weights(watched)
    assert plain.metrics["threats"] == watched.metrics["threats"] or _same_accuracy(plain, watched)


def _weights(record) -> dict:
    from safetensors.torch import load_file

    return {k: v.tolist() for k, v in load_file(str(Path(record.run_dir) / "model.safetensors")).items()}


def _same_accuracy(a, b) -> bool:
    return all(a.metrics["threats"][k]["acc"] == b.metrics["threats"][k]["acc"] for k in a.metrics["threats"])


def test_every_n_steps_and_a_resumed_run_keeps_its_curve(engine_manager, tmp_path):
    whole = run(overrides=tiny(tmp_path / "a", **{"monitor.every_steps": 4}), manager=engine_manager)
    assert whole.monitor["points"]["step"] == [4, 8, 12]

    def ctrl_c(trainer, epoch, step):
        if (epoch, step) == (1, 2):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(RunInterrupted):
        run(overrides=tiny(tmp_path / "b", **{"monitor.every_steps": 4}), manager=engine_manager, callback=ctrl_c)
    folder = tmp_path / "b" / "runs" / whole.id / "checkpoints"
    manifest = json.loads((folder / (folder / "LATEST").read_text().strip() / "manifest.json").read_text())
    assert manifest["monitor"]["step"] == [4, 8]  # the checkpoint's manifest carries the curve so far
    resumed = run(overrides=tiny(tmp_path / "b", **{"monitor.every_steps": 4}), manager=engine_manager)
    assert resumed.monitor["points"] == whole.monitor["points"] | {"seconds": resumed.monitor["points"]["seconds"]}
    assert resumed.provenance["resumed_from_steps"] and _weights(resumed) == _weights(whole)


# ---------------------------------------------------------------------- best-robust, warnings, stop


def _scripted(monkeypatch, robust: list[float], clean: list[float] | None = None) -> None:
    """Make the monitor report these robust accuracies, one per point (the weights are still the run's own)."""
    from rftbench.engine.monitor import Monitor

    values = iter(zip(clean or [0.9] * len(robust), robust))

    def point(self, model):
        c, r = next(values)
        return {"clean_acc": c, "robust_acc": r, "seconds": 0.0}

    monkeypatch.setattr(Monitor, "point", point)


def test_best_robust_keeps_the_weights_of_the_best_point(engine_manager, tmp_path, monkeypatch):
    constant = {"lr_schedule": "constant"}
    first_epoch = run(overrides=tiny(tmp_path / "a", epochs=1, **constant, **{"monitor.n": None, "monitor.threat": None}),
                      manager=engine_manager)
    _scripted(monkeypatch, [0.5, 0.2])
    best = run(overrides=tiny(tmp_path / "b", **constant, **{"monitor.keep": "best-robust"}), manager=engine_manager)
    assert best.monitor["kept"]["keep"] == "best-robust" and best.monitor["kept"]["epoch"] == 1.0
    assert best.monitor["kept"]["robust_acc"] == 0.5
    assert _weights(best) == _weights(first_epoch)  # the epoch-1 weights were evaluated and saved, not the last
    _scripted(monkeypatch, [0.5, 0.2])
    last = run(overrides=tiny(tmp_path / "c", **constant), manager=engine_manager)
    assert last.monitor["kept"] == {"keep": "last"} and _weights(last) != _weights(first_epoch)


def test_robust_collapse_is_recorded_printed_and_stops_the_run(engine_manager, tmp_path, monkeypatch, caplog):
    _scripted(monkeypatch, [0.5, 0.45, 0.1, 0.1])
    record = run(overrides=tiny(tmp_path / "a", epochs=4), manager=engine_manager)
    names = [w["name"] for w in record.warnings]
    assert "robust-collapse" in names and record.status == "complete"
    collapse = next(w for w in record.warnings if w["name"] == "robust-collapse")
    assert collapse["epoch"] == 3.0 and "45.0% → 10.0%" in collapse["message"]
    assert any("robust-collapse" in r.getMessage() for r in caplog.records)  # printed when it happened

    _scripted(monkeypatch, [0.5, 0.45, 0.4, 0.4])  # drops of 5 points: under the 10-point threshold
    calm = run(overrides=tiny(tmp_path / "b", epochs=4), manager=engine_manager)
    assert "robust-collapse" not in [w["name"] for w in calm.warnings]

    _scripted(monkeypatch, [0.5, 0.45, 0.1, 0.1])
    stopped = run(overrides=tiny(tmp_path / "c", epochs=4, **{"monitor.stop_on_warning": "true",
                                                               "monitor.warnings.adaptation_share": 1.0}),
                  manager=engine_manager)
    assert stopped.status == "stopped" and stopped.stopped["name"] == "robust-collapse"
    assert stopped.curves["epoch"] == [1, 2, 3] and stopped.metrics["clean_acc"] is not None
    assert read_record(Path(stopped.run_dir).with_suffix(".json")).status == "stopped"


def test_task_adaptation_failing_is_warned_from_a_real_run(engine_manager, tmp_path):
    record = run(overrides=tiny(tmp_path, **{"optimizer.lr_backbone": 1e-9, "optimizer.lr_head": 1e-9,
                                             "monitor.n": None, "monitor.threat": None}), manager=engine_manager)
    # no monitor needed: the epoch's clean val accuracy is checked; 1e-9 learning rates leave it near chance (10%)
    assert record.curves["val_acc"][0] < 0.15
    warning = next(w for w in record.warnings if w["name"] == "task-adaptation")
    assert warning["epoch"] == 1 and "below chance + 5 points" in warning["message"]


def test_warning_checks_fire_only_past_their_thresholds():
    from rftbench.config import WarningsConfig
    from rftbench.engine.monitor import EarlyWarnings

    w = EarlyWarnings(WarningsConfig(adaptation_share=0.5), num_classes=10, epochs=4)
    assert w.check_accuracy({"epoch": 1.0}, 0.05) == []  # before the share of training
    assert w.check_accuracy({"epoch": 2.0}, 0.16) == []  # above chance + 5
    assert [x["name"] for x in w.check_accuracy({"epoch": 2.0}, 0.14)] == ["task-adaptation"]
    assert w.check_accuracy({"epoch": 3.0}, 0.14) == []  # raised once
    w = EarlyWarnings(WarningsConfig(divergence_window=2, divergence_ratio=1.5), num_classes=10, epochs=9)
    assert w.check_loss({"epoch": [1, 2, 3], "train_loss": [1.0, 1.2, 1.4]}, 3) == []  # rising, but < 1.5 × best
    assert w.check_loss({"epoch": [1, 2, 3, 4], "train_loss": [1.0, 2.0, 1.9, 2.5]}, 4) == []  # not rising 2 in a row
    found = w.check_loss({"epoch": [1, 2, 3, 4], "train_loss": [1.0, 0.9, 1.2, 1.6]}, 4)
    assert [x["name"] for x in found] == ["loss-divergence"] and found[0]["epoch"] == 4


def test_robust_collapse_ignores_noise_near_chance_and_within_sampling_error():
    from rftbench.config import WarningsConfig
    from rftbench.engine.monitor import EarlyWarnings

    def collapse(robust, n=100):
        w = EarlyWarnings(WarningsConfig(), num_classes=10, epochs=4, n=n)
        points = {"epoch": list(range(1, len(robust) + 1)), "step": list(range(1, len(robust) + 1)), "robust_acc": robust}
        return [x["name"] for x in w.check_robust(points)]

    assert collapse([0.13, 0.01]) == []  # 13% → 1% with chance at 10%: never learnt, noise (seen on digits at ε = 16/255)
    assert collapse([0.45, 0.33], n=12) == []  # 12 points down on 12 images: within 2 standard errors
    assert collapse([0.45, 0.33], n=1000) == ["robust-collapse"]
    assert collapse([0.45, 0.10]) == ["robust-collapse"]
    assert collapse([0.45, 0.10], n=None) == ["robust-collapse"]  # no n known: the threshold alone

    def gap(train_acc, robust_acc, n=100):
        w = EarlyWarnings(WarningsConfig(), num_classes=10, epochs=4, n=n)
        return [x["name"] for x in w.check_gap(train_acc, robust_acc, {"epoch": 3, "step": 30})]

    assert gap(0.65, 0.0) == ["robust-collapse"]  # study 06's FGSM at ε = 0.2: FGSM accuracy 65%, PGD-10 0%
    assert gap(0.39, 0.31) == [] and gap(0.44, 0.16) == []  # N-FGSM there; the largest gap of a run that became robust
    assert gap(None, 0.0) == [] and gap(0.65, None) == []
    assert gap(0.8, 0.4, n=5) == [] and gap(0.8, 0.4, n=100) == ["robust-collapse"]  # 40 points on 5 images: noise
    lenient = EarlyWarnings(WarningsConfig(collapse_gap=0.7), num_classes=10, epochs=4, n=100)
    assert lenient.check_gap(0.65, 0.0, {"epoch": 3}) == []  # the threshold is monitor.warnings.collapse_gap
    assert "gap > 70 points" in lenient.check_gap(0.75, 0.0, {"epoch": 3})[0]["message"]


def test_collapse_gap_at_its_default_keeps_monitored_hashes_and_enters_them_when_set(tmp_path):
    base = load_config(overrides=["monitor={}"]).config_hash()
    assert "collapse_gap" not in load_config(overrides=["monitor={}"]).to_dict()["monitor"]["warnings"]
    assert load_config(overrides=["monitor.warnings.collapse_gap=0.35"]).config_hash() == base
    assert load_config(overrides=["monitor.warnings.collapse_gap=0.5"]).config_hash() != base
    with pytest.raises(ConfigError, match="collapse_gap"):
        load_config(overrides=["monitor.warnings.collapse_gap=0"])


def test_gap_form_silent_on_the_shipped_study_06_single_step_runs():
    """Replayed on the records of study 06 (ε = 8/255; N-FGSM, FGSM-RS, FGSM, all became robust): no epoch shows the gap."""
    from rftbench.config import WarningsConfig
    from rftbench.engine.monitor import COLLAPSE_GAP, EarlyWarnings

    checked, largest = 0, 0.0
    for path in sorted((Path(__file__).parents[1] / "examples/studies/06-fast-at/records").glob("*.json")):
        record = json.loads(path.read_text())
        config, monitor = record["config"], record.get("monitor") or {}
        if not isinstance(config.get("threat"), dict) or config["threat"].get("steps") != 1 or not monitor.get("points"):
            continue
        w = EarlyWarnings(WarningsConfig(), num_classes=10, epochs=config["epochs"], n=monitor["n"])
        points = monitor["points"]
        for epoch, train_acc in enumerate(record["curves"]["train_acc"], start=1):
            robust = [r for e, r in zip(points["epoch"], points["robust_acc"]) if e <= epoch + 1e-9][-1]
            assert w.check_gap(train_acc, robust, {"epoch": epoch}) == [], (path.name, epoch)
            largest, checked = max(largest, train_acc - robust), checked + 1
    assert checked >= 40  # 9 single-step runs × 5 epochs
    assert largest < COLLAPSE_GAP < largest + 0.3  # the rule is not silent by a threshold out of reach


def test_loss_divergence_from_a_real_run(engine_manager, tmp_path):
    def blow_up(trainer, epoch, step):  # the head's weights grow every step: the loss climbs epoch after epoch
        with torch.no_grad():
            for p in trainer.model.head.parameters():
                p.mul_(1.15)

    record = run(overrides=tiny(tmp_path, epochs=4, **{"monitor.warnings.divergence_window": 2,
                                                        "monitor.warnings.divergence_ratio": 1.2}),
                 manager=engine_manager, callback=blow_up)
    losses = record.curves["train_loss"]
    assert losses[-1] > losses[-2] > losses[-3]
    assert "loss-divergence" in [w["name"] for w in record.warnings]


def test_cli_stop_on_warning_and_summary(engine_manager, tmp_path, monkeypatch, capsys):
    from rftbench.cli import main

    _scripted(monkeypatch, [0.5, 0.1])
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--no-progress", "--stop-on-warning", *[a for o in tiny(tmp_path) for a in ("--set", o)]])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "stopped early" in out and "Pareto" in out and "core-" in out and "MFLOP" in out


# ---------------------------------------------------------------------- results, curves, hostile records


def test_results_show_auc_and_cost_draw_curves_and_leave_out_bad_curves(engine_manager, tmp_path, capsys):
    from rftbench.cli import main

    record = run(overrides=tiny(tmp_path), manager=engine_manager)
    runs = tmp_path / "runs"
    data = json.loads((runs / f"{record.id}.json").read_text())
    nan = dict(data, id="a" * 16)
    nan["monitor"] = dict(data["monitor"], points=dict(data["monitor"]["points"], robust_acc=[float("nan"), 0.1]))
    (runs / f"{'a' * 16}.json").write_text(json.dumps(nan))  # json writes NaN, as another tool might
    disorder = dict(data, id="b" * 16, curves=dict(data["curves"], epoch=[2, 1]))
    (runs / f"{'b' * 16}.json").write_text(json.dumps(disorder))
    legacy = dict(data, id="c" * 16)
    for key in ("cost", "monitor", "warnings"):
        legacy.pop(key)
    (runs / f"{'c' * 16}.json").write_text(json.dumps(legacy))
    png = tmp_path / "curves.png"
    with pytest.raises(SystemExit) as exit_:
        main(["results", str(runs), "--curves", str(png), "-c", "id,pareto_auc,cost.flops,cost.device_seconds"])
    captured = capsys.readouterr()
    out, err = captured.out, " ".join(captured.err.split())
    assert exit_.value.code == 0
    assert "monitor curve 'robust_acc' has a non-finite value" in err and "epochs are out of order" in err
    assert record.id in out and "c" * 16 in out and "a" * 16 not in out and "b" * 16 not in out
    assert f"{record.monitor['pareto_auc']:.4g}" in out
    assert "unknown" in out  # the legacy record's cost: unknown, not 0
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit) as exit_:
        main(["results", str(runs), "--curves", str(tmp_path / "curves.svg")])
    assert exit_.value.code == 2 and "PNG" in capsys.readouterr().err

    # the report: curves of the runs, their AUC and cost; the bad records left out with the reason, the rest shown
    from rftbench.report import build_report

    report = build_report([str(runs)], tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Robustness over the course of fine-tuning" in text and f"{record.monitor['pareto_auc']:.3f}" in text
    assert (tmp_path / "report" / "figures" / "in-training-curves.png").is_file()
    assert (tmp_path / "report" / "figures" / "robust-vs-cost.png").is_file()
    assert "What each result cost" in text and "unknown" in text  # the legacy record
    assert any("non-finite" in m for m in report.missing) or "non-finite" in text


# ---------------------------------------------------------------------- leaderboard


def test_entries_carry_cost_and_pareto_auc_and_the_site_shows_unknown_cost():
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from leaderboard_helpers import DATE, make_record
    from rftbench.leaderboard.build import render_site
    from rftbench.leaderboard.records import entry_from_record
    from rftbench.plugins import PluginManager

    record = make_record("d" * 16).model_copy(update={
        "cost": {"flops": 3_400_000_000, "device_seconds": 12.5, "device_seconds_unit": "core-seconds",
                 "peak_host_memory_bytes": 2_000_000_000, "peak_device_memory_bytes": None, "device_type": "cpu",
                 "train": {"flops_per_step": 1000, "forward_passes": 40, "backward_passes": 40},
                 "evaluation": {"flops": 500, "phases": {"clean": {"forward_passes": 2, "backward_passes": 0}}}},
        "monitor": {"pareto_auc": 0.42, "points": {"epoch": [1.0], "clean_acc": [0.6], "robust_acc": [0.7]}},
    })
    costed = entry_from_record(record, submitter="alice", date=DATE, manager=PluginManager())
    assert costed.metrics.pareto_auc == 0.42
    assert costed.cost.flops == 3_400_000_000 and costed.cost.peak_memory_bytes == 2_000_000_000
    assert costed.cost.eval_forward_passes == 2 and costed.cost.device_seconds_unit == "core-seconds"
    plain = entry_from_record(make_record("e" * 16), submitter="alice", date=DATE, manager=PluginManager())
    assert plain.cost is None and plain.metrics.pareto_auc is None
    html = render_site([("local", costed), ("local", plain)])
    assert "3.4 GFLOP" in html and "0.420" in html and 'id="plot-cost"' in html
    plain_row = html[html.index(f'data-id="{plain.id}"'):]
    plain_row = plain_row[: plain_row.index("</tr>")]
    assert plain_row.count("unknown") >= 3 and "0 FLOP" not in plain_row  # no cost: unknown, never 0


# ---------------------------------------------------------------------- sweeps: ASHA on the robust curve


def test_a_tune_trial_reports_the_validation_robust_accuracy_per_epoch(engine_manager, tmp_path):
    from rftbench.sweep.trial import tune_trial

    overrides = tiny(tmp_path)
    rows = []
    tune_trial(load_config(overrides=overrides, manager=engine_manager), rows.append, manager=engine_manager)
    assert [r["epoch"] for r in rows] == [1, 2] and all("val_robust_acc" in r and "val_pareto_auc" in r for r in rows)
    record = run(overrides=overrides, manager=engine_manager)  # the same training and the same monitor points
    assert [r["val_robust_acc"] for r in rows] == record.monitor["points"]["robust_acc"]
    assert rows[-1]["val_pareto_auc"] == pytest.approx(record.monitor["pareto_auc"])


def test_tuning_on_robust_accuracy_needs_a_monitor(engine_manager, tmp_path):
    from rftbench.sweep.tune import tune

    plain = load_config(overrides=tiny(tmp_path, **{"monitor.n": None, "monitor.threat": None}), manager=engine_manager)
    with pytest.raises(ConfigError, match="add a `monitor:` section"):
        tune(plain, metric="val_robust_acc", mode="max", manager=engine_manager, results_dir=tmp_path / "tune")
    with pytest.raises(ConfigError, match="--mode max"):
        tune(load_config(overrides=tiny(tmp_path), manager=engine_manager), metric="val_robust_acc", mode="min",
             manager=engine_manager, results_dir=tmp_path / "tune")


@pytest.mark.slow
def test_asha_prunes_on_the_validation_robust_accuracy(engine_manager, tmp_path):
    pytest.importorskip("ray.tune")
    from rftbench.sweep.tune import tune

    config = load_config(overrides=tiny(tmp_path, epochs=2), manager=engine_manager)
    ranges = {"lr_backbone": (1e-4, 1e-2), "lr_head": (1e-4, 1e-2)}
    result = tune(config, trial="tests.test_engine_tune:micro_trial", ranges=ranges, num_samples=2, num_cpus=2,
                  metric="val_robust_acc", mode="max", results_dir=tmp_path / "tune", seed=0, manager=engine_manager)
    finished = [t for t in result.trials if t["epochs"] == 2]
    assert finished and result.value == max(t["val_robust_acc"] for t in finished) and 0 <= result.value <= 1


def test_one_corruption_severity_is_monitored_and_a_non_corruption_is_refused(engine_manager, tmp_path):
    record = run(overrides=tiny(tmp_path, epochs=1, **{"monitor.corruption": "{name: corruptions, severity: 2}"}),
                 manager=engine_manager)
    assert record.monitor["corruption"] == "corruptions:2" or record.monitor["corruption"].startswith("corruptions")
    values = record.monitor["points"]["corruption_acc"]
    assert len(values) == 1 and 0 <= values[0] <= 1
    with pytest.raises(ConfigError, match="monitor.corruption: .* is not a corruption threat model"):
        run(overrides=tiny(tmp_path, **{"monitor.corruption": "{name: l2, eps: 0.5}"}), manager=engine_manager)


def test_stop_on_warning_mid_epoch_with_every_steps(engine_manager, tmp_path, monkeypatch):
    _scripted(monkeypatch, [0.6, 0.1, 0.1, 0.1])
    record = run(overrides=tiny(tmp_path, **{"monitor.every_steps": 2, "monitor.stop_on_warning": "true",
                                             "monitor.warnings.adaptation_share": 1.0}), manager=engine_manager)
    assert record.status == "stopped" and record.stopped["name"] == "robust-collapse" and record.stopped["step"] == 4
    assert record.monitor["points"]["step"] == [2, 4] and record.timings["train_seconds"] > 0
    assert record.cost["train"]["steps"] == 4


# Study 06's catastrophic overfitting (examples/studies/06-fast-at/README.md, run 13): plain FGSM at ε = 0.2 with an ε
# warm-up on the wide mini ResNet never becomes robust (PGD-10 ~0%) while its accuracy on its own FGSM points rises;
# N-FGSM, the same in every other respect, becomes robust.
_CO_RUN = {"dataset": "digits", "representation": "mini_resnet_wide.scenes_robust", "protocol": "fft", "loss": "classic_at",
           "epochs": "8", "lr_schedule": "constant", "optimizer.lr_backbone": "0.005", "optimizer.lr_head": "0.01",
           "n_eval": "100", "device": "cpu", "eps_schedule": "{name: linear-warmup, warmup: 40%, start: 0.0}",
           "evaluation": "[{name: linf, eps: 0.2, attack: pgd, steps: 10}]",
           "monitor": "{n: 100, threat: {name: linf, eps: 0.2, attack: pgd, steps: 10}}"}


@pytest.mark.slow
def test_a_real_catastrophic_overfitting_is_flagged(tmp_path):
    """~60 core-seconds: the real runner, the real monitor; the flag comes from the curves of a real run (plain FGSM).

    The other side (single-step runs that became robust are not flagged) is replayed on study 06's records above.
    """
    settings = {**_CO_RUN, "output_dir": str(tmp_path), "threat": "{name: linf, eps: 0.2, attack: fgsm, random_start: false}"}
    record = run(overrides=[f"{k}={v}" for k, v in settings.items()])
    robust, train_acc = record.monitor["points"]["robust_acc"], record.curves["train_acc"]
    names = [w["name"] for w in record.warnings]
    assert max(robust) < 0.15 and train_acc[-1] > 0.4, (robust, train_acc)  # never robust, its FGSM accuracy high
    assert "robust-collapse" in names, (robust, train_acc, record.warnings)
    assert record.metrics["threats"]["linf:51/255"]["acc"] < 0.05


def test_step_flops_are_counted_once_per_signature_and_scaled_to_a_shorter_batch(engine_manager, tmp_path, monkeypatch):
    """The epoch's last, shorter batch is charged the counted step's FLOPs scaled by batch size — exactly its own count."""
    from rftbench.engine import Trainer, cost
    from rftbench.runner import prepare

    config = load_config(overrides=tiny(tmp_path, **{"monitor.n": None, "monitor.threat": None}), manager=engine_manager)
    setup = prepare(config, engine_manager)
    trainer = Trainer(config, setup.model, setup.data, setup.parts, device=setup.device, precision=setup.precision,
                      channels_last=setup.channels_last, run_dir=None, progress=False, manager=engine_manager)
    x, y = next(iter(setup.data.train_loader))
    eps = trainer.base_eps
    _, own_16 = cost.count_flops(trainer.step, x, y, eps, update=False)
    _, own_10 = cost.count_flops(trainer.step, x[:10], y[:10], eps, update=False)
    assert own_10 == own_16 * 10 // 16 > 0  # linear in the batch: what the scaling relies on

    calls = []
    real = cost.count_flops
    monkeypatch.setattr(cost, "count_flops", lambda *a, **k: calls.append(1) or real(*a, **k))
    flops = cost.StepFlops()
    signature = (tuple(x.shape[1:]), True, False, 0)
    assert flops.run(signature, 16, trainer.step, x, y, eps, update=False)[1] == own_16
    assert flops.run(signature, 10, trainer.step, x[:10], y[:10], eps, update=False)[1] == own_10
    assert flops.run(signature, 16, trainer.step, x, y, eps, update=False)[1] == own_16
    assert len(calls) == 1  # counted once; the other shape was scaled, not counted again
