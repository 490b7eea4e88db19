"""Pretraining recipes of the offline backbones: run configs whose trained backbone becomes a representation.

A recipe is an ordinary :class:`~rftbench.config.RunConfig` (from a random-init ``*.scratch``
card on the generated ``shapes`` or ``scenes`` dataset; the scenes zoo's robust recipes start
from the standard backbone of their architecture), trained by the same engine as every
fine-tuning run, in fp32 and the contiguous layout (the settings closest to machine-independent).

The weights the recipes built are **shipped** with rftbench (``rftbench_plugins/weights/``, pinned
by sha256 in the cards), so every machine starts from the same backbone at once. The recipes
stay the documented way to rebuild and check them: ``rftbench zoo build NAME`` runs the recipe
(its result record kept under ``<cache>/recipes/runs/``), saves the backbone as
``<cache>/recipes/<card id>-<config hash>.safetensors`` with a sidecar JSON holding its sha256,
and says whether it reproduces the shipped file. A card whose ``weights`` name a recipe but no
shipped file is built this way on first use. A file lock serialises concurrent builds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from rftbench._fs import atomic_write_text
from rftbench.cards import RepresentationCard
from rftbench.errors import CardError, RftbenchError
from rftbench.paths import PathEscapeError, cache_dir, confined

log = logging.getLogger("rftbench")

_COMMON: dict[str, Any] = {
    "representation": "mini_resnet.scratch",
    "dataset": "shapes",
    "protocol": "fft",
    "batch_size": 128,
    "optimizer": {"name": "adamw", "lr_backbone": 5e-3, "lr_head": 5e-3, "weight_decay_backbone": 5e-4, "weight_decay_head": 5e-4},
    "lr_schedule": {"name": "warmup-cosine", "warmup": "10%"},
    "seed": 0,
    "precision": "fp32",
    "channels_last": "off",
}

#: Recipe name → the run config that pretrains it.
RECIPES: dict[str, dict[str, Any]] = {
    "shapes_standard": {**_COMMON, "loss": "ce", "epochs": 8, "evaluation": [{"name": "linf", "eps": "2/255", "attack": "pgd", "steps": 5}]},
    "shapes_robust": {
        **_COMMON,
        "loss": "classic_at",
        "epochs": 8,
        "threat": {"name": "linf", "eps": "8/255", "attack": "pgd", "steps": 3},
        "eps_schedule": {"name": "linear-warmup", "warmup": "25%"},
        "evaluation": [{"name": "linf", "eps": "2/255", "attack": "pgd", "steps": 5}],
    },
}


# ------------------------------------------------------------------ the scenes zoo (two families × two sizes)
#
# Standard: cross-entropy from random init on ``scenes`` (64 classes). Robust: Classic AT (PGD-2,
# L∞ 4/255, ε warmed up over the first quarter) started from the standard backbone of the same
# architecture (its shipped, sha256-pinned weights), the way robust models are commonly obtained
# from a standard checkpoint when compute is short. Budgets keep every recipe under 10 minutes
# on one thread of a 2-core CPU (see the README's zoo table for the measured times).

_SCENES: dict[str, Any] = {**_COMMON, "dataset": "scenes", "evaluation": [{"name": "linf", "eps": "2/255", "attack": "pgd", "steps": 5}],
                           "n_eval": 500}
_CONVNEXT_OPTIMIZER = {**_COMMON["optimizer"], "lr_backbone": 2e-3, "lr_head": 2e-3, "weight_decay_backbone": 0.05}
_VIT_OPTIMIZER = {**_COMMON["optimizer"], "lr_backbone": 1e-3, "lr_head": 1e-3, "weight_decay_backbone": 0.05}
_ROBUST: dict[str, Any] = {
    "loss": "classic_at",
    "threat": {"name": "linf", "eps": "4/255", "attack": "pgd", "steps": 2},
    "eps_schedule": {"name": "linear-warmup", "warmup": "25%"},
    "evaluation": [{"name": "linf", "eps": "4/255", "attack": "pgd", "steps": 5}],
}
#: Architecture card prefix → (standard epochs, robust epochs, optimizer override or None).
SCENES_BUDGETS: dict[str, tuple[int, int, dict[str, Any] | None]] = {
    "mini_resnet": (3, 1, None),
    "mini_resnet_wide": (2, 1, None),
    "mini_convnext": (20, 1, _CONVNEXT_OPTIMIZER),
    "mini_convnext_wide": (11, 1, _CONVNEXT_OPTIMIZER),
    "mini_vit": (16, 3, _VIT_OPTIMIZER),  # one robust epoch left the ViTs barely robust (3.4% / 6.4% at 4/255 on scenes)
    "mini_vit_wide": (8, 3, _VIT_OPTIMIZER),
}
for _arch, (_std, _rob, _opt) in SCENES_BUDGETS.items():
    _base = {**_SCENES, **({"optimizer": _opt} if _opt else {})}
    RECIPES[f"{_arch}.scenes_standard"] = {**_base, "representation": f"{_arch}.scratch", "loss": "ce", "epochs": _std}
    _slow = {**_base["optimizer"], "lr_backbone": _base["optimizer"]["lr_backbone"] * 0.4}  # from a trained init: a gentler lr
    RECIPES[f"{_arch}.scenes_robust"] = {**_base, **_ROBUST, "optimizer": _slow, "representation": f"{_arch}.scenes_standard",
                                         "epochs": _rob}


def recipe_config(name: str, output_dir: Path) -> Any:
    """The resolved :class:`RunConfig` of recipe ``name``, writing under ``output_dir``."""
    from rftbench.config import RunConfig, resolve_config

    if name not in RECIPES:
        raise CardError(f"unknown pretraining recipe {name!r}; recipes: {', '.join(sorted(RECIPES))}")
    return resolve_config(RunConfig.model_validate({**RECIPES[name], "output_dir": str(output_dir)}))


def recipes_dir() -> Path:
    path = cache_dir() / "recipes"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def weights_file(card: RepresentationCard) -> Path:
    """Where the card's recipe weights live (named by the recipe config's hash)."""
    config = recipe_config(card.weights.recipe, recipes_dir() / "runs")
    return recipes_dir() / f"{card.id}-{config.config_hash()}.safetensors"


def weights_metadata(card_id: str, recipe: str, record_id: str) -> dict[str, str]:
    """The weights file's metadata: one key, so that the file's bytes (hence its sha256) depend only on its content.

    (safetensors writes several metadata keys in a hash map's order, which changes between processes.)
    """
    return {"rftbench": json.dumps({"card": card_id, "recipe": recipe, "record": record_id}, sort_keys=True)}


def build_weights(card: RepresentationCard, path: Path, *, rerun: bool = False) -> dict[str, Any]:
    """Run the card's recipe and save the trained backbone to ``path``; returns the sidecar info.

    ``rerun``: train again even if the recipe's result record is already in the cache.
    """
    from rftbench.engine import sha256_file
    from rftbench.engine.checkpoint import save_weights
    from rftbench.runner import load_model, run

    name = card.weights.recipe
    config = recipe_config(name, recipes_dir() / "runs")
    log.warning("building the pretrained weights of %s with recipe %r (first use; cached in %s)", card.id, name, path.parent)
    record = run(config, progress=sys.stderr.isatty(), rerun=rerun)
    model = load_model(Path(record.run_dir))
    # the one weights writer: a temporary file renamed into place, 0666 less the umask (safetensors alone makes 0600)
    save_weights(model.backbone, path, metadata=weights_metadata(card.id, name, record.id))
    threats = record.metrics.get("threats", {})
    info = {
        "card": card.id,
        "recipe": name,
        "config_hash": config.config_hash(),
        "dataset": config.dataset,
        "sha256": sha256_file(path),
        "clean_acc": record.metrics.get("clean_acc"),
        "robust_acc": {k: v.get("acc") for k, v in threats.items()},
        "record": str(Path(config.output_dir) / f"{record.id}.json"),
    }
    atomic_write_text(path.with_suffix(".json"), json.dumps(info, indent=2))
    return info


def rebuild(card: RepresentationCard) -> dict[str, Any]:
    """Run ``card``'s recipe again and compare the result with the shipped weights (``rftbench zoo build``).

    Returns the built file's sidecar info plus ``shipped_sha256``, ``reproduces`` (bit for bit),
    and ``max_abs_diff`` / ``max_rel_diff`` over the tensors when both exist.
    """
    if not card.weights.recipe:
        raise CardError(f"representation card {card.id!r} has no pretraining recipe (weights.recipe); nothing to build")
    path = weights_file(card)
    with _locked(path.with_suffix(".lock")):
        info = build_weights(card, path, rerun=True)
    info["file"] = str(path)
    shipped = shipped_weights_file(card)
    info["shipped_sha256"] = card.weights.sha256
    info["reproduces"] = bool(card.weights.sha256) and info["sha256"] == card.weights.sha256
    if shipped is not None and shipped.is_file():
        built, ours = load_file(str(path)), load_file(str(shipped))
        if built.keys() == ours.keys():
            info["max_abs_diff"] = max(float((built[k].double() - ours[k].double()).abs().max()) for k in built)
            info["max_rel_diff"] = max(
                float((built[k].double() - ours[k].double()).abs().max() / ours[k].double().abs().max().clamp_min(1e-12))
                for k in built if ours[k].is_floating_point()
            )
    return info


def shipped_weights_file(card: RepresentationCard) -> Path | None:
    """The weights file shipped for ``card`` (``weights.filename`` in ``rftbench_plugins/weights/``), or ``None``."""
    name = card.weights.filename
    if not name:
        return None
    if Path(name).name != name or name in (".", ".."):
        raise CardError(f"representation card {card.id!r}: weights.filename must be a plain file name (got {name!r})")
    try:
        return confined(SHIPPED_DIR, name, "weights.filename")  # the one helper for paths from cards (symlinks too)
    except PathEscapeError as err:
        raise CardError(f"representation card {card.id!r}: {err}") from None


SHIPPED_DIR = Path(__file__).resolve().parent / "weights"


def load_shipped(card: RepresentationCard) -> tuple[dict[str, torch.Tensor], str]:
    """The shipped weights of ``card`` after checking their sha256 against the card's pin; never loads a mismatch."""
    from rftbench.engine import sha256_file

    path = shipped_weights_file(card)
    if path is None or not path.is_file():
        raise CardError(
            f"representation card {card.id!r}: the shipped weights file {path} is missing; "
            "reinstall rftbench (pip install --force-reinstall rftbench) or rebuild them with "
            f"`rftbench zoo build {card.id}`"
        )
    actual = sha256_file(path)
    if actual != card.weights.sha256:
        raise CardError(
            f"{path}: sha256 {actual} does not match the card {card.id!r}, which pins {card.weights.sha256}; "
            "the file was not loaded. Reinstall rftbench (pip install --force-reinstall rftbench), or rebuild the "
            f"weights from their recipe with `rftbench zoo build {card.id}`"
        )
    return load_file(str(path)), actual


def pretrained_weights(card: RepresentationCard) -> tuple[dict[str, torch.Tensor], str]:
    """The backbone weights of ``card`` and their sha256: the shipped file if the card names one, else built by its recipe."""
    from rftbench.engine import sha256_file

    if card.weights.filename:
        return load_shipped(card)
    path = weights_file(card)
    with _locked(path.with_suffix(".lock")):
        sidecar = path.with_suffix(".json")
        if not path.is_file() or not sidecar.is_file():
            build_weights(card, path)
        info = json.loads(sidecar.read_text())
        actual = sha256_file(path)
        if actual != info["sha256"]:
            raise RftbenchError(
                f"{path}: checksum mismatch (sha256 {actual[:12]}…, expected {info['sha256'][:12]}…); "
                f"delete it and its .json to rebuild the weights of {card.id}"
            )
    return load_file(str(path)), actual
