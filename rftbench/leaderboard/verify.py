"""``rftbench verify``: re-measure an entry from its pinned checkpoint and compare with its claims.

1. download the checkpoint repo at the entry's pinned commit (``snapshot_download``);
2. load the model with ``rftbench.load_model`` (the checkpoint repo holds the run folder that
   ``rftbench run`` wrote: ``model.json`` and ``model.safetensors``, e.g. uploaded with
   ``hf upload ORG/NAME runs/<hash> .``);
3. evaluate it with :func:`rftbench.evaluation.evaluate` on the first ``n`` test images, under
   the threat models of the entry's own evaluation suite (so attack settings are the run's);
4. compare clean accuracy and each threat accuracy with the entry;
5. when the entry carries per-example outcomes (``entry.outcomes``; the file is looked up in the
   checkpoint folder, the run folder, under its name ``outcomes-<sha>.npz``, and must match the
   sealed sha256), compare point by point on the first ``n`` points: the agreement rate per
   threat model and the indices of the points whose outcome flipped. A file that is present but
   does not match its sha256 is an error; one that is absent is said in the report (totals only).

Tolerance: a number agrees when ``|measured − claimed| ≤ tolerance + 3·σ``, where ``σ`` is the
binomial standard error of an accuracy measured on ``n`` of the claim's ``N`` images
(``sqrt(p(1−p)/n · (1 − n/N))``, the finite-population correction because the subset is part
of the images the claim was measured on; ``σ = 0`` when ``n ≥ N``). ``tolerance`` (default
0.01) absorbs non-determinism across devices and library versions. When ``N`` is unknown the
correction is left out (a conservative, wider bound).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from huggingface_hub import snapshot_download

from .. import __version__
from ..errors import RftbenchError
from ..outcomes import Outcomes, points_for, read_outcomes, same_points
from ..paths import PathEscapeError, confined
from .entry import Entry, Verification, parse_threat_label, threat_label
from .errors import VerificationError
from .hub import hub_errors

DEFAULT_TOLERANCE = 0.01
DEFAULT_N = 200


@dataclass
class Comparison:
    """One number: claimed vs measured, and the bound it had to stay within."""

    key: str
    claimed: float
    measured: float
    allowed: float

    @property
    def ok(self) -> bool:
        return abs(self.measured - self.claimed) <= self.allowed

    def line(self) -> str:
        mark = "ok" if self.ok else "MISMATCH"
        return (f"{self.key}: claimed {self.claimed:.4f}, measured {self.measured:.4f} "
                f"(|Δ| = {abs(self.measured - self.claimed):.4f}, allowed {self.allowed:.4f}) {mark}")


#: How many flipped points are listed per threat model.
MAX_FLIPPED = 100


@dataclass
class VerifyResult:
    entry: Entry
    n: int
    comparisons: list[Comparison] = field(default_factory=list)
    tolerance: float = DEFAULT_TOLERANCE
    agreement: dict[str, float] = field(default_factory=dict)
    flipped: dict[str, list[int]] = field(default_factory=dict)
    flipped_count: dict[str, int] = field(default_factory=dict)
    per_example_note: str | None = None

    @property
    def verified(self) -> bool:
        return bool(self.comparisons) and all(c.ok for c in self.comparisons)

    def verification(self) -> Verification:
        """The ``verification`` block to attach to the entry."""
        return Verification(
            status="verified" if self.verified else "mismatch",
            tolerance=self.tolerance,
            n_eval=self.n,
            measured={c.key: c.measured for c in self.comparisons},
            claimed={c.key: c.claimed for c in self.comparisons},
            date=datetime.now(timezone.utc).replace(microsecond=0),
            rftbench=__version__,
            agreement=dict(self.agreement) or None,
            flipped={k: v[:MAX_FLIPPED] for k, v in self.flipped.items()} or None,
        )

    def report(self) -> str:
        head = f"entry {self.entry.id}: {'verified' if self.verified else 'NOT verified'} on {self.n} test images"
        lines = [head, *(f"  {c.line()}" for c in self.comparisons)]
        if self.agreement:
            lines.append("  per-example agreement with the entry's outcomes:")
            for key, rate in self.agreement.items():
                flips = self.flipped.get(key, [])
                shown = ", ".join(map(str, flips[:10])) + (" …" if len(flips) > 10 else "")
                lines.append(f"    {key}: {100 * rate:.1f}% agree; {self.flipped_count.get(key, 0)} flipped" + (f" (test indices {shown})" if flips else ""))
        if self.per_example_note:
            lines.append(f"  per-example: {self.per_example_note}")
        return "\n".join(lines)


def compare_outcomes(out: VerifyResult, folder: Path, measured: Outcomes) -> None:
    """Fill ``out``'s per-example agreement from the entry's outcomes file in the checkpoint ``folder``."""
    entry = out.entry
    if entry.outcomes is None:
        out.per_example_note = "the entry carries no per-example outcomes: compared totals only"
        return
    ref = entry.outcomes
    path = folder / ref.file
    if not path.is_file():
        out.per_example_note = (f"the entry's per-example file ({ref.file}) is not in its checkpoint: "
                                "compared totals only")
        return
    claimed = read_outcomes(path, ref.sha256)  # present but altered or truncated: an error, never a silent comparison
    ignore = {"n": None, "labels_sha256": None}
    reasons = same_points({**claimed.points, **ignore}, {**measured.points, **ignore}, ("the entry", "this evaluation"))
    m = min(len(claimed), len(measured))
    if not reasons and not (np.array_equal(claimed.index[:m], measured.index[:m]) and np.array_equal(claimed.label[:m], measured.label[:m])):
        reasons.append("the first points' indices or labels differ: the test split is not the one the entry was measured on")
    if reasons:
        raise VerificationError(f"entry {entry.id}: its per-example outcomes are not on the points verified here:\n  " + "\n  ".join(reasons))
    measured_by_label = {threat_label(*parse_threat_label(t)): t for t in measured.threats}
    for key in ["clean", *claimed.threats]:
        if key == "clean":
            mine = measured.clean
        else:
            canonical = threat_label(*parse_threat_label(key))
            if canonical not in measured_by_label:
                continue
            mine = measured.outcome(measured_by_label[canonical])
        theirs = claimed.outcome(key)[:m]
        a, b = np.asarray(theirs, dtype=np.float64), np.asarray(mine[:m], dtype=np.float64)
        differ = np.abs(a - b) > 1e-6
        name = "clean_acc" if key == "clean" else threat_label(*parse_threat_label(key))
        out.agreement[name] = float(1.0 - np.abs(a - b).mean()) if m else 1.0
        out.flipped_count[name] = int(differ.sum())
        out.flipped[name] = [int(i) for i in claimed.index[:m][differ][:MAX_FLIPPED]]


def allowed_difference(claimed: float, n: int, total: int | None, tolerance: float) -> float:
    """``tolerance + 3σ`` with σ the standard error of an accuracy on ``n`` of ``total`` images."""
    if total is not None and n >= total:
        return tolerance
    fpc = 1.0 - n / total if total else 1.0
    p = min(max(claimed, 0.0), 1.0)
    return tolerance + 3.0 * math.sqrt(p * (1.0 - p) / n * fpc)


def download_checkpoint(entry: Entry, *, endpoint: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """The checkpoint's files at the pinned commit; returns the model folder (``subfolder`` applied)."""
    if entry.checkpoint is None:
        raise VerificationError(
            f"entry {entry.id} has no checkpoint: nothing to re-evaluate. Resubmit it with "
            "`rftbench submit RESULT --repo ORG/NAME --checkpoint REPO@COMMIT_SHA`."
        )
    ckpt = entry.checkpoint
    from huggingface_hub import constants, get_token

    token = get_token()
    with hub_errors(f"downloading checkpoint {ckpt.repo}@{ckpt.revision[:12]}", ckpt.repo, endpoint or constants.ENDPOINT, token, ckpt.repo_type):
        folder = snapshot_download(
            ckpt.repo,
            repo_type=ckpt.repo_type,
            revision=ckpt.revision,
            allow_patterns=[f"{ckpt.subfolder.strip('/')}/**"] if ckpt.subfolder else None,
            endpoint=endpoint,
            cache_dir=cache_dir,
            token=token,
        )
    try:  # the schema refuses '..' and absolute folders; a symbolic link in the repo is caught here
        path = confined(folder, ckpt.subfolder, "checkpoint.subfolder") if ckpt.subfolder else Path(folder).resolve()
    except PathEscapeError as err:
        raise VerificationError(f"checkpoint {ckpt.repo}@{ckpt.revision}: {err}") from None
    if not path.is_dir():
        raise VerificationError(f"checkpoint {ckpt.repo}@{ckpt.revision}: no folder {ckpt.subfolder!r} in the repo")
    return path


