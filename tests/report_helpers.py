"""Result records in the engine's shape for the report tests (no training involved)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROVENANCE = {"plugins": {"representation": {"name": "mini_resnet.shapes_standard", "plugin": "offline"},
                          "dataset": {"name": "digits", "plugin": "offline"}}}


def record(run_id: str, *, clean: float = 0.8, linf: float = 0.4, loss: Any = "classic_at", seed: int = 0,
           eps_schedule: Any = "constant", lr_schedule: Any = "cosine", protocol: str = "fft", epochs: int = 4,
           representation: str = "mini_resnet.shapes_standard", dataset: str = "digits", n: int = 200,
           val_acc: list[float] | None = None, er: tuple[list[float], list[float], float] | None = None,
           sensitivity: dict[str, float] | None = None, train_seconds: float = 10.0,
           threats: dict[str, float] | None = None) -> dict[str, Any]:
    """A complete record: config, metrics (threats, optional expected robustness and AS records), curves."""
    metrics: dict[str, Any] = {"n_examples": n, "clean_acc": clean,
                               "threats": {"linf:4/255": {"acc": linf, "n": n}, **{k: {"acc": v, "n": n} for k, v in (threats or {}).items()}},
                               "metrics": {}, "flags": [], "reliable": True}
    if er:
        metrics["metrics"]["expected_robustness:linf:4/255"] = {"value": er[2], "eps_g": 4 / 255, "curve": {"eps": er[0], "acc": er[1]}}
    if sensitivity:
        metrics["metrics"]["adversarial_sensitivity:linf:4/255"] = sensitivity
    curves: dict[str, Any] = {}
    if val_acc:
        curves = {"epoch": list(range(1, len(val_acc) + 1)), "val_acc": val_acc, "train_acc": val_acc,
                  "eps": [0.0] * len(val_acc)}
    return {
        "schema_version": 1, "id": run_id, "status": "complete",
        "config": {"representation": representation, "dataset": dataset, "protocol": protocol, "loss": loss,
                   "threat": {"name": "linf", "eps": "4/255", "attack": "apgd-ce", "steps": 5},
                   "eps_schedule": eps_schedule, "lr_schedule": lr_schedule, "epochs": epochs, "seed": seed},
        "metrics": metrics, "curves": curves,
        "timings": {"train_seconds": train_seconds}, "provenance": PROVENANCE, "created": "2026-01-01T00:00:00+00:00",
    }


def write(folder: Path, records: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for rec in records:
        (folder / f"{rec['id']}.json").write_text(json.dumps(rec))
    return folder


#: The seed → rank of its adversarial sensitivity in :func:`study` (not the seed's own order).
AS_ORDER = (0, 2, 1)


def study(folder: Path) -> Path:
    """A small study: 3 conditions × 3 seeds with curves and expected robustness; LP/FFT with AS; two LR schedules."""
    recs = []
    grid = [0.0, 1 / 255, 2 / 255, 3 / 255, 4 / 255]
    conditions = [("ce", "constant", 0.9, 0.05, [0.5, 0.7, 0.8, 0.9]),
                  ("classic_at", "constant", 0.6, 0.35, [0.10, 0.12, 0.3, 0.55]),
                  ("classic_at", {"name": "epsilon-scheduling", "t1": "25%", "t2": "75%"}, 0.75, 0.33, [0.4, 0.6, 0.65, 0.7])]
    for c, (loss, sched, clean, robust, curve) in enumerate(conditions):
        for seed in range(3):
            acc = [clean - (clean - robust) * i / 4 for i in range(5)]
            recs.append(record(f"{c}{seed}aaaaaaaaaaaaaa", clean=clean + 0.01 * seed, linf=robust, loss=loss, eps_schedule=sched,
                               seed=seed, val_acc=[v + 0.01 * seed for v in curve], er=(grid, acc, sum(acc) / 5)))
    for p, protocol in enumerate(("lp", "fft")):
        for seed in range(3):
            # not monotone in the seed, and opposite for LP and FFT: τ(AS, LP robust) = 1/3, τ(AS, FFT robust) = -1/3
            recs.append(record(f"{p}{seed}bbbbbbbbbbbbbb", protocol=protocol, seed=seed, clean=0.7,
                               linf=0.5 - 0.2 * p + 0.01 * (seed if protocol == "lp" else 2 - seed),
                               representation="mini_resnet.shapes_robust",
                               sensitivity={"value": 0.5 + 0.1 * AS_ORDER[seed], "as_std": 0.1, "n": 200, "head_spectral_norm": 3.0,
                                            "ce_gap_normalised": 0.2, "lemma1_bound": 0.7, "certified_share": 0.1,
                                            "robust_acc_pgd": 0.45, "clean_acc": 0.7}))
    for s, sched in enumerate(("constant", {"name": "slow-start-fast-decay", "warmup": "20%"})):
        for epochs in (2, 4):
            for seed in range(3):
                recs.append(record(f"{s}{epochs}{seed}ccccccccccccc", lr_schedule=sched, epochs=epochs, seed=seed,
                                   dataset="shapes", linf=0.2 + 0.05 * epochs + 0.05 * s, train_seconds=5.0 * epochs))
    return write(folder, recs)


def with_outcomes(folder: Path, rec: dict[str, Any], clean: Any, robust: Any, labels: Any) -> dict[str, Any]:
    """``rec`` with per-example outcomes (``clean``/``robust``: bool per point, under L∞ 4/255) written beside it in ``folder``.

    The accuracies in the record are the outcomes' own; every record built on the same ``labels``
    was measured on the same points.
    """
    import numpy as np

    from rftbench.outcomes import from_evaluation, write_outcomes

    clean, robust, labels = np.asarray(clean, bool), np.asarray(robust, bool) & np.asarray(clean, bool), np.asarray(labels)
    logits = np.zeros((len(labels), 10))
    logits[np.arange(len(labels)), labels] = np.where(clean, 2.0, -2.0)
    outcomes = from_evaluation(logits, labels, {"linf:4/255": {"correct": robust}}, points={"dataset": rec["config"]["dataset"]})
    run_dir = folder / rec["id"]
    run_dir.mkdir(parents=True, exist_ok=True)
    ref = write_outcomes(outcomes, run_dir)
    n = len(labels)
    rec["metrics"].update(n_examples=n, clean_acc=float(clean.mean()), outcomes={**ref, "file": f"{rec['id']}/{ref['file']}"})
    rec["metrics"]["threats"] = {"linf:4/255": {"acc": float(robust.mean()), "n": n}}
    return rec
