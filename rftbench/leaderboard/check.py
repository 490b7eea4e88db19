"""The maintainers' check of a pull request on the leaderboard repo (``rftbench leaderboard check``).

A pull request may only *add* entry files under ``entries/``; each new entry must be valid
(schema, content hash, file named after its id), submittable (from a run, with submitter and
date, no self-awarded verification) and not a duplicate of an entry on the main branch or of
another entry in the same pull request. Usable from CI: the exit status is 0 when every entry
passes, 1 otherwise, and ``--json`` prints a machine-readable report.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from huggingface_hub import hf_hub_download
from huggingface_hub.hf_api import RepoFile

from .._json import loads as _strict_json
from ..errors import RftbenchError
from .collect import entries_from_folder
from .entry import Entry, load_entry
from .hub import ENTRIES_DIR_IN_REPO, HubLeaderboard, check_submittable, entry_path_in_repo, find_duplicate


@dataclass
class CheckReport:
    """What the check found: accepted entries, problems (failing), warnings (not failing)."""

    checked: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.checked)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_new_entries(new: dict[str, Any], existing: list[Entry], report: CheckReport | None = None, *, in_repo: bool = True) -> CheckReport:
    """Check entries about to be added. ``new`` maps a path (in the repo, or on disk) to parsed JSON.

    With ``in_repo``, each path must be ``entries/<id>.json``.
    """
    report = report or CheckReport()
    accepted: list[Entry] = []
    for path, data in sorted(new.items()):
        report.checked.append(path)
        if not isinstance(data, dict):  # a JSON string would be read as a file name by load_entry
            report.problems.append(f"{path}: an entry is a JSON object, not {type(data).__name__}")
            continue
        try:
            entry = load_entry(data, where=path)
            check_submittable(entry)
        except RftbenchError as err:
            report.problems.append(str(err))
            continue
        if in_repo and path != entry_path_in_repo(entry):
            report.problems.append(f"{path}: an entry must be stored as {entry_path_in_repo(entry)} (its id), not {path}")
            continue
        duplicate = find_duplicate(entry, existing) or find_duplicate(entry, accepted)
        if duplicate is not None:
            where = "on the main branch" if duplicate in existing else "in this pull request"
            report.problems.append(f"{path}: duplicate of entry {duplicate.id} {where} (submitted by {duplicate.submitter or 'unknown'})")
            continue
        if entry.checkpoint is None:
            report.warnings.append(f"{path}: no checkpoint: the entry cannot be verified with `rftbench verify`")
        accepted.append(entry)
        report.accepted.append(path)
    if not new:
        report.problems.append("no new entry to check (a leaderboard pull request adds entries/<id>.json files)")
    return report


def check_files(paths: list[str | Path], against: str | Path | None = None) -> CheckReport:
    """Check local entry files (e.g. a pull request checked out by CI) against a folder of existing entries."""
    new: dict[str, Any] = {}
    report = CheckReport()
    for p in map(Path, paths):
        files = sorted(p.rglob("*.json")) if p.is_dir() else [p]
        for f in files:
            try:
                new[str(f)] = _strict_json(f.read_text())
            except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
                report.checked.append(str(f))
                report.problems.append(f"{f}: not a readable JSON entry ({err})")
    existing = entries_from_folder(against, problems=report.warnings) if against else []
    return check_new_entries(new, existing, report, in_repo=False)


def _tree(board: HubLeaderboard, revision: str, token: str | None) -> dict[str, str]:
    with board._errors(f"listing {board.repo}@{revision}", token):
        return {
            f.path: f.blob_id
            for f in board.api.list_repo_tree(board.repo, repo_type=board.repo_type, revision=revision, recursive=True, token=token)
            if isinstance(f, RepoFile)
        }


def _base(board: HubLeaderboard, main_sha: str, pr_sha: str, token: str | None) -> str:
    """The commit of main the pull request starts from: the newest commit of its history also on main.

    When the Hub does not say (no common commit), main's head is used, which is stricter: every
    file of main the pull request lacks then counts as deleted.
    """
    with board._errors(f"listing the commits of {board.repo}", token):
        on_main = {c.commit_id for c in board.api.list_repo_commits(board.repo, repo_type=board.repo_type, revision=main_sha, token=token)}
        for commit in board.api.list_repo_commits(board.repo, repo_type=board.repo_type, revision=pr_sha, token=token):
            if commit.commit_id in on_main:
                return commit.commit_id
    return main_sha


def check_pull_request(board: HubLeaderboard, pr: int, token: str | None = None) -> CheckReport:
    """Check pull request ``pr`` of the leaderboard repo against its main branch.

    The pull request is compared with the commit of main it starts from: it may only add files,
    and each added file must be ``entries/<id>.json``. Any deleted or changed file is a problem
    (files added to main since the pull request was opened are not its doing and are ignored).
    """
    if pr < 1:
        raise RftbenchError(f"--pr {pr}: pull request numbers start at 1")
    report = CheckReport()
    main_sha, existing = board.entries(token, problems=report.warnings)
    pr_sha = board.head(token, revision=f"refs/pr/{pr}")
    base_sha = _base(board, main_sha, pr_sha, token)
    base_files, pr_files = _tree(board, base_sha, token), _tree(board, pr_sha, token)
    added = sorted(set(pr_files) - set(base_files))
    modified = sorted(p for p in set(pr_files) & set(base_files) if pr_files[p] != base_files[p])
    deleted = sorted(set(base_files) - set(pr_files))
    for path in modified:
        report.problems.append(f"{path}: the pull request changes a file of the main branch; entries are immutable, add a new one instead")
    for path in deleted:
        report.problems.append(f"{path}: the pull request deletes a file of the main branch; a leaderboard pull request may only add entries")
    new: dict[str, Any] = {}
    for path in added:
        if PurePosixPath(path).parent != PurePosixPath(ENTRIES_DIR_IN_REPO) or not path.endswith(".json"):
            report.problems.append(f"{path}: a leaderboard pull request may only add {ENTRIES_DIR_IN_REPO}/<id>.json files")
            continue
        with board._errors(f"downloading {path} from pull request #{pr}", token):
            local = hf_hub_download(board.repo, path, repo_type=board.repo_type, revision=pr_sha,
                                    endpoint=board.endpoint, cache_dir=board.cache_dir, token=token)
        try:
            new[path] = _strict_json(Path(local).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            report.checked.append(path)
            report.problems.append(f"{path}: not valid JSON ({err})")
    return check_new_entries(new, existing, report) if (new or not report.checked) else report
