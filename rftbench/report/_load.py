"""Inputs of a report → :class:`Row` s: result records, entries, entry collections, sweep files, probes.

Everything read here comes from outside and is treated as hostile: files are parsed as JSON or
safe YAML only, validated (records as :class:`~rftbench.results.ResultRecord`, entries as
:class:`~rftbench.leaderboard.entry.Entry` with their content hash checked), numbers checked to be
finite, folders walked without leaving their root (symbolic links pointing out are skipped), and
a bad file is reported in ``problems`` while the rest still load.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RftbenchError

#: Sub-folders of a results folder that hold no results (sweep bookkeeping).
SKIP_DIRS = {"failures", "claims", "slurm", "__pycache__"}
#: Largest input file read (a record is a few kB; a collection of 1,440 entries 3 MB).
MAX_BYTES = 64 * 1024 * 1024
#: Names of the published collections shipped with rftbench (``leaderboard/entries/<name>.jsonl``).
PUBLISHED = ("guide2025",)


@dataclass
class Row:
    """One result, whatever file it came from: the setup, the accuracies and what the analyses need."""

    id: str
    origin: str  # "published" (imported results), "run" (a local result record), "entry" (a leaderboard entry)
    where: str
    representation: str
    dataset: str
    protocol: str
    epochs: int
    loss: str
    eps_schedule: str = "constant"
    lr_schedule: str = ""
    seed: int | None = None
    train_threat: str = ""
    family: str | None = None
    size: str | None = None
    pretraining: str | None = None
    clean: float | None = None
    threats: dict[str, float] = field(default_factory=dict)
    n: int | None = None
    sum: float | None = None
    expected: float | None = None
    er_curve: tuple[list[float], list[float]] | None = None
    curves: dict[str, list[Any]] = field(default_factory=dict)
    sensitivity: dict[str, float] | None = None
    train_seconds: float | None = None
    outcomes: bool = False  # a local record whose per-example outcomes were kept (paired tests can use them)
    #: Union accuracies (rftbench.outcomes): correct under every L∞/L2/L1 threat; every threat, corruptions included.
    union: float | None = None
    union_all: float | None = None
    #: The threats each union spans (labels as in ``threats``).
    union_of: dict[str, list[str]] = field(default_factory=dict)
    #: the in-training evaluation (``epoch``, ``clean_acc``, ``robust_acc`` per point; checked) and its threat
    monitor: dict[str, list[float]] | None = None
    monitor_threat: str = ""
    pareto_auc: float | None = None
    kept: str = ""
    warnings: list[str] = field(default_factory=list)
    #: cost (rftbench.curves.summary_columns: ``cost.flops``, ``cost.device_seconds``…); empty: unknown
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def protocol_label(self) -> str:
        return f"{self.protocol.upper()}-{self.epochs}"

    @property
    def condition(self) -> str:
        """The training condition the Epsilon-Scheduling analysis compares: loss and ε schedule."""
        if self.loss == "ce":
            return "ce (clean fine-tuning)"
        return f"{self.loss} · ε {self.eps_schedule}" + (f" {self.train_threat}" if self.train_threat else "")

    def adversarial(self) -> list[str]:
        """Labels of the adversarial (non-corruption) threats, in the record's order."""
        return [t for t in self.threats if not t.startswith("corruptions")]


@dataclass
class Loaded:
    rows: list[Row] = field(default_factory=list)
    probes: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    cards: Cards = field(default_factory=lambda: Cards())
    pending: list[tuple[Any, str]] = field(default_factory=list)  # complete records, made rows once cards are known


# ---------------------------------------------------------------------------------- numbers


def _num(value: Any, lo: float = -math.inf, hi: float = math.inf) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and lo <= value <= hi else None


def _acc(value: Any) -> float | None:
    return _num(value, 0.0, 1.0)


def _int(value: Any) -> int | None:
    number = _num(value, 0, 10**12)
    return int(number) if number is not None and number == int(number) else None


def _text(value: Any, default: str = "") -> str:
    return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else default


