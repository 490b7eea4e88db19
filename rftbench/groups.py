"""Groups of runs of one recipe: the sides of a recipe-level comparison.

A *recipe* is a run's configuration minus its ``seed`` (and minus the fields that only say where
or how fast it ran, :data:`~rftbench.config.NON_RESULT_FIELDS`). A :class:`Group` holds runs of
one recipe — usually its seeds — each with its per-example outcomes, so that
:func:`rftbench.compare` can test recipes rather than trained models.

Groups are read from result records: run folders or records, results folders (every record in
them) and sweep files (the records in their ``results_dir``), narrowed with ``filters``
(``rftbench results``'s ``column=value`` syntax) and split with ``by`` (its ``--group-by``
columns, or ``recipe``: every config field but the seed). Nothing is pooled silently:

- runs that differ in more than the seed inside one group: :class:`RecipeMixError`, naming each
  differing field with its values (add them to ``by`` to split the group);
- two runs of a group with the same seed: the same run twice, refused;
- a run whose record or per-example file is missing, unreadable or altered: an
  :class:`~rftbench.outcomes.OutcomesError` naming every such run, unless ``skip_missing`` — then
  they are left out and named in :attr:`Group.left_out`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sources import Source, load_source
from .errors import RftbenchError
from .outcomes import OutcomesError

#: The ``by`` key meaning "every config field but the seed": one group per recipe.
RECIPE = "recipe"
#: Sub-folders of a results folder that hold no results (sweep bookkeeping).
_SKIP = {"failures", "claims", "slurm", "corrupt"}


class RecipeMixError(RftbenchError):
    """A group holds runs of more than one recipe; the message names each differing field."""


@dataclass
class Group:
    """Runs of one recipe (differing only in their seed), compared as a recipe."""

    name: str
    runs: list[Source]
    key: dict[str, Any] = field(default_factory=dict)  # the grouping columns' values
    left_out: list[str] = field(default_factory=list)  # runs skipped (skip_missing): "where: why"

    def __len__(self) -> int:
        return len(self.runs)

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.runs]


def sweep_results_dir(path: str | Path) -> Path:
    """The results folder a sweep file writes to (its ``results_dir``, relative to the file)."""
    from .yamlfile import read_mapping

    path = Path(path)
    data = read_mapping(path, RftbenchError, "a sweep file (base, axes, zip, results_dir, …)")
    results_dir = data.get("results_dir", "runs/sweep")
    if not isinstance(results_dir, str) or not results_dir:
        raise RftbenchError(f"{path}: results_dir must be a folder name (got {results_dir!r})")
    folder = Path(results_dir)
    return folder if folder.is_absolute() else path.parent / folder


def _is_run(path: Path) -> bool:
    """A run folder (``runs/HASH`` with ``runs/HASH.json`` beside it, or an ``rftbench eval`` folder) or a record file."""
    if path.is_dir():
        return path.with_suffix(".json").is_file() or (path / "evaluation.json").is_file()
    return path.is_file() and path.suffix == ".json"


def expand(target: str | Path) -> list[Path]:
    """The result records one argument names: a run (itself), a results folder (its records) or a sweep file (its results_dir's)."""
    path = Path(target)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        folder = sweep_results_dir(path)
        if not folder.is_dir():
            raise RftbenchError(f"{path}: its results folder {folder} does not exist yet (run the sweep first)")
        path = folder
    if _is_run(path):
        return [path]
    if not path.is_dir():
        raise RftbenchError(f"{path}: no such run, results folder or sweep file")
    root = path.resolve()
    records = sorted(p for p in path.glob("*.json") if p.is_file() and p.resolve().is_relative_to(root)
                     and not _SKIP & set(p.relative_to(path).parts[:-1]))
    if not records:
        raise RftbenchError(f"{path}: no result records (HASH.json) in this folder")
    return records


def recipe_columns(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config's flat columns (``rftbench results``'s names) that define the recipe: all but the seed and where/how-fast fields.

    The config is re-validated first where it still validates, so a record written before a
    field with a default existed reads as having that default.
    """
    from .config import NON_RESULT_FIELDS, RunConfig
    from .sweep.export import flatten_config

    try:
        config = RunConfig.model_validate(dict(config)).to_dict()
    except Exception:  # noqa: BLE001 - a record of another version: compare its fields as written
        config = dict(config)
    return {k: v for k, v in flatten_config(config).items() if k.split(".")[0] not in {"seed", *NON_RESULT_FIELDS}}


def _differences(configs: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """``field: value (runs…), value (runs…)`` for each recipe field that is not the same in every config."""
    columns = sorted(set().union(*configs)) if configs else []
    out = []
    for column in columns:
        values: dict[str, list[str]] = {}
        for config, name in zip(configs, names):
            text = json.dumps(config.get(column), default=str) if column in config else "(absent)"
            values.setdefault(text, []).append(name)
        if len(values) > 1:
            out.append(f"{column}: " + "; ".join(f"{v} ({', '.join(n[:16] for n in ns[:4])}{' …' if len(ns) > 4 else ''})"
                                                   for v, ns in values.items()))
    return out


def _read_runs(targets: Iterable[str | Path], skip_missing: bool) -> tuple[list[tuple[Source, dict[str, Any]]], list[str]]:
    """Each record as (its source, its flat row), in the order given; unreadable runs named."""
    from .results import read_record
    from .sweep.export import flatten_record

    paths: list[Path] = []
    for target in targets:
        for path in expand(target):
            if path.resolve() not in {p.resolve() for p in paths}:
                paths.append(path)
    runs, problems = [], []
    for path in paths:
        record_path = path.with_suffix(".json") if path.is_dir() else path
        try:
            record = read_record(record_path)
            source = load_source(path)
        except RftbenchError as err:
            problems.append(f"{path}: {str(err).splitlines()[0]}")
            continue
        if source.config is None:
            problems.append(f"{path}: an evaluation or entry, not a result record: it has no run config to group by")
            continue
        runs.append((source, flatten_record(record)))
    if problems and not skip_missing:
        raise OutcomesError(f"{len(problems)} run(s) cannot be compared:\n  " + "\n  ".join(problems)
                            + "\nFix or re-evaluate them (`rftbench eval RUN`), or compare the others with --skip-missing "
                              "(skip_missing=True): they are then left out and named.")
    return runs, problems


def check_group(name: str, runs: Sequence[Source]) -> None:
    """Raise :class:`RecipeMixError` unless ``runs`` are of one recipe, each seed once (the message names each differing field)."""
    unknown = [r.name for r in runs if r.config is None]
    if unknown and len(runs) > 1:
        raise RecipeMixError(f"group {name}: {', '.join(unknown)} carry no run config (evaluations or entries), so nothing shows "
                             "that the group is one recipe over seeds; a group holds result records (runs/HASH.json)")
    configs = [recipe_columns(r.config or {}) for r in runs]
    ids = [r.name for r in runs]
    mixed = _differences(configs, ids)
    if mixed:
        raise RecipeMixError(f"group {name} holds runs of different recipes (configs differing in more than the seed), "
                             "which a recipe-level comparison would pool:\n  " + "\n  ".join(mixed)
                             + "\nSplit them: add " + ", ".join(sorted({m.split(':')[0] for m in mixed}))
                             + " to --group-by (or use --group-by recipe), or filter them out with -f.")
    seen: dict[Any, str] = {}
    for run in runs:
        if run.seed in seen:
            raise RecipeMixError(f"group {name} holds two runs with seed {run.seed} ({seen[run.seed]} and {run.name}): "
                                 "the same recipe and seed twice (a copy or a re-run); keep one of them")
        seen[run.seed] = run.name


def _filtered(runs: list[tuple[Source, dict[str, Any]]], filters: Sequence[str]) -> list[tuple[Source, dict[str, Any]]]:
    from .sweep.export import filter_rows

    if not filters:
        return runs
    kept = {id(row) for row in filter_rows([row for _, row in runs], filters)}
    return [(s, row) for s, row in runs if id(row) in kept]


def load_group(targets: str | Path | Iterable[str | Path], name: str | None = None, *, filters: Sequence[str] = (),
               skip_missing: bool = False) -> Group:
    """All the runs ``targets`` name (runs, results folders, sweep files), narrowed by ``filters``, as one group.

    :raises RecipeMixError: they are not all runs of one recipe (the message names each differing field).
    :raises OutcomesError: a run without readable per-example outcomes (unless ``skip_missing``).
    """
    targets = [targets] if isinstance(targets, (str, Path)) else list(targets)
    runs, problems = _read_runs(targets, skip_missing)
    runs = _filtered(runs, filters)
    label = name or (str(targets[0]) if len(targets) == 1 else f"{len(targets)} results")
    if not runs:
        raise RftbenchError(f"{label}: no result records left to compare" + (" after the filters" if filters else ""))
    group = Group(label, [s for s, _ in runs], left_out=problems)
    check_group(label, group.runs)
    return group


def group_runs(targets: str | Path | Iterable[str | Path], by: Sequence[str], *, filters: Sequence[str] = (),
               skip_missing: bool = False) -> list[Group]:
    """Split the runs ``targets`` name into groups sharing the values of ``by`` (``["recipe"]``: everything but the seed).

    Groups come in the natural order of their ``by`` values; each is named by its values
    (``loss=trades, eps_schedule=constant``) or, for ``recipe``, by the fields in which the
    groups differ.

    :raises RecipeMixError: a group holds runs differing in more than the seed (add the fields named to ``by``).
    :raises OutcomesError: a run without readable per-example outcomes (unless ``skip_missing``).
    """
    from .sweep.export import _sort_key

    targets = [targets] if isinstance(targets, (str, Path)) else list(targets)
    by = list(by)
    if not by:
        raise RftbenchError("group_runs needs at least one column to group by (or 'recipe')")
    runs, problems = _read_runs(targets, skip_missing)
    runs = _filtered(runs, filters)
    if not runs:
        raise RftbenchError("no result records left to compare" + (" after the filters" if filters else ""))
    by_recipe = by == [RECIPE]
    if not by_recipe:
        columns = set().union(*(row for _, row in runs))
        unknown = [k for k in by if k not in columns]
        if unknown:
            from .errors import close_matches

            hint = close_matches(unknown[0], columns)
            raise RftbenchError(f"--group-by: unknown column {unknown[0]!r}." + (f" Did you mean: {', '.join(hint)}?" if hint else "")
                                + f"\nColumns: recipe, {', '.join(sorted(columns))}")
    buckets: dict[str, tuple[dict[str, Any], list[Source]]] = {}
    for source, row in runs:
        values = recipe_columns(source.config or {}) if by_recipe else {k: row.get(k) for k in by}
        text = json.dumps(values, sort_keys=True, default=str)
        buckets.setdefault(text, (values, []))[1].append(source)
    keys = [values for values, _ in buckets.values()]
    if by_recipe:  # name each recipe by what tells it apart from the others
        differing = [c for c in sorted(set().union(*keys)) if len({json.dumps(k.get(c), default=str) for k in keys}) > 1]
        keys = [{c: k.get(c) for c in differing} for k in keys]
    groups = []
    for values, (_, sources) in zip(keys, buckets.values()):
        # a component's unset parameter says nothing once its name differs: `eps_schedule=constant`, not `….t1=None`
        shown = {k: v for k, v in values.items() if not (v is None and "." in k and k.split(".")[0] in values)}
        label = ", ".join(f"{k}={v}" for k, v in shown.items()) or "recipe"
        groups.append(Group(label, sources, key=values, left_out=problems))
    groups.sort(key=lambda g: [_sort_key(v) for v in g.key.values()])
    for g in groups:
        check_group(g.name, g.runs)
    return groups


__all__ = ["Group", "RECIPE", "RecipeMixError", "check_group", "expand", "group_runs", "load_group", "recipe_columns", "sweep_results_dir"]
