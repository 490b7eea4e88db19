"""The leaderboard's Hugging Face dataset repo, through huggingface_hub.

Entries live in the repo as ``entries/<entry id>.json``. Reading uses ``repo_info`` (to pin the
commit) and ``snapshot_download`` of ``entries/**``; submitting uses one
``create_commit(..., create_pr=True)`` carrying one file, so nothing is ever published
half-way: either the pull request exists with the whole entry, or nothing changed.

The token comes from huggingface_hub's usual places (``HF_TOKEN``, the ``hf auth login``
cache): this module never takes one on a command line and never writes one. Every error
raised here has passed through :func:`scrub`, which blanks the token out of messages.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, HfApi, get_token, snapshot_download
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .collect import entries_from_folder
from .entry import Entry, load_entry
from .errors import AuthError, DuplicateEntryError, EntryError, HubError, OfflineError, RepoNotFoundError
from .outbox import Submission

ENTRIES_DIR_IN_REPO = "entries"
TOKEN_HELP = (
    "Log in with `hf auth login` or set HF_TOKEN to a token with write access "
    "(create one at https://huggingface.co/settings/tokens)."
)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean 'the Hub could not be reached', whatever HTTP client huggingface_hub uses."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, OfflineModeIsEnabled, LocalEntryNotFoundError]
    for module, names in (("httpx2", ("TransportError",)), ("httpx", ("TransportError",)), ("requests", ("ConnectionError", "Timeout"))):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        errors.extend(getattr(mod, n) for n in names if isinstance(getattr(mod, n, None), type))
    return tuple(errors)


TRANSPORT_ERRORS = _transport_errors()


def entry_path_in_repo(entry: Entry) -> str:
    """Where an entry lives in the leaderboard repo."""
    return f"{ENTRIES_DIR_IN_REPO}/{entry.id}.json"


def require_token() -> str:
    """The Hugging Face token from the usual places, or an :class:`AuthError` saying how to log in."""
    token = get_token()
    if not token:
        raise AuthError(f"no Hugging Face token found. {TOKEN_HELP}")
    return token


def scrub(text: str, token: str | None) -> str:
    """``text`` with the token (and its common spellings in headers) blanked out."""
    if token:
        text = text.replace(token, "hf_***")
    return text


@contextmanager
def hub_errors(action: str, repo: str, endpoint: str, token: str | None, repo_type: str = "dataset") -> Iterator[None]:
    """Translate huggingface_hub and network errors into rftbench errors with the fix in them."""
    kind = f"{repo_type} repo"
    try:
        yield
    except (RepositoryNotFoundError, GatedRepoError):
        raise RepoNotFoundError(
            f"{action}: the {kind} {repo!r} does not exist on {endpoint}, or your token cannot see it. "
            f"Check --repo (ORG/NAME), or create it: `hf repo create {repo} --repo-type {repo_type}`."
        ) from None
    except RevisionNotFoundError as err:
        raise HubError(f"{action}: {kind} {repo!r} has no such revision ({scrub(str(err).splitlines()[-1], token)})") from None
    except HfHubHTTPError as err:
        status = err.response.status_code if getattr(err, "response", None) is not None else None
        if status == 401:
            raise AuthError(
                f"{action}: the Hub refused your token (401 Unauthorized): it is invalid, expired or revoked. {TOKEN_HELP}"
            ) from None
        if status == 403:
            raise AuthError(
                f"{action}: your token may not write to {repo!r} (403 Forbidden). Opening a pull request needs a "
                f"token with write access (a 'write' or fine-grained token allowed on {repo}). {TOKEN_HELP}"
            ) from None
        message = scrub(" ".join(str(err).split()), token)
        raise HubError(f"{action}: the Hub answered {status or 'an error'} for {repo!r}: {message}") from None
    except TRANSPORT_ERRORS as err:
        detail = scrub(f"{type(err).__name__}: {err}".splitlines()[0], token)
        raise OfflineError(f"{action}: could not reach the Hub at {endpoint} ({detail}).") from None


def offline_mode() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set now (1, ON, YES or TRUE, as huggingface_hub reads it)."""
    import os

    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def check_reachable(action: str, endpoint: str, *, timeout: float = 10.0) -> None:
    """Fail at once, with an :class:`OfflineError`, when the Hub cannot be asked at all.

    ``HF_HUB_OFFLINE`` set, or the endpoint's host name not resolving (within ``timeout``
    seconds), ends the command here instead of after the HTTP client's retries.
    """
    import socket
    import threading
    from urllib.parse import urlsplit

    if offline_mode():
        raise OfflineError(f"{action}: HF_HUB_OFFLINE is set, so the Hub at {endpoint} is not asked. Unset it to reach the Hub, "
                           "or work from a clone of the repo (e.g. `rftbench leaderboard build --entries CLONE/entries`).")
    parts = urlsplit(endpoint)
    host = parts.hostname
    if not host:
        return
    outcome: list[BaseException | None] = []

    def resolve() -> None:
        try:
            socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
            outcome.append(None)
        except OSError as err:  # socket.gaierror: the name does not resolve (no network, no DNS)
            outcome.append(err)

    worker = threading.Thread(target=resolve, daemon=True, name="rftbench-resolve")
    worker.start()
    worker.join(timeout)
    error = outcome[0] if outcome else TimeoutError(f"no answer from DNS within {timeout:g} s")
    if error is not None:
        raise OfflineError(f"{action}: could not reach the Hub at {endpoint}: its host name {host!r} does not resolve "
                           f"({type(error).__name__}: {error}). Are you offline? Work from a clone with --entries, or try again online.")


