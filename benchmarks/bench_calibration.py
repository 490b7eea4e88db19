"""Calibration of ``rftbench compare`` on real runs: study 01's recipes, 8 seeds each, 3 seeds per side.

    python benchmarks/bench_calibration.py [--records examples/studies/01-suboptimal-transfer/records]
                                           [--k 3] [--alpha 0.05] [--out benchmarks/calibration-study01.json]

Study 01 (``examples/studies/01-suboptimal-transfer``: ``mini_resnet.shapes_standard`` → ``textures``,
FFT 10 epochs, 1,000 test points) ran three recipes — clean fine-tuning, Classic AT at fixed ε,
Classic AT with the two-hinge ε schedule — with seeds 0–7. From their records and per-example
outcomes (no training here):

1. **False positives.** Within one recipe the null holds by construction. Every split of its
   seeds into two disjoint groups of ``k`` (all C(8,3)·C(5,3)/2 = 280 for 8 seeds) is compared as
   two recipes (``rftbench.compare(group_a, group_b)``; the seeds differ, so unpaired), per threat
   (clean, L∞ 4/255), and the share with p < α is the false-positive rate. Next to it, the
   model-level exact McNemar on every pair of two different seeds of one recipe (what
   ``compare`` on two runs tests). The splits share runs, so the rates are not independent trials.
2. **Power.** The ε schedule against fixed ε (and each against clean fine-tuning) with ``k``
   seeds per side: every triple of seeds run by both, paired by seed (the default) and unpaired,
   and every pair of disjoint triples (unpaired); the share detected at α and the median width
   of the 95% interval, per threat.
3. **Is pairing by seed real?** Per pair of recipes: the correlation over seeds of same-seed
   accuracies, and the point-level agreement of same-seed against different-seed runs.

Prints a summary and, with ``--out``, writes every number as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
THREATS = ("clean", "linf:4/255")


def condition(config: dict) -> str:
    if config.get("loss") == "ce":
        return "clean fine-tuning"
    sched = config.get("eps_schedule")
    name = sched.get("name") if isinstance(sched, dict) else sched
    return "fixed ε" if name == "constant" else "ε schedule"


def load(records: Path) -> dict[str, dict[int, object]]:
    from rftbench.comparison import load_source

    runs: dict[str, dict[int, object]] = {}
    for path in sorted(records.glob("*.json")):
        source = load_source(path)
        runs.setdefault(condition(source.config), {})[source.seed] = source
    return runs


def disjoint_splits(seeds: list[int], k: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every unordered pair of disjoint k-subsets of ``seeds``."""
    out = []
    for a in itertools.combinations(seeds, k):
        rest = [s for s in seeds if s not in a]
        for b in itertools.combinations(rest, k):
            if a < b:
                out.append((a, b))
    return out


def false_positives(runs: dict, k: int, alpha: float) -> dict:
    from rftbench.comparison import compare
    from rftbench.groups import Group

    out = {}
    for cond, by_seed in sorted(runs.items()):
        seeds = sorted(by_seed)
        splits = disjoint_splits(seeds, k)
        if not splits:
            continue  # fewer than 2k seeds so far
        recipe = {t: [] for t in THREATS}
        for a, b in splits:
            c = compare(Group("A", [by_seed[s] for s in a]), Group("B", [by_seed[s] for s in b]), THREATS)
            assert c.level == "recipe" and not c.paired
            for d in c.differences:
                recipe[d.threat].append(d.p_value)
        model = {t: [] for t in THREATS}
        for s, u in itertools.combinations(seeds, 2):
            for d in compare(by_seed[s], by_seed[u], THREATS).differences:
                model[d.threat].append(d.p_value)
        out[cond] = {
            "seeds": seeds, "splits": len(splits), "seed_pairs": len(list(itertools.combinations(seeds, 2))),
            "recipe_fpr": {t: float(np.mean(np.array(p) < alpha)) for t, p in recipe.items()},
            "model_fpr": {t: float(np.mean(np.array(p) < alpha)) for t, p in model.items()},
            "accuracy_sd_over_seeds": {t: float(np.std([by_seed[s].outcomes.outcome(t).mean() for s in seeds], ddof=1))
                                       for t in THREATS},
        }
    splits = sum(v["splits"] for v in out.values())
    pooled = {t: float(sum(v["recipe_fpr"][t] * v["splits"] for v in out.values()) / splits) for t in THREATS}
    model = {t: float(sum(v["model_fpr"][t] * v["seed_pairs"] for v in out.values()) / sum(v["seed_pairs"] for v in out.values()))
             for t in THREATS}
    everything = float(np.mean(list(pooled.values())))
    return {"per_recipe": out, "recipe_fpr": pooled, "recipe_fpr_all": everything, "model_fpr": model,
            "model_fpr_all": float(np.mean(list(model.values())))}


