"""Paired comparisons of results measured on the same test points: is A really more robust than B?

``compare(a, b)`` reads the per-example outcomes of two results (run folders, result records,
``rftbench eval`` outputs or leaderboard entries that carry them), refuses when they were not
measured on the same points, and returns per threat model the paired difference of accuracies
with its 95% interval and the exact McNemar p-value (see :mod:`rftbench.stats`).
``compare_many(base, others)`` compares several results with one, Holm-adjusting the p-values
over every comparison made (each pair × each threat model).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import RftbenchError
from .outcomes import NotComparableError, Outcomes, OutcomesError, check_same_points, read_outcomes
from .stats import PairedDifference, holm, paired_difference


@dataclass
class Source:
    """One side of a comparison: a name, its per-example outcomes and where they came from."""

    name: str
    path: Path
    outcomes: Outcomes
    kind: str  # record, evaluation or entry


@dataclass
class Comparison:
    """A minus B per threat model (``clean`` first); ``p_holm`` set by :func:`compare_many` or :func:`adjust`."""

    a: str
    b: str
    n: int
    differences: list[PairedDifference] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "n": self.n, "differences": [d.to_dict() for d in self.differences]}


def _confined(base: Path, name: str, where: Path) -> Path:
    rel = Path(str(name))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise OutcomesError(f"{where}: outcomes.file {name!r} must be a relative path inside {base}")
    path = (base / rel).resolve()
    if not path.is_relative_to(base.resolve()):
        raise OutcomesError(f"{where}: outcomes.file {name!r} points outside {base}")
    return path


def _reference(ref: Any, where: Path) -> tuple[str, str]:
    if not isinstance(ref, dict) or not isinstance(ref.get("file"), str) or not isinstance(ref.get("sha256"), str):
        raise OutcomesError(f"{where}: its 'outcomes' entry must name a file and its sha256, got {ref!r}")
    return ref["file"], ref["sha256"]


def fetch_outcomes(entry: Any, *, endpoint: str | None = None) -> Path:
    """Download an entry's per-example file from its checkpoint (the run folder on the Hub) at the pinned commit."""
    from huggingface_hub import constants, get_token, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    from .leaderboard.hub import hub_errors

    ckpt, ref = entry.checkpoint, entry.outcomes
    token = get_token()
    filename = f"{ckpt.subfolder.strip('/')}/{ref.file}" if ckpt.subfolder else ref.file
    with hub_errors(f"fetching {ref.file} from checkpoint {ckpt.repo}@{ckpt.revision[:12]}", ckpt.repo,
                    endpoint or constants.ENDPOINT, token, ckpt.repo_type):
        try:
            return Path(hf_hub_download(ckpt.repo, filename, repo_type=ckpt.repo_type, revision=ckpt.revision,
                                        endpoint=endpoint, token=token))
        except HfHubHTTPError as err:
            if isinstance(err, EntryNotFoundError) or "Entry Not Found" in str(err):
                raise OutcomesError(f"entry {entry.id}: its per-example file {ref.file} is neither beside the entry nor in "
                                    f"its checkpoint {ckpt.repo}@{ckpt.revision[:12]} (upload the run folder with it)") from None
            raise


