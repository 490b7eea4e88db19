"""Per-example outcomes: for every evaluated test point, correct or not clean and under each threat.

One evaluation → one ``outcomes-<sha256[:16]>.npz`` (numpy's zip of arrays, compressed; read
with ``allow_pickle=False``, so a hostile file cannot run code) in the run folder, whose result
record's ``metrics.outcomes`` holds the file's name, its sha256 and the identity of the points.
The name follows the content, so the record and its file change together: a re-run writes a new
file, then the new record (the atomic step), then removes the old file (:func:`prune`); a
reader never sees a record pointing at another evaluation's outcomes.

=====================  ===================================================================
array                  what it holds (N points, T threat models)
=====================  ===================================================================
``format``             ``[1]``: this layout's version
``index``              int32 [N]: each point's index in the test split
``label``              int32 [N]: its label
``clean``              bool [N]: classified correctly without perturbation
``margin``             float16 [N]: clean logit margin, true-class logit minus the largest other
                       (> 0 exactly when ``clean``; float16 keeps 3 significant digits)
``threats``            str [T]: the threat labels (``linf:4/255``…), in the suite's order
``norms``              str [T], optional: each threat's norm (``linf``, ``l2``, ``l1``,
                       ``corruption``…), which says which threats the union accuracy spans
                       (files without it: the label's prefix, ``linf:4/255`` → ``linf``)
``correct_<t>``        bool [N] (float16 for averaged threats, e.g. all corruption types):
                       still correct under threat ``t`` (its position in ``threats``)
``broken_by_<t>``      int8 [N], AutoAttack only: ``-1`` robust, ``0`` already wrong clean,
                       ``k`` broken first by ``attacks_<t>[k - 1]``
``attacks_<t>``        str [K]: the attacks of that ensemble, in the order they ran
``points``             str: the points' identity as JSON (also in the record)
=====================  ===================================================================

The identity of the points (:data:`POINT_KEYS`): ``dataset`` (card id), ``card_sha256`` (the
card's data-defining fields: source, args, splits, revision, classes), ``split`` (``test``),
``subsample`` (``first``: the first ``n`` points; the only rule today) and ``subsample_seed``
(``None`` for ``first``), ``n``, and ``labels_sha256`` (the indices and labels), so two results
are compared only when they were measured on the same points. The run's own seed is not part
of it: runs with different seeds evaluate the same first ``n`` points, which is what makes a
paired comparison across seeds possible.

**Union accuracy** (worst over threats, as E-AT and RAMP report it): a point counts only when it
is classified correctly clean *and* under every threat of a set; an averaged threat (all
corruption types of a point) counts only when the point survives all of them. Two sets:
:data:`UNION`, every L∞/L2/L1 threat of the suite (defined with at least two), and
:data:`UNION_ALL`, every threat, corruptions included (defined when it differs from
:data:`UNION` and spans at least two threats). ``Outcomes.outcome("union")`` gives the per-point
outcome, so paired comparisons treat the union like any threat.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._fs import atomic_write

from .errors import RftbenchError

FORMAT = 1
#: The file's name: ``outcomes-<first 16 hex digits of its sha256>.npz``.
FILE_PATTERN = "outcomes-{}.npz"
#: Largest unpacked size read (a compressed file cannot make the reader allocate more).
MAX_UNPACKED_BYTES = 1 << 30
#: The fields that identify the evaluated points.
POINT_KEYS = ("dataset", "card_sha256", "split", "subsample", "subsample_seed", "n", "labels_sha256")


#: Pseudo-threat labels of the union accuracies: every L∞/L2/L1 threat; every threat, corruptions included.
UNION = "union"
UNION_ALL = "union_all"
UNIONS = (UNION, UNION_ALL)
#: The norms of adversarial (Lp) threats, which :data:`UNION` spans.
ADVERSARIAL_NORMS = ("linf", "l2", "l1")


def threat_norm(label: str, norms: Mapping[str, str] | None = None) -> str:
    """A threat's norm: from ``norms`` when it names the label, else the label's prefix (``linf:4/255`` → ``linf``)."""
    if norms and isinstance(norms.get(label), str):
        return norms[label]
    return str(label).split(":", 1)[0]


def union_members(labels: Sequence[str], norms: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """The threats each union spans (``{"union": [...], "union_all": [...]}``, a union left out when undefined).

    ``union``: the L∞/L2/L1 threats, when there are at least two; ``union_all``: every threat,
    when there are at least two and the set is not the same as ``union``'s.
    """
    labels = [t for t in labels if t not in UNIONS and t != "clean"]
    adversarial = [t for t in labels if threat_norm(t, norms) in ADVERSARIAL_NORMS]
    out: dict[str, list[str]] = {}
    if len(adversarial) >= 2:
        out[UNION] = adversarial
    if len(labels) >= 2 and labels != adversarial:
        out[UNION_ALL] = list(labels)
    return out


def union_correct(clean: Any, correct: Mapping[str, Any], members: Sequence[str]) -> np.ndarray:
    """Bool per point: correct clean and under every threat in ``members`` (an averaged threat: under all its variants)."""
    out = np.asarray(clean, dtype=bool).copy()
    for label in members:
        value = np.asarray(correct[label])
        out &= value if value.dtype == np.bool_ else value.astype(np.float32) >= 1.0 - 1e-3
    return out


def union_summary(clean: Any, correct: Mapping[str, Any], norms: Mapping[str, str] | None = None,
                  reliable: Mapping[str, bool] | None = None) -> dict[str, dict[str, Any]]:
    """The union accuracies for a result's metrics: ``{"union": {"acc", "n", "of", "reliable"}, "union_all": …}``."""
    out = {}
    for name, members in union_members(list(correct), norms).items():
        hit = union_correct(clean, correct, members)
        record: dict[str, Any] = {"acc": float(hit.mean()) if len(hit) else 0.0, "n": int(len(hit)), "of": members}
        if reliable is not None:
            record["reliable"] = all(bool(reliable.get(t, True)) for t in members)
        out[name] = record
    return out


