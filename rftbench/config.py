"""Run configurations: a pydantic ``RunConfig``, loaded from YAML, overridden with ``--set``.

A config names its contributions (loss, protocol, threat model, schedules, evaluation
suite) by plugin name with parameters; :func:`resolve_config` checks every name against the
installed plugins and zoo, validates the parameters against each spec, and fills defaults,
so that the resolved config is complete, reproducible and hashable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ._cpus import affinity_cpus
from .cards import format_validation_error
from .errors import ConfigError, RftbenchError, UnknownNameError, close_matches
from .plugins import PluginManager, get_manager
from .specs import NoBoolCoercion
from .yamlfile import loads, read_mapping


class Component(BaseModel):
    """A contribution named in a config, with its parameters.

    Written either as a bare name (``loss: trades``) or as a mapping whose ``name`` key picks
    the contribution and whose other keys are its parameters (``loss: {name: trades, beta: 6}``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, Mapping) and "params" not in value:
            value = dict(value)
            name = value.pop("name", None)
            return {"name": name, "params": value} if name is not None else value
        return value

    def as_config(self) -> dict[str, Any]:
        """The flat mapping form used in YAML: ``{name: …, param: value, …}``."""
        return {"name": self.name, **self.params}


class OptimizerConfig(NoBoolCoercion):
    """Optimiser with separate learning rate and weight decay for backbone and head.

    Biases and normalisation parameters never get weight decay.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    name: Literal["adamw", "sgd"] = "adamw"
    # Defaults tuned for the offline mini backbones (the default run); large pretrained
    # backbones want far less (the reference study searched 1e-6…1e-1 per configuration).
    lr_backbone: float = Field(5e-3, gt=0, le=10)
    lr_head: float = Field(5e-3, gt=0, le=10)
    weight_decay_backbone: float = Field(1e-4, ge=0, le=1)
    weight_decay_head: float = Field(1e-4, ge=0, le=1)
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = Field(
        (0.9, 0.95), description="AdamW's (β1, β2), each in [0, 1)"
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only")
    nesterov: bool = False


class WarningsConfig(NoBoolCoercion):
    """Thresholds of the early warnings (see ``docs/monitor.md``); checked at every evaluation point."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    adaptation_share: float = Field(
        0.25, gt=0, le=1, description="task-adaptation: checked once this share of training is done (Epsilon-Scheduling)"
    )
    adaptation_margin: float = Field(0.05, ge=0, le=1, description="task-adaptation: warn when val accuracy < chance + this")
    collapse_drop: float = Field(
        0.10, gt=0, le=1, description="robust-collapse: warn when robust accuracy drops by more than this between points"
    )
    collapse_gap: float = Field(
        0.35, gt=0, le=1, description="robust-collapse (never robust): warn when the training attack's accuracy on its own "
                                      "points exceeds the monitored robust accuracy by more than this"
    )
    divergence_window: int = Field(3, ge=2, le=1000, description="loss-divergence: this many rising epochs in a row")
    divergence_ratio: float = Field(1.5, gt=1, description="loss-divergence: and the last epoch's loss > ratio × the best")