def _component(value: Any) -> tuple[str, dict[str, Any]]:
    """A config component (``"fft"`` or ``{name: …, params…}``) as its name and parameters."""
    if isinstance(value, Mapping):
        params = value.get("params") if isinstance(value.get("params"), Mapping) else {k: v for k, v in value.items() if k != "name"}
        return _text(value.get("name"), "?"), dict(params)
    return _text(value, "?"), {}


def _label(value: Any, default: str) -> str:
    """A schedule as ``name(k=v,…)`` so that two parameterisations are two conditions."""
    if value is None:
        return default
    name, params = _component(value)
    if not params:
        return name
    inner = ",".join(f"{k}={_text(v, '?')}" for k, v in sorted(params.items()))
    return f"{name}({inner})"


def _threats(raw: Any) -> dict[str, float]:
    from ..leaderboard.entry import parse_threat_label, threat_label, threat_sort_key

    out: dict[str, float] = {}
    if not isinstance(raw, Mapping):
        return out
    for label, value in raw.items():
        try:
            norm, eps = parse_threat_label(str(label))
        except ValueError:
            continue
        acc = _acc(value.get("acc") if isinstance(value, Mapping) else value)
        if acc is not None:
            out[threat_label(norm, eps)] = acc
    return dict(sorted(out.items(), key=lambda kv: threat_sort_key(kv[0])))


def _train_threat(config: Mapping[str, Any], loss: str) -> str:
    if loss == "ce":
        return ""
    name, params = _component(config.get("threat"))
    eps = params.get("eps")
    return f"{name} {_text(eps)}".strip() if eps is not None else name


# ---------------------------------------------------------------------------------- records


def _metric_records(metrics: Mapping[str, Any], prefix: str) -> list[Mapping[str, Any]]:
    inner = metrics.get("metrics")
    if not isinstance(inner, Mapping):
        return []
    return [v for k, v in inner.items() if str(k).startswith(prefix) and isinstance(v, Mapping)]


def _expected(metrics: Mapping[str, Any]) -> tuple[float | None, tuple[list[float], list[float]] | None]:
    for record in _metric_records(metrics, "expected_robustness"):
        value = _acc(record.get("value"))
        curve = record.get("curve")
        pair = None
        if isinstance(curve, Mapping) and isinstance(curve.get("eps"), list) and isinstance(curve.get("acc"), list):
            eps = [_num(e, 0, 1e6) for e in curve["eps"]]
            acc = [_acc(a) for a in curve["acc"]]
            if eps and len(eps) == len(acc) and None not in eps and None not in acc:
                pair = (eps, acc)
        return value, pair
    return _acc(metrics.get("expected_robustness")), None


_AS_KEYS = ("value", "as_std", "n", "head_spectral_norm", "ce_gap_normalised", "lemma1_bound", "certified_share",
            "robust_acc_pgd", "clean_acc")


def _sensitivity(record: Mapping[str, Any]) -> dict[str, float] | None:
    out = {k: v for k in _AS_KEYS if (v := _num(record.get(k))) is not None}
    return out if "value" in out else None


def _curves(raw: Any) -> dict[str, list[Any]]:
    if not isinstance(raw, Mapping):
        return {}
    epochs = raw.get("epoch")
    if not isinstance(epochs, list) or not epochs:
        return {}
    out: dict[str, list[Any]] = {"epoch": [_int(e) for e in epochs]}
    for key in ("val_acc", "train_acc", "eps", "lr_factor", "seconds"):
        values = raw.get(key)
        if isinstance(values, list) and len(values) == len(epochs):
            out[key] = [_num(v) for v in values]
    return out


def _unions(metrics: Mapping[str, Any], where: str, clean: float, threats: Mapping[str, float]) -> dict[str, Any]:
    """``union``, ``union_all`` and ``union_of`` from a record's metrics, else from its per-example file; unknown stays None.

    A union naming a threat the record did not measure, or above the lowest accuracy of its threats
    and the clean one (impossible: a point robust to all is robust to each), is left out as unknown.
    """
    from ..leaderboard.entry import parse_threat_label, threat_label

    found = {k: metrics.get(k) for k in ("union", "union_all") if isinstance(metrics.get(k), Mapping)}
    if not found and isinstance(metrics.get("outcomes"), Mapping):
        from ..outcomes import unions_on_read

        found = unions_on_read(metrics, Path(where).parent)  # recorded before unions were: {} without the file
    out: dict[str, Any] = {"union_of": {}}
    for name, value in found.items():
        acc = _acc(value.get("acc"))
        of = value.get("of")
        if acc is None or not isinstance(of, list):
            continue
        try:
            labels = [threat_label(*parse_threat_label(str(t))) for t in of]
        except ValueError:
            continue
        if len(labels) < 2 or any(t not in threats for t in labels) or acc > min([clean, *(threats[t] for t in labels)]) + 1e-9:
            continue
        out[name], out["union_of"][name] = acc, labels
    return out