def unions_on_read(metrics: Mapping[str, Any], base: str | Path) -> dict[str, dict[str, Any]]:
    """The union accuracies of a result written before they were recorded, from its per-example file.

    ``metrics`` is a record's metrics (or an evaluation), ``base`` the folder its
    ``outcomes.file`` is relative to. Returns ``{}`` (unknown, never zero) when the record has no
    outcomes reference or its file is missing, altered or unreadable; the threats' norms come from
    ``metrics["threats"][label]["norm"]`` where recorded.
    """
    ref = metrics.get("outcomes")
    if not isinstance(ref, Mapping) or not isinstance(ref.get("file"), str) or not isinstance(ref.get("sha256"), str):
        return {}
    base = Path(base)
    rel = Path(ref["file"])
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        return {}
    try:
        found = read_outcomes(base / rel, ref["sha256"])
    except OutcomesError:
        return {}
    threats = metrics.get("threats") if isinstance(metrics.get("threats"), Mapping) else {}
    norms = {k: v["norm"] for k, v in threats.items() if isinstance(v, Mapping) and isinstance(v.get("norm"), str)}
    reliable = {k: bool(v.get("reliable", True)) for k, v in threats.items() if isinstance(v, Mapping)}
    return union_summary(found.clean, found.correct, {**found.norms, **norms}, reliable)


class OutcomesError(RftbenchError):
    """A per-example outcomes file is missing, truncated, altered or malformed; the message names it."""


class NotComparableError(RftbenchError):
    """Two results were not measured on the same points; the message says what differs."""


@dataclass
class Outcomes:
    """Per-example outcomes of one evaluation (see the module docstring for the fields)."""

    index: np.ndarray
    label: np.ndarray
    clean: np.ndarray
    margin: np.ndarray
    correct: dict[str, np.ndarray] = field(default_factory=dict)
    broken_by: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    points: dict[str, Any] = field(default_factory=dict)
    #: Each threat's norm (``linf``… ``corruption``), when known: which threats the unions span.
    norms: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def threats(self) -> list[str]:
        return list(self.correct)

    @property
    def unions(self) -> dict[str, list[str]]:
        """The union accuracies these outcomes define, each with the threats it spans (see :func:`union_members`)."""
        return union_members(self.threats, self.norms)

    def outcome(self, threat: str) -> np.ndarray:
        """Per-point outcome under ``threat`` (``clean`` for the clean accuracy; ``union``/``union_all``: every threat of the set)."""
        if threat == "clean":
            return self.clean
        if threat in UNIONS and threat not in self.correct:
            members = self.unions.get(threat)
            if members is None:
                raise OutcomesError(f"no {threat} accuracy: it needs at least two "
                                    f"{'L∞/L2/L1 threats' if threat == UNION else 'threats, corruptions among them'}; "
                                    f"measured: {', '.join(self.correct) or '(none)'}")
            return union_correct(self.clean, self.correct, members)
        if threat not in self.correct:
            raise OutcomesError(f"no per-example outcomes for threat {threat!r}; measured: clean, {', '.join(self.correct) or '(none)'}")
        return self.correct[threat]

    def breaker(self, threat: str) -> np.ndarray | None:
        """Per point, the name of the attack that broke it ('' when robust, 'clean' when wrong clean), or None."""
        if threat not in self.broken_by:
            return None
        codes, attacks = self.broken_by[threat]
        names = np.array(["", "clean", *attacks])
        return names[codes.astype(np.int64) + 1]