@dataclass
class HubLeaderboard:
    """A leaderboard dataset repo on the Hub (``endpoint`` for a mirror or a test server)."""

    repo: str
    endpoint: str | None = None
    cache_dir: str | Path | None = None
    repo_type: str = "dataset"

    def __post_init__(self) -> None:
        if self.repo.count("/") != 1 or not all(self.repo.split("/")):
            raise HubError(f"--repo {self.repo!r}: expected ORG/NAME, e.g. rftbench/leaderboard")
        self.api = HfApi(endpoint=self.endpoint)

    @property
    def where(self) -> str:
        return self.endpoint or hf_constants.ENDPOINT

    @property
    def target(self) -> str:
        """The outbox key of this leaderboard."""
        host = self.where.split("://", 1)[-1].rstrip("/")
        return f"{host}/{self.repo_type}s/{self.repo}"

    def _errors(self, action: str, token: str | None = None) -> Any:
        return hub_errors(action, self.repo, self.where, token, self.repo_type)

    def whoami(self, token: str) -> str:
        """The user name the token belongs to (also proves the token is accepted)."""
        with self._errors("checking your Hugging Face token", token):
            return str(self.api.whoami(token=token)["name"])

    def _info(self, token: str | None, revision: str | None) -> Any:
        check_reachable(f"reading {self.repo}", self.where)  # offline: fail now, not after the client's retries
        with self._errors(f"reading {self.repo}", token):
            info = self.api.repo_info(self.repo, repo_type=self.repo_type, revision=revision, token=token)
        if not info.sha:
            raise HubError(f"reading {self.repo}: the Hub did not say which commit {revision or 'main'} is")
        return info

    def head(self, token: str | None = None, revision: str | None = None) -> str:
        """The commit sha the repo's ``revision`` (default branch) points to."""
        return str(self._info(token, revision).sha)

    def download(self, token: str | None = None, revision: str | None = None) -> tuple[str, Path | None]:
        """Download ``entries/**`` at ``revision`` pinned to its commit; returns (sha, folder).

        The folder is None when the repo has no entry yet (nothing to download).
        """
        info = self._info(token, revision)
        sha = str(info.sha)
        if info.siblings is not None and not any(f.rfilename.startswith(f"{ENTRIES_DIR_IN_REPO}/") for f in info.siblings):
            return sha, None
        with self._errors(f"downloading the entries of {self.repo}", token):
            folder = snapshot_download(
                self.repo,
                repo_type=self.repo_type,
                revision=sha,
                allow_patterns=[f"{ENTRIES_DIR_IN_REPO}/**"],
                endpoint=self.endpoint,
                cache_dir=self.cache_dir,
                token=token,
            )
        return sha, Path(folder)

    def entries(self, token: str | None = None, revision: str | None = None, problems: list[str] | None = None) -> tuple[str, list[Entry]]:
        """Every entry on ``revision`` (default branch); bad files go to ``problems`` when given."""
        sha, folder = self.download(token, revision)
        entries_dir = folder / ENTRIES_DIR_IN_REPO if folder is not None else None
        return sha, entries_from_folder(entries_dir, problems=problems) if entries_dir and entries_dir.is_dir() else []

    def publish(self, entry: Entry, token: str, *, dry_run: bool = False) -> Submission:
        """Open a pull request adding the entry, after refusing duplicates of what is on the board."""
        check_submittable(entry)
        sha, existing = self.entries(token, problems=[])
        duplicate = find_duplicate(entry, existing)
        if duplicate is not None:
            raise DuplicateEntryError(
                f"entry {entry.id} duplicates {entry_path_in_repo(duplicate)} already on {self.repo} "
                f"({'identical content' if duplicate.content_hash == entry.content_hash else 'same run, submitter and checkpoint'}, "
                f"by {duplicate.submitter or 'unknown'}); nothing was sent"
            )
        path = entry_path_in_repo(entry)
        if dry_run:
            return Submission(entry.id, self.target, "dry-run", path_in_repo=path)
        s = entry.setup
        with self._errors(f"opening a pull request on {self.repo}", token):
            info = self.api.create_commit(
                self.repo,
                operations=[CommitOperationAdd(path_in_repo=path, path_or_fileobj=(entry.to_json() + "\n").encode())],
                commit_message=f"Add entry {entry.id}: {s.representation} on {s.dataset} ({s.protocol}-{s.epochs}, {s.loss})",
                commit_description=_pr_description(entry),
                repo_type=self.repo_type,
                create_pr=True,
                parent_commit=sha,
                token=token,
            )
        return Submission(entry.id, self.target, "opened", pr_url=info.pr_url, commit_url=info.commit_url, path_in_repo=path)


