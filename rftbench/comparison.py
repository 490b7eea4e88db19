"""Paired comparisons of results measured on the same test points: is A really more robust than B?

Two levels, never confused:

- **two trained models** — ``compare(a, b)`` with one run per side reads the per-example outcomes
  of two results (run folders, result records, ``rftbench eval`` outputs or leaderboard entries
  that carry them), refuses when they were not measured on the same points, and returns per
  threat model the paired difference of accuracies with its 95% interval and the exact McNemar
  p-value (see :mod:`rftbench.stats`). It covers the test points only: another seed of the same
  recipe is another model, and may differ from it as much, so each such comparison carries a
  warning saying so.
- **two recipes** — a side given as a :class:`~rftbench.groups.Group` (or a list of runs, a
  results folder or a sweep file: :func:`~rftbench.groups.load_group`) is a group of runs of one
  recipe; ``compare`` then tests the difference of the recipes' mean accuracies with a variance
  that has a seed-to-seed part and a test-point part (:func:`rftbench.stats.recipe_difference`),
  Welch's t with Satterthwaite's degrees of freedom, or paired by seed when asked.

``compare_many(base, others)`` compares several sides with one, Holm-adjusting the p-values
over every comparison made (each pair × each threat model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import RftbenchError
import numpy as np

from .outcomes import UNIONS, NotComparableError, Outcomes, OutcomesError, check_same_points, read_outcomes  # noqa: F401
from .sources import Source, fetch_outcomes, load_source  # noqa: F401 - public here too (rftbench.comparison.load_source)
from .stats import PairedDifference, RecipeDifference, holm, paired_difference, recipe_difference

#: The warning every comparison of single runs carries.
MODEL_LEVEL_WARNING = (
    "a comparison of two trained models: the interval and p-value cover the test points only, not seed-to-seed "
    "variation; another seed of the same recipe is another model and can differ from it as much (on study 01's "
    "textures, 43% of pairs of seeds of one recipe differ at p < 0.05). To compare recipes, give each side as a group of "
    "runs with different seeds: 3 or more per side (2 at the least), e.g. `rftbench compare RUNS… --group-by recipe`."
)


@dataclass
class Comparison:
    """A minus B per threat model (``clean`` first); ``p_holm`` set by :func:`compare_many` or :func:`adjust`.

    ``level`` is ``"model"`` (two trained models: :class:`~rftbench.stats.PairedDifference`, exact
    McNemar, covering the test points only) or ``"recipe"`` (two groups of runs:
    :class:`~rftbench.stats.RecipeDifference`, covering seeds and test points); ``warnings`` say
    what the comparison does not cover or assumes.
    """

    a: str
    b: str
    n: int
    differences: list[PairedDifference | RecipeDifference] = field(default_factory=list)
    level: str = "model"
    seeds_a: list[int | None] = field(default_factory=list)
    seeds_b: list[int | None] = field(default_factory=list)
    paired: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def covers(self) -> str:
        """What the intervals and tests cover: ``test points`` or ``seeds and test points``."""
        return RecipeDifference.covers if self.level == "recipe" else PairedDifference.covers

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "n": self.n, "level": self.level, "covers": self.covers,
                "runs_a": max(1, len(self.seeds_a)), "runs_b": max(1, len(self.seeds_b)), "seeds_a": self.seeds_a,
                "seeds_b": self.seeds_b, "paired": self.paired, "warnings": self.warnings,
                "differences": [d.to_dict() for d in self.differences]}


def _as_source(x: Source | str | Path) -> Source:
    return x if isinstance(x, Source) else load_source(x)


Side = Any  # Source | str | Path | Group | Sequence[Source | str | Path]


def _as_side(x: Side) -> Any:
    """A :class:`Source` (one run) or a :class:`~rftbench.groups.Group` (a list of runs, a results folder, a sweep file)."""
    from .groups import Group, expand, load_group

    if isinstance(x, (Source, Group)):
        return x
    if isinstance(x, (str, Path)):
        path = Path(x)
        if path.is_file() and path.suffix in (".yaml", ".yml") or (path.is_dir() and expand(path) != [path]):
            return load_group(path)
        return load_source(path)
    items = list(x)
    if not items:
        raise RftbenchError("an empty group of runs: give at least one run per side")
    sources = [i if isinstance(i, Source) else None for i in items]
    if all(s is not None for s in sources):
        from .groups import check_group

        group = Group(f"{len(items)} runs", sources)  # type: ignore[arg-type]
        check_group(group.name, group.runs)
        return group
    return load_group(items)


def _unions(sa: Outcomes, sb: Outcomes, others: Sequence[Outcomes] = ()) -> list[str]:
    """The union accuracies both sides (and ``others``) define over the same threats, so comparable point by point."""
    mine = sa.unions
    return [u for u in UNIONS if u in mine and all(o.unions.get(u) == mine[u] for o in (sb, *others))]


def _threats(sa: Outcomes, sb: Outcomes, names: tuple[str, str], threats: Sequence[str] | None,
             others: Sequence[Outcomes] = ()) -> list[str]:
    common = ["clean"] + [t for t in sa.threats if t in sb.threats and all(t in o.threats for o in others)]
    unions = _unions(sa, sb, others)
    if not threats:
        return common + unions
    chosen = []
    for t in threats:
        if t in UNIONS:
            if t not in unions:
                spans = "; ".join(f"{n}: {', '.join(o.unions.get(t) or ['(undefined)'])}" for n, o in zip(names, (sa, sb)))
                raise OutcomesError(f"{t!r} is not defined over the same threats for every run ({spans}); "
                                    "it needs the same two or more threats measured on both sides")
            chosen.append(t)
            continue
        missing = [n for n, o in zip(names, (sa, sb)) if t != "clean" and t not in o.threats]
        if not missing and t != "clean" and t not in common:
            missing = ["some runs of the groups"]
        if missing:
            measured = sorted(t for t in common if t != "clean")
            raise OutcomesError(f"threat {t!r} was not measured for {', '.join(missing)}; all have: clean"
                                + "".join(f", {m}" for m in measured))
        chosen.append(t)
    return chosen


def compare(a: Side, b: Side, threats: Sequence[str] | None = None, *, pair_seeds: bool | None = None) -> Comparison:
    """A minus B on the same points, per threat model (``clean``, every threat both measured and the union
    accuracies both define over the same threats, ``union`` and ``union_all``; or ``threats``).

    Each side is one run (a run folder, record, evaluation, entry or :class:`Source`) or a group
    of runs of one recipe (a :class:`~rftbench.groups.Group`, a list of runs, a results folder or
    a sweep file). One run per side: the comparison of two trained models (exact McNemar; its
    ``warnings`` say that seed-to-seed variation is not covered). A group on either side: the
    recipe-level test (:func:`rftbench.stats.recipe_difference`); see :func:`compare_groups`.

    :raises NotComparableError: different dataset, card version, split, subsample or n.
    :raises OutcomesError: a side without (valid) per-example outcomes, or an unknown threat.
    :raises RecipeMixError: a group whose runs differ in more than their seed.
    """
    from .groups import Group

    sa, sb = _as_side(a), _as_side(b)
    if isinstance(sa, Source) and isinstance(sb, Source):
        return _compare_models(sa, sb, threats)
    ga = sa if isinstance(sa, Group) else Group(sa.name, [sa])
    gb = sb if isinstance(sb, Group) else Group(sb.name, [sb])
    return compare_groups(ga, gb, threats, pair_seeds=pair_seeds)


def _compare_models(sa: Source, sb: Source, threats: Sequence[str] | None, warnings: Sequence[str] = ()) -> Comparison:
    names = (sa.name, sb.name) if sa.name != sb.name else (f"A ({sa.name})", f"B ({sb.name})")
    check_same_points(sa.outcomes, sb.outcomes, names)
    chosen = _threats(sa.outcomes, sb.outcomes, names, threats)
    diffs = [paired_difference(sa.outcomes.outcome(t), sb.outcomes.outcome(t), t) for t in chosen]
    return Comparison(sa.name, sb.name, len(sa.outcomes), diffs, "model", [sa.seed], [sb.seed],
                      warnings=[*warnings, MODEL_LEVEL_WARNING])


def shared_seeds(ga: Any, gb: Any) -> bool:
    """Whether both groups ran exactly the same seeds (at least 2), so that they can be paired seed by seed."""
    seeds_a, seeds_b = ga.seeds, gb.seeds
    return len(seeds_a) >= 2 and None not in seeds_a and sorted(seeds_a) == sorted(seeds_b)


def compare_groups(ga: Any, gb: Any, threats: Sequence[str] | None = None, *, pair_seeds: bool | None = None) -> Comparison:
    """Recipe A minus recipe B: two :class:`~rftbench.groups.Group` s of runs on the same points, per threat model.

    ``pair_seeds``: ``True`` pairs run with run by seed (both groups must have run the same
    seeds), ``False`` treats the seeds as independent, ``None`` (default) pairs exactly when
    both groups ran the same seeds (see the README's statistics section for the evidence that
    same-seed runs of two recipes are correlated). A group of one run borrows the other
    group's seed-to-seed variance (warned); one run on both sides falls back to the comparison
    of two trained models (warned).
    """
    runs = [*ga.runs, *gb.runs]
    first = ga.runs[0]
    for other in runs[1:]:
        check_same_points(first.outcomes, other.outcomes, (first.name, other.name))
    warnings: list[str] = []
    if len(ga) == 1 and len(gb) == 1:
        warnings.append(f"each side is a group of one run ({ga.name}; {gb.name}): a recipe-level test needs at least "
                        "2 runs (seeds) on one side, so this is the comparison of the two trained models")
        return _compare_models(ga.runs[0], gb.runs[0], threats, warnings)
    can_pair = shared_seeds(ga, gb)
    if pair_seeds and not can_pair:
        raise RftbenchError(f"--pair-seeds: the groups did not run the same seeds ({ga.name}: {_seeds(ga)}; "
                            f"{gb.name}: {_seeds(gb)}); compare them unpaired")
    paired = can_pair if pair_seeds is None else pair_seeds
    for g, other in ((ga, gb), (gb, ga)):
        if len(g) == 1:
            warnings.append(f"{g.name} is a group of one run: its seed-to-seed variance is taken to be that of {other.name} "
                            f"({len(other)} runs; equal variances assumed). Run 2 or more seeds of each recipe.")
    order_a = sorted(ga.runs, key=lambda r: r.seed if r.seed is not None else -1) if paired else ga.runs
    order_b = sorted(gb.runs, key=lambda r: r.seed if r.seed is not None else -1) if paired else gb.runs
    chosen = _threats(first.outcomes, gb.runs[0].outcomes, (ga.name, gb.name), threats, [r.outcomes for r in runs])
    diffs = []
    for t in chosen:
        a = np.stack([r.outcomes.outcome(t) for r in order_a])
        b = np.stack([r.outcomes.outcome(t) for r in order_b])
        diffs.append(recipe_difference(a, b, t, paired=paired))
    return Comparison(ga.name, gb.name, len(first.outcomes), diffs, "recipe", [r.seed for r in order_a],
                      [r.seed for r in order_b], paired, warnings)


def _seeds(g: Any) -> str:
    return ",".join("?" if s is None else str(s) for s in g.seeds)


def adjust(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """Holm-adjust the p-values of every difference in ``comparisons`` together (the family of tests shown)."""
    flat = [d.p_value for c in comparisons for d in c.differences]
    adjusted = iter(holm(flat))
    return [replace(c, differences=[replace(d, p_holm=next(adjusted)) for d in c.differences]) for c in comparisons]


def compare_many(base: Side, others: Sequence[Side], threats: Sequence[str] | None = None, *,
                 pair_seeds: bool | None = None) -> list[Comparison]:
    """Each of ``others`` against ``base`` (base minus other; runs or groups, as :func:`compare`), Holm-adjusted over all the tests."""
    if not others:
        raise RftbenchError("compare needs at least two results")
    first = _as_side(base)
    return adjust([compare(first, o, threats, pair_seeds=pair_seeds) for o in others])


def plot_comparisons(comparisons: Sequence[Comparison], path: str | Path, alpha: float = 0.05) -> Path:
    """A forest plot: per threat model, each paired difference (percentage points) with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(c, d) for c in comparisons for d in c.differences]

    def short(name: str) -> str:
        return name if len(name) <= 24 else name[:21] + "…"

    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.6), layout="constrained")
    for i, (c, d) in enumerate(rows):
        y = len(rows) - 1 - i
        colour = "#c92a2a" if d.significant(alpha) else "#495057"
        ax.errorbar(100 * d.diff, y, xerr=[[100 * (d.diff - d.ci_low)], [100 * (d.ci_high - d.diff)]], fmt="o",
                    color=colour, capsize=3)
    ax.axvline(0, color="#868e96", lw=1, ls="--")
    labels = [d.threat + (f"\n{short(c.b)}" if len(comparisons) > 1 else "") for c, d in rows]
    ax.set_yticks(range(len(rows))[::-1], labels, fontsize=8)
    first = comparisons[0]
    who = f"{short(first.a)} − {short(first.b)}" if len(comparisons) == 1 else f"{short(first.a)} − each other result"
    levels = {c.level for c in comparisons}
    what = ("recipes (groups of runs): interval over seeds and test points" if levels == {"recipe"}
            else "two trained models: interval over the test points only" if levels == {"model"}
            else "recipes (seeds and test points) and single models (test points only)")
    test = {"recipe": "t-test", "model": "exact McNemar"}
    ax.set_title(f"{who}: difference in accuracy, 95% interval (n = {first.n})\n{what}", fontsize=9, loc="left")
    ax.set_xlabel(f"percentage points · red: significant at α = {alpha:g} ({' / '.join(test[v] for v in sorted(levels, reverse=True))}, "
                  "Holm-adjusted)", fontsize=8)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    except ValueError as err:  # an unknown extension
        raise RftbenchError(f"--plot {path}: {err}; use a .png, .svg or .pdf file") from None
    except OSError as err:
        raise RftbenchError(f"--plot {path}: cannot write it ({err.strerror or err})") from None
    finally:
        plt.close(fig)
    return path


__all__ = ["Comparison", "MODEL_LEVEL_WARNING", "NotComparableError", "OutcomesError", "Source", "adjust", "compare",
           "compare_groups", "compare_many", "load_source", "plot_comparisons", "shared_seeds"]
