"""Leaderboard entries: a versioned pydantic schema tied to its numbers by a content hash.

An *entry* is a result submitted to (or imported into) the leaderboard. It carries

- ``setup``: what was fine-tuned and how, typed, with numbers as numbers and the training
  budget explicit (``threat: {norm: linf, eps: 0.0156…}``, ``epochs: 50``);
- ``config``: the resolved run configuration verbatim (``RunConfig.to_dict()``), so that the
  run can be reproduced with ``rftbench run``;
- ``metrics``: clean accuracy and, per threat model, its norm, budget and accuracy, plus the
  aggregates of the reference study (``sum`` of the accuracies and ``geom`` their product);
- ``model`` (family, size, pretraining: what the site filters on), ``provenance`` (versions,
  device, weights source and revision), ``checkpoint`` (the fine-tuned weights' Hub repo and
  pinned revision, needed by ``rftbench verify``), ``submitter`` and ``date``;
- ``content_hash``: the sha256 of everything above in canonical JSON. ``id`` is its first
  16 hex digits. Editing a number without re-sealing makes :func:`load_entry` refuse the entry.

``outcomes`` (schema version 2) optionally names the per-example outcomes file
(:mod:`rftbench.outcomes`) stored next to the entry, with its sha256 and the identity of the
test points, so that two entries can be compared point by point (``rftbench compare``).

Schema versions: 1 (the first); 2 adds ``outcomes`` and fills ``metrics.n_eval`` of the
reference study's imported results (1,000 test images). Version-1 entries still load as they
are (their hash is unchanged); :func:`migrate_entry` turns one into version 2 and re-seals it.

``verification`` (set by ``rftbench verify``) sits outside the hash: it is a statement about
the entry, not part of it, and the maintainers' check refuses one in a submitted entry.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from .._json import loads as _strict_json
from ..cards import format_validation_error
from ..results import atomic_write_text
from ..specs import format_number, parse_number
from ..paths import check_relative
from .errors import EntryError, TamperedEntryError
from .urls import check_http_url

ENTRY_SCHEMA_VERSION = 2
#: The versions :func:`load_entry` reads.
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
#: Test images per result of imported studies whose entries predate ``metrics.n_eval`` (source file → n).
PUBLISHED_N_EVAL = {"guide2025_results.csv": 1000}

Accuracy = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
CommitSha = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
RepoId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=96)]
#: A link shown on the site: http(s) only (checked again when rendered).
HttpUrl = Annotated[str, AfterValidator(check_http_url)]
#: A folder inside a repo: relative, no '..'.
RepoSubfolder = Annotated[str, StringConstraints(max_length=255), AfterValidator(check_relative)]
Norm = Literal["linf", "l2", "l1", "corruption", "other"]
#: The early warnings of the in-training evaluation (``rftbench.engine.monitor.WARNINGS``).
TrainingWarning = Literal["task-adaptation", "robust-collapse", "loss-divergence"]

#: The order threat models are listed in (the reference study's column order).
NORM_ORDER: dict[str, int] = {"linf": 0, "l2": 1, "l1": 2, "corruption": 3, "other": 4}
NORM_ALIASES = {
    "linf": "linf",
    "l_inf": "linf",
    "inf": "linf",
    "l2": "l2",
    "l1": "l1",
    "corruption": "corruption",
    "corruptions": "corruption",
    "common": "corruption",
}
#: Sum and product of the accuracies may differ from the recomputed ones by this much (float noise).
AGGREGATE_TOLERANCE = 1e-6


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- threat labels


def threat_label(norm: str, eps: float) -> str:
    """The canonical label of a threat model: ``linf:4/255``, ``l2:2``, ``l2:0.4``, ``l1:75``, ``corruptions:3``.

    Only L∞ budgets are written in 255ths (as papers write them); an L2 or L1 budget is a plain
    number whatever its size (``l2:0.4``, not ``l2:102/255``).
    """
    if norm == "corruption":
        return f"corruptions:{eps:g}"
    if norm != "linf":
        return f"{norm}:{float(eps):g}"
    value = format_number(float(eps))
    return f"{norm}:{value if isinstance(value, str) else format(value, 'g')}"


def parse_threat_label(label: str) -> tuple[str, float]:
    """``"linf:4/255"`` → ``("linf", 0.01568…)``; the norm of an unknown family is ``other``."""
    name, sep, value = str(label).partition(":")
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f"threat label {label!r} is not 'norm:budget' (e.g. 'linf:4/255', 'l2:2', 'corruptions:3')")
    try:
        eps = float(parse_number(value.strip()))
    except ValueError:
        raise ValueError(f"threat label {label!r}: budget {value!r} is not a number or a fraction like 4/255") from None
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"threat label {label!r}: budget must be a finite number >= 0")
    return NORM_ALIASES.get(name.strip().lower(), "other"), eps


def threat_sort_key(label: str) -> tuple[int, float, str]:
    """Sort labels as the reference study lists them: L∞, L2, L1, corruptions, others."""
    try:
        norm, eps = parse_threat_label(label)
    except ValueError:
        return (9, 0.0, label)
    return (NORM_ORDER[norm], eps, label)


# --------------------------------------------------------------------------- the schema


class Budget(_Strict):
    """A threat model's family and budget (ε on the [0, 1] pixel scale; the severity for corruptions)."""

    norm: Norm
    eps: float = Field(ge=0.0, allow_inf_nan=False)

    @property
    def label(self) -> str:
        return threat_label(self.norm, self.eps)


