"""Checkpoints: model weights in safetensors, training state beside them, verified by sha256 on load.

Layout, inside a run folder::

    checkpoints/LATEST                  name of the newest complete checkpoint (replaced atomically)
    checkpoints/e0003-s000000/
        model.safetensors               the model's weights
        state.pt                        optimiser, GradScaler, RNG and trainer state (tensors and plain data)
        manifest.json                   epoch, step, config hash and the sha256 of both files

A checkpoint is written into its own folder, its manifest last; only then does ``LATEST``
move to it and the previous folder go. A crash at any moment leaves the previous checkpoint
whole. On load every file's sha256 is checked against the manifest: a mismatch raises a
:class:`CheckpointError` naming the file, never loads it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import RftbenchError
from .._fs import atomic_write, atomic_write_text, file_mode, sha256_file

FORMAT = 1


class CheckpointError(RftbenchError):
    """A checkpoint is missing, corrupt or from another configuration."""




def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as contiguous CPU tensors (what safetensors stores)."""
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def save_weights(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> str:
    """Write the model's weights as safetensors (via a temporary file); returns their sha256."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file(model_tensors(model), str(tmp), metadata=metadata)
        os.chmod(tmp, file_mode())  # safetensors creates 0600: give weights the permissions records get
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return sha256_file(path)


def load_weights(model: nn.Module, path: str | Path, *, sha256: str | None = None) -> None:
    """Load safetensors weights into ``model`` (checking ``sha256`` first when given)."""
    path = Path(path)
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            raise CheckpointError(f"{path}: checksum mismatch (sha256 {actual[:12]}…, expected {sha256[:12]}…): the file is corrupt")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    state = load_file(str(path), device=str(device))
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{path}: weights do not fit the model (missing: {', '.join(missing[:5]) or '-'}; "
            f"unexpected: {', '.join(unexpected[:5]) or '-'}; shapes: {', '.join(shapes[:3]) or '-'})"
        )
    model.load_state_dict(state)


@dataclass
class Checkpoint:
    """A verified checkpoint: where it is, its position in training and its loaded state."""

    path: Path
    epoch: int
    step: int
    state: dict[str, Any]


class CheckpointStore:
    """The checkpoints of one run folder."""

    def __init__(self, run_dir: str | Path, config_hash: str):
        self.root = Path(run_dir) / "checkpoints"
        self.config_hash = config_hash

    @property
    def latest_pointer(self) -> Path:
        return self.root / "LATEST"

    def exists(self) -> bool:
        return self.latest_pointer.is_file()

    def save(self, model: nn.Module, state: dict[str, Any], *, epoch: int, step: int, extra: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint at (``epoch``, ``step``) — the position training resumes from.

        ``extra`` (JSON-able) is written into the manifest too, for people and tools reading it
        (the in-training curves); resuming reads the sha256-checked ``state.pt``, never these.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"e{epoch:04d}-s{step:06d}"
        folder = self.root / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        try:  # a failed save leaves nothing behind (no temporary file, no folder without a manifest)
            weights = save_weights(model, folder / "model.safetensors", metadata={"config_hash": self.config_hash})
            atomic_write(folder / "state.pt", lambda handle: torch.save(state, handle), binary=True)
            manifest = {
                "format": FORMAT,
                "config_hash": self.config_hash,
                "epoch": epoch,
                "step": step,
                "files": {"model.safetensors": weights, "state.pt": sha256_file(folder / "state.pt")},
            }
            if extra:
                manifest.update({k: v for k, v in extra.items() if k not in manifest})
            atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=2))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        previous = self.latest_pointer.read_text().strip() if self.exists() else None
        atomic_write_text(self.latest_pointer, name)
        if previous and previous != name:
            shutil.rmtree(self.root / previous, ignore_errors=True)
        return folder

    def load(self, model: nn.Module) -> Checkpoint:
        """Verify and load the latest checkpoint into ``model``; returns its state (on CPU)."""
        if not self.exists():
            raise CheckpointError(f"{self.root}: no checkpoint to resume from")
        name = self.latest_pointer.read_text().strip()
        folder = self.root / name
        fix = f"delete {self.root} (or run with --restart) to train from scratch"
        if not name or "/" in name or name in (".", ".."):
            raise CheckpointError(f"{self.latest_pointer}: names no checkpoint folder ({name!r}); {fix}")
        try:
            manifest = json.loads((folder / "manifest.json").read_bytes())
        except (OSError, ValueError) as err:  # ValueError: bad JSON or not UTF-8
            raise CheckpointError(f"{folder}: the checkpoint manifest is missing or unreadable ({err}); {fix}") from None
        manifest = _checked_manifest(manifest, folder, fix)
        if manifest["config_hash"] != self.config_hash:
            raise CheckpointError(
                f"{folder}: this checkpoint belongs to config {manifest.get('config_hash')!r}, not {self.config_hash!r}; {fix}"
            )
        for fname, expected in manifest["files"].items():
            path = folder / fname
            if not path.is_file():
                raise CheckpointError(f"{path}: missing from the checkpoint; {fix}")
            actual = sha256_file(path)
            if actual != expected:
                raise CheckpointError(
                    f"{path}: checksum mismatch (sha256 {actual[:12]}…, manifest says {expected[:12]}…): "
                    f"the checkpoint is corrupt and was not used; {fix}"
                )
        load_weights(model, folder / "model.safetensors")
        state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
        return Checkpoint(folder, int(manifest["epoch"]), int(manifest["step"]), state)

    def clear(self) -> None:
        """Remove every checkpoint of the run."""
        shutil.rmtree(self.root, ignore_errors=True)


#: The files every manifest must list with their sha256 (nothing is loaded unchecked).
REQUIRED_FILES = ("model.safetensors", "state.pt")


def _checked_manifest(manifest: Any, folder: Path, fix: str) -> dict[str, Any]:
    """The manifest if it has the expected shape: epoch and step (ints ≥ 0), config_hash, a sha256 per required file."""
    bad = f"{folder}/manifest.json: not a checkpoint manifest"
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{bad} (a JSON object is expected, got {type(manifest).__name__}); {fix}")
    for key in ("epoch", "step"):
        value = manifest.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CheckpointError(f"{bad} ({key} must be a whole number ≥ 0, got {value!r}); {fix}")
    files = manifest.get("files")
    if not isinstance(files, dict) or any(not isinstance(files.get(f), str) for f in REQUIRED_FILES):
        raise CheckpointError(f"{bad} (files must give the sha256 of {' and '.join(REQUIRED_FILES)}); {fix}")
    if set(files) - set(REQUIRED_FILES):
        raise CheckpointError(f"{bad} (unexpected files {sorted(set(files) - set(REQUIRED_FILES))}); {fix}")
    return manifest
