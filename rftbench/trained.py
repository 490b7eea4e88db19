"""A finished run's model: ``model.json`` (what rebuilds it) and ``load_model(run_dir)``.

Below :mod:`rftbench.runner` and :mod:`rftbench.evaluation` (which evaluates run folders), so
neither needs the other to load a trained classifier.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from .cards import format_validation_error
from .engine import load_weights
from .errors import RftbenchError
from .model import Classifier, build_classifier
from .plugins import PluginManager, get_manager

MODEL_FILE = "model.safetensors"
MODEL_INFO = "model.json"


def read_model_info(path: str | Path) -> dict[str, Any]:
    """A run folder's ``model.json``, checked: ``representation`` (str), ``num_classes`` (int ≥ 1), ``sha256``."""
    path = Path(path)
    fix = "the run folder is damaged: run the config again with --rerun"
    try:
        info = json.loads(path.read_bytes())
    except (OSError, ValueError) as err:  # ValueError: bad JSON or not UTF-8
        raise RftbenchError(f"{path}: unreadable ({err}); {fix}") from None
    if not isinstance(info, dict):
        raise RftbenchError(f"{path}: expected a JSON object, got {type(info).__name__}; {fix}")
    rep, classes, sha = info.get("representation"), info.get("num_classes"), info.get("sha256")
    if not isinstance(rep, str) or not isinstance(classes, int) or isinstance(classes, bool) or classes < 1 \
            or not (sha is None or isinstance(sha, str)):
        raise RftbenchError(f"{path}: needs representation (a string), num_classes (an integer ≥ 1) and sha256; {fix}")
    protocol = info.get("protocol")
    if protocol is not None and not (isinstance(protocol, dict) and isinstance(protocol.get("name"), str)):
        raise RftbenchError(f"{path}: protocol must be a mapping with a name (the protocol that added layers); {fix}")
    return info


def build_trained_classifier(info: dict[str, Any], manager: PluginManager | None = None) -> Classifier:
    """The untrained classifier a run's ``model.json`` describes, with the layers its protocol added (LoRA, adapters).

    ``info`` is :func:`read_model_info`'s; the result takes the run's ``model.safetensors`` as it is.
    """
    manager = manager or get_manager()
    model = build_classifier(info["representation"], info["num_classes"], pretrained=False, manager=manager)
    add_protocol_layers(model, info, manager)
    return model


def add_protocol_layers(model: nn.Module, info: dict[str, Any], manager: PluginManager | None = None) -> None:
    """Add the layers the protocol ``model.json`` records (LoRA, adapters) to a freshly built classifier; none: nothing."""
    from .engine import prepare_model

    protocol = info.get("protocol")
    if protocol is None:
        return
    manager = manager or get_manager()
    params = {k: v for k, v in protocol.items() if k != "name"}
    try:
        built = manager.get("protocol", protocol["name"]).build(**params)
    except ValidationError as err:
        raise RftbenchError(f"model.json: protocol {protocol['name']!r}: {format_validation_error(err)}") from None
    prepare_model(model, built)


def load_model(run_dir: str | Path, *, device: str | torch.device = "cpu", manager: PluginManager | None = None) -> Classifier:
    """The trained classifier of a run (an ``nn.Module`` in eval mode taking [0, 1] images).

    ``run_dir`` is the run folder (``runs/<hash>``) or its result record (``runs/<hash>.json``).
    A model trained with a protocol that adds layers (``lora``, ``lp-lora``, ``adapter``, ``peft``)
    is returned with them, unmerged: the same modules and weights as at the end of training.
    """
    from .engine.hardware import parse_device

    device = parse_device(device)  # a bad device is a named error before the run is read
    path = Path(run_dir)
    if path.suffix == ".json" and path.is_file():
        path = path.with_suffix("")
    info_path = path / MODEL_INFO
    if not info_path.is_file():
        raise RftbenchError(f"{path}: not a finished run folder (no {MODEL_INFO}); pass runs/<hash> or runs/<hash>.json")
    info = read_model_info(info_path)
    from .plugins import missing_plugin_hint, record_provenance

    with missing_plugin_hint(record_provenance(path)):
        model = build_trained_classifier(info, manager)
    load_weights(model, path / MODEL_FILE, sha256=info.get("sha256"))
    return model.to(device).eval()


__all__ = ["MODEL_FILE", "MODEL_INFO", "add_protocol_layers", "build_trained_classifier", "load_model", "read_model_info"]