def _pr_description(entry: Entry) -> str:
    m = entry.metrics
    lines = [
        f"Leaderboard entry `{entry.id}` submitted with `rftbench submit` by {entry.submitter}.",
        "",
        f"- representation: `{entry.setup.representation}`, dataset: `{entry.setup.dataset}`",
        f"- protocol: `{entry.setup.protocol}` ({entry.setup.epochs} epochs), loss: `{entry.setup.loss}`, "
        f"training threat: {entry.setup.threat.label}",
        f"- clean accuracy: {m.clean_acc:.4f}; " + "; ".join(f"{k}: {t.acc:.4f}" for k, t in m.threats.items()),
        f"- checkpoint: {entry.checkpoint.repo}@{entry.checkpoint.revision}" if entry.checkpoint else "- checkpoint: none (cannot be verified)",
        f"- content hash: `{entry.content_hash}`",
        "",
        "Maintainers: run `rftbench leaderboard check --repo <this repo> --pr <number>` before merging.",
    ]
    return "\n".join(lines)


def check_submittable(entry: Entry) -> None:
    """What an entry needs beyond the schema to be submitted: a run, a submitter, a date, no verdict."""
    entry = load_entry(entry.model_dump(mode="json"), where=f"entry {entry.id}")  # schema + hash, again
    problems = []
    if entry.source.kind != "run":
        problems.append(f"source.kind is {entry.source.kind!r}: only results of runs are submitted (published results are imported)")
    if not entry.submitter:
        problems.append("submitter is missing (pass --submitter, or log in so that the Hub can tell who you are)")
    if entry.date is None:
        problems.append("date is missing")
    if entry.verification is not None:
        problems.append("verification is set: only `rftbench verify`, run by the maintainers, sets it")
    if problems:
        raise EntryError(f"entry {entry.id} cannot be submitted:\n" + "\n".join(f"  {p}" for p in problems))


def find_duplicate(entry: Entry, existing: list[Entry]) -> Entry | None:
    """An existing entry with the same content hash, or the same run, submitter and checkpoint."""
    for other in existing:
        if other.content_hash == entry.content_hash:
            return other
    for other in existing:
        if entry.run_id and other.run_id == entry.run_id and other.submitter == entry.submitter and other.checkpoint == entry.checkpoint:
            return other
    return None


class HubPublisher:
    """The ``hub`` publisher: entries as pull requests on a Hugging Face dataset repo.

    What the ``hub`` publisher spec's factory returns (see ``rftbench_add_publishers``).
    """

    def __init__(self, repo: str, endpoint: str | None = None, cache_dir: str | Path | None = None) -> None:
        self.board = HubLeaderboard(repo, endpoint=endpoint, cache_dir=cache_dir)

    @property
    def target(self) -> str:
        return self.board.target

    def identity(self) -> str:
        """Who is submitting: the Hub user the token belongs to (fails early on a bad token)."""
        return self.board.whoami(require_token())

    def publish(self, entry: Entry, *, dry_run: bool = False) -> Submission:
        token = get_token() if dry_run else require_token()
        return self.board.publish(entry, token, dry_run=dry_run)
