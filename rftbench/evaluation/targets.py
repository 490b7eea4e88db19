"""What ``rftbench eval TARGET`` evaluates: a run folder, a checkpoint, or a representation with a head."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..errors import ConfigError, UnknownNameError, close_matches
from ..plugins import PluginManager, get_manager
from ..yamlfile import read_mapping
from .evaluate import EvaluationError

RUN_MODEL_INFO = "model.json"
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


@dataclass
class Target:
    """A loaded target: the classifier, its test split, where results go by default, and what it is."""

    model: nn.Module
    test: Dataset
    kind: str
    info: dict[str, Any] = field(default_factory=dict)
    default_output: Path | None = None


def _test_split(representation: str, dataset: str, root: str | None, manager: PluginManager) -> Dataset:
    from ..data import Transformed, load_splits, make_transform

    rep = manager.get("representation", representation)
    card = manager.get("dataset", dataset)
    splits = load_splits(card, root=root, manager=manager)
    return Transformed(splits["test"], make_transform(rep, card, train=False))


def _model_info(path: Path) -> dict[str, Any]:
    from ..runner import read_model_info

    return read_model_info(path)


def _run_folder(path: Path, dataset: str | None, data_root: str | None, device: str, manager: PluginManager) -> Target:
    from ..runner import load_model

    info = _model_info(path / RUN_MODEL_INFO)
    config: dict[str, Any] = {}
    if (path / "config.yaml").is_file():
        config = read_mapping(path / "config.yaml", ConfigError, "a run config", empty_ok=True)
    dataset = dataset or config.get("dataset")
    if not dataset:
        raise ConfigError(f"{path}: the run's config.yaml names no dataset; pass --dataset")
    from ..plugins import missing_plugin_hint, record_provenance

    model = load_model(path, device=device, manager=manager)
    with missing_plugin_hint(record_provenance(path)):
        test = _test_split(info["representation"], dataset, data_root or config.get("data_root"), manager)
    return Target(model, test, "run", {"run_dir": str(path), "representation": info["representation"], "dataset": dataset,
                                       "config_hash": info.get("config_hash")}, default_output=path / "eval")


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise EvaluationError(f"{path}: not a state dict of tensors (got {type(state).__name__})")
    return state


def _classifier(representation: str, dataset: str, manager: PluginManager, *, pretrained: bool) -> nn.Module:
    from ..model import build_classifier

    card = manager.get("dataset", dataset)
    return build_classifier(representation, card.num_classes, pretrained=pretrained, manager=manager)


def _need(value: str | None, option: str, what: str) -> str:
    if not value:
        raise ConfigError(f"{what}: pass {option}")
    return value


def load_target(
    target: str,
    *,
    dataset: str | None = None,
    representation: str | None = None,
    head: str | Path | None = None,
    data_root: str | None = None,
    device: str = "cpu",
    manager: PluginManager | None = None,
) -> Target:
    """Load ``target``: a run folder (or its ``.json`` record), a weights file, or a representation id with ``head``.

    - run folder: the model of ``rftbench.load_model``, the test split of its config's dataset;
    - weights file (``.safetensors``/``.pt``): a whole classifier's state dict, for ``representation``
      and ``dataset`` (taken from a ``model.json`` beside it when there is one);
    - representation id: its pretrained backbone and the linear ``head`` file (``weight``/``bias`` or
      ``head.weight``/``head.bias``); a representation has no head for a downstream dataset otherwise.
    """
    from ..engine.hardware import parse_device

    device = str(parse_device(device))  # a bad device is a named error before anything loads
    manager = manager or get_manager()
    path = Path(target)
    if path.suffix == ".json" and path.is_file():
        path = path.with_suffix("")
    if path.is_dir():
        if (path / RUN_MODEL_INFO).is_file():
            return _run_folder(path, dataset, data_root, device, manager)
        raise EvaluationError(f"{path}: not a finished run folder (no {RUN_MODEL_INFO}); pass runs/<hash>, a weights file, or a representation id with --head")
    if path.is_file():
        if path.suffix not in WEIGHT_SUFFIXES:
            raise EvaluationError(f"{path}: not a classifier checkpoint (expected {', '.join(WEIGHT_SUFFIXES)}, a run folder, or a representation id)")
        beside = path.parent / RUN_MODEL_INFO
        if beside.is_file() and representation is None:
            info = _model_info(beside)
            representation = info["representation"]
            if dataset is None and (path.parent / "config.yaml").is_file():
                dataset = read_mapping(path.parent / "config.yaml", ConfigError, "a run config", empty_ok=True).get("dataset")
        representation = _need(representation, "--representation", f"{path}: which representation do these weights belong to?")
        dataset = _need(dataset, "--dataset", f"{path}: which dataset is this classifier for?")
        model = _classifier(representation, dataset, manager, pretrained=False)
        if beside.is_file():  # a run's weights: the layers its protocol added (LoRA, adapters) first
            from ..runner import add_protocol_layers

            add_protocol_layers(model, _model_info(beside), manager)
        missing, unexpected = model.load_state_dict(_load_state(path), strict=False)
        if missing or unexpected:
            raise EvaluationError(
                f"{path}: not a classifier of {representation!r} with a {dataset!r} head "
                f"(missing: {', '.join(missing[:5]) or '-'}; unexpected: {', '.join(unexpected[:5]) or '-'})"
            )
        test = _test_split(representation, dataset, data_root, manager)
        return Target(model.to(device).eval(), test, "checkpoint", {"checkpoint": str(path), "representation": representation, "dataset": dataset})
    if target in manager.names("representation") or target in getattr(manager, "_aliases", {}).get("representation", {}):
        dataset = _need(dataset, "--dataset", f"representation {target!r}: evaluate it on which dataset?")
        if head is None:
            raise EvaluationError(
                f"representation {target!r} is not a classifier: it has no head for {dataset!r}. Pass --head FILE "
                "(a linear head's weight and bias), or evaluate a run folder or a checkpoint"
            )
        model = _classifier(target, dataset, manager, pretrained=True)
        state = {k.removeprefix("head."): v for k, v in _load_state(Path(head)).items()}
        try:
            model.head.load_state_dict(state)
        except RuntimeError as err:
            raise EvaluationError(f"{head}: not a linear head for {target!r} on {dataset!r}: {err}") from None
        test = _test_split(target, dataset, data_root, manager)
        return Target(model.to(device).eval(), test, "representation", {"representation": target, "head": str(head), "dataset": dataset})
    hint = close_matches(target, manager.names("representation"))
    raise UnknownNameError(
        "evaluation target", target, [],
        hint=("Did you mean the representation: " + ", ".join(hint) + "?\n" if hint else "")
        + "A target is a run folder (runs/<hash>), its record (runs/<hash>.json), a weights file, or a representation id with --head.",
    )
