"""The sweep file: a base run config and axes over any of its fields, expanded into resolved runs.

A sweep file is YAML validated by :class:`SweepSpec`::

    base: base.yaml                  # a run config file (relative to this file) or an inline mapping
    results_dir: runs/my-study       # one result record per run, named by its config hash
    axes:                            # the product of every axis ...
      representation: {family: convolutional, size: small}   # a zoo filter
      dataset: [digits, 'cifar*']    # ids or wildcards
      loss: [trades, {name: classic_at}]
      optimizer.lr_head: [1.0e-3, 1.0e-2]
      seed: [0, 1, 2]
    zip:                             # ... times each zipped group (equal-length lists, varied together)
      - {protocol: [lp, fft], epochs: [50, 5]}
    retries: 1                       # a failed run is tried again up to this many times
    claim_timeout: 120               # seconds without a heartbeat after which a claim is stale
    executor: {name: ray, address: auto, gpus_per_run: 1}

Axis keys are run-config fields, dotted to reach parameters (``loss.beta``) or nested fields
(``optimizer.lr_head``), exactly as ``--set`` takes them. Every expanded run is validated and
resolved by :func:`rftbench.config.resolve_config`, so an unknown plugin name is reported with its
close matches, naming the axis and the value, before any run starts.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..cards import format_validation_error
from ..config import Component, RunConfig, load_config, resolve_config
from ..errors import ConfigError, RftbenchError, UnknownNameError, close_matches
from ..plugins import PluginManager, get_manager
from ..yamlfile import read_mapping
from ..zoo import list_cards
from .errors import SweepError

#: Axes whose values are zoo card ids, so that they also accept wildcards and filters.
ZOO_AXES = {"representation": "representation", "dataset": "dataset"}
#: Fields a sweep sets itself (every run writes where the sweep keeps its results).
RESERVED_AXES = {"output_dir"}

AxisValues = list[Any] | dict[str, Any] | str | int | float | bool


class SweepSpec(BaseModel):
    """A sweep file: the base config, the axes, where results go and how runs are executed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, description="a label for the sweep (shown in progress and summaries)")
    base: str | dict[str, Any] | None = Field(
        None, description="the run config every run starts from: a YAML file (relative to the sweep file) or a mapping"
    )
    axes: dict[str, AxisValues] = Field(default_factory=dict, description="field: values; the runs are their product")
    zip: list[dict[str, AxisValues]] = Field(
        default_factory=list, description="groups of fields whose equal-length value lists vary together"
    )
    results_dir: str = Field("runs/sweep", description="where result records, claims and failure records live")
    retries: int = Field(1, ge=0, le=100, description="extra attempts for a run that raised, across invocations")
    claim_timeout: float = Field(
        120.0, gt=0, le=7 * 24 * 3600,
        description="seconds without a heartbeat (sent every timeout/4, at most every 60 s) after which another worker "
                    "may take a run over; a killed worker's run is taken over after this long",
    )
    executor: Component = Field(Component(name="local"), description="the executor plugin and its parameters")


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its resolved config, its hash and the axis values that made it."""

    index: int
    config: RunConfig
    hash: str
    assignment: dict[str, Any]

    @property
    def label(self) -> str:
        """``loss=trades seed=1``: the axis values that distinguish this run."""
        return " ".join(f"{k}={_short(v)}" for k, v in self.assignment.items()) or "(base)"


@dataclass
class Sweep:
    """An expanded sweep: the spec, its runs (deduplicated by config hash) and where it came from."""

    spec: SweepSpec
    runs: list[SweepRun]
    results_dir: Path
    source: Path | None = None
    duplicates: int = 0
    axes: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name or (self.source.stem if self.source else "sweep")


# ---------------------------------------------------------------------------- loading


def load_sweep(path: str | Path, manager: PluginManager | None = None, *, results_dir: str | Path | None = None) -> Sweep:
    """Read, validate and expand a sweep file; every problem is reported before any run starts."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file {str(path)!r} does not exist")
    data = read_mapping(path, SweepError, "a sweep file (base, axes, zip, results_dir, executor…)")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        hint = ""
        extra = [str(e["loc"][0]) for e in err.errors() if e["type"] == "extra_forbidden" and len(e["loc"]) == 1]
        for name in extra:
            matches = close_matches(name, SweepSpec.model_fields)
            hint += f"\n  {name}: did you mean {', '.join(matches)}?" if matches else ""
            if name in RunConfig.model_fields:
                hint += f"\n  {name} is a run-config field: put it under `base:` (one value) or `axes:` (several)"
        raise SweepError(f"{path}: invalid sweep file:\n{format_validation_error(err)}{hint}") from None
    return expand_sweep(spec, manager, source=path, results_dir=results_dir)