# ----------------------------------------------------------------------------- building


def labels_digest(index: np.ndarray, label: np.ndarray) -> str:
    """sha256 of the points' indices and labels (int64, little-endian)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(index, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(label, dtype="<i8").tobytes())
    return h.hexdigest()


def card_digest(card: Any) -> str:
    """sha256 of a dataset card's data-defining fields (source, args, splits, revision, num_classes, resolution)."""
    data = card.model_dump(mode="json") if hasattr(card, "model_dump") else dict(card)
    keep = {k: data.get(k) for k in ("source", "args", "splits", "revision", "num_classes", "resolution")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def points_for(dataset: str | None, manager: Any = None) -> dict[str, Any]:
    """The identity of a dataset card's test split (before the evaluator adds ``n`` and ``labels_sha256``)."""
    if not dataset:
        return {"split": "test"}
    from .plugins import get_manager

    try:
        card = (manager or get_manager()).get("dataset", dataset)
    except Exception:  # noqa: BLE001 - an unknown card leaves the version unknown, and comparisons refuse it
        return {"dataset": dataset, "card_sha256": None, "split": "test"}
    return {"dataset": dataset, "card_sha256": card_digest(card), "split": "test"}


def label_margins(logits: Any, labels: Any) -> np.ndarray:
    """True-class logit minus the largest other logit, per row (float32)."""
    z = np.asarray(logits, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int64)
    rows = np.arange(len(y))
    true = z[rows, y].copy()
    z = z.copy()
    z[rows, y] = -np.inf
    return true - z.max(1)


def breaker_codes(after: Mapping[str, Any]) -> tuple[np.ndarray, list[str]] | None:
    """Which attack broke each point, from AutoAttack's per-point ``after/<attack>`` (still robust after it).

    ``after`` maps ``clean`` then each attack, in the order they ran, to a bool vector.
    """
    if "clean" not in after:
        return None
    names = [k for k in after if k != "clean"]
    still = np.asarray(after["clean"], dtype=bool)
    codes = np.where(still, -1, 0).astype(np.int8)
    for k, name in enumerate(names, 1):
        now = np.asarray(after[name], dtype=bool)
        codes[still & ~now] = k
        still = still & now
    return codes, names


def from_evaluation(clean_logits: Any, labels: Any, per_threat: Mapping[str, Mapping[str, Any]],
                    index: Any = None, points: Mapping[str, Any] | None = None,
                    norms: Mapping[str, str] | None = None) -> Outcomes:
    """Outcomes from the evaluator's tensors: clean logits, labels, per threat ``{"correct": …, "after/<a>": …}`` and its norm."""
    label = np.asarray(labels, dtype=np.int64)
    n = len(label)
    index = np.arange(n) if index is None else np.asarray(index, dtype=np.int64)
    logits = np.asarray(clean_logits, dtype=np.float32)
    clean = logits.argmax(1) == label
    correct: dict[str, np.ndarray] = {}
    broken: dict[str, tuple[np.ndarray, list[str]]] = {}
    for threat, out in per_threat.items():
        value = np.asarray(out["correct"])
        binary = value.dtype == np.bool_ or bool(np.isin(value, (0, 1)).all())
        correct[threat] = value.astype(bool) if binary else value.astype(np.float16)
        after = {k.split("/", 1)[1]: np.asarray(v) for k, v in out.items() if k.startswith("after/")}
        codes = breaker_codes(after) if after else None
        if codes is not None:
            broken[threat] = codes
    ident = {**dict(points or {}), "n": n, "labels_sha256": labels_digest(index, label)}
    for key in POINT_KEYS:
        ident.setdefault(key, None)
    ident.setdefault("split", "test")
    return Outcomes(index=index, label=label, clean=clean, margin=label_margins(logits, label), correct=correct,
                    broken_by=broken, points=ident, norms={k: str(v) for k, v in dict(norms or {}).items() if k in correct})


# ----------------------------------------------------------------------------- files


def _arrays(outcomes: Outcomes) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {
        "format": np.array([FORMAT], dtype=np.int32),
        "index": outcomes.index.astype(np.int32),
        "label": outcomes.label.astype(np.int32),
        "clean": outcomes.clean.astype(bool),
        "margin": np.clip(outcomes.margin, -65000, 65000).astype(np.float16),
        "threats": np.array(outcomes.threats, dtype=str) if outcomes.threats else np.zeros(0, dtype="<U1"),
        "points": np.array(json.dumps(outcomes.points, sort_keys=True, default=str)),
    }
    if outcomes.norms and outcomes.threats:
        arrays["norms"] = np.array([threat_norm(t, outcomes.norms) for t in outcomes.threats], dtype=str)
    for t, threat in enumerate(outcomes.threats):
        arrays[f"correct_{t}"] = outcomes.correct[threat]
        if threat in outcomes.broken_by:
            codes, attacks = outcomes.broken_by[threat]
            arrays[f"broken_by_{t}"] = codes.astype(np.int8)
            arrays[f"attacks_{t}"] = np.array(attacks, dtype=str) if attacks else np.zeros(0, dtype="<U1")
    return arrays


def to_bytes(outcomes: Outcomes) -> bytes:
    """The outcomes as the bytes of a compressed ``.npz``."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **_arrays(outcomes))
    return buffer.getvalue()


def write_outcomes(outcomes: Outcomes, path: str | Path) -> dict[str, Any]:
    """Write ``outcomes`` atomically; returns ``{"file", "sha256", "bytes", "format", "points"}``.

    ``path`` is a file, or a folder in which the file is named by its content (:data:`FILE_PATTERN`).
    """
    path = Path(path)
    data = to_bytes(outcomes)
    if path.is_dir():
        path = path / FILE_PATTERN.format(hashlib.sha256(data).hexdigest()[:16])
    atomic_write(path, data)  # the umask's mode, as every other file rftbench writes
    return {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "format": FORMAT,
            "points": dict(outcomes.points)}


def prune(folder: str | Path, keep: str | None) -> None:
    """Remove the outcomes files in ``folder`` other than ``keep`` (after the record naming ``keep`` is written)."""
    for path in Path(folder).glob(FILE_PATTERN.format("*")):
        if path.name != keep:
            path.unlink(missing_ok=True)


def _text(array: np.ndarray) -> list[str]:
    if array.dtype.kind != "U":
        raise ValueError(f"expected strings, got {array.dtype}")
    return [str(x) for x in array.tolist()]


def read_outcomes(path: str | Path, sha256: str | None) -> Outcomes:
    """Read an outcomes file, checking its sha256 first (``None`` skips the check: only for files you wrote).

    :raises OutcomesError: missing, truncated, altered (sha256 mismatch) or malformed.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise OutcomesError(f"{path}: the per-example outcomes file is missing (was the results folder copied without it?)") from None
    except OSError as err:
        raise OutcomesError(f"{path}: cannot read the per-example outcomes file ({err.strerror or err})") from None
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise OutcomesError(f"{path}: sha256 {digest} does not match the {sha256} recorded with the result: "
                                "the file is truncated or was altered; re-run the evaluation to rewrite it")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_UNPACKED_BYTES:
                raise OutcomesError(f"{path}: its arrays would take {unpacked / 2**20:.0f} MiB unpacked "
                                    f"(more than {MAX_UNPACKED_BYTES // 2**20} MiB): not an outcomes file")
            for info in archive.infolist():
                _check_npy_header(archive, info, path)
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, KeyError) as err:
        raise OutcomesError(f"{path}: not a readable outcomes file ({type(err).__name__}: {err})") from None
    try:
        return _from_arrays(arrays)
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as err:
        raise OutcomesError(f"{path}: malformed outcomes file ({type(err).__name__}: {err})") from None