class MonitorConfig(NoBoolCoercion):
    """In-training evaluation on a fixed, seeded validation subset (the ``monitor:`` section of a run config).

    At every evaluation point (each epoch end, or every ``every_steps`` optimiser steps) the
    model's clean and robust accuracy under ``threat`` (and, optionally, ``corruption``) are
    measured on the same ``n`` validation images; curves, Pareto AUC and warnings follow.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    n: int = Field(100, ge=1, description="size of the fixed validation subset (seeded with `seed`)")
    seed: int = Field(0, ge=0, description="picks the subset and seeds the attack")
    every_steps: int | None = Field(None, ge=1, description="evaluate every this many optimiser steps (default: each epoch end)")
    threat: Component = Field(
        Component(name="linf", params={"eps": "4/255", "attack": "apgd-ce", "steps": 5}),
        description="the in-training threat model (any installed one; default APGD-CE, 5 steps: the iteration count "
                    "of Wong et al.'s catastrophic-overfitting check)",
    )
    corruption: Component | None = Field(None, description="optionally one corruption threat, e.g. {name: corruptions, severity: 3}")
    batch_size: int = Field(256, ge=1, description="evaluation batch size")
    keep: Literal["last", "best-robust"] = Field(
        "last", description="the weights evaluated and saved: the last, or those of the point with the best robust accuracy"
    )
    warnings: WarningsConfig = WarningsConfig()
    stop_on_warning: bool = Field(False, description="end the run at the first warning (record written, status `stopped`)")
#: The CPU cores this process may run on (its affinity mask): :func:`rftbench._cpus.affinity_cpus`, the one
#: implementation (``engine.threads`` caps it further by the cgroup quota for ``threads: auto``).
usable_cores = affinity_cpus


class DataConfig(NoBoolCoercion):
    """How training data reaches the step: loader processes, the decoded cache, where augmentation runs.

    ``num_workers`` and ``cache`` change only how fast batches arrive (they are out of the config
    hash); ``augment_on: device`` runs the study's augmentation on whole batches on the device with
    per-example parameters drawn there, a different random stream from the per-example CPU path, so
    it is part of the hash.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    num_workers: int | Literal["auto"] = Field(
        "auto", description="loader processes for training data; auto: a share of the usable cores (0 = main process)"
    )
    cache: bool = Field(
        True, description="keep the decoded, resized train split in memory (uint8 for 8-bit images) when it fits"
    )
    augment_on: Literal["cpu", "device"] = Field(
        "cpu", description="cpu: per-example torchvision augmentation in the loader; device: batched on the device"
    )

    @field_validator("num_workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> Any:
        if isinstance(value, float) and not isinstance(value, bool):
            raise ValueError("num_workers takes a whole number ≥ 0 or auto")
        if isinstance(value, bool):
            raise ValueError("a boolean; num_workers takes a whole number ≥ 0 or auto")
        if isinstance(value, str) and value != "auto":
            raise ValueError("num_workers takes a whole number ≥ 0 or auto")
        return value

    @field_validator("num_workers")
    @classmethod
    def _workers_fit(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            cores = usable_cores()
            if value < 0:
                raise ValueError(f"use 0 (load in the main process), a positive number ≤ {cores}, or auto")
            if value > cores:
                raise ValueError(
                    f"more than the {cores} CPU cores this process may use; use num_workers ≤ {cores} or auto"
                )
        return value


#: Fields of ``data`` that change only speed (left out of the config hash).
NON_RESULT_DATA_FIELDS = {"num_workers", "cache"}


class RunConfig(NoBoolCoercion):
    """Everything that defines one run; its hash names the run's result (``epochs: true`` is refused, not read as 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    representation: str = Field("mini_resnet.shapes_standard", description="a zoo representation card id")
    dataset: str = Field("digits", description="a zoo dataset card id")
    protocol: Component = Component(name="fft")
    loss: Component = Component(name="trades")
    threat: Component = Field(
        Component(name="linf", params={"eps": "4/255"}), description="the training threat model (budget and attack)"
    )
    eps_schedule: Component = Component(name="constant")
    lr_schedule: Component = Component(name="cosine")
    optimizer: OptimizerConfig = OptimizerConfig()
    epochs: int = Field(5, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1)
    effective_batch_size: int | None = Field(None, ge=1, description="accumulate gradients up to this batch size")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seeds the model head, data order and attacks (0 … 2**32 - 1)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: Literal["auto", "on", "off"] = "auto"
    compile: bool = Field(False, description="torch.compile the fused step (CUDA only)")
    evaluation: list[Component] = Field(
        default_factory=lambda: [Component(name="linf", params={"eps": "4/255"})],
        description="threat models and metrics measured after training (clean accuracy is always measured)",
    )
    n_eval: int | None = Field(None, ge=1, description="evaluate on the first n test images (all if unset)")
    output_dir: str = Field("runs", description="where run folders and result records are written")
    data_root: str | None = Field(None, description="where datasets are stored (default: the rftbench cache)")
    data: DataConfig = Field(default_factory=DataConfig, description="the training data path: workers, cache, augmentation")
    log_every: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description="read the running loss/accuracy (one device sync) every k steps; auto: about twice a second"
    )
    eval_batch_size: int = Field(256, ge=1, le=65536, description="batch size of evaluation and validation passes")
    threads: Annotated[int, Field(ge=1, le=4096)] | Literal["auto"] = Field(
        "auto", description="intra-op CPU threads; auto: the CPUs the affinity mask and cgroup quota allow (env RFTBENCH_THREADS)"
    )
    monitor: MonitorConfig | None = Field(None, description="in-training evaluation, curves and early warnings (off when unset)")

    @field_validator("log_every", "threads", mode="wrap")
    @classmethod
    def _count_or_auto(cls, value: Any, handler: Any, info: Any) -> Any:
        try:
            return handler(value)
        except ValidationError:
            top = " up to 4096" if info.field_name == "threads" else ""
            raise ValueError(f"expected an integer ≥ 1{top} or auto") from None

    @field_validator("effective_batch_size")
    @classmethod
    def _multiple_of_batch(cls, value: int | None, info: Any) -> int | None:
        batch = info.data.get("batch_size")
        if value is not None and batch and value % batch:
            raise ValueError(f"must be a multiple of batch_size ({batch}), e.g. {batch * max(1, round(value / batch))}")
        return value

    # ------------------------------------------------------------------ helpers

    def to_dict(self) -> dict[str, Any]:
        """The config in its YAML/JSON form (components flat, ε written as k/255)."""
        data = self.model_dump(mode="json")
        for key, value in data.items():
            if key in COMPONENT_KINDS:
                data[key] = _flat_component(value)
            elif key == "evaluation":
                data[key] = [_flat_component(v) for v in value]
        if data.get("monitor") is None:
            data.pop("monitor", None)  # configs without a monitor keep the hashes they had
        else:
            monitor = data["monitor"]
            monitor["threat"] = _flat_component(monitor["threat"])
            if monitor["warnings"].get("collapse_gap") == WarningsConfig.model_fields["collapse_gap"].default:
                monitor["warnings"].pop("collapse_gap")  # added later: at its default, monitored runs keep their hashes
            if monitor.get("corruption") is not None:
                monitor["corruption"] = _flat_component(monitor["corruption"])
        return data

    def config_hash(self) -> str:
        """A short, stable hash of the resolved config, minus fields that do not change the result."""
        data = {k: v for k, v in self.to_dict().items() if k not in NON_RESULT_FIELDS}
        loading = {k: v for k, v in (data.pop("data", None) or {}).items()
                   if k not in NON_RESULT_DATA_FIELDS and v != DataConfig.model_fields[k].default}
        if loading:  # only result-changing data settings away from their defaults enter (old hashes stay)
            data["data"] = loading
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


#: Which kind of contribution each component field names.
COMPONENT_KINDS: dict[str, str] = {
    "protocol": "protocol",
    "loss": "loss",
    "threat": "threat_model",
    "eps_schedule": "schedule",
    "lr_schedule": "schedule",
}
#: Fields that say where or how fast a run happens, not what it computes.
NON_RESULT_FIELDS = {"output_dir", "data_root", "device", "compile", "log_every", "eval_batch_size", "threads"}


def _flat_component(value: dict[str, Any]) -> dict[str, Any] | str:
    params = value.get("params") or {}
    return {"name": value["name"], **params} if params else value["name"]


# ---------------------------------------------------------------------- loading


def set_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``key=value`` override in place; dotted keys reach into nested fields.

    Values are parsed as YAML (``3`` → int, ``[a, b]`` → list, ``4/255`` stays a string
    that ε fields parse). ``loss.beta=6`` sets a parameter of the configured loss.
    """
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected key=value, e.g. --set epochs=5 or --set loss.beta=6")
    shown = assignment if len(assignment) <= 120 else f"{assignment[:100]}…"  # a 1 MB value must not hide the reason
    value = loads(raw, f"--set {shown!r}", ConfigError) if raw.strip() else ""
    parts = key.strip().split(".")
    if parts[0] not in RunConfig.model_fields:
        hint = close_matches(parts[0], RunConfig.model_fields)
        raise ConfigError(
            f"--set {assignment!r}: unknown config field {parts[0]!r}."
            + (f" Did you mean: {', '.join(hint)}?" if hint else "")
            + f"\nFields: {', '.join(RunConfig.model_fields)}"
        )
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if isinstance(child, str) and parts[0] in COMPONENT_KINDS:
            child = {"name": child}  # `loss: trades` + `loss.beta=6`
        if child is None:
            field = RunConfig.model_fields.get(part) if i == 0 else None
            default = field.get_default(call_default_factory=True) if field is not None else None
            if isinstance(default, Component):
                child = default.as_config()
            elif isinstance(default, BaseModel):
                child = {}
            else:
                child = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {assignment!r}: {'.'.join(parts[: i + 1])} is not a mapping")
        node[part] = child
        node = child
    old = node.get(parts[-1])
    if len(parts) == 1 and parts[0] in COMPONENT_KINDS and isinstance(value, str) and isinstance(old, dict):
        if old.get("name", _default_name(parts[0])) == value:
            value = {**old, "name": value}  # `loss=trades` on a trades loss keeps its parameters
    node[parts[-1]] = value


def _default_name(field: str) -> str | None:
    default = RunConfig.model_fields[field].get_default(call_default_factory=True)
    return default.name if isinstance(default, Component) else None


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> None:
    """Apply ``key=value`` overrides so that their order on the command line does not matter.

    Shallower keys apply before deeper ones (``loss=trades`` before ``loss.beta=6``, whichever
    was written first), and setting a component to the name it already has keeps its
    parameters; the same key given twice is an error naming it, since one value would be lost.
    """
    seen: dict[str, str] = {}
    keyed = []
    for i, assignment in enumerate(overrides or []):
        key = assignment.partition("=")[0].strip()
        if key and "=" in assignment:
            if key in seen and seen[key] != assignment:
                raise ConfigError(
                    f"--set {seen[key]!r} and --set {assignment!r} both set {key}; keep one (the order of --set does not pick a winner)"
                )
            seen[key] = assignment
        keyed.append((key.count("."), i, assignment))
    for _, _, assignment in sorted(keyed):
        set_override(data, assignment)


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    manager: PluginManager | None = None,
    resolve: bool = True,
) -> RunConfig:
    """Read a YAML config (or the defaults), apply ``key=value`` overrides, validate and resolve."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"config file {str(path)!r} is a directory; pass a YAML file (e.g. {str(path / 'config.yaml')!r})")
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        data = read_mapping(path, ConfigError, "a config (field: value, …)", empty_ok=True)
    apply_overrides(data, overrides)
    where = f"{path}: " if path else ""
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{where}invalid run config:\n{_explain(err)}") from None
    return resolve_config(config, manager, where=where) if resolve else config


def _explain(err: ValidationError) -> str:
    lines = format_validation_error(err)
    extra = [e["loc"][0] for e in err.errors() if e["type"] == "extra_forbidden" and len(e["loc"]) == 1]
    for name in extra:
        hint = close_matches(str(name), RunConfig.model_fields)
        if hint:
            lines += f"\n  {name}: did you mean {', '.join(hint)}?"
    return lines


def resolve_config(config: RunConfig, manager: PluginManager | None = None, where: str = "") -> RunConfig:
    """Check every name against plugins and zoo, validate parameters, and fill their defaults.

    All problems are gathered into one :class:`ConfigError` whose lines name the field.
    """
    manager = manager or get_manager()
    problems: list[str] = []
    updates: dict[str, Any] = {}

    for field, kind, source_kind in (("representation", "representation", "architecture"), ("dataset", "dataset", "dataset_source")):
        try:
            card = manager.get(kind, getattr(config, field))
            updates[field] = card.name
        except UnknownNameError as err:
            problems.append(f"  {field}: {_indent(str(err))}")
            continue
        try:
            manager.get(source_kind, card.source)
        except UnknownNameError as err:
            hint = f" Did you mean: {', '.join(err.matches)}?" if err.matches else ""
            problems.append(
                f"  {field}: card {card.id!r} names source {card.source!r}, which no installed plugin provides "
                f"(the {source_kind.replace('_', ' ')}s: {', '.join(err.available) or 'none'}).{hint}"
                + _card_file_hint(manager, kind, card)
            )
        except RftbenchError as err:  # e.g. two plugins contribute that source
            problems.append(f"  {field}: card {card.id!r}: {_indent(str(err))}")

    def resolve(field: str, component: Component, kind: str | tuple[str, ...]) -> Component | None:
        kinds = (kind,) if isinstance(kind, str) else kind
        spec = None
        for k in kinds:
            try:
                spec = manager.get(k, component.name)
                break
            except UnknownNameError:
                continue
        if spec is None:
            available = [n for k in kinds for n in manager.names(k)]
            err = UnknownNameError(" or ".join(k.replace("_", " ") for k in kinds), component.name, available)
            problems.append(f"  {field}: {_indent(str(err))}")
            return None
        try:
            params = spec.validate_params(component.params)
        except ValidationError as err:
            problems.append(format_validation_error(err, prefix=f"{field}.", fields=_param_names(spec)))
            return None
        if field.endswith("_schedule"):
            target = "epsilon" if field.startswith("eps") else "lr"
            if target not in spec.targets:
                problems.append(f"  {field}: schedule {spec.name!r} does not apply to {target} (it targets {', '.join(spec.targets)})")
        # a qualified name (plugin:name) stays qualified: the bare one may belong to another plugin
        return Component(name=component.name if ":" in component.name else spec.name, params=spec.dump_params(params))

    for field, kind in COMPONENT_KINDS.items():
        resolved = resolve(field, getattr(config, field), kind)
        if resolved is not None:
            updates[field] = resolved
    evaluation = []
    for i, component in enumerate(config.evaluation):
        resolved = resolve(f"evaluation.{i}", component, ("threat_model", "metric"))
        if resolved is not None:
            evaluation.append(resolved)
    updates["evaluation"] = evaluation
    if config.monitor is not None:
        monitor = config.monitor
        threat = resolve("monitor.threat", monitor.threat, "threat_model")
        corruption = resolve("monitor.corruption", monitor.corruption, "threat_model") if monitor.corruption else None
        if threat is not None and (monitor.corruption is None or corruption is not None):
            updates["monitor"] = monitor.model_copy(update={"threat": threat, "corruption": corruption})

    if problems:
        raise ConfigError(f"{where}invalid run config:\n" + "\n".join(problems))
    try:
        return RunConfig.model_validate({**config.model_dump(), **{k: _dump(v) for k, v in updates.items()}})
    except ValidationError as err:  # pragma: no cover - resolved values came from valid specs
        raise ConfigError(f"{where}invalid run config:\n{_explain(err)}") from None


def _param_names(spec: Any) -> list[str]:
    """The keys a spec's parameters may be written under (aliases such as ``lambda`` included)."""
    names = []
    for name, info in getattr(spec.params, "model_fields", {}).items():
        names.append(info.alias or name)
    return names


def _card_file_hint(manager: PluginManager, kind: str, card: Any) -> str:
    try:
        plugin = manager.plugin_of(kind, card.id)
    except Exception:  # noqa: BLE001 - the hint is best effort
        plugin = None
    where = f" ({card.id}.yaml, contributed by plugin {plugin!r})" if plugin else ""
    return f"\n    Fix the card's `source:`{where}, or install the plugin that provides {card.source!r}."


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")