def expand_sweep(
    spec: SweepSpec,
    manager: PluginManager | None = None,
    *,
    source: Path | None = None,
    results_dir: str | Path | None = None,
) -> Sweep:
    """Expand the axes into resolved runs, deduplicated by config hash (first occurrence kept).

    Raises :class:`SweepError` listing every bad axis key, axis value, zoo filter and executor
    parameter at once, each line naming where it is in the sweep file.
    """
    manager = manager or get_manager()
    where = f"{source}: " if source else ""
    base_dir = source.parent if source else Path.cwd()
    root = Path(results_dir) if results_dir is not None else _relative(spec.results_dir, base_dir)
    base = _base_config(spec, base_dir, manager, where)

    problems: list[str] = []
    _check_executor(spec.executor, manager, problems)
    axes: dict[str, list[Any]] = {}
    for key, values in spec.axes.items():
        axes[key] = _axis_values(f"axes.{key}", key, values, manager, problems)
    groups: list[dict[str, list[Any]]] = []
    for i, group in enumerate(spec.zip):
        expanded = {key: _axis_values(f"zip[{i}].{key}", key, values, manager, problems) for key, values in group.items()}
        lengths = {k: len(v) for k, v in expanded.items()}
        if len(set(lengths.values())) > 1:
            problems.append(
                f"  zip[{i}]: zipped axes need value lists of equal length, got "
                + ", ".join(f"{k}: {n}" for k, n in lengths.items())
            )
        groups.append(expanded)
    seen: dict[str, str] = {}
    for label, keys in [("axes", list(axes))] + [(f"zip[{i}]", list(g)) for i, g in enumerate(groups)]:
        for key in keys:
            if key in seen:
                problems.append(f"  {label}.{key}: already varied by {seen[key]}.{key}; vary a field in one place")
            seen[key] = label
    if problems:
        raise SweepError(f"{where}invalid sweep:\n" + "\n".join(problems))

    # Each value alone on the base first: an unknown name is then reported once, at its axis.
    for label, key, values in _labelled_axes(axes, groups):
        for j, value in enumerate(values):
            try:
                _resolve(base, {key: value}, manager)
            except ConfigError as err:
                problems.append(f"  {label}.{key}[{j}] = {_short(value)!r}:\n    " + _body(err).replace("\n", "\n    "))
    if problems:
        raise SweepError(f"{where}invalid sweep:\n" + "\n".join(problems))

    runs: list[SweepRun] = []
    hashes: set[str] = set()
    duplicates = 0
    for assignment in _combinations(axes, groups):
        try:
            config = _resolve(base, assignment, manager, output_dir=str(root))
        except ConfigError as err:
            shown = " ".join(f"{k}={_short(v)}" for k, v in assignment.items())
            raise SweepError(f"{where}the run {shown} is invalid:\n{_body(err)}") from None
        digest = config.config_hash()
        if digest in hashes:
            duplicates += 1
            continue
        hashes.add(digest)
        runs.append(SweepRun(len(runs), config, digest, assignment))
    return Sweep(spec, runs, root, source, duplicates, {**axes, **{k: v for g in groups for k, v in g.items()}})


# ---------------------------------------------------------------------------- helpers