def row_from_record(record: Any, where: str, model_info: Any) -> Row:
    """A complete :class:`~rftbench.results.ResultRecord` as a row (``model_info(rep)`` → family, size, pretraining)."""
    config, metrics = record.config, record.metrics
    protocol, _ = _component(config.get("protocol", "fft"))
    loss, _ = _component(config.get("loss", "ce"))
    clean = _acc(metrics.get("clean_acc"))
    if clean is None:
        raise RftbenchError("metrics.clean_acc is missing or not an accuracy in [0, 1]")
    threats = _threats(metrics.get("threats"))
    expected, er_curve = _expected(metrics)
    sens = next((s for r in _metric_records(metrics, "adversarial_sensitivity") if (s := _sensitivity(r))), None)
    rep = _text(config.get("representation"), "?")
    family, size, pretraining = model_info(rep)
    eps_schedule = _label(config.get("eps_schedule"), "constant")
    return Row(
        id=_text(record.id, "?"), origin="run", where=where, representation=rep,
        dataset=_text(config.get("dataset"), "?"), protocol=protocol, epochs=_int(config.get("epochs")) or 0, loss=loss,
        eps_schedule=eps_schedule, lr_schedule=_label(config.get("lr_schedule"), ""), seed=_int(config.get("seed")),
        train_threat=_train_threat(config, loss), family=family, size=size, pretraining=pretraining,
        clean=clean, threats=threats, n=_int(metrics.get("n_examples", metrics.get("n_eval"))),
        sum=clean + sum(threats.values()), expected=expected, er_curve=er_curve, curves=_curves(record.curves),
        sensitivity=sens, train_seconds=_num(record.timings.get("train_seconds"), 0),
        outcomes=isinstance(metrics.get("outcomes"), Mapping), **_unions(metrics, where, clean, threats), **_monitor_fields(record),
    )


def _monitor_fields(record: Any) -> dict[str, Any]:
    """The Row fields of a record's in-training evaluation, warnings and cost (its curves were checked on loading)."""
    from ..curves import summary_columns

    columns = summary_columns(record)
    out: dict[str, Any] = {"warnings": [w for w in (columns.get("warnings") or "").split(",") if w],
                           "cost": {k: v for k, v in columns.items() if k.startswith("cost.") and v is not None}}
    monitor = record.monitor if isinstance(record.monitor, Mapping) else None
    points = monitor.get("points") if monitor else None
    if isinstance(points, Mapping) and points.get("robust_acc"):
        out["monitor"] = {k: [float(v) for v in points[k]] for k in ("epoch", "clean_acc", "robust_acc") if k in points}
        out["monitor_threat"] = _text(monitor.get("threat"))
        out["pareto_auc"] = columns.get("pareto_auc")
        out["kept"] = _text(columns.get("kept"))
    return out