class ThreatResult(Budget):
    """Accuracy under one threat model, with the budget it was measured at."""

    acc: Accuracy
    extra: dict[str, Finite] = Field(default_factory=dict, description="other numbers reported for this threat model")


class UnionResult(_Strict):
    """Union (worst-over-threats) accuracy: the share of test points correct clean and under every threat in ``of``."""

    acc: Accuracy
    of: list[str] = Field(min_length=2, max_length=64, description="the threat labels it spans (each in metrics.threats)")
    reliable: bool | None = Field(None, description="False when one of its threats was flagged for possible gradient masking")


class Metrics(_Strict):
    """What the run measured. ``sum`` and ``geom`` aggregate clean and every threat accuracy.

    ``union`` (every L∞/L2/L1 threat) and ``union_all`` (corruptions included) are the union
    accuracies (:mod:`rftbench.outcomes`), present only when the run measured them per point;
    each must name threats of ``threats`` and be at most the lowest of their accuracies and the
    clean one.
    """

    clean_acc: Accuracy
    threats: dict[str, ThreatResult] = Field(min_length=1, description="per threat label ('linf:4/255'…)")
    sum: float = Field(ge=0.0, allow_inf_nan=False, description="clean + every threat accuracy")
    geom: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="product of the same accuracies")
    expected_robustness: Accuracy | None = Field(None, description="Acc over ε ~ U[0, ε_g] (Epsilon-Scheduling paper)")
    n_eval: int | None = Field(None, ge=1, description="number of test images evaluated")
    reliable: bool | None = Field(None, description="False when the evaluator flagged possible gradient masking")
    pareto_auc: Accuracy | None = Field(None, description="area under the clean–robust Pareto frontier of the in-training evaluation")
    extra: dict[str, Finite] = Field(default_factory=dict, description="other metrics, flattened with dots")
    union: UnionResult | None = Field(None, description="accuracy on the points robust to every L∞/L2/L1 threat at once")
    union_all: UnionResult | None = Field(None, description="the same over every threat, corruptions included")

    @model_validator(mode="before")
    @classmethod
    def _fill_aggregates(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and ("sum" not in data or "geom" not in data):
            accs = _accuracies(data)
            if accs is not None:
                data = {**data}
                data.setdefault("sum", math.fsum(accs))
                data.setdefault("geom", math.prod(accs))
        return data

    @model_validator(mode="after")
    def _check(self) -> Metrics:
        for label, result in self.threats.items():
            norm, eps = parse_threat_label(label)
            if norm != result.norm or not math.isclose(eps, result.eps, rel_tol=1e-9, abs_tol=1e-12):
                raise ValueError(
                    f"threats.{label}: the label says {norm} {eps:g} but the record says {result.norm} {result.eps:g}"
                )
        accs = [self.clean_acc, *(t.acc for t in self.threats.values())]
        if abs(self.sum - math.fsum(accs)) > AGGREGATE_TOLERANCE:
            raise ValueError(f"sum is {self.sum!r} but clean + threat accuracies add up to {math.fsum(accs)!r}")
        if abs(self.geom - math.prod(accs)) > AGGREGATE_TOLERANCE:
            raise ValueError(f"geom is {self.geom!r} but the product of the accuracies is {math.prod(accs)!r}")
        for name in ("union", "union_all"):
            union = getattr(self, name)
            if union is None:
                continue
            missing = [label for label in union.of if self.acc(label) is None]
            if missing:
                raise ValueError(f"{name}.of names {', '.join(map(repr, missing))}, not among the threats ({', '.join(self.threats)})")
            lowest = min([self.clean_acc, *(self.acc(label) for label in union.of)])
            if union.acc > lowest + AGGREGATE_TOLERANCE:
                raise ValueError(f"{name}.acc is {union.acc!r}, above the lowest accuracy of its threats and the clean one "
                                 f"({lowest!r}): a point robust to every threat is robust to each")
        return self

    def acc(self, label: str) -> float | None:
        """Accuracy under a threat label (any spelling of the same budget), or None."""
        if label in self.threats:
            return self.threats[label].acc
        norm, eps = parse_threat_label(label)
        result = self.threats.get(threat_label(norm, eps))
        return result.acc if result else None


def _accuracies(data: Mapping[str, Any]) -> list[float] | None:
    try:
        accs = [float(data["clean_acc"])]
        for value in dict(data.get("threats") or {}).values():
            accs.append(float(value["acc"] if isinstance(value, Mapping) else value.acc))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # the field validators report what is missing
    return accs


class Setup(_Strict):
    """What was fine-tuned and how, typed: the fields the leaderboard sorts, filters and deduplicates on."""

    representation: str = Field(min_length=1, description="representation card id (or the study's backbone name)")
    dataset: str = Field(min_length=1)
    protocol: str = Field(min_length=1, description="lp, fft, lp-ft, partial…")
    protocol_params: dict[str, Any] = Field(default_factory=dict)
    loss: str = Field(min_length=1, description="ce, classic_at, trades, mart…")
    loss_params: dict[str, Any] = Field(default_factory=dict)
    threat: Budget = Field(description="the training threat model")
    epochs: int = Field(ge=1, le=10_000)
    eps_schedule: str | None = None
    lr_schedule: str | None = None


class ModelInfo(_Strict):
    """The representation's family, size and pretraining (from its zoo card, or the study's metadata)."""

    family: Literal["convolutional", "attention", "hybrid"] | None = None
    size: Literal["tiny", "small", "medium", "large"] | None = None
    params_m: float | None = Field(None, gt=0, allow_inf_nan=False)
    pretraining: str | None = Field(None, description="strategy: supervised, clip, self-supervised, adversarially-robust…")
    pretraining_data: str | None = None
    pretraining_volume: int | None = Field(None, ge=0)
    short_name: str | None = None


class Source(_Strict):
    """Where the entry comes from: a run of rftbench, or a published study (``imported``)."""

    kind: Literal["run", "imported"]
    reference: str | None = Field(None, description="for imported entries: the publication")
    url: HttpUrl | None = Field(None, description="an http(s) link to the publication or run")
    file: str | None = Field(None, description="for imported entries: the file the numbers come from")
    row: int | None = Field(None, ge=0, description="for imported entries: the row in that file")
    published: str | None = Field(None, description="for imported entries: publication month, YYYY-MM")

    @model_validator(mode="after")
    def _imported_needs_reference(self) -> Source:
        if self.kind == "imported" and not self.reference:
            raise ValueError("an imported entry needs source.reference (the publication its numbers come from)")
        return self


class Provenance(BaseModel):
    """Versions, device and weights of the run (the result record's provenance, kept verbatim)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    rftbench: str | None = None
    torch: str | None = None
    device: str | None = None
    weights: dict[str, Any] = Field(default_factory=dict, description="source, hub_id, revision, sha256 of the pretrained weights")


class Checkpoint(_Strict):
    """The fine-tuned model on the Hub, pinned to a commit (what ``rftbench verify`` downloads)."""

    repo: RepoId
    revision: CommitSha = Field(description="the commit sha (40 hex digits): branches move, commits do not")
    repo_type: Literal["model", "dataset"] = "model"
    subfolder: RepoSubfolder | None = None


class OutcomesRef(_Strict):
    """The per-example outcomes file of an entry, beside the entry file, sealed by its sha256."""

    file: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*\.npz$", max_length=128,
                      description="file name next to the entry (no folders)")
    sha256: Sha256Hex
    points: dict[str, Any] = Field(description="identity of the test points: dataset, card_sha256, split, subsample, n, labels_sha256")


class Verification(_Strict):
    """The outcome of ``rftbench verify``: re-measured numbers next to the claimed ones."""

    status: Literal["verified", "mismatch"]
    tolerance: float = Field(ge=0.0, le=1.0)
    n_eval: int = Field(ge=1)
    measured: dict[str, Finite]
    claimed: dict[str, Finite]
    date: datetime
    rftbench: str | None = None
    agreement: dict[str, Finite] | None = Field(None, description="per threat: share of points whose outcome matches the entry's per-example file")
    flipped: dict[str, list[int]] | None = Field(None, description="per threat: test indices whose outcome differs (first 100)")


class Cost(_Strict):
    """What the run cost (``rftbench.engine.cost``); every field optional: an absent one is unknown, never 0."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    flops: int | None = Field(None, ge=0, description="training + in-training evaluation + final evaluation FLOPs")
    train_flops_per_step: int | None = Field(None, ge=0)
    eval_flops: int | None = Field(None, ge=0)
    train_forward_passes: int | None = Field(None, ge=0)
    train_backward_passes: int | None = Field(None, ge=0)
    eval_forward_passes: int | None = Field(None, ge=0)
    eval_backward_passes: int | None = Field(None, ge=0)
    device_seconds: float | None = Field(None, ge=0)
    device_seconds_unit: Literal["gpu-seconds", "core-seconds"] | None = None
    peak_memory_bytes: int | None = Field(None, ge=0, description="device peak on CUDA, else the host's peak resident set")
    device_type: str | None = Field(None, max_length=32)


class Parameters(_Strict):
    """The protocol's parameter counts (the record's ``parameters``): what learnt, of how many."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    trainable: int = Field(ge=0, description="parameters that learn in some epoch")
    total: int = Field(ge=1, description="all of the classifier's parameters, added ones included")
    added: int = Field(0, ge=0, description="parameters the protocol added (LoRA branches, adapters)")
    share: float = Field(ge=0, le=1, description="trainable / total")


class Entry(_Strict):
    """One leaderboard entry (schema version 2). Build with :meth:`Entry.seal`, read with :func:`load_entry`."""

    schema_version: Literal[1, 2] = ENTRY_SCHEMA_VERSION
    id: str = Field(pattern=r"^[0-9a-f]{16}$", description="the first 16 hex digits of content_hash")
    run_id: str | None = Field(None, description="the result record's id (its config hash)")
    source: Source
    setup: Setup
    config: dict[str, Any] = Field(description="the resolved run configuration, verbatim")
    metrics: Metrics
    model: ModelInfo = ModelInfo()
    provenance: Provenance = Provenance()
    checkpoint: Checkpoint | None = None
    submitter: str | None = Field(None, min_length=1, max_length=96)
    date: datetime | None = Field(None, description="when the entry was made (UTC)")
    outcomes: OutcomesRef | None = Field(None, description="per-example outcomes file (schema version 2)")
    cost: Cost | None = Field(None, description="FLOPs, passes, device-seconds, peak memory (absent: unknown)")
    parameters: Parameters | None = Field(None, description="trainable / total / added parameters and the share (absent: unknown)")
    training_warnings: list[TrainingWarning] | None = Field(
        None, max_length=3,
        description="early warnings raised while the run trained (rftbench.engine.monitor); robust-collapse: "
                    "catastrophic or robust overfitting seen by the in-training evaluation (absent: not monitored or none)",
    )
    content_hash: Sha256Hex
    verification: Verification | None = None

    @model_validator(mode="after")
    def _outcomes_need_v2(self) -> Entry:
        if self.outcomes is not None and self.schema_version < 2:
            raise ValueError("outcomes needs schema_version 2")
        if self.outcomes is not None and self.metrics.n_eval is not None and self.outcomes.points.get("n") not in (None, self.metrics.n_eval):
            raise ValueError(f"outcomes.points.n is {self.outcomes.points.get('n')} but metrics.n_eval is {self.metrics.n_eval}")
        return self

    @property
    def n_eval(self) -> int | None:
        """Test images behind the accuracies: ``metrics.n_eval``, else the known size of an imported study's evaluation."""
        if self.metrics.n_eval is not None:
            return self.metrics.n_eval
        if self.source.kind == "imported" and self.source.file:
            return PUBLISHED_N_EVAL.get(self.source.file)
        return None

    @field_validator("date")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("date needs a time zone (write it in UTC, e.g. 2025-08-20T12:00:00Z)")
        return value

    # ------------------------------------------------------------------ hashing

    @classmethod
    def seal(cls, **fields: Any) -> Entry:
        """Validate ``fields`` (everything but id, content_hash and verification) and compute the hash."""
        fields = {k: v for k, v in fields.items() if k not in HASH_EXCLUDED}
        probe = cls.model_validate({**fields, "id": "0" * 16, "content_hash": "0" * 64})
        digest = content_hash(probe)
        return probe.model_copy(update={"id": digest[:16], "content_hash": digest})

    def resealed(self, **updates: Any) -> Entry:
        """A copy with ``updates`` applied (e.g. submitter, checkpoint) and a fresh hash."""
        data = self.model_dump(exclude=HASH_EXCLUDED)
        data.update(updates)
        return Entry.seal(**data)

    def expected_hash(self) -> str:
        """The content hash this entry's fields produce (compare with ``content_hash``)."""
        return content_hash(self)

    # ------------------------------------------------------------------ views

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent, exclude_none=False)