def _relative(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def _base_config(spec: SweepSpec, base_dir: Path, manager: PluginManager, where: str) -> dict[str, Any]:
    """The base config as a mapping (validated and resolved once, so its own errors come first)."""
    if spec.base is None:
        data: dict[str, Any] = {}
    elif isinstance(spec.base, str):
        path = _relative(spec.base, base_dir)
        try:
            load_config(path, manager=manager)
        except ConfigError as err:
            raise SweepError(f"{where}base: {err}") from None
        data = read_mapping(path, SweepError, "a run config", empty_ok=True)
    else:
        data = dict(spec.base)
    if "output_dir" in data:
        raise SweepError(f"{where}base.output_dir: a sweep writes every run under its results_dir; set results_dir instead")
    try:
        resolve_config(RunConfig.model_validate(data), manager)
    except ValidationError as err:
        raise SweepError(f"{where}invalid base config:\n{format_validation_error(err, prefix='base.')}") from None
    except ConfigError as err:
        raise SweepError(f"{where}invalid base config:\n{_body(err)}") from None
    return data


def _check_executor(component: Component, manager: PluginManager, problems: list[str]) -> None:
    try:
        spec = manager.get("executor", component.name)
    except UnknownNameError as err:
        problems.append("  executor: " + str(err).replace("\n", "\n    "))
        return
    try:
        spec.validate_params(component.params)
    except ValidationError as err:
        problems.append(format_validation_error(err, prefix="executor."))


def _axis_values(label: str, key: str, values: AxisValues, manager: PluginManager, problems: list[str]) -> list[Any]:
    """The concrete values of one axis: zoo filters and wildcards expanded to card ids."""
    top = key.split(".")[0]
    if top not in RunConfig.model_fields:
        matches = close_matches(top, RunConfig.model_fields)
        problems.append(
            f"  {label}: unknown config field {top!r}."
            + (f" Did you mean: {', '.join(matches)}?" if matches else "")
            + f"\n    Fields: {', '.join(RunConfig.model_fields)}"
        )
        return []
    if top in RESERVED_AXES:
        problems.append(f"  {label}: {top} is set by the sweep (every run writes under results_dir): remove the axis and set results_dir")
        return []
    kind = ZOO_AXES.get(key)
    if isinstance(values, Mapping) and (kind is None or "name" in values):
        values = [values]  # a single component mapping such as {name: trades, beta: 6}
    items = values if isinstance(values, list) else [values]
    if not items:
        problems.append(f"  {label}: an axis needs at least one value")
        return []
    if kind is None:
        return list(items)
    out: list[Any] = []
    for j, item in enumerate(items):
        where = f"{label}[{j}]" if len(items) > 1 or isinstance(values, list) else label
        try:
            out.extend(_zoo_ids(kind, item, manager))
        except RftbenchError as err:
            problems.append(f"  {where}: " + str(err).replace("\n", "\n    "))
    return list(dict.fromkeys(out))


def _zoo_ids(kind: str, item: Any, manager: PluginManager) -> list[str]:
    """Card ids for one zoo-axis item: an id, a wildcard, or a ``{field: value, pattern: …}`` filter."""
    if isinstance(item, Mapping):
        filters = {str(k): str(v) for k, v in item.items() if k != "pattern"}
        pattern = item.get("pattern")
        cards = list_cards(kind, pattern, filters, manager)
        if not cards:
            shown = ", ".join(f"{k}: {v}" for k, v in item.items())
            total = len(manager.names(kind))
            raise RftbenchError(
                f"the zoo filter {{{shown}}} matches no {kind} card (of {total}).\n"
                f"See what it can match with `rftbench zoo list --kind {kind} -f key=value`."
            )
        return [c.id for c in cards]
    if not isinstance(item, str):
        raise RftbenchError(f"{item!r} is not a {kind} card id, a wildcard or a filter mapping")
    if any(ch in item for ch in "*?["):
        ids = [c.id for c in list_cards(kind, item, None, manager)]
        if not ids:
            raise RftbenchError(f"the wildcard {item!r} matches no {kind} card (see `rftbench zoo list --kind {kind}`)")
        return ids
    return [item]  # checked (with close matches) when the runs are resolved


def _labelled_axes(axes: dict[str, list[Any]], groups: list[dict[str, list[Any]]]):
    for key, values in axes.items():
        yield "axes", key, values
    for i, group in enumerate(groups):
        for key, values in group.items():
            yield f"zip[{i}]", key, values


def _combinations(axes: dict[str, list[Any]], groups: list[dict[str, list[Any]]]):
    """Assignments in file order: the product of the axes and of each zipped group's rows."""
    factors: list[list[dict[str, Any]]] = [[{key: v} for v in values] for key, values in axes.items()]
    for group in groups:
        keys = list(group)
        factors.append([dict(zip(keys, row)) for row in zip(*(group[k] for k in keys))])
    for combo in itertools.product(*factors):
        merged: dict[str, Any] = {}
        for part in combo:
            merged.update(part)
        yield merged


def _resolve(base: dict[str, Any], assignment: Mapping[str, Any], manager: PluginManager, output_dir: str | None = None) -> RunConfig:
    data = _copy(base)
    for key, value in assignment.items():
        assign(data, key, value)
    if output_dir is not None:
        data["output_dir"] = output_dir
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"invalid run config:\n{format_validation_error(err)}") from None
    return resolve_config(config, manager)


def assign(data: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted ``key`` in a config mapping, as ``--set key=value`` does, with an already-parsed value.

    A component written as a bare name (``loss: trades``) becomes a mapping when a parameter of it
    is set (``loss.beta``); a missing component starts from the config's default component.
    """
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None and i == 0:
            default = RunConfig.model_fields[part].get_default(call_default_factory=True)
            child = default.as_config() if isinstance(default, Component) else {}
        elif isinstance(child, str) and i == 0:
            child = {"name": child}
        elif child is None:
            child = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parts[: i + 1])} is not a mapping, so {key} cannot be set")
        node[part] = dict(child)
        node = node[part]
    node[parts[-1]] = _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _short(value: Any) -> str:
    if isinstance(value, Mapping):
        name = value.get("name")
        rest = ",".join(f"{k}={v}" for k, v in value.items() if k != "name")
        return f"{name}({rest})" if name and rest else str(name or rest)
    return str(value)


def _body(err: ConfigError) -> str:
    """A ConfigError's lines without its 'invalid run config:' header."""
    text = str(err)
    head, sep, rest = text.partition("invalid run config:\n")
    return rest if sep else text

