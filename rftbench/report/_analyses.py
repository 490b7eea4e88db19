"""The analyses of the three papers, each a :class:`Section` of tables, figures and what could not be drawn.

- the reference study (Heuillet et al. 2025): accuracy per threat by protocol, loss, architecture
  family, size and pretraining; TRADES vs Classic AT on ``sum`` over matched pairs; rank agreement
  between threat models; the clean–robust Pareto front per dataset;
- Epsilon-Scheduling (Ngnawé, Heuillet et al. 2026): validation accuracy per epoch per ε schedule
  (task adaptation) and accuracy-vs-ε curves with the expected robustness;
- Nern et al. 2023: adversarial sensitivity (AS) against linear-probe robust accuracy, with the
  bound's quantities; robust accuracy kept by protocol;
- Jeddi et al. 2020: robust accuracy against training cost per learning-rate schedule.

Every function takes rows and returns a section; a figure whose data is missing is listed in
``section.missing`` with the reason, and the rest of the report is still written.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _figures as figs
from ._load import Loaded, Row
from ._stats import mean_sd, pareto_front, rank_agreement, sign_test, wilson

FACTORS: list[tuple[str, str, Callable[[Row], str | None]]] = [
    ("protocol", "protocol (epochs)", lambda r: r.protocol_label),
    ("loss", "loss", lambda r: r.loss),
    ("family", "architecture family", lambda r: r.family),
    ("size", "size", lambda r: r.size),
    ("pretraining", "pretraining", lambda r: r.pretraining),
]
SIZE_ORDER = {"tiny": 0, "small": 1, "medium": 2, "large": 3}
#: The union accuracies' row attributes and column titles.
UNION_TITLES = (("union", "union (L∞/L2/L1)"), ("union_all", "union (all threats)"))


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class FigureRef:
    file: str  # relative to the report folder
    caption: str


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[FigureRef] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    subsections: list[Section] = field(default_factory=list)


class Figures:
    """Where figures go: ``<report>/figures/<name>.png``, names chosen by the report, never by the input."""

    def __init__(self, root: Path):
        self.root = root
        self.dir = root / "figures"
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> tuple[Path, str]:
        return self.dir / f"{name}.png", f"figures/{name}.png"


# ---------------------------------------------------------------------------------- formatting


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f}"


def pm(values: Sequence[float]) -> str:
    """``mean ± sd`` in percent over seeds (just the value for one seed)."""
    if not values:
        return "—"
    mean, sd = mean_sd(values)
    return f"{pct(mean)} ± {pct(sd)}" if len(values) > 1 else pct(mean)


def with_ci(acc: float | None, n: int | None) -> str:
    """An accuracy in percent with its 95% Wilson interval where the number of test points is known."""
    if acc is None:
        return "—"
    if not n:
        return pct(acc)
    lo, hi = wilson(acc, n)
    return f"{pct(acc)} [{pct(lo)}, {pct(hi)}]"


def recipe_ci(values: Sequence[float], group: Sequence[Row]) -> str:
    """The 95% interval of one condition's accuracy over its seeds (seeds and test points; one seed: Wilson, test points).

    ``[lo, hi]`` in percent, with ``(1 seed)`` after a single run's interval; ``—`` when the
    number of test points is unknown or differs between the runs.
    """
    from ..stats import recipe_interval

    sizes = {r.n for r in group}
    if not values or len(sizes) != 1 or None in sizes:
        return "—"
    ci = recipe_interval(values, sizes.pop())
    if ci is None:
        return "—"
    return f"[{pct(ci[0])}, {pct(ci[1])}]" + (" (1 seed)" if len(values) == 1 else "")


def threat_title(label: str) -> str:
    norm, _, budget = label.partition(":")
    return f"{ {'linf': 'L∞', 'l2': 'L2', 'l1': 'L1', 'corruptions': 'corr.'}.get(norm, norm)} {budget}"


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _threat_columns(rows: Sequence[Row]) -> list[str]:
    from ..leaderboard.entry import threat_sort_key

    labels = {t for r in rows for t in r.threats}
    return sorted(labels, key=threat_sort_key)


def main_threat(rows: Sequence[Row]) -> str | None:
    """The robust axis: L∞ 4/255 where measured (the study's), else the most common adversarial threat."""
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        for t in r.adversarial():
            counts[t] += 1
    if not counts:
        return None
    return "linf:4/255" if "linf:4/255" in counts else max(counts, key=lambda t: (counts[t], t))


def _seed_groups(rows: Iterable[Row], key: Callable[[Row], Any]) -> dict[Any, list[Row]]:
    groups: dict[Any, list[Row]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    return groups


# ---------------------------------------------------------------------------------- overview


def overview(loaded: Loaded) -> Section:
    rows = loaded.rows
    s = Section("overview", "Inputs")
    s.paragraphs.append(f"{len(rows)} results read from {len(loaded.inputs)} input(s): " + ", ".join(loaded.inputs) + ".")
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r.origin] += 1
    if counts:
        names = {"published": "published (imported)", "run": "local result records", "entry": "leaderboard entries"}
        s.paragraphs.append("By origin: " + ", ".join(f"{names.get(k, k)} {v}" for k, v in sorted(counts.items())) + ".")
    header = ["dataset", "results", "protocols", "losses", "representations", "threat suites"]
    table = []
    for dataset, group in sorted(_seed_groups(rows, lambda r: r.dataset).items()):
        suites = {tuple(r.threats) for r in group}
        table.append([dataset, str(len(group)), ", ".join(sorted({r.protocol_label for r in group})),
                      ", ".join(sorted({r.loss for r in group})), str(len({r.representation for r in group})),
                      "; ".join(", ".join(threat_title(t) for t in suite) or "clean only" for suite in sorted(suites))])
    if table:
        s.tables.append(Table("What the inputs hold, per dataset", header, table))
    suites = {tuple(r.threats) for r in rows}
    if len(suites) > 1:
        s.paragraphs.append(
            f"The results were evaluated under {len(suites)} different threat suites: comparisons across results use "
            "only the threats both were measured under, and `sum` is compared only between results of the same suite."
        )
    if len({r.dataset for r in rows}) > 1:
        s.paragraphs.append("Several datasets are mixed: accuracies are compared within a dataset (Pareto fronts, rank "
                            "agreement, matched pairs); the per-factor means pool datasets, as the reference study's do.")
    if not rows:
        s.missing.append("nothing to analyse: no result record or entry was found in the inputs "
                         "(a results folder fills as `rftbench run` / `rftbench sweep` finish runs)")
    for problem in loaded.problems:
        s.missing.append(f"input left out: {problem}")
    return s


# ---------------------------------------------------------------------------------- the reference study


def factor_means(rows: Sequence[Row], figures: Figures, slug: str) -> Section:
    s = Section(f"{slug}-factors", "Accuracy per threat by protocol, loss, architecture family, size and pretraining",
                intro="Mean accuracy (%) over every result in the group; `n` counts results.")
    threats = _threat_columns(rows)
    panels = []
    for key, title, get in FACTORS:
        groups = _seed_groups([r for r in rows if get(r)], get)
        if len(groups) < 2:
            only = ", ".join(str(g) for g in groups) or "none recorded"
            s.missing.append(f"{title}: only one value in these results ({only}), nothing to compare")
            continue
        order = sorted(groups, key=lambda g: (SIZE_ORDER.get(g, 9), g) if key == "size" else (0, g))
        header = [title, "n", "clean"] + [threat_title(t) for t in threats] + ["sum (same suite)"]
        body = []
        values: dict[str, list[float | None]] = {}
        for g in order:
            grp = groups[g]
            means = [_mean(r.clean for r in grp)] + [_mean(r.threats.get(t) for r in grp) for t in threats]
            suite_rows = [r for r in grp if tuple(r.threats) == tuple(threats)]
            total = _mean(r.sum for r in suite_rows)
            body.append([g, str(len(grp))] + [pct(m) for m in means] + ["—" if total is None else f"{total:.3f}"])
            values[g] = means
        s.tables.append(Table(f"By {title}", header, body))
        panels.append((f"by {title}", ["clean"] + [threat_title(t) for t in threats], values))
    if panels:
        path, rel = figures.path(f"{slug}-factors")
        figs.grouped_bars(path, panels)
        s.figures.append(FigureRef(rel, "Mean accuracy per threat, one panel per factor"))
    return s


def pair_key(r: Row) -> tuple[Any, ...]:
    """What must match for two results to differ only in their loss."""
    return (r.representation, r.dataset, r.protocol, r.epochs, r.eps_schedule, r.lr_schedule, r.train_threat or None,
            r.seed, tuple(r.threats))


def loss_pairs(rows: Sequence[Row], a: str = "trades", b: str = "classic_at") -> Section:
    s = Section("pairs", f"{a} vs {b}: win rate on `sum` over matched pairs",
                intro=(f"A pair is two results identical in representation, dataset, protocol, epochs, schedules, training "
                       f"threat, seed and evaluation suite, one trained with {a} and one with {b}. Win rate = wins / "
                       "(wins + losses), ties left out, with its 95% Wilson interval over the pairs (it covers the "
                       "sampling of pairs, not the test points within each) and a two-sided sign test."))
    by_key: dict[tuple[Any, ...], dict[str, Row]] = defaultdict(dict)
    for r in rows:
        if r.loss in (a, b) and r.sum is not None:
            by_key[pair_key(r)][r.loss] = r
    matched = [(k, v[a], v[b]) for k, v in by_key.items() if a in v and b in v]
    if not matched:
        s.missing.append(f"no matched {a}/{b} pairs: the results hold " +
                         (", ".join(sorted({r.loss for r in rows})) or "no losses") + " without a partner differing only in the loss")
        return s
    pairs = [(k, ra.sum, rb.sum) for k, ra, rb in matched]
    header = ["protocol", "pairs", f"{a} wins", f"{b} wins", "ties", f"{a} win rate", "95% Wilson (over pairs)", "sign test p",
              f"mean Δsum ({a} − {b})"]
    body = []
    by_protocol = _seed_groups(pairs, lambda p: f"{p[0][2].upper()}-{p[0][3]}")
    for label, group in sorted(by_protocol.items()) + [("all", pairs)]:
        wins = sum(1 for _, x, y in group if x > y)
        losses = sum(1 for _, x, y in group if x < y)
        ties = len(group) - wins - losses
        rate = wins / (wins + losses) if wins + losses else math.nan
        lo, hi = wilson(rate, wins + losses) if wins + losses else (math.nan, math.nan)
        delta = sum(x - y for _, x, y in group) / len(group)
        body.append([label, str(len(group)), str(wins), str(losses), str(ties), pct(rate), f"[{pct(lo)}, {pct(hi)}]",
                     f"{sign_test(wins, losses):.2g}", f"{delta:+.3f}"])
    s.tables.append(Table(f"{a} vs {b} on sum", header, body))
    settings: dict[tuple[Any, ...], tuple[list[Row], list[Row]]] = defaultdict(lambda: ([], []))
    for key, ra, rb in matched:
        setting = key[:7] + key[8:]  # everything but the seed
        settings[setting][0].append(ra)
        settings[setting][1].append(rb)
    named = [(f"{k[0]} · {k[1]} · {k[2].upper()}-{k[3]}", ra, rb) for k, (ra, rb) in sorted(settings.items(), key=lambda kv: str(kv[0]))]
    recipe_tests(s, named, a, b, f"{a} vs {b} per setting on the same test points")
    return s


def recipe_tests(s: Section, settings: Sequence[tuple[str, Sequence[Row], Sequence[Row]]], a: str, b: str, caption: str) -> None:
    """Per setting, the ``a`` runs against the ``b`` runs on the same test points (``rftbench compare``'s computation).

    Two recipes where a side holds 2 or more seeds (the t-test whose variance adds the
    seed-to-seed and the test-point parts, paired by seed where both sides ran the same seeds);
    one seed per side: the comparison of two trained models (exact McNemar), which covers the test
    points only, and says so. Holm over every test shown. Runs without per-example outcomes,
    groups mixing recipes and runs on other points are left out, and said.
    """
    from ..comparison import adjust, compare_groups, load_source
    from ..errors import RftbenchError
    from ..groups import Group, check_group

    comparisons, names, without = [], [], 0
    for name, rows_a, rows_b in settings:
        usable_a, usable_b = [r for r in rows_a if r.outcomes], [r for r in rows_b if r.outcomes]
        without += len(rows_a) + len(rows_b) - len(usable_a) - len(usable_b)
        if not usable_a or not usable_b:
            continue
        try:
            groups = []
            for label, rows in ((a, usable_a), (b, usable_b)):
                group = Group(label, [load_source(r.where, r.id) for r in sorted(rows, key=lambda r: r.seed or 0)])
                check_group(f"{label} in {name}", group.runs)
                groups.append(group)
            comparisons.append(compare_groups(*groups))
            names.append(name)
        except RftbenchError as err:
            s.missing.append(f"test for {name} left out: {err}")
    if without:
        s.missing.append(f"tests on the test points: {without} result(s) have no per-example outcomes (published results, or "
                         "results evaluated before rftbench kept them): left out of the tests below")
    if not comparisons:
        return
    comparisons = adjust(comparisons)
    header = ["setting", "seeds", "covers", "threat", a, b, f"{a} − {b}", "95% interval", "p", "Holm p"]
    body, significant, total = [], 0, 0
    for name, c in zip(names, comparisons):
        recipe = c.level == "recipe"
        seeds = f"{len(c.seeds_a)} vs {len(c.seeds_b)}" + (" (paired)" if c.paired else "")
        covers = "seeds + test points" if recipe else "test points only (1 run per side)"
        for d in c.differences:
            total += 1
            significant += d.significant()
            body.append([name, seeds, covers, threat_title(d.threat) if d.threat != "clean" else "clean", pct(d.acc_a), pct(d.acc_b),
                         f"{100 * d.diff:+.1f}", f"[{100 * d.ci_low:+.1f}, {100 * d.ci_high:+.1f}]", f"{d.p_value:.2g}",
                         f"{d.p_holm:.2g}"])
    levels = {c.level for c in comparisons}
    how = []
    if "recipe" in levels:
        how.append("where a side holds 2 or more seeds, the two recipes are compared: the difference of the mean "
                   "accuracies with a t-test and 95% interval whose variance adds the seed-to-seed part (the runs' spread) "
                   "and the test-point part, so they cover seeds and test points (paired by seed where both sides ran the "
                   "same seeds)")
    if "model" in levels:
        how.append("with one seed per side, the two trained models are compared (exact McNemar test on the points only one "
                   "gets right, Agresti–Min interval): that covers the test points only, not seed-to-seed variation — "
                   "another seed can differ as much; run 3 or more seeds per side to compare the recipes")
    s.paragraphs.append(
        f"On the same test points ({len(comparisons)} settings): {significant} of {total} differences are significant at "
        f"5% after Holm's correction over all {total}; " + "; ".join(how) + "."
    )
    s.tables.append(Table(caption, header, body))


def rank_agreement_section(rows: Sequence[Row], figures: Figures, slug: str) -> Section:
    s = Section(f"{slug}-ranks", "Rank agreement between threat models",
                intro=("Within each dataset × protocol group (at least 3 results), the results are ranked by accuracy "
                       "under each threat; the table gives Kendall τ-b and Spearman ρ between two threats' rankings, "
                       "averaged over the groups (scipy.stats)."))
    threats = ["clean"] + _threat_columns(rows)
    if len(threats) < 2:
        s.missing.append("rank agreement: the results were measured under clean accuracy only")
        return s
    groups = [g for g in _seed_groups(rows, lambda r: (r.dataset, r.protocol_label)).values() if len(g) >= 3]
    if not groups:
        s.missing.append("rank agreement: no dataset × protocol group holds 3 or more results")
        return s

    def value(r: Row, t: str) -> float | None:
        return r.clean if t == "clean" else r.threats.get(t)

    tau = [[math.nan] * len(threats) for _ in threats]
    rho = [[math.nan] * len(threats) for _ in threats]
    used = [[0] * len(threats) for _ in threats]
    for i, a in enumerate(threats):
        for j, b in enumerate(threats):
            if j < i:
                tau[i][j], rho[i][j], used[i][j] = tau[j][i], rho[j][i], used[j][i]
                continue
            taus, rhos = [], []
            for g in groups:
                pts = [(value(r, a), value(r, b)) for r in g]
                pts = [(x, y) for x, y in pts if x is not None and y is not None]
                t, p = rank_agreement([x for x, _ in pts], [y for _, y in pts])
                if math.isfinite(t):
                    taus.append(t)
                    rhos.append(p)
            if taus:
                tau[i][j], rho[i][j], used[i][j] = sum(taus) / len(taus), sum(rhos) / len(rhos), len(taus)
    titles = [threat_title(t) if t != "clean" else "clean" for t in threats]
    body = []
    for i, a in enumerate(titles):
        for j in range(i + 1, len(titles)):
            body.append([a, titles[j], f"{tau[i][j]:.2f}" if math.isfinite(tau[i][j]) else "—",
                         f"{rho[i][j]:.2f}" if math.isfinite(rho[i][j]) else "—", str(used[i][j])])
    s.tables.append(Table("Mean rank correlation between threats", ["threat A", "threat B", "Kendall τ", "Spearman ρ", "groups"], body))
    path, rel = figures.path(f"{slug}-ranks")
    figs.heatmap(path, titles, tau, "Kendall τ between threat models (mean over dataset × protocol)")
    s.figures.append(FigureRef(rel, "Kendall τ between the rankings under each pair of threats"))
    return s


def pareto_section(rows: Sequence[Row], figures: Figures, slug: str) -> Section:
    robust = main_threat(rows)
    s = Section(f"{slug}-pareto", "Clean–robust Pareto front per dataset",
                intro=f"Results not beaten on both clean accuracy and {threat_title(robust) if robust else 'robust'} accuracy.")
    if robust is None:
        s.missing.append("Pareto front: no result was evaluated under an adversarial threat")
        return s
    panels, body = [], []
    datasets = _seed_groups([r for r in rows if robust in r.threats and r.clean is not None], lambda r: r.dataset)
    for dataset, group in sorted(datasets.items()):
        points = [(r.clean, r.threats[robust]) for r in group]
        front = pareto_front(points)
        panels.append((f"{dataset} ({len(group)})", points, front))
        on_front = set(front)
        for r in sorted(group, key=lambda r: -r.clean):
            if (r.clean, r.threats[robust]) in on_front:
                on_front.discard((r.clean, r.threats[robust]))
                body.append([dataset, r.representation, r.protocol_label, r.loss, with_ci(r.clean, r.n), with_ci(r.threats[robust], r.n)])
    if not panels:
        s.missing.append(f"Pareto front: no result has both clean and {robust} accuracy")
        return s
    shown = panels[:12]
    if len(panels) > 12:
        s.missing.append(f"Pareto front: {len(panels) - 12} more datasets not drawn (12 panels at most); the table lists all")
    path, rel = figures.path(f"{slug}-pareto")
    figs.pareto_panels(path, shown, f"{threat_title(robust)} accuracy")
    s.figures.append(FigureRef(rel, f"Clean vs {threat_title(robust)} accuracy per dataset; red: the Pareto front"))
    s.tables.append(Table("Results on the front (one run each; 95% Wilson intervals over the test points only)",
                          ["dataset", "representation", "protocol", "loss", "clean %", f"{threat_title(robust)} %"], body))
    return s


def reference_study(rows: Sequence[Row], figures: Figures, slug: str, title: str) -> Section:
    s = Section(slug, title)
    s.subsections = [factor_means(rows, figures, slug), loss_pairs(rows), rank_agreement_section(rows, figures, slug),
                     pareto_section(rows, figures, slug)]
    s.subsections[1].id = f"{slug}-pairs"
    return s


# ---------------------------------------------------------------------------------- Epsilon-Scheduling


def _band(series: Sequence[Sequence[float | None]]) -> tuple[list[float], list[float], list[float], list[float]]:
    """Mean, min and max per epoch over seeds (epochs where every seed has a value)."""
    length = min(len(s) for s in series)
    x, mean, lo, hi = [], [], [], []
    for i in range(length):
        vals = [s[i] for s in series if s[i] is not None]
        if len(vals) == len(series):
            x.append(i + 1)
            mean.append(sum(vals) / len(vals))
            lo.append(min(vals))
            hi.append(max(vals))
    return x, mean, lo, hi


def _setting(r: Row) -> str:
    return f"{r.dataset} · {r.representation} · {r.protocol_label}"


def first_adapted(curve: Sequence[float | None], threshold: float) -> int | None:
    """The first epoch (1-based) with validation accuracy above ``threshold``; None if never."""
    return next((i + 1 for i, v in enumerate(curve) if v is not None and v > threshold), None)


def _condition_tests(local: Sequence[Row]) -> list[tuple[str, list[Row], list[Row]]]:
    """Per setting with one fixed-ε adversarial condition: (``setting · condition``, its runs, the fixed-ε runs) for each other condition."""
    out = []
    for setting, group in sorted(_seed_groups(local, _setting).items()):
        by = _seed_groups(group, lambda r: r.condition)
        fixed = [c for c, runs in by.items() if runs[0].loss != "ce" and runs[0].eps_schedule == "constant"]
        if len(fixed) == 1:
            out += [(f"{setting} · {cond}", runs, by[fixed[0]]) for cond, runs in sorted(by.items()) if cond != fixed[0]]
    return out


def epsilon_scheduling(rows: Sequence[Row], figures: Figures, classes: Callable[[str], int | None]) -> Section:
    s = Section("epsilon-scheduling", "Epsilon-Scheduling: task adaptation and expected robustness",
                intro=("Conditions are the loss with its ε schedule; lines are the mean over seeds, the band their range. "
                       "Delayed task adaptation is read as the first epoch with validation accuracy above chance + 5 points."))
    local = [r for r in rows if r.origin != "published"]
    # a curve needs two epochs at least: a one-epoch run gets no per-epoch plot (its one point is in the table)
    with_curves = [r for r in local if sum(v is not None for v in r.curves.get("val_acc") or []) >= 2]
    robust = main_threat(local)
    # the summary table: one line per setting × condition
    summary = []
    for (setting, cond), group in sorted(_seed_groups(local, lambda r: (_setting(r), r.condition)).items()):
        n_classes = classes(group[0].dataset)
        firsts = []
        if n_classes:
            threshold = 1 / n_classes + 0.05
            firsts = [first_adapted(r.curves.get("val_acc", []), threshold) for r in group if r.curves.get("val_acc")]
        summary.append([
            setting, cond, str(len(group)), pm([r.clean for r in group]), recipe_ci([r.clean for r in group], group),
            pm([r.threats[robust] for r in group if robust in r.threats]) if robust else "—",
            recipe_ci([r.threats[robust] for r in group if robust in r.threats], group) if robust else "—",
            pm([r.expected for r in group if r.expected is not None]),
            ", ".join("never" if f is None else str(f) for f in firsts) if firsts else "—",
        ])
    if summary:
        robust_title = threat_title(robust) if robust else "robust"
        s.tables.append(Table(
            "Per condition (mean ± sd over seeds, %; 95% interval of the condition's accuracy covering seeds and test points, "
            "or with one seed its Wilson interval covering the test points only)",
            ["setting", "condition", "seeds", "clean", "clean 95% interval", robust_title, f"{robust_title} 95% interval",
             "expected robustness", "first epoch > chance + 5"], summary))
        compared = _condition_tests(local)
        if compared:
            recipe_tests(s, compared, "condition", "fixed ε", "Each condition against fixed ε in its setting, on the same test points")
    if not with_curves:
        s.missing.append("validation accuracy per epoch: no result carries a per-epoch validation curve of 2 or more epochs "
                         "(imported results and leaderboard entries have none; records of runs of 2+ epochs on a dataset with "
                         "a val split do)")
    else:
        panels, hline = [], {}
        for setting, group in sorted(_seed_groups(with_curves, _setting).items()):
            lines = {cond: _band([r.curves["val_acc"] for r in g]) for cond, g in sorted(_seed_groups(group, lambda r: r.condition).items())}
            panels.append((setting, lines))
            n_classes = classes(group[0].dataset)
            if n_classes:
                hline[setting] = 1 / n_classes + 0.05
        path, rel = figures.path("eps-val-curves")
        figs.line_panels(path, panels[:8], "epoch", "validation accuracy (clean)", hline)
        s.figures.append(FigureRef(rel, "Validation accuracy per epoch per ε schedule (task adaptation)"))
        if len(panels) > 8:
            s.missing.append(f"validation curves: {len(panels) - 8} more settings not drawn (8 panels at most)")
        if any(classes(r.dataset) is None for r in with_curves):
            s.missing.append("chance level: the number of classes of some datasets is unknown (their cards are not "
                             "installed), so their first epoch above chance + 5 points is not given")
    with_er = [r for r in local if r.er_curve]
    if not with_er:
        s.missing.append("accuracy-vs-ε curves: no result carries the expected_robustness metric's curve (add "
                         "`{name: expected_robustness, eps: 4/255}` to the run's evaluation)")
    else:
        panels = []
        for setting, group in sorted(_seed_groups(with_er, _setting).items()):
            lines = {}
            for cond, g in sorted(_seed_groups(group, lambda r: r.condition).items()):
                grid = g[0].er_curve[0]
                same = [r for r in g if r.er_curve[0] == grid]
                x, mean, lo, hi = _band([r.er_curve[1] for r in same])
                er = [r.expected for r in same if r.expected is not None]
                label = f"E.R. {pct(sum(er) / len(er))}% · {cond}" if er else cond
                lines[label] = ([grid[i - 1] * 255 for i in x], mean, lo, hi)
            panels.append((setting, lines))
        path, rel = figures.path("eps-accuracy-vs-eps")
        figs.line_panels(path, panels[:8], "ε (× 1/255)", "accuracy", None)
        s.figures.append(FigureRef(rel, "Accuracy vs ε per condition; the legend gives the expected robustness "
                                        "(mean accuracy over ε ~ U[0, ε_g], trapezoid rule)"))
    return s


# ---------------------------------------------------------------------------------- Nern et al.


def robustness_transfer(rows: Sequence[Row], probes: Sequence[dict[str, Any]], figures: Figures) -> Section:
    s = Section("transfer", "Robustness transfer (Nern et al.): adversarial sensitivity and linear-probe robustness",
                intro=("AS = mean ‖g(x+δ) − g(x)‖₂ of the representation g on the task, δ maximising the feature shift. "
                       "Bound quantities per result: the head's spectral norm ‖W‖₂, (CE_adv − CE_clean)/‖W‖₂ next to "
                       "√2·AS (Lemma 1 form), and the share of points certified by margin > max_j ‖W_y − W_j‖₂·‖Δg‖₂ "
                       "next to the PGD robust accuracy."))
    local = [r for r in rows if r.origin != "published"]
    robust = main_threat(local)
    # robust accuracy kept, per representation and protocol
    if robust:
        by = _seed_groups([r for r in local if robust in r.threats], lambda r: (r.dataset, r.representation, r.loss, r.epochs))
        compared = {k: g for k, g in by.items() if len({r.protocol for r in g}) >= 2}
        protocols = sorted({r.protocol for g in compared.values() for r in g})
        body = []
        for (dataset, rep, loss, epochs), group in sorted(compared.items()):
            per = _seed_groups(group, lambda r: r.protocol)
            body.append([dataset, rep, loss, str(epochs)] + [pm([r.threats[robust] for r in per[p]]) + " / " + pm([r.clean for r in per[p]])
                                                             if p in per else "—" for p in protocols])
        if body:
            s.tables.append(Table(f"{threat_title(robust)} / clean accuracy by protocol (mean ± sd over seeds, %)",
                                  ["dataset", "representation", "loss", "epochs"] + [p.upper() for p in protocols], body))
        else:
            s.missing.append("robust accuracy by protocol: no representation was fine-tuned with two or more protocols")
    with_as = [r for r in local if r.sensitivity]
    if with_as:
        body = []
        for r in sorted(with_as, key=lambda r: (r.dataset, r.representation, r.protocol_label, r.seed or 0)):
            a = r.sensitivity
            body.append([r.dataset, r.representation, r.protocol_label, r.loss, "—" if r.seed is None else str(r.seed),
                         f"{a['value']:.3f}", f"{a.get('head_spectral_norm', math.nan):.2f}",
                         f"{a.get('ce_gap_normalised', math.nan):.3f}", f"{a.get('lemma1_bound', math.nan):.3f}",
                         pct(a.get("certified_share")), pct(a.get("robust_acc_pgd"))])
        s.tables.append(Table("Adversarial sensitivity and the bound's quantities, per result",
                              ["dataset", "representation", "protocol", "loss", "seed", "AS", "‖W‖₂", "CE gap / ‖W‖₂",
                               "√2·AS", "certified %", "PGD robust %"], body))
    # AS (from the LP runs' own metric, or from probes) against LP robust accuracy
    lp = [r for r in local if r.protocol == "lp" and robust in r.threats] if robust else []
    probe_as = {(p["representation"], p["dataset"]): p["value"] for p in probes}
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in lp:
        value = r.sensitivity["value"] if r.sensitivity else probe_as.get((r.representation, r.dataset))
        if value is not None:
            points[r.representation].append((value, r.threats[robust]))
    if not points:
        why = ("no linear-probe result" if not lp else
               "no AS for the linear-probe results (add `{name: adversarial_sensitivity, eps: 4/255}` to their evaluation, "
               "or run `rftbench zoo probe` into the results folder)")
        s.missing.append(f"AS against linear-probe robust accuracy: {why}")
    else:
        path, rel = figures.path("transfer-as-vs-lp")
        figs.scatter(path, points, "adversarial sensitivity AS (lower: more robust features)",
                     f"LP {threat_title(robust)} accuracy", "AS of each backbone vs its linear-probe robust accuracy")
        s.figures.append(FigureRef(rel, "AS of each backbone on the task against its linear-probe robust accuracy (one point per seed)"))
        flat = [p for pts in points.values() for p in pts]
        tau, rho = rank_agreement([x for x, _ in flat], [y for _, y in flat])
        if math.isfinite(tau):
            s.paragraphs.append(f"Across {len(flat)} linear-probe results of {len(points)} backbone(s), Kendall τ between AS and "
                                f"LP robust accuracy = {tau:.2f} (Spearman ρ = {rho:.2f}); Nern et al. predict a negative relation.")
    return s


# ---------------------------------------------------------------------------------- Jeddi et al.


def training_cost(rows: Sequence[Row], figures: Figures) -> Section:
    s = Section("cost", "Robust accuracy against training cost, per learning-rate schedule (Jeddi et al.)",
                intro="Adversarially trained local results; cost in epochs and in measured training seconds.")
    local = [r for r in rows if r.origin != "published" and r.loss != "ce"]
    robust = main_threat(local)
    if not robust or not local:
        s.missing.append("training cost: no adversarially trained local result with an adversarial evaluation")
        return s
    groups = _seed_groups([r for r in local if robust in r.threats], lambda r: (r.dataset, r.representation, r.lr_schedule or "?", r.epochs))
    if len({k[2] for k in groups}) < 2 and len({k[3] for k in groups}) < 2:
        s.missing.append("training cost: every result used the same learning-rate schedule and number of epochs; nothing to compare")
        return s
    body, lines = [], defaultdict(dict)
    for (dataset, rep, sched, epochs), group in sorted(groups.items()):
        secs = [r.train_seconds for r in group if r.train_seconds is not None]
        accs = [r.threats[robust] for r in group]
        body.append([dataset, rep, sched, str(epochs), str(len(group)), pm(accs), pm([r.clean for r in group]),
                     f"{sum(secs) / len(secs):.0f}" if secs else "—",
                     f"{100 * sum(accs) / len(accs) / epochs:.2f}" if epochs > 0 else "—"])
        lines[f"{dataset} · {rep}"].setdefault(sched, []).append((epochs, accs))
    s.tables.append(Table(f"{threat_title(robust)} accuracy per schedule and budget (mean ± sd over seeds, %)",
                          ["dataset", "representation", "LR schedule", "epochs", "seeds", f"{threat_title(robust)}", "clean",
                           "train s (mean)", "robust points per epoch"], body))
    panels = []
    for setting, by_sched in sorted(lines.items()):
        curves = {}
        for sched, pts in sorted(by_sched.items()):
            pts.sort()
            curves[sched] = ([e for e, _ in pts], [sum(a) / len(a) for _, a in pts], [min(a) for _, a in pts], [max(a) for _, a in pts])
        panels.append((setting, curves))
    path, rel = figures.path("cost-robust-vs-epochs")
    figs.line_panels(path, panels[:8], "training epochs (cost)", f"{threat_title(robust)} accuracy", None)
    s.figures.append(FigureRef(rel, "Robust accuracy against training budget per LR schedule (band: range over seeds)"))
    return s


# ---------------------------------------------------------------------------------- in-training evaluation


def in_training(rows: Sequence[Row], figures: Figures) -> Section:
    """Curves of the in-training evaluation of every run that has one, their Pareto AUC, kept point and warnings."""
    s = Section("in-training", "Robustness over the course of fine-tuning (in-training evaluation)",
                intro=("Clean and robust accuracy on each run's fixed validation subset at every evaluation point "
                       "(`monitor:` in the run config). Pareto AUC: the area under the clean–robust Pareto frontier of "
                       "those points, in [0, 1] (docs/monitor.md); warnings as raised during training."))
    runs = [r for r in rows if r.monitor]
    if not runs:
        s.missing.append("in-training evaluation: no run with a `monitor:` section (add one to a run config to draw its curves)")
        return s
    body = []
    for r in sorted(runs, key=lambda r: (r.dataset, r.representation, r.condition, r.seed or 0)):
        robust, epochs = r.monitor["robust_acc"], r.monitor["epoch"]
        best = max(range(len(robust)), key=lambda i: robust[i])
        body.append([r.id, r.dataset, r.representation, r.condition, r.monitor_threat, str(len(robust)),
                     f"{pct(robust[best])} (epoch {epochs[best]:g})", pct(robust[-1]),
                     "—" if r.pareto_auc is None else f"{r.pareto_auc:.3f}", r.kept or "last", ", ".join(r.warnings) or "—"])
    s.tables.append(Table("In-training evaluation per run (validation subset, %)",
                          ["id", "dataset", "representation", "condition", "threat", "points", "best robust", "last robust",
                           "Pareto AUC", "weights kept", "warnings"], body))
    panels = []
    by_dataset: dict[str, list[Row]] = defaultdict(list)
    for r in runs:
        by_dataset[r.dataset].append(r)
    for key in ("robust_acc", "clean_acc"):
        for dataset, group in sorted(by_dataset.items()):
            lines = {f"{r.id[:8]} {r.condition}": (r.monitor["epoch"], r.monitor[key], r.monitor[key], r.monitor[key])
                     for r in group[:12]}
            panels.append((f"{dataset}: validation {'robust' if key == 'robust_acc' else 'clean'} accuracy", lines))
    path, rel = figures.path("in-training-curves")
    figs.line_panels(path, panels[:8], "epoch", "validation accuracy", None)
    s.figures.append(FigureRef(rel, "Validation robust and clean accuracy during training, one line per run"))
    return s


def _count(value: float | None, unit: str) -> str:
    if value is None:
        return "unknown"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def cost_of_results(rows: Sequence[Row], figures: Figures) -> Section:
    """FLOPs, passes, device-seconds and peak memory of every local result; robust accuracy against FLOPs."""
    s = Section("cost-per-result", "What each result cost (FLOPs, passes, device-seconds, peak memory)",
                intro=("Counted by rftbench during the run (rftbench.engine.cost): FLOPs from torch.utils.flop_counter, once per "
                       "shape; device-seconds are GPU-seconds on CUDA and core-seconds on the CPU. Results without these "
                       "numbers (the imported reference study, older records) show unknown, never 0."))
    local = [r for r in rows if r.origin != "published"]
    if not local:
        s.missing.append("cost: no local results (the imported reference study records no cost: unknown)")
        return s
    robust = main_threat(local)
    body = []
    for r in sorted(local, key=lambda r: (r.dataset, r.representation, r.condition, r.seed or 0))[:2000]:
        c = r.cost
        secs = c.get("cost.device_seconds")
        body.append([r.id, r.dataset, r.representation, r.condition,
                     pct(r.threats.get(robust)) if robust else "—", _count(c.get("cost.flops"), "FLOP"),
                     _count(c.get("cost.train_flops_per_step"), "FLOP"),
                     _count(c.get("cost.train_forward_passes"), ""), _count(c.get("cost.train_backward_passes"), ""),
                     _count(c.get("cost.eval_forward_passes"), ""), _count(c.get("cost.eval_backward_passes"), ""),
                     "unknown" if secs is None else f"{secs:.1f}", _count(c.get("cost.peak_memory_bytes"), "B")])
    s.tables.append(Table("Cost per result", ["id", "dataset", "representation", "condition",
                                              f"{threat_title(robust)} (%)" if robust else "robust", "FLOPs", "train FLOPs/step",
                                              "train fwd", "train bwd", "eval fwd", "eval bwd", "device-s", "peak memory"], body))
    known = [r for r in local if r.cost.get("cost.flops") and robust and robust in r.threats]
    if known:
        points: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for r in known:
            points[r.dataset].append((math.log10(r.cost["cost.flops"]), r.threats[robust]))
        path, rel = figures.path("robust-vs-cost")
        figs.scatter(path, points, "log10 FLOPs (training + evaluation)", f"{threat_title(robust)} accuracy",
                     "Robust accuracy against cost")
        s.figures.append(FigureRef(rel, "Robust accuracy against FLOPs per result (cheaper and more robust is up and left)"))
    unknown = len(local) - len([r for r in local if r.cost.get("cost.flops")])
    if unknown:
        s.missing.append(f"cost: {unknown} local results record no cost (unknown)")
    return s


# ---------------------------------------------------------------------------------- every local result


def results_table(rows: Sequence[Row]) -> Section:
    s = Section("results", "Every local result",
                intro=("Accuracies in % with their 95% Wilson interval where the record gives the number of test points: one "
                       "run each, so the interval covers the test points only, not seed-to-seed variation."))
    local = sorted((r for r in rows if r.origin != "published"),
                   key=lambda r: (r.dataset, r.representation, r.protocol_label, r.condition, r.seed or 0))
    if not local:
        s.missing.append("no local results (only published ones): see the sections above, or `rftbench leaderboard build` for a browsable table")
        return s
    threats = _threat_columns(local)
    unions = [(k, t) for k, t in UNION_TITLES if any(getattr(r, k) is not None for r in local)]
    body = [[r.id, r.dataset, r.representation, r.protocol_label, r.condition, r.lr_schedule or "—",
             "—" if r.seed is None else str(r.seed), "—" if r.n is None else str(r.n), with_ci(r.clean, r.n)]
            + [with_ci(r.threats.get(t), r.n) for t in threats] + [with_ci(getattr(r, k), r.n) for k, _ in unions]
            + [pct(r.expected)] for r in local[:2000]]
    s.tables.append(Table("Results", ["id", "dataset", "representation", "protocol", "condition", "LR schedule", "seed", "n",
                                      "clean"] + [threat_title(t) for t in threats] + [t for _, t in unions] + ["expected rob."], body))
    if len(local) > 2000:
        s.missing.append(f"results table: {len(local) - 2000} more results not listed (2,000 at most)")
    return s


# ---------------------------------------------------------------------------------- union accuracy


def union_section(rows: Sequence[Row]) -> Section:
    """Union (worst-over-threats) accuracy per recipe, beside the lowest single-threat accuracy it is bounded by."""
    s = Section("union", "Union accuracy: robust to every threat at once",
                intro=("The share of test points classified correctly clean and under every threat of a set at once "
                       "(E-AT, RAMP): `union` over the L∞/L2/L1 threats, `union (all)` with the corruptions too. It is at "
                       "most the lowest single-threat accuracy; the gap is the share of points each threat alone fails to "
                       "break but that some threat breaks. Mean ± sd over seeds, with the recipe's 95% interval (seeds "
                       "and test points; one seed: Wilson, test points only)."))
    measured = [r for r in rows if r.union is not None or r.union_all is not None]
    if not measured:
        s.missing.append("no result with a union accuracy: it needs per-point outcomes under two or more L∞/L2/L1 threats "
                         "(`evaluation:` with e.g. linf and l2; published results give per-threat totals only)")
        return s
    body = []
    groups = _seed_groups(measured, lambda r: (r.dataset, r.representation, r.protocol_label, r.condition))
    for (dataset, rep, protocol, condition), group in sorted(groups.items()):
        for key, title in UNION_TITLES:
            members = [r for r in group if getattr(r, key) is not None]
            if not members:
                continue
            values = [getattr(r, key) for r in members]
            spans = {tuple(r.union_of.get(key, ())) for r in members}
            lowest = [min([r.clean, *(r.threats[t] for t in r.union_of.get(key, ()))]) for r in members]
            gap = [lo - v for lo, v in zip(lowest, values)]
            body.append([dataset, rep, protocol, condition, title, str(len(members)), pm(values), recipe_ci(values, members),
                         pm(lowest), pm(gap), "; ".join(", ".join(threat_title(t) for t in span) for span in sorted(spans))])
    s.tables.append(Table("Union accuracy per recipe", ["dataset", "representation", "protocol", "condition", "union", "seeds",
                                                         "accuracy", "95% interval", "lowest single threat", "gap", "over"], body))
    return s
