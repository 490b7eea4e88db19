"""Pretraining recipes of the offline backbones: run configs whose trained backbone becomes a representation.

A recipe is an ordinary :class:`~rftbench.config.RunConfig` (from the random-init card
``mini_resnet.scratch``, on the generated ``shapes`` dataset), trained by the same engine as
every fine-tuning run. On first use of a card whose ``weights.recipe`` names a recipe, the run
is executed (its result record kept under ``<cache>/recipes/runs/`` as provenance), the
backbone's weights are saved as ``<cache>/recipes/<card id>-<config hash>.safetensors`` with a
sidecar JSON holding their sha256, and later uses load that file after checking the sha256.
Changing a recipe changes its hash, hence its file. A file lock serialises concurrent builds.
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
from safetensors.torch import load_file, save_file

from rftbench.cards import RepresentationCard
from rftbench.errors import CardError, RftbenchError
from rftbench.paths import cache_dir

log = logging.getLogger("rftbench")

_COMMON: dict[str, Any] = {
    "representation": "mini_resnet.scratch",
    "dataset": "shapes",
    "protocol": "fft",
    "batch_size": 128,
    "optimizer": {"name": "adamw", "lr_backbone": 5e-3, "lr_head": 5e-3, "weight_decay_backbone": 5e-4, "weight_decay_head": 5e-4},
    "lr_schedule": {"name": "warmup-cosine", "warmup": "10%"},
    "seed": 0,
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


def build_weights(card: RepresentationCard, path: Path) -> dict[str, Any]:
    """Run the card's recipe and save the trained backbone to ``path``; returns the sidecar info."""
    from rftbench.engine import sha256_file
    from rftbench.runner import load_model, run

    name = card.weights.recipe
    config = recipe_config(name, recipes_dir() / "runs")
    log.warning("building the pretrained weights of %s with recipe %r (first use; cached in %s)", card.id, name, path.parent)
    record = run(config, progress=sys.stderr.isatty())
    model = load_model(Path(record.run_dir))
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.contiguous() for k, v in model.backbone.state_dict().items()}, str(tmp),
              metadata={"card": card.id, "recipe": name, "record": record.id})
    tmp.replace(path)
    threats = record.metrics.get("threats", {})
    info = {
        "card": card.id,
        "recipe": name,
        "config_hash": config.config_hash(),
        "sha256": sha256_file(path),
        "clean_acc": record.metrics.get("clean_acc"),
        "robust_acc": {k: v.get("acc") for k, v in threats.items()},
        "record": str(Path(config.output_dir) / f"{record.id}.json"),
    }
    path.with_suffix(".json").write_text(json.dumps(info, indent=2))
    return info


def pretrained_weights(card: RepresentationCard) -> tuple[dict[str, torch.Tensor], str]:
    """The backbone weights of ``card`` (built by its recipe on first use) and their sha256."""
    from rftbench.engine import sha256_file

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
