"""One side of a comparison read from disk or the Hub: :class:`Source` and :func:`load_source`.

Below :mod:`rftbench.comparison` and :mod:`rftbench.groups` (both use it; ``comparison``
re-exports these names), so that neither imports the other in a cycle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .outcomes import Outcomes, OutcomesError, read_outcomes


@dataclass
class Source:
    """One side of a comparison: a name, its per-example outcomes and where they came from."""

    name: str
    path: Path
    outcomes: Outcomes
    kind: str  # record, evaluation or entry
    config: dict[str, Any] | None = None  # the run's config (result records only)

    @property
    def seed(self) -> int | None:
        """The run's seed (``None`` when its config is unknown)."""
        seed = (self.config or {}).get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


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
    config = data.get("config") if kind == "record" and isinstance(data.get("config"), dict) else None
    return Source(label, path, outcomes, kind, config)


__all__ = ["Source", "fetch_outcomes", "load_source"]