#: Fields outside the content hash.
HASH_EXCLUDED = {"id", "content_hash", "verification"}


def canonical_json(data: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, no NaN (floats keep Python's shortest round-trip form)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(entry: Entry) -> str:
    """sha256 of the entry's canonical JSON, without id, content_hash and verification.

    Unset (None) fields are left out, so that adding an optional field to the schema does not
    change the hash of the entries already published.
    """
    data = entry.model_dump(mode="json", exclude=HASH_EXCLUDED, exclude_none=True)
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


# --------------------------------------------------------------------------- reading and writing


def load_entry(data: Mapping[str, Any] | str | Path, *, where: str | None = None, check_hash: bool = True) -> Entry:
    """Validate an entry (a mapping, or a path to a JSON file) and check its content hash.

    Raises :class:`EntryError` naming each bad field, or :class:`TamperedEntryError` when the
    content does not match the hash (both hashes are in the message).
    """
    if isinstance(data, (str, Path)):
        path = Path(data)
        where = where or str(path)
        try:
            data = _strict_json(path.read_text())
        except FileNotFoundError:
            raise EntryError(f"{path}: no entry file there") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise EntryError(f"{path}: not valid JSON ({err})") from None
        except OSError as err:
            raise EntryError(f"{path}: cannot read the entry file ({err.strerror or err})") from None
    where = where or "entry"
    if not isinstance(data, Mapping):
        raise EntryError(f"{where}: an entry must be a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version is not None and version not in SUPPORTED_SCHEMA_VERSIONS:
        raise EntryError(
            f"{where}: schema_version {version!r} is not supported (this rftbench reads versions "
            f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}); upgrade rftbench or rebuild the entry with `rftbench submit`"
        )
    try:
        entry = Entry.model_validate(data)
    except ValidationError as err:
        raise EntryError(f"{where}: invalid entry:\n{format_validation_error(err)}") from None
    if check_hash:
        try:
            expected = entry.expected_hash()
        except ValueError as err:  # NaN/inf somewhere free-form (config, setup): not JSON, cannot be sealed
            raise EntryError(f"{where}: invalid entry: {err} (an entry holds finite numbers only)") from None
        if expected != entry.content_hash:
            raise TamperedEntryError(
                f"{where}: the entry's content does not match its content_hash "
                f"(stored {entry.content_hash}, computed {expected}): its metrics or setup were edited "
                "after it was sealed. Rebuild it from the result record with `rftbench submit` instead of editing it."
            )
        if entry.id != expected[:16]:
            raise TamperedEntryError(f"{where}: id {entry.id!r} is not the first 16 digits of the content hash {expected}")
    return entry


def migrate_entry(entry: Entry) -> Entry:
    """The version-2 form of an entry (re-sealed: its id changes); a version-2 entry is returned as is.

    1 → 2: ``schema_version`` set to 2; an imported entry of a study whose evaluation size is
    known (:data:`PUBLISHED_N_EVAL`) gets ``metrics.n_eval``. The verification is kept.
    """
    if entry.schema_version == ENTRY_SCHEMA_VERSION:
        return entry
    data = entry.model_dump(exclude=HASH_EXCLUDED)
    data["schema_version"] = ENTRY_SCHEMA_VERSION
    if data["metrics"].get("n_eval") is None and entry.n_eval is not None:
        data["metrics"] = {**data["metrics"], "n_eval": entry.n_eval}
    migrated = Entry.seal(**data)
    return migrated.model_copy(update={"verification": entry.verification}) if entry.verification else migrated


def write_entry(entry: Entry, path: str | Path) -> Path:
    """Write one entry as indented JSON, atomically."""
    atomic_write_text(path, entry.to_json() + "\n")
    return Path(path)


def read_entries_jsonl(path: str | Path, *, check_hash: bool = True) -> list[Entry]:
    """Read entries stored one JSON object per line (imported collections)."""
    path = Path(path)
    entries = []
    with path.open() as handle:
        for lineno, line in enumerate(handle, 1):
            if line.strip():
                try:
                    data = _strict_json(line)
                except json.JSONDecodeError as err:
                    raise EntryError(f"{path}:{lineno}: not valid JSON ({err})") from None
                if not isinstance(data, dict):  # a JSON string must not be taken for a file name
                    raise EntryError(f"{path}:{lineno}: an entry is a JSON object, not {type(data).__name__}")
                entries.append(load_entry(data, where=f"{path}:{lineno}", check_hash=check_hash))
    return entries


def write_entries_jsonl(entries: Iterable[Entry], path: str | Path) -> Path:
    """Write entries one compact JSON object per line, atomically (sorted by id for stable diffs)."""
    lines = [e.model_dump_json() for e in sorted(entries, key=lambda e: e.id)]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return Path(path)