def default_loader() -> Callable[[Path], Any]:
    """``rftbench.load_model`` (the engine's run-folder loader)."""
    import rftbench

    try:
        load = getattr(rftbench, "load_model", None)
    except Exception as err:  # noqa: BLE001 - the engine failed to import
        raise VerificationError(f"rftbench.load_model could not be imported: {type(err).__name__}: {err}") from None
    if load is None:
        raise VerificationError(
            "this rftbench has no rftbench.load_model(run_dir) to load a fine-tuned checkpoint; "
            "upgrade rftbench (verify needs the engine's run-folder loader)"
        )
    return load


def default_test_data(entry: Entry, manager: Any = None) -> Any:
    """The entry's test split, transformed for its representation (from the zoo cards)."""
    from ..data import Transformed, load_splits, make_transform
    from ..plugins import get_manager

    manager = manager or get_manager()
    try:
        rep = manager.get("representation", entry.setup.representation)
        card = manager.get("dataset", entry.setup.dataset)
    except RftbenchError as err:
        raise VerificationError(f"entry {entry.id}: cannot rebuild its test data: {err}") from None
    # never the entry's own config.data_root: a stranger's entry does not choose where files go here
    splits = load_splits(card, root=None, manager=manager)
    return Transformed(splits["test"], make_transform(rep, card, train=False))


