"""Download and verify pretrained weights: Hub files at a pinned revision, URLs against a sha256.

Two sources, each with the field's own downloader:

- **Hugging Face Hub** files go through :func:`huggingface_hub.hf_hub_download` into the Hub
  cache (``HF_HUB_CACHE``); a revision pins the commit, and ``HF_HUB_OFFLINE=1`` reads the
  cache only. Both variables are read when a function is called, not when Python starts.
- **URLs** go through :func:`torch.hub.download_url_to_file`, which streams to a temporary file
  in the target folder, checks the sha256 and only then renames it into place, so nothing
  half-downloaded stays in the cache. A file whose hash does not match is removed.

A card may not carry a pin (the value could not be verified when the card was written):
``rftbench zoo fetch`` then resolves it, downloads, and records it in the **lock file**
(``<rftbench cache>/zoo-lock.json``); later loads use the recorded pin, so a run on a
cluster node without internet loads exactly the files that were fetched.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from ._fs import atomic_write_text, exclusive_lock, sha256_file
from .cards import RepresentationCard
from .errors import RftbenchError
from .paths import PathEscapeError, cache_dir, check_relative, confined

LOCK_NAME = "zoo-lock.json"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "true", "yes", "on"}


class FetchError(RftbenchError):
    """Weights could not be downloaded or found in the cache."""


class ChecksumError(FetchError):
    """A downloaded or cached file does not match its pinned sha256 (the file was removed)."""


# ---------------------------------------------------------------------------------- settings


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) asks for cache-only access."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_cache() -> str | None:
    """The Hub cache folder (``HF_HUB_CACHE``, else huggingface_hub's default)."""
    return os.environ.get("HF_HUB_CACHE") or None


def weights_dir() -> Path:
    """Where URL checkpoints are stored: ``<rftbench cache>/weights``."""
    return cache_dir() / "weights"


# ---------------------------------------------------------------------------------- lock file


def lock_path() -> Path:
    """The lock file that records pins resolved by ``rftbench zoo fetch``."""
    return cache_dir() / LOCK_NAME


def read_lock() -> dict[str, dict[str, Any]]:
    """Card id → recorded pin (``revision``/``sha256``, ``file``, ``fetched_at``)."""
    path = lock_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise FetchError(f"{path}: the zoo lock file is not valid JSON ({err}); delete it and run `rftbench zoo fetch` again") from None
    return data if isinstance(data, dict) else {}


def record_pin(card_id: str, **pin: Any) -> None:
    """Record a resolved pin for ``card_id`` in the lock file.

    The read-modify-write holds an exclusive lock (``zoo-lock.json.lock``), so sweep workers
    sharing a cache keep each other's pins; the file is replaced atomically with the umask's mode.
    """
    path = lock_path()
    with exclusive_lock(path.with_name(path.name + ".lock")):
        data = read_lock()
        data[card_id] = {**pin, "fetched_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))


def pin_of(card: RepresentationCard) -> dict[str, str | None]:
    """The pin that loading uses: the card's own, else the one recorded in the lock file."""
    locked = read_lock().get(card.id, {})
    return {
        "revision": card.weights.revision or locked.get("revision"),
        "sha256": card.weights.sha256 or locked.get("sha256"),
    }


# ---------------------------------------------------------------------------------- Hub


def hub_file(repo_id: str, filename: str, *, revision: str | None = None, card_id: str = "") -> Path:
    """A file of a Hub repo at ``revision`` (a commit sha, branch or tag), from the cache if present.

    With ``HF_HUB_OFFLINE=1`` only the cache is read. Errors say what is missing and how to
    get it (``rftbench zoo fetch NAME`` on a machine with internet).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = hub_offline()
    what = f"{repo_id}/{filename}" + (f" at revision {revision}" if revision else "")
    fix = f"run `rftbench zoo fetch {card_id or repo_id}` on a machine with internet (same HF_HUB_CACHE)"
    try:
        try:
            path = hf_hub_download(repo_id, filename, revision=revision, cache_dir=hub_cache(), local_files_only=offline)
        except BaseException:
            _drop_incomplete(repo_id)
            raise
    except LocalEntryNotFoundError:
        where = hub_cache() or "the default Hugging Face cache"
        mode = "HF_HUB_OFFLINE is set and " if offline else ""
        raise FetchError(f"{mode}{what} is not in {where}.\nFix: {fix}, or unset HF_HUB_OFFLINE.") from None
    except RevisionNotFoundError:
        raise FetchError(f"{what}: revision not found on the Hub; check weights.revision in the card") from None
    except EntryNotFoundError:
        raise FetchError(f"{what}: the repo has no file {filename!r}; check weights.filename in the card") from None
    except RepositoryNotFoundError:
        raise FetchError(f"{what}: repository {repo_id!r} not found (or gated); check weights.hub_id in the card") from None
    except OSError as err:  # network errors surface as OSError subclasses
        raise FetchError(f"{what}: download failed: {err}\nFix: {fix}") from None
    return Path(path)


def _hub_root() -> Path:
    """The Hub cache folder in use (``HF_HUB_CACHE`` or huggingface_hub's default)."""
    from huggingface_hub import constants

    return Path(hub_cache() or constants.HF_HUB_CACHE)


def _drop_incomplete(repo_id: str) -> None:
    """Remove the partial blobs a failed or interrupted Hub download left for ``repo_id``."""
    root = _hub_root() / f"models--{repo_id.replace('/', '--')}" / "blobs"
    if root.is_dir():
        for partial in root.glob("*.incomplete"):
            partial.unlink(missing_ok=True)


def revision_of(path: str | Path) -> str | None:
    """The commit sha of a file inside a Hub cache snapshot (``…/snapshots/<sha>/file``)."""
    parts = Path(path).parts
    if "snapshots" in parts:
        i = parts.index("snapshots")
        if i + 1 < len(parts) and _COMMIT.match(parts[i + 1]):
            return parts[i + 1]
    return None


# ---------------------------------------------------------------------------------- URLs


def url_file(
    url: str, *, filename: str, sha256: str | None, folder: str | Path | None = None, card_id: str = "",
    root: str | Path | None = None,
) -> Path:
    """A URL's file in ``folder`` (default ``<cache>/weights``), downloaded once and verified.

    A cached file is re-hashed against ``sha256``; a mismatching one is removed. Without a
    ``sha256`` the file is accepted as downloaded (the caller records its hash in the lock
    file, so it is verified from then on). Offline (``HF_HUB_OFFLINE=1``) nothing is
    downloaded: a missing file is an error saying how to fetch it.

    Everything written or removed stays inside ``root`` (default ``folder`` itself; weights use
    ``<cache>/weights``): the root is resolved once, and ``folder/filename`` is resolved under it,
    so a ``folder`` that is a symbolic link to somewhere else is refused rather than followed.
    """
    folder = Path(folder) if folder is not None else weights_dir()
    root = Path(root) if root is not None else folder
    try:
        inner = folder.relative_to(root).as_posix() if folder != root else ""
    except ValueError:
        raise FetchError(f"{card_id or url}: {folder} is not inside {root}") from None
    try:
        target = confined(root, f"{inner}/{filename}" if inner else filename, "weights.filename")
    except PathEscapeError as err:
        raise FetchError(
            f"{card_id or url}: {err}; a card's weights.filename and its folder in the cache ({folder}) "
            "must stay inside the cache (remove the symbolic link)"
        ) from None
    folder = target.parent
    fix = f"run `rftbench zoo fetch {card_id or filename}` on a machine with internet (same RFTBENCH_CACHE)"
    if target.is_file():
        if sha256:
            _verify(target, sha256, url, root=root)
        return target
    if hub_offline():
        raise FetchError(f"offline (HF_HUB_OFFLINE is set) and {target} is not cached.\nFix: {fix}.")
    folder.mkdir(parents=True, exist_ok=True)
    from torch.hub import download_url_to_file

    try:
        # streams into a temporary file beside `target`, checks the hash prefix, then moves it
        download_url_to_file(url, str(target), hash_prefix=sha256, progress=True)
    except RuntimeError as err:
        if "invalid hash value" in str(err):
            raise ChecksumError(
                f"{url}: the download does not match the pinned sha256 {sha256} (nothing was kept).\n"
                "The file changed upstream or the card is wrong: check the card's weights.sha256."
            ) from None
        raise FetchError(f"{url}: download failed: {err}\nFix: {fix}.") from None
    except OSError as err:
        raise FetchError(f"{url}: download failed: {err}\nFix: {fix}.") from None
    finally:
        for tmp in folder.glob(f"{target.name}.*.partial"):
            tmp.unlink(missing_ok=True)
    return target


def _verify(path: Path, sha256: str, origin: str, *, root: str | Path) -> None:
    """Check ``path`` against ``sha256``; on a mismatch remove it, but only if it lies inside ``root``.

    ``path`` may be a link (a Hub snapshot entry points at its blob): the link and the file it
    resolves to are removed when both are inside ``root``; a file outside is never touched.
    """
    actual = sha256_file(path)
    if actual != sha256:
        base = Path(root).resolve()
        real = Path(path).resolve()
        inside = real == base or real.is_relative_to(base)
        if inside:
            real.unlink(missing_ok=True)
            if Path(path).is_symlink():
                Path(path).unlink(missing_ok=True)
        what = "the file was removed" if inside else f"it resolves to {real}, outside {base}, so it was left in place"
        raise ChecksumError(
            f"{path}: sha256 {actual} does not match the pinned {sha256} (from {origin}); {what}.\n"
            "Run `rftbench zoo fetch` again; if it keeps failing, the card's weights.sha256 or the upstream file is wrong."
        )


# ---------------------------------------------------------------------------------- cards


def weights_file(card: RepresentationCard, *, default_filename: str | None = None, record: bool = False) -> Path:
    """The verified local file of a card's weights (downloading it unless offline).

    Hub weights (``weights.hub_id``) are read at the card's revision, else at the revision
    recorded in the lock file, else at ``main``; URL weights (``weights.url``) are checked
    against the card's sha256, else the recorded one. With ``record=True`` (``zoo fetch``)
    the resolved revision / sha256 is written to the lock file.
    """
    weights = card.weights
    pin = pin_of(card)
    if weights.hub_id:
        filename = weights.filename or default_filename
        if filename:
            try:
                filename = str(PurePosixPath(check_relative(filename, "weights.filename")))
            except PathEscapeError as err:
                raise FetchError(f"representation {card.id!r}: {err}") from None
        if not filename:
            raise FetchError(f"representation {card.id!r}: weights.filename is needed for hub_id {weights.hub_id!r}")
        path = hub_file(weights.hub_id, filename, revision=pin["revision"], card_id=card.id)
        revision = revision_of(path)
        if pin["sha256"]:
            _verify(Path(path), pin["sha256"], f"{weights.hub_id}/{filename}", root=_hub_root())
        if record:
            sha = pin["sha256"] or sha256_file(path)
            record_pin(card.id, revision=revision, sha256=sha, file=str(path))
        return path
    if weights.url:
        filename = weights.filename or PurePosixPath(weights.url.split("?")[0].split("#")[0]).name or f"{card.id}.bin"
        if filename in (".", ".."):
            filename = f"{card.id}.bin"
        path = url_file(weights.url, filename=filename, sha256=pin["sha256"], folder=weights_dir() / card.id,
                        root=weights_dir(), card_id=card.id)
        if record or not pin["sha256"]:
            record_pin(card.id, sha256=pin["sha256"] or sha256_file(path), url=weights.url, file=str(path))
        return path
    raise FetchError(f"representation {card.id!r} has no downloadable weights (weights.hub_id or weights.url)")


#: The weights file each built-in architecture reads when a card names none, and the other
#: files it needs from the same Hub snapshot.
DEFAULT_FILES: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "timm": ("model.safetensors", ()),
    "open_clip": ("open_clip_pytorch_model.bin", ()),
    "hf": ("model.safetensors", ("config.json",)),
    "url": (None, ()),
}


def fetch_representation(card: RepresentationCard) -> dict[str, Any]:
    """Download (or find in the cache) and verify a card's weights; record the pin in the lock file.

    :return: ``{"id", "file", "revision", "sha256"}`` as recorded.
    """
    default, extra = DEFAULT_FILES.get(card.source, (None, ()))
    if card.weights.hub_id:
        for name in extra:
            hub_file(card.weights.hub_id, name, revision=pin_of(card)["revision"], card_id=card.id)
    path = weights_file(card, default_filename=default, record=True)
    pin = read_lock().get(card.id, {})
    return {"id": card.id, "file": str(path), "revision": pin.get("revision"), "sha256": pin.get("sha256")}


__all__ = [
    "DEFAULT_FILES",
    "fetch_representation",
    "ChecksumError",
    "FetchError",
    "hub_cache",
    "hub_file",
    "hub_offline",
    "lock_path",
    "pin_of",
    "read_lock",
    "record_pin",
    "revision_of",
    "sha256_file",
    "url_file",
    "weights_dir",
    "weights_file",
]
