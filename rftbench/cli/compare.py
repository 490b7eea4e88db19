"""``rftbench compare``: paired differences of accuracy between results measured on the same points.

Two levels: two trained models (one run per side: exact McNemar, test points only) and two
recipes (groups of runs: a t-test whose variance covers seeds and test points).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ._app import app, console, err_console, print_json, styled


def _pp(value: float) -> str:
    return f"{100 * value:+.1f}"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.1e}"


def _sd(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _seeds(seeds: list) -> str:
    return ",".join("?" if s is None else str(s) for s in seeds)


def _pick_base(groups: list, conditions: list[str]) -> list:
    """``groups`` with the one whose grouping values meet every condition first."""
    from ..errors import RftbenchError
    from ..sweep.export import _holds, _parse_condition

    parsed = [_parse_condition(c) for c in conditions]
    unknown = [k for k, _, _ in parsed if not any(k in g.key for g in groups)]
    if unknown:
        raise RftbenchError(f"--base: {unknown[0]!r} is not a grouping column; the groups differ in: "
                            + ", ".join(sorted({k for g in groups for k in g.key})))
    matched = [g for g in groups if all(_holds(g.key.get(k), op, v) for k, op, v in parsed)]
    if len(matched) != 1:
        names = "; ".join(g.name for g in (matched or groups))
        raise RftbenchError(f"--base {' '.join(conditions)} matches {len(matched)} groups (it must match one): {names}")
    return [matched[0], *(g for g in groups if g is not matched[0])]


@app.command("compare")
def compare_command(
    results: list[Path] = typer.Argument(..., help="Two or more sides: runs (runs/HASH, runs/HASH.json, evaluation.json of `rftbench eval`, "
                                                   "entry files with per-example outcomes), or groups of runs of one recipe "
                                                   "(a results folder, a sweep file); with --group-by, every run they hold, split into groups."),
    group_by: str = typer.Option(None, "--group-by", "-g", help="Split the runs of all RESULTS into groups by these comma-separated columns "
                                                                "(as `rftbench results --group-by`), or 'recipe': every config field but the seed. "
                                                                "Each group is one side; the first (or --base) is compared with each other one."),
    filters: list[str] = typer.Option(None, "--filter", "-f", help="Keep only the runs with column=value (wildcards), column!=value, column>number…; repeat to combine."),
    base: list[str] = typer.Option(None, "--base", help="With --group-by: the group every other is compared with, by its values (e.g. --base eps_schedule=constant)."),
    pair_seeds: bool = typer.Option(None, "--pair-seeds/--no-pair-seeds", help="Pair two groups run by run by seed. Default: paired exactly when both groups ran the same seeds."),
    skip_missing: bool = typer.Option(False, "--skip-missing", help="Leave out (and name) runs of a group whose record or per-example file is missing or altered, instead of refusing."),
    threats: list[str] = typer.Option(None, "--threat", "-t", help="Compare only these threat models (repeat; 'clean' for clean accuracy, 'union'/'union_all' for the union accuracies). Default: clean, every threat all sides measured, and the unions."),
    plot: Path = typer.Option(None, "--plot", "-p", help="Write a plot of the differences with their intervals (PNG, SVG or PDF)."),
    alpha: float = typer.Option(0.05, "--alpha", min=1e-6, max=0.5, help="Significance level for the marks (after the Holm correction)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparisons as JSON."),
) -> None:
    """Is A really more robust than B? Paired comparison of results on the same test points.

    Two levels. **Two trained models** (one run per side): per threat model the difference in
    accuracy (A − B, in points) with a 95% interval (Agresti–Min, for matched pairs), the points
    only A / only B gets right, and the exact McNemar p-value. It covers the test points only:
    another seed of the same recipe is another model and can differ as much, so it says so.

    **Two recipes** (a side is a group of runs differing only in their seed: a results folder, a
    sweep file, or `--group-by` over the runs given): the difference of the groups' mean
    accuracies with a 95% interval and Welch's t-test whose variance adds the seed-to-seed part
    (the runs' spread) and the test-point part (Satterthwaite degrees of freedom; paired by
    seed when both groups ran the same seeds). It needs 2 runs per side at the least and 3 or
    more for power; a group of one run borrows the other's seed variance, with a warning.

    With more than two sides each is compared with the first (or `--base`), and every p-value is
    Holm-adjusted over all the comparisons shown (`p Holm`; `*`: significant at `--alpha`).
    Sides must have been measured on the same points (same dataset card, split and n_eval), a
    group must hold one recipe (each differing field is named), and a run without its
    per-example file is named: compare refuses, or with `--skip-missing` leaves it out.

    Examples: `rftbench compare runs/3f2a… runs/9c1b…` ·
    `rftbench compare study.yaml -g recipe -f loss=classic_at` ·
    `rftbench compare runs/study -g eps_schedule --base eps_schedule=constant -t linf:4/255 --plot diff.png`
    """
    from ..comparison import compare_many, load_source, plot_comparisons
    from ..errors import RftbenchError
    from ..groups import RECIPE, expand, group_runs, load_group

    keys = [k.strip() for k in (group_by or "").split(",") if k.strip()]
    left_out: list[str] = []
    if keys:
        if RECIPE in keys and keys != [RECIPE]:
            raise RftbenchError("--group-by recipe already splits by every config field but the seed: give it alone")
        sides = group_runs(results, keys, filters=filters or [], skip_missing=skip_missing)
        if len(sides) < 2:
            raise RftbenchError(f"--group-by {group_by}: the runs form {len(sides)} group ({sides[0].name}, {len(sides[0])} runs); "
                                "a comparison needs two: group by a column whose value differs between the runs")
        if base:
            sides = _pick_base(sides, base)
        left_out = sides[0].left_out
    else:
        if base:
            raise RftbenchError("--base picks a group formed by --group-by: give --group-by too, or put the base first")
        if len(results) < 2:
            raise RftbenchError("compare needs at least two sides (A B [C …]), or one results folder or sweep file with --group-by")
        sides = []
        for r in results:
            single = r.is_file() and r.suffix == ".json" or r.is_dir() and expand(r) == [r]
            if single:
                sides.append(load_source(r))
            else:
                group = load_group(r, filters=filters or [], skip_missing=skip_missing)
                left_out += group.left_out
                sides.append(group)
    _label_runs(sides)
    comparisons = compare_many(sides[0], sides[1:], threats or None, pair_seeds=pair_seeds)
    written = plot_comparisons(comparisons, plot, alpha) if plot is not None else None
    warnings = list(dict.fromkeys(w for c in comparisons for w in c.warnings))
    if as_json:
        print_json({"alpha": alpha, "comparisons": [c.to_dict() for c in comparisons], "left_out": left_out,
                    "plot": str(written) if written else None})
        return
    for problem in dict.fromkeys(left_out):
        err_console.print(styled("[yellow]left out (--skip-missing):[/] {}", problem), soft_wrap=True)
    for c in comparisons:
        console.print(_recipe_table(c, alpha) if c.level == "recipe" else _model_table(c, alpha))
    for warning in warnings:
        err_console.print(styled("[yellow]warning:[/] {}", warning), soft_wrap=True)
    levels = {c.level for c in comparisons}
    notes = []
    if "model" in levels:
        tests = {d.test for c in comparisons if c.level == "model" for d in c.differences}
        notes.append("two trained models — p: exact McNemar test" + (" (sign test for averaged outcomes)" if "sign-test" in tests else "")
                     + ", interval: Agresti–Min; both cover the test points only")
    if "recipe" in levels:
        notes.append("two recipes — p and interval: t-test on the groups' mean accuracies, variance = seed-to-seed part + "
                     "test-point part, Satterthwaite df (paired-t where the seeds are paired); both cover seeds and test points")
    err_console.print(styled("[dim]{}; * significant at α = {} after Holm over {} tests[/]", "; ".join(notes),
                             f"{alpha:g}", sum(len(c.differences) for c in comparisons)))
    if written:
        err_console.print(f"plot: {written}")


def differing(configs: list[dict]) -> list[dict[str, str]]:
    """Per config, what tells it from the others: ``{"loss": "trades", "seed": "0"}`` (where the runs are kept is not).

    A parameter (``loss.beta``) is named only where its component is the same on every side.
    """
    import json

    from ..config import NON_RESULT_FIELDS
    from ..sweep.export import flatten_config

    flat = [flatten_config(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flat for k in f))

    def text(f: dict, k: str) -> str:
        return json.dumps(f.get(k), sort_keys=True, default=str)

    differ = [k for k in keys if k.split(".")[0] not in NON_RESULT_FIELDS and len({text(f, k) for f in flat}) > 1]
    differ = [k for k in differ if "." not in k or k.rsplit(".", 1)[0] not in differ]
    return [{k: str(f.get(k, "-")) for k in differ} for f in flat]


def _label_runs(sides: list) -> None:
    """Name each single run by its id and what differs between the sides' configs: ``6cf1… (loss=trades, seed 0)``."""
    from ..comparison import Source

    runs = [s for s in sides if isinstance(s, Source) and s.config]
    if len(runs) < 2:
        return
    for run, values in zip(runs, differing([r.config for r in runs])):
        parts = [f"seed {v}" if k == "seed" else f"{k}={v}" for k, v in values.items()]
        if parts:
            run.name = f"{run.name} ({', '.join(parts)})"