def _check_npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> None:
    """Refuse a member whose ``.npy`` header claims more data than the member holds (numpy would
    allocate what the header says first: a lying header is a memory bomb, not a bad batch size)."""
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise OutcomesError(f"{path}: member {info.filename!r} has .npy format {version}, which outcomes files never use")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(member, max_header_size=10_000)
    if dtype.hasobject:
        raise OutcomesError(f"{path}: not a readable outcomes file (member {info.filename!r} holds Python objects)")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > info.file_size:
        raise OutcomesError(f"{path}: not a readable outcomes file (member {info.filename!r} says it holds {shape} of "
                            f"{dtype}, {claimed:,} bytes, but has {info.file_size:,}: the file is corrupt or forged)")


def _from_arrays(a: dict[str, np.ndarray]) -> Outcomes:
    version = int(a["format"].reshape(-1)[0])
    if version != FORMAT:
        raise ValueError(f"format {version} is not supported (this rftbench reads format {FORMAT})")
    index, label, clean, margin = a["index"], a["label"], a["clean"], a["margin"]
    n = len(index)
    for name, arr, kinds in (("index", index, "iu"), ("label", label, "iu"), ("clean", clean, "b"), ("margin", margin, "f")):
        if arr.ndim != 1 or len(arr) != n or arr.dtype.kind not in kinds:
            raise ValueError(f"array {name!r} has shape {arr.shape} and dtype {arr.dtype}; expected [{n}] of kind {kinds}")
    points = json.loads(str(a["points"]))
    if not isinstance(points, dict):
        raise ValueError("'points' is not a JSON object")
    correct: dict[str, np.ndarray] = {}
    broken: dict[str, tuple[np.ndarray, list[str]]] = {}
    labels = _text(a["threats"])
    norms: dict[str, str] = {}
    if "norms" in a:
        listed = _text(a["norms"])
        if len(listed) != len(labels):
            raise ValueError(f"'norms' has {len(listed)} entries for {len(labels)} threats")
        norms = dict(zip(labels, listed))
    for t, threat in enumerate(labels):
        value = a[f"correct_{t}"]
        if value.shape != (n,) or value.dtype.kind not in "bf":
            raise ValueError(f"correct_{t} has shape {value.shape} and dtype {value.dtype}; expected [{n}] bool or float")
        correct[threat] = value
        if f"broken_by_{t}" in a:
            codes, attacks = a[f"broken_by_{t}"], _text(a[f"attacks_{t}"])
            if codes.shape != (n,) or codes.dtype.kind != "i" or (len(codes) and (codes.min() < -1 or codes.max() > len(attacks))):
                raise ValueError(f"broken_by_{t} is not a vector of codes in -1…{len(attacks)}")
            broken[threat] = (codes, attacks)
    return Outcomes(index=index.astype(np.int64), label=label.astype(np.int64), clean=clean, margin=margin,
                    correct=correct, broken_by=broken, points=points, norms=norms)