def row_from_entry(entry: Any, where: str) -> Row:
    """A validated leaderboard :class:`~rftbench.leaderboard.entry.Entry` as a row."""
    setup, metrics, model = entry.setup, entry.metrics, entry.model
    imported = entry.source.kind == "imported"
    sens: dict[str, float] = {}
    for key, value in metrics.extra.items():
        head, _, tail = key.rpartition(".")
        if head.startswith("adversarial_sensitivity") and tail in _AS_KEYS:
            sens[tail] = value
    config = entry.config if isinstance(entry.config, Mapping) else {}
    threat = "" if setup.loss == "ce" else setup.threat.label.replace(':', ' ')
    return Row(
        id=entry.id, origin="published" if imported else "entry", where=where,
        representation=setup.representation, dataset=setup.dataset, protocol=setup.protocol, epochs=setup.epochs,
        loss=setup.loss, eps_schedule=setup.eps_schedule or "constant", lr_schedule=setup.lr_schedule or "",
        seed=_int(config.get("seed")), train_threat=threat, family=model.family, size=model.size,
        pretraining=model.pretraining, clean=metrics.clean_acc,
        threats={label: t.acc for label, t in metrics.threats.items()}, n=metrics.n_eval, sum=metrics.sum,
        expected=metrics.expected_robustness, sensitivity=sens if "value" in sens else None,
        union=metrics.union.acc if metrics.union else None, union_all=metrics.union_all.acc if metrics.union_all else None,
        union_of={k: list(u.of) for k, u in (("union", metrics.union), ("union_all", metrics.union_all)) if u is not None},
    )


# ---------------------------------------------------------------------------------- files and folders


class Cards:
    """Zoo cards of the representations and datasets the records name, looked up once.

    Only the plugins that contributed them (the records' ``provenance.plugins``) are loaded, not
    every installed plugin; names no plugin knows give ``None``.
    """

    def __init__(self) -> None:
        self.plugins: set[str] = set()
        self._manager: Any = None
        self._cache: dict[tuple[str, str], Any] = {}

    def note(self, provenance: Mapping[str, Any]) -> None:
        plugins = provenance.get("plugins") if isinstance(provenance, Mapping) else None
        for kind in ("representation", "dataset"):
            info = plugins.get(kind) if isinstance(plugins, Mapping) else None
            if isinstance(info, Mapping) and isinstance(info.get("plugin"), str):
                self.plugins.add(info["plugin"])

    def get(self, kind: str, name: str) -> Any:
        if (kind, name) not in self._cache:
            if self._manager is None:
                from ..plugins import PluginManager, get_manager

                if self.plugins:
                    self._manager = PluginManager()
                    self._manager.load_entrypoints(only=self.plugins | {"zoo"})
                else:
                    self._manager = get_manager()
            try:
                self._cache[kind, name] = self._manager.get(kind, name)
            except Exception:  # noqa: BLE001 - an unknown or unloadable card only leaves its labels empty
                self._cache[kind, name] = None
        return self._cache[kind, name]

    def model_info(self, rep: str) -> tuple[str | None, str | None, str | None]:
        card = self.get("representation", rep)
        return (card.family, card.size, card.pretraining.strategy) if card is not None else (None, None, None)

    def classes(self, dataset: str) -> int | None:
        card = self.get("dataset", dataset)
        return int(card.num_classes) if card is not None else None


def _read_json(path: Path) -> Any:
    if path.stat().st_size > MAX_BYTES:
        raise RftbenchError(f"larger than {MAX_BYTES // 2**20} MiB: not a result record")
    return json.loads(path.read_text(encoding="utf-8"))


def _files(root: Path) -> list[Path]:
    """``*.json`` and ``*.jsonl`` files under ``root``, without bookkeeping or hidden folders, confined to ``root``."""
    real_root = root.resolve()
    out = []
    for path in sorted(root.rglob("*.json*")):
        if path.suffix not in (".json", ".jsonl") or not path.is_file():
            continue
        parts = path.relative_to(root).parts[:-1]
        if SKIP_DIRS & set(parts) or any(p.startswith(".") for p in path.relative_to(root).parts):
            continue
        if not path.resolve().is_relative_to(real_root):
            continue  # a symbolic link leading out of the folder
        out.append(path)
    return out


def _sweep_results_dir(path: Path) -> Path:
    from ..groups import sweep_results_dir

    return sweep_results_dir(path)


def resolve_input(text: str) -> tuple[str, Path]:
    """What a RESULTS argument names: ``("folder"|"file"|"sweep", path)``; a user error if nothing."""
    path = Path(text)
    if path.is_dir():
        return "folder", path
    if path.is_file():
        if path.suffix in (".yaml", ".yml"):
            return "sweep", path
        if path.suffix in (".json", ".jsonl"):
            return "file", path
        raise RftbenchError(f"{text}: expected a results folder, a result record or entry (.json), "
                            f"an entry collection (.jsonl) or a sweep file (.yaml)")
    if text in PUBLISHED:
        from rftbench_leaderboard import ENTRIES_DIR

        return "file", ENTRIES_DIR / f"{text}.jsonl"
    raise RftbenchError(f"{text}: no such file or folder (give a results folder, a record, an entry file, a sweep "
                        f"file, or a published collection: {', '.join(PUBLISHED)})")