def _table(c, alpha: float, title: str, middle: tuple[str, ...], cells) -> Table:
    """One comparison: threat, A, B, A−B, interval, the level's own columns (``middle``), p, p Holm, mark."""
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, collapse_padding=True, header_style="bold")
    table.add_column("threat", no_wrap=True)
    for name in ("A", "B", "A−B", "95% interval", *middle, "p", "p Holm", ""):
        table.add_column(name, justify="right", no_wrap=True)
    for d in c.differences:
        table.add_row(d.threat, f"{100 * d.acc_a:.1f}%", f"{100 * d.acc_b:.1f}%", _pp(d.diff), f"[{_pp(d.ci_low)}, {_pp(d.ci_high)}]",
                      *cells(d), _p(d.p_value), _p(d.p_holm), "*" if d.significant(alpha) else "")
    return table


def _model_table(c, alpha: float) -> Table:
    title = f"Two trained models (one run per side; covers the test points, not the seeds)\nA = {c.a}\nB = {c.b}\n{c.n} paired points"
    return _table(c, alpha, title, ("only A", "only B"), lambda d: (f"{d.only_a:g}", f"{d.only_b:g}"))


def _recipe_table(c, alpha: float) -> Table:
    title = (f"Two recipes (groups of runs; covers seeds and test points)\n"
             f"A = {c.a}  ({len(c.seeds_a)} runs, seeds {_seeds(c.seeds_a)})\n"
             f"B = {c.b}  ({len(c.seeds_b)} runs, seeds {_seeds(c.seeds_b)})\n"
             f"{c.n} test points; {'seeds paired' if c.paired else 'seeds independent'}")
    return _table(c, alpha, title, ("sd A/B", "df"), lambda d: (f"{_sd(d.seed_sd_a)}/{_sd(d.seed_sd_b)}", f"{d.df:.1f}"))