def power(runs: dict, k: int, alpha: float, a: str, b: str) -> dict:
    """``a`` against ``b`` with ``k`` seeds per side: the same seeds on both sides (paired, and unpaired), and disjoint seeds."""
    from rftbench.comparison import compare
    from rftbench.groups import Group

    shared = sorted(set(runs[a]) & set(runs[b]))
    found: dict[str, dict[str, list]] = {how: {t: [] for t in THREATS} for how in ("paired", "same_seeds_unpaired", "disjoint")}
    diffs: dict[str, list] = {t: [] for t in THREATS}

    def add(how, first, second, pair):
        c = compare(Group(a, [runs[a][s] for s in first]), Group(b, [runs[b][s] for s in second]), THREATS, pair_seeds=pair)
        assert c.paired == bool(pair)
        for d in c.differences:
            found[how][d.threat].append((d.p_value < alpha, d.ci_high - d.ci_low))
            if how == "paired":
                diffs[d.threat].append(d.diff)

    for seeds in itertools.combinations(shared, k):
        add("paired", seeds, seeds, True)
        add("same_seeds_unpaired", seeds, seeds, False)
    for sa, sb in disjoint_splits(shared, k):
        add("disjoint", sa, sb, False)
        add("disjoint", sb, sa, False)
    return {"a": a, "b": b, "k": k, "triples": len(list(itertools.combinations(shared, k))),
            "median_difference": {t: float(np.median(v)) for t, v in diffs.items()},
            **{f"{how}_detected": {t: float(np.mean([x for x, _ in v])) for t, v in by.items()} for how, by in found.items()},
            **{f"{how}_median_interval_width": {t: float(np.median([w for _, w in v])) for t, v in by.items()}
               for how, by in found.items()}}


def pairing(runs: dict) -> dict:
    out = {}
    for a, b in itertools.combinations(sorted(runs), 2):
        seeds = sorted(set(runs[a]) & set(runs[b]))
        for t in THREATS:
            xa = np.array([runs[a][s].outcomes.outcome(t).mean() for s in seeds])
            xb = np.array([runs[b][s].outcomes.outcome(t).mean() for s in seeds])
            same = [float(np.mean(runs[a][s].outcomes.outcome(t) == runs[b][s].outcomes.outcome(t))) for s in seeds]
            cross = [float(np.mean(runs[a][s].outcomes.outcome(t) == runs[b][u].outcomes.outcome(t)))
                     for s in seeds for u in seeds if s != u]
            out[f"{a} | {b} | {t}"] = {"seeds": len(seeds), "accuracy_correlation": float(np.corrcoef(xa, xb)[0, 1]),
                                       "agreement_same_seed": float(np.mean(same)),
                                       "agreement_different_seed": float(np.mean(cross))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=Path, default=ROOT / "examples/studies/01-suboptimal-transfer/records")
    parser.add_argument("--k", type=int, default=3, help="seeds per side")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    runs = load(args.records)
    print(f"{args.records}: " + "; ".join(f"{c} seeds {sorted(r)}" for c, r in sorted(runs.items())))
    fp = false_positives(runs, args.k, args.alpha)
    print(f"\n1. same-recipe comparisons, {args.k} seeds vs {args.k} (all disjoint splits), α = {args.alpha}:")
    for cond, v in fp["per_recipe"].items():
        print(f"   {cond:<18} {v['splits']:>4} splits: recipe-level FPR "
              + ", ".join(f"{t} {100 * v['recipe_fpr'][t]:.1f}%" for t in THREATS)
              + f"   | model-level McNemar over {v['seed_pairs']} seed pairs: "
              + ", ".join(f"{t} {100 * v['model_fpr'][t]:.0f}%" for t in THREATS)
              + "   | seed sd " + ", ".join(f"{100 * v['accuracy_sd_over_seeds'][t]:.1f}" for t in THREATS) + " pts")
    print(f"   all recipes and threats: recipe-level {100 * fp['recipe_fpr_all']:.1f}% (target ≤ 7%); "
          f"model-level {100 * fp['model_fpr_all']:.0f}%")
    pw = [power(runs, args.k, args.alpha, a, b) for a, b in
          (("ε schedule", "fixed ε"), ("clean fine-tuning", "ε schedule"), ("clean fine-tuning", "fixed ε")) if a in runs and b in runs]
    for p in pw:
        print(f"\n2. {p['a']} vs {p['b']}, {args.k} seeds per side ({p['triples']} seed triples; detected at α, median 95% interval width):")
        for t in THREATS:
            print(f"   {t:<11} median difference {100 * p['median_difference'][t]:+.1f} pts: "
                  + ", ".join(f"{how.replace('_', ' ')} {100 * p[f'{how}_detected'][t]:.0f}% "
                              f"(±{50 * p[f'{how}_median_interval_width'][t]:.1f})"
                              for how in ("paired", "same_seeds_unpaired", "disjoint")))
    pr = pairing(runs)
    print("\n3. same-seed pairing (correlation over seeds of the two recipes' accuracies; point agreement same / different seed):")
    for key, v in pr.items():
        print(f"   {key:<45} r = {v['accuracy_correlation']:+.2f} over {v['seeds']} seeds; agreement "
              f"{100 * v['agreement_same_seed']:.1f}% / {100 * v['agreement_different_seed']:.1f}%")
    seconds = time.perf_counter() - start
    print(f"\n{seconds:.1f} s; load average {os.getloadavg()[0]:.2f}")
    if args.out:
        args.out.write_text(json.dumps({"records": str(args.records.relative_to(ROOT) if args.records.is_relative_to(ROOT) else args.records),
                                        "k": args.k, "alpha": args.alpha, "false_positives": fp, "power": pw, "pairing": pr},
                                       indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
