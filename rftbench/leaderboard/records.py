"""Result records → leaderboard entries (what ``rftbench submit`` and ``leaderboard build`` do with a run).

The record's resolved config is kept verbatim; its components are read into the typed
:class:`~rftbench.leaderboard.entry.Setup` (ε parsed to a number), its metrics into
:class:`~rftbench.leaderboard.entry.Metrics` (threat labels made canonical, other numeric
metrics flattened into ``extra``), and the representation's zoo card gives the family, size
and pretraining the site filters on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, get_args

from pydantic import ValidationError

from ..cards import format_validation_error
from ..results import ResultRecord
from ..specs import parse_number
from .entry import NORM_ALIASES, Budget, Checkpoint, Entry, ModelInfo, TrainingWarning, parse_threat_label, threat_label, threat_sort_key
from .errors import EntryError

def _component(value: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping) and "name" in value:
        params = dict(value.get("params") or {k: v for k, v in value.items() if k != "name"})
        return str(value["name"]), params
    raise ValueError(f"expected a component name or {{name: …}}, got {value!r}")


def _budget(component: Any) -> Budget:
    name, params = _component(component)
    norm = NORM_ALIASES.get(name.lower(), "other")
    if "eps" in params:
        eps = float(parse_number(params["eps"]))
    elif "severity" in params:
        eps = float(params["severity"])
    else:
        eps = 0.0
    return Budget(norm=norm, eps=eps)


def _numbers(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[f"{prefix}{key}"] = float(value)
        elif isinstance(value, Mapping):
            out.update(_numbers(value, f"{prefix}{key}."))
    return out


#: Keys of a threat's record that describe the run, not the model (left out of the entry).
_THREAT_SKIP = {"acc", "norm", "eps", "seconds", "reliable"}
#: Top-level keys of the evaluator's output that are not metrics of the model.
_TOP_SKIP = {"clean_acc", "threats", "metrics", "expected_robustness", "n_eval", "n", "n_examples",
             "seed", "seconds", "plots", "flags", "reliable", "union", "union_all"}


def _unions(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The record's union accuracies as :class:`~rftbench.leaderboard.entry.UnionResult` fields, labels made canonical."""
    out: dict[str, Any] = {}
    for name in ("union", "union_all"):
        value = metrics.get(name)
        if not isinstance(value, Mapping) or "acc" not in value:
            continue
        try:
            of = [threat_label(*parse_threat_label(label)) for label in value.get("of") or []]
        except ValueError as err:
            raise EntryError(f"metrics.{name}.of: {err}") from None
        reliable = value.get("reliable")
        out[name] = {"acc": value["acc"], "of": of, "reliable": reliable if isinstance(reliable, bool) else None}
    return out