def _load_file(path: Path, loaded: Loaded) -> None:
    from ..leaderboard.entry import load_entry, read_entries_jsonl
    from ..results import ResultRecord

    try:
        if path.suffix == ".jsonl":
            if path.stat().st_size > MAX_BYTES:
                raise RftbenchError(f"larger than {MAX_BYTES // 2**20} MiB")
            loaded.rows.extend(row_from_entry(e, str(path)) for e in read_entries_jsonl(path))
            return
        data = _read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        loaded.problems.append(f"{path}: not readable JSON ({err})")
        return
    except RftbenchError as err:
        loaded.problems.append(f"{path}: {err}")
        return
    if not isinstance(data, Mapping):
        return
    if data.get("kind") == "probe" and _text(data.get("metric")).startswith("adversarial_sensitivity"):
        _probe(data, path, loaded)
        return
    if "metrics" not in data or "config" not in data:
        return  # another JSON file of a run folder (resolved config, model card, evaluation output)
    try:
        if "content_hash" in data:
            loaded.rows.append(row_from_entry(load_entry(data, where=str(path)), str(path)))
            return
        record = ResultRecord.model_validate(data)
        if record.status != "complete":
            loaded.problems.append(f"{path}: run {record.id} has status {record.status!r}: left out")
            return
        from ..curves import curve_problem

        problem = curve_problem(record)
        if problem is not None:  # a record written by another tool: left out with the reason, the rest shown
            loaded.problems.append(f"{path}: run {record.id} left out: {problem}")
            return
        loaded.cards.note(record.provenance)
        loaded.pending.append((record, str(path)))
    except RftbenchError as err:
        loaded.problems.append(f"{path}: {err}")
    except Exception as err:  # noqa: BLE001 - pydantic's ValidationError and friends: report the file, keep going
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        loaded.problems.append(f"{path}: not a valid result record or entry ({first})")


def _probe(data: Mapping[str, Any], path: Path, loaded: Loaded) -> None:
    """A ``rftbench zoo probe`` record: AS of a representation on a dataset, before fine-tuning."""
    value = _num(data.get("value"), 0)
    rep, dataset = _text(data.get("representation")), _text(data.get("dataset"))
    if value is None or not rep or not dataset:
        loaded.problems.append(f"{path}: a probe record without representation, dataset and AS value: left out")
        return
    loaded.probes.append({"representation": rep, "dataset": dataset, "value": value,
                          "threat": _text(data.get("metric")).partition(":")[2], "where": str(path)})


def load_inputs(inputs: Iterable[str]) -> Loaded:
    """Read every input; duplicates (the same record or entry id twice) are kept once."""
    loaded = Loaded()
    for text in inputs:
        kind, path = resolve_input(str(text))
        loaded.inputs.append(str(text))
        if kind == "sweep":
            path = _sweep_results_dir(path)
            if not path.is_dir():
                loaded.problems.append(f"{text}: its results folder {path} does not exist yet (run the sweep first)")
                continue
        files = _files(path) if path.is_dir() else [path]
        before = len(loaded.rows) + len(loaded.pending)
        for file in files:
            _load_file(file, loaded)
        if len(loaded.rows) + len(loaded.pending) == before and path.is_dir():
            loaded.problems.append(f"{text}: no result records or entries found in this folder")
    for record, where in loaded.pending:
        try:
            loaded.rows.append(row_from_record(record, where, loaded.cards.model_info))
        except RftbenchError as err:
            loaded.problems.append(f"{where}: {err}")
    loaded.pending = []
    seen: set[tuple[str, str]] = set()
    unique = []
    for row in loaded.rows:
        key = (row.origin, row.id)
        if key not in seen:
            seen.add(key)
            unique.append(row)
    loaded.rows = unique
    return loaded