def load_source(target: str | Path, name: str | None = None, *, endpoint: str | None = None) -> Source:
    """Read one side: a run folder (``runs/HASH``), a record (``runs/HASH.json``), an ``evaluation.json``
    (or the folder ``rftbench eval`` wrote) or a leaderboard entry file that carries per-example outcomes
    (the file beside the entry, else downloaded from the entry's checkpoint at its pinned commit;
    ``endpoint`` for a Hub mirror).

    :raises OutcomesError: nothing there, no per-example outcomes, or a file missing, truncated or altered.
    """
    path = Path(target)
    if path.is_dir():
        candidates = [path.with_suffix(".json") if path.suffix != ".json" else None, path / "evaluation.json"]
        found = next((c for c in candidates if c is not None and c.is_file()), None)
        if found is None:
            raise OutcomesError(f"{path}: a folder without a result record ({path.name}.json beside it) or evaluation.json in it")
        path = found
    if not path.is_file():
        raise OutcomesError(f"{path}: no result record, evaluation or entry there")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise OutcomesError(f"{path}: not a JSON result record, evaluation or entry ({err})") from None
    if not isinstance(data, dict):
        raise OutcomesError(f"{path}: expected a JSON object")
    base = path.parent
    if "content_hash" in data:
        from .leaderboard.entry import load_entry

        entry = load_entry(data, where=str(path))
        if entry.outcomes is None:
            raise OutcomesError(f"{path}: entry {entry.id} carries no per-example outcomes (only its totals): it cannot be compared point by point")
        file, sha = entry.outcomes.file, entry.outcomes.sha256
        kind, label = "entry", name or f"{entry.setup.representation}/{entry.setup.loss} ({entry.id})"
        if not (base / file).is_file():
            if entry.checkpoint is None:
                raise OutcomesError(f"{path}: entry {entry.id}'s per-example file {file} is not beside it, and the entry "
                                    "names no checkpoint to fetch it from: put a copy next to the entry file")
            fetched = fetch_outcomes(entry, endpoint=endpoint)
            return Source(label, path, read_outcomes(fetched, sha), "entry")
    else:
        metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) and "config" in data else data
        if "clean_acc" not in metrics:
            raise OutcomesError(f"{path}: not a result record or evaluation (no clean_acc)")
        if "outcomes" not in metrics:
            raise OutcomesError(f"{path}: no per-example outcomes recorded (written by rftbench ≥ the version that added them); "
                                "re-run `rftbench eval` on it to produce them")
        file, sha = _reference(metrics["outcomes"], path)
        kind = "record" if metrics is not data else "evaluation"
        label = name or (data.get("id") or str(path))
    outcomes = read_outcomes(_confined(base, file, path), sha)
    return Source(label, path, outcomes, kind)


def _as_source(x: Source | str | Path) -> Source:
    return x if isinstance(x, Source) else load_source(x)


def compare(a: Source | str | Path, b: Source | str | Path, threats: Sequence[str] | None = None) -> Comparison:
    """A minus B on the same points, per threat model (``clean`` and every threat both measured, or ``threats``).

    :raises NotComparableError: different dataset, card version, split, subsample or n.
    :raises OutcomesError: a side without (valid) per-example outcomes, or an unknown threat.
    """
    sa, sb = _as_source(a), _as_source(b)
    names = (sa.name, sb.name) if sa.name != sb.name else (f"A ({sa.name})", f"B ({sb.name})")
    check_same_points(sa.outcomes, sb.outcomes, names)
    common = ["clean"] + [t for t in sa.outcomes.threats if t in sb.outcomes.threats]
    if threats:
        chosen = []
        for t in threats:
            missing = [s.name for s in (sa, sb) if t != "clean" and t not in s.outcomes.threats]
            if missing:
                measured = sorted(set(sa.outcomes.threats) & set(sb.outcomes.threats))
                raise OutcomesError(f"threat {t!r} was not measured for {', '.join(missing)}; both have: clean"
                                    + "".join(f", {m}" for m in measured))
            chosen.append(t)
        common = chosen
    diffs = [paired_difference(sa.outcomes.outcome(t), sb.outcomes.outcome(t), t) for t in common]
    return Comparison(sa.name, sb.name, len(sa.outcomes), diffs)


def adjust(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """Holm-adjust the p-values of every difference in ``comparisons`` together (the family of tests shown)."""
    flat = [d.p_value for c in comparisons for d in c.differences]
    adjusted = iter(holm(flat))
    return [replace(c, differences=[replace(d, p_holm=next(adjusted)) for d in c.differences]) for c in comparisons]


def compare_many(base: Source | str | Path, others: Sequence[Source | str | Path], threats: Sequence[str] | None = None) -> list[Comparison]:
    """Each of ``others`` against ``base`` (base minus other), Holm-adjusted over all the tests."""
    if not others:
        raise RftbenchError("compare needs at least two results")
    first = _as_source(base)
    return adjust([compare(first, o, threats) for o in others])


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
    ax.set_title(f"{who}: paired difference in accuracy, 95% interval (n = {first.n})", fontsize=9, loc="left")
    ax.set_xlabel(f"percentage points · red: significant at α = {alpha:g} (exact McNemar, Holm-adjusted)", fontsize=8)
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


__all__ = ["Comparison", "NotComparableError", "OutcomesError", "Source", "adjust", "compare", "compare_many", "load_source",
           "plot_comparisons"]