def _expected_robustness(metrics: Mapping[str, Any]) -> float | None:
    """Expected robustness, at the top level or among the metric records (``metrics.metrics``)."""
    candidates = [metrics.get("expected_robustness")]
    candidates += [v for k, v in dict(metrics.get("metrics") or {}).items() if str(k).startswith("expected_robustness")]
    for value in candidates:
        if isinstance(value, Mapping):
            value = next((value[k] for k in ("value", "acc", "expected_robustness", "mean") if k in value), None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def metrics_from_record(metrics: Mapping[str, Any], *, n_eval: int | None = None) -> dict[str, Any]:
    """Map a record's ``metrics`` (the evaluator's output) onto :class:`Metrics` fields.

    Threat labels are made canonical; per-threat numbers other than the accuracy go to the
    threat's ``extra`` (timings left out); metric records (``metrics.metrics``) and other
    numeric keys are flattened into ``extra``; ``reliable`` (no gradient-masking flag) and the union
    accuracies (``union``, ``union_all``) are kept.
    """
    if "clean_acc" not in metrics:
        raise EntryError("the result record has no metrics.clean_acc: was the run evaluated? (status must be complete)")
    threats: dict[str, Any] = {}
    for label, value in dict(metrics.get("threats") or {}).items():
        try:
            norm, eps = parse_threat_label(label)
        except ValueError as err:
            raise EntryError(f"metrics.threats: {err}") from None
        if isinstance(value, Mapping):
            if "acc" not in value:
                raise EntryError(f"metrics.threats.{label}: no 'acc' (robust accuracy) in {dict(value)!r}")
            acc, extra = value["acc"], _numbers({k: v for k, v in value.items() if k not in _THREAT_SKIP})
        else:
            acc, extra = value, {}
        threats[threat_label(norm, eps)] = {"norm": norm, "eps": eps, "acc": acc, "extra": extra}
    threats = dict(sorted(threats.items(), key=lambda kv: threat_sort_key(kv[0])))
    extra = _numbers({k: v for k, v in metrics.items() if k not in _TOP_SKIP})
    extra.update({k: v for k, v in _numbers(dict(metrics.get("metrics") or {})).items() if not k.endswith(".seconds")})
    reliable = metrics.get("reliable")
    return {
        "clean_acc": metrics["clean_acc"],
        "threats": threats,
        "expected_robustness": _expected_robustness(metrics),
        "n_eval": metrics.get("n_examples", metrics.get("n_eval", metrics.get("n", n_eval))),
        "reliable": reliable if isinstance(reliable, bool) else None,
        "extra": extra,
        **_unions(metrics),
    }


def _pareto_auc(record: ResultRecord) -> float | None:
    monitor = record.monitor if isinstance(record.monitor, Mapping) else {}
    auc = monitor.get("pareto_auc")
    return auc if isinstance(auc, (int, float)) and not isinstance(auc, bool) and 0 <= auc <= 1 else None


def outcomes_ref(metrics: Mapping[str, Any]) -> dict[str, Any] | None:
    """The entry's reference to the record's per-example outcomes (``None`` when the record has none).

    The file keeps the record's name, ``outcomes-<sha256[:16]>.npz`` (named by its content, so
    many entries can sit in one folder); the run folder, which ``verify`` downloads as the
    checkpoint, holds it under that name.
    """
    ref = metrics.get("outcomes")
    if not isinstance(ref, Mapping) or not isinstance(ref.get("sha256"), str):
        return None
    from ..outcomes import FILE_PATTERN

    return {"file": FILE_PATTERN.format(ref["sha256"][:16]), "sha256": ref["sha256"], "points": dict(ref.get("points") or {})}


def model_info_for(representation: str, manager: Any = None) -> ModelInfo:
    """Family, size and pretraining from the representation's zoo card (empty when the card is unknown)."""
    try:
        from ..plugins import get_manager

        card = (manager or get_manager()).get("representation", representation)
    except Exception:  # noqa: BLE001 - an unknown or unloadable card only leaves the labels empty
        return ModelInfo()
    return ModelInfo(
        family=card.family,
        size=card.size,
        params_m=card.params_m,
        pretraining=card.pretraining.strategy,
        pretraining_data=card.pretraining.data,
        pretraining_volume=card.pretraining.volume,
    )


def training_warnings_from_record(record: ResultRecord) -> list[str] | None:
    """The names of the record's early warnings, each once, in the order raised (``None`` when there are none)."""
    names: list[str] = []
    for warning in record.warnings or []:
        name = warning.get("name") if isinstance(warning, dict) else None
        if name in get_args(TrainingWarning) and name not in names:
            names.append(name)
    return names or None


def parameters_from_record(record: ResultRecord) -> dict[str, Any] | None:
    """The entry's ``parameters`` from a record's (``None`` when the record has none or an incomplete one: unknown)."""
    from ..curves import summary_columns

    columns = summary_columns(record)
    counts = {k: columns.get(f"parameters.{k}") for k in ("trainable", "total", "added", "share")}
    if any(counts[k] is None for k in ("trainable", "total", "share")):
        return None
    return {"trainable": int(counts["trainable"]), "total": int(counts["total"]), "added": int(counts["added"] or 0),
            "share": float(counts["share"])}


def cost_from_record(record: ResultRecord) -> dict[str, Any] | None:
    """The entry's ``cost`` from a record's (``None`` for a record without one: unknown)."""
    from ..curves import summary_columns

    if not record.cost:
        return None
    columns = summary_columns(record)
    cost = {k[len("cost."):]: v for k, v in columns.items() if k.startswith("cost.") and v is not None}
    for key in list(cost):
        if key != "device_seconds":
            cost[key] = int(cost[key])
    unit = record.cost.get("device_seconds_unit")
    cost["device_seconds_unit"] = unit if unit in ("gpu-seconds", "core-seconds") else None
    cost["device_type"] = str(record.cost.get("device_type"))[:32] if record.cost.get("device_type") else None
    return cost


def entry_from_record(
    record: ResultRecord | Mapping[str, Any],
    *,
    checkpoint: Checkpoint | Mapping[str, Any] | None = None,
    submitter: str | None = None,
    date: datetime | None = None,
    manager: Any = None,
) -> Entry:
    """Seal an entry from a complete result record (``rftbench.results.ResultRecord``)."""
    if not isinstance(record, ResultRecord):
        try:
            record = ResultRecord.model_validate(record)
        except ValidationError as err:
            raise EntryError(f"invalid result record:\n{format_validation_error(err)}") from None
    if record.status != "complete":
        raise EntryError(f"result record {record.id} has status {record.status!r}: only complete runs can be entries")
    config = record.config
    try:
        protocol, protocol_params = _component(config.get("protocol", "fft"))
        loss, loss_params = _component(config.get("loss", "ce"))
        setup = {
            "representation": config["representation"],
            "dataset": config["dataset"],
            "protocol": protocol,
            "protocol_params": protocol_params,
            "loss": loss,
            "loss_params": loss_params,
            "threat": _budget(config.get("threat", {"name": "linf", "eps": 0})),
            "epochs": config["epochs"],
            "eps_schedule": _component(config["eps_schedule"])[0] if config.get("eps_schedule") else None,
            "lr_schedule": _component(config["lr_schedule"])[0] if config.get("lr_schedule") else None,
        }
    except KeyError as err:
        raise EntryError(f"result record {record.id}: config has no {err.args[0]!r}") from None
    except ValueError as err:
        raise EntryError(f"result record {record.id}: {err}") from None
    try:
        return Entry.seal(
            run_id=record.id,
            source={"kind": "run"},
            setup=setup,
            config=config,
            metrics={**metrics_from_record(record.metrics, n_eval=config.get("n_eval")), "pareto_auc": _pareto_auc(record)},
            model=model_info_for(setup["representation"], manager),
            provenance=record.provenance,
            outcomes=outcomes_ref(record.metrics),
            cost=cost_from_record(record),
            parameters=parameters_from_record(record),
            training_warnings=training_warnings_from_record(record),
            checkpoint=checkpoint,
            submitter=submitter,
            date=date or datetime.now(timezone.utc).replace(microsecond=0),
        )
    except ValidationError as err:
        raise EntryError(f"result record {record.id} does not make a valid entry:\n{format_validation_error(err)}") from None
