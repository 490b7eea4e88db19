"""Fabricate files in the exact on-disk layout of real sources, for offline loader tests.

Nothing here downloads: each helper writes what a real download would leave behind, so
that the code users run with internet is the code the tests run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rftbench.cards import InputConfig, Pretraining, Provenance, RepresentationCard, Weights


def hf_cache_repo(cache: Path, repo_id: str, files: dict[str, bytes | str | Path], revision: str | None = None, repo_type: str = "model") -> str:
    """Write a Hugging Face Hub cache entry (``models--org--name``) as ``hf_hub_download`` leaves it.

    Layout: ``blobs/<sha256>`` holding the bytes, ``snapshots/<revision>/<file>`` symlinks to
    the blobs, ``refs/main`` holding the revision. Returns the revision.
    """
    revision = revision or hashlib.sha1(repo_id.encode()).hexdigest()
    folder = Path(cache) / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(revision)
    snap = folder / "snapshots" / revision
    for name, content in files.items():
        data = Path(content).read_bytes() if isinstance(content, Path) else content.encode() if isinstance(content, str) else content
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(Path("..") / ".." / "blobs" / blob.name if "/" not in name else blob.resolve())
    return revision


def offline_hub(monkeypatch, cache: Path) -> None:
    """Point the Hub at ``cache`` and forbid network access (as on a cluster node)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2)


def make_card(card_id: str, source: str, model: str, *, resolution: int = 32, weights: dict | None = None, **extra: Any) -> RepresentationCard:
    """A small representation card for loader tests."""
    fields: dict[str, Any] = dict(
        id=card_id,
        source=source,
        model=model,
        family="convolutional",
        size="tiny",
        params_m=0.1,
        pretraining=Pretraining(strategy="supervised", data="test"),
        weights=Weights(**(weights or {})),
        input=InputConfig(resolution=resolution),
        provenance=Provenance(license="apache-2.0", notes="fabricated for a test"),
    )
    fields.update(extra)
    return RepresentationCard(**fields)


def timm_hub_repo(cache: Path, model: str, *, seed: int = 0, revision: str | None = None) -> tuple[Any, str]:
    """A Hub cache entry ``timm/<model>`` holding a random ``model.safetensors`` (classifier included), like timm's repos."""
    import tempfile

    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    reference = timm.create_model(model, pretrained=False).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, path)
        rev = hf_cache_repo(cache, f"timm/{model}", {"model.safetensors": path, "config.json": json_text({"architecture": model.split(".")[0]})}, revision=revision)
    return reference, rev