# ----------------------------------------------------------------------------- comparability


def same_points(a: Mapping[str, Any], b: Mapping[str, Any], names: tuple[str, str] = ("A", "B")) -> list[str]:
    """The reasons two point identities differ (empty when they are the same points)."""
    reasons = []
    labels = {"dataset": "dataset", "card_sha256": "dataset card version (sha256 of its splits and source)",
              "split": "split", "subsample": "subsample rule", "subsample_seed": "subsample seed", "n": "number of points"}
    for key, what in labels.items():
        if a.get(key) != b.get(key):
            reasons.append(f"different {what}: {names[0]} has {a.get(key)!r}, {names[1]} has {b.get(key)!r}")
    if not reasons and a.get("labels_sha256") != b.get("labels_sha256"):
        reasons.append(f"the points' indices or labels differ (labels_sha256 {str(a.get('labels_sha256'))[:12]}… "
                       f"vs {str(b.get('labels_sha256'))[:12]}…): the test split changed between the two")
    return reasons


def check_same_points(a: Outcomes, b: Outcomes, names: tuple[str, str] = ("A", "B")) -> None:
    """Raise :class:`NotComparableError` unless ``a`` and ``b`` were measured on the same points."""
    reasons = same_points(a.points, b.points, names)
    if not reasons and (len(a) != len(b) or not np.array_equal(a.index, b.index) or not np.array_equal(a.label, b.label)):
        reasons.append("the files' indices or labels differ although their identities match (a file was altered)")
    if reasons:
        raise NotComparableError(
            f"{names[0]} and {names[1]} were not measured on the same test points, so a paired comparison would compare "
            "different images:\n  " + "\n  ".join(reasons)
            + "\nRe-evaluate one of them on the other's points (same dataset card, split and n_eval)."
        )


__all__ = [
    "FILE_PATTERN",
    "FORMAT",
    "NotComparableError",
    "Outcomes",
    "OutcomesError",
    "POINT_KEYS",
    "UNION",
    "UNIONS",
    "UNION_ALL",
    "breaker_codes",
    "card_digest",
    "check_same_points",
    "from_evaluation",
    "label_margins",
    "points_for",
    "prune",
    "labels_digest",
    "read_outcomes",
    "same_points",
    "threat_norm",
    "union_correct",
    "union_members",
    "union_summary",
    "unions_on_read",
    "write_outcomes",
]