def threat_suite(entry: Entry, manager: Any = None) -> list[Any]:
    """The entry's evaluation components that measure one of its claimed threat labels."""
    from ..plugins import get_manager

    manager = manager or get_manager()
    wanted = set(entry.metrics.threats)
    suite, found = [], set()
    for component in entry.config.get("evaluation") or []:
        name = component if isinstance(component, str) else component.get("name")
        params = {} if isinstance(component, str) else {k: v for k, v in component.items() if k != "name"}
        try:
            spec = manager.get("threat_model", name)
        except RftbenchError:
            continue  # a metric, not a threat model
        try:
            label = spec.build(**params).label()
            norm, eps = parse_threat_label(label)
        except (RftbenchError, ValueError, TypeError) as err:
            raise VerificationError(f"entry {entry.id}: evaluation component {component!r} does not build: {err}") from None
        if threat_label(norm, eps) in wanted:
            suite.append(component)
            found.add(threat_label(norm, eps))
    missing = wanted - found
    if missing:
        raise VerificationError(
            f"entry {entry.id}: no installed threat model reproduces {', '.join(sorted(missing))} "
            "(its config's evaluation suite names threat models this installation lacks)"
        )
    return suite


def verify_entry(
    entry: Entry,
    *,
    n: int = DEFAULT_N,
    tolerance: float = DEFAULT_TOLERANCE,
    endpoint: str | None = None,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    manager: Any = None,
    load: Callable[[Path], Any] | None = None,
    data: Any = None,
) -> VerifyResult:
    """Re-evaluate ``entry`` from its pinned checkpoint on its first ``n`` test images.

    ``load`` (default ``rftbench.load_model``) and ``data`` (default: the test split rebuilt
    from the entry's zoo cards) can be given to verify models and data rftbench cannot rebuild.
    """
    from ..evaluation import evaluate

    if n < 1:
        raise VerificationError(f"--n {n}: verify on at least 1 test image")
    if not 0 <= tolerance < 1:
        raise VerificationError(f"--tolerance {tolerance}: an accuracy difference, between 0 and 1")
    from ..engine.hardware import parse_device

    device = str(parse_device(device))  # named before anything downloads
    suite = threat_suite(entry, manager)
    folder = download_checkpoint(entry, endpoint=endpoint, cache_dir=cache_dir)
    model = load(folder) if load is not None else default_loader()(folder, device=device, manager=manager)
    data = data if data is not None else default_test_data(entry, manager)
    n = min(n, len(data))
    with tempfile.TemporaryDirectory(prefix="rftbench-verify-") as tmp:
        result = evaluate(model, data, suite, batch_size=batch_size, n_examples=n, device=device,
                          seed=int(entry.config.get("seed", 0) or 0), manager=manager, progress=False,
                          output_dir=tmp, points=points_for(entry.setup.dataset, manager))
        measured_outcomes = read_outcomes(Path(tmp) / result["outcomes"]["file"], result["outcomes"]["sha256"])
    total = entry.metrics.n_eval
    out = VerifyResult(entry, n, tolerance=tolerance)
    compare_outcomes(out, folder, measured_outcomes)
    out.comparisons.append(Comparison("clean_acc", entry.metrics.clean_acc, float(result["clean_acc"]),
                                      allowed_difference(entry.metrics.clean_acc, n, total, tolerance)))
    measured = {}
    for label, record in result["threats"].items():
        norm, eps = parse_threat_label(label)
        measured[threat_label(norm, eps)] = float(record["acc"])
    for label, claimed in entry.metrics.threats.items():
        if label not in measured:
            raise VerificationError(f"entry {entry.id}: the evaluation did not report {label}")
        out.comparisons.append(Comparison(label, claimed.acc, measured[label], allowed_difference(claimed.acc, n, total, tolerance)))
    for name in ("union", "union_all"):  # the union accuracies the entry claims, re-measured over the same threats
        claimed_union = getattr(entry.metrics, name)
        if claimed_union is None:
            continue
        got = result.get(name)
        spans = [threat_label(*parse_threat_label(t)) for t in (got or {}).get("of", [])]
        if not got or spans != list(claimed_union.of):
            raise VerificationError(f"entry {entry.id}: the evaluation's {name} spans {', '.join(spans) or 'nothing'}, "
                                    f"the entry's {', '.join(claimed_union.of)}")
        out.comparisons.append(Comparison(name, claimed_union.acc, float(got["acc"]),
                                          allowed_difference(claimed_union.acc, n, total, tolerance)))
    return out
