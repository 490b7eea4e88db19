"""rftbench: a plugin-based benchmark for robust fine-tuning of pretrained image classifiers.

The public API is what this module exports; everything else is machinery.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .cards import DatasetCard, RepresentationCard, load_card, load_cards
from .config import Component, RunConfig, load_config, resolve_config
from .errors import CardError, ConfigError, DuplicateNameError, PluginError, RftbenchError, UnknownNameError
from .hookspecs import hookimpl
from .plugins import PluginManager, get_manager, set_manager
from .specs import (
    ArchitectureParams,
    ArchitectureSpec,
    AttackSpec,
    DatasetSourceSpec,
    Epsilon,
    ExecutorSpec,
    LossSpec,
    MetricSpec,
    NoParams,
    Params,
    ProtocolSpec,
    PublisherSpec,
    ScheduleSpec,
    ThreatModelSpec,
)
from .zoo import get_dataset, get_representation, list_cards

#: Public names whose modules import torch: loaded on first access, so `import rftbench` stays light.
_LAZY = {"run": "runner", "load_model": "trained", "ResultRecord": "results", "read_record": "results", "evaluate": "evaluation",
         "compare": "comparison", "compare_many": "comparison", "group_runs": "groups", "load_group": "groups",
         "make_splits": "splits", "Split": "splits", "DatasetError": "errors"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rftbench' has no attribute {name!r}")


try:
    __version__ = version("rftbench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "ArchitectureParams",
    "ArchitectureSpec",
    "DatasetError",
    "Split",
    "make_splits",
    "AttackSpec",
    "CardError",
    "Component",
    "ConfigError",
    "DatasetCard",
    "DatasetSourceSpec",
    "DuplicateNameError",
    "Epsilon",
    "ExecutorSpec",
    "LossSpec",
    "MetricSpec",
    "NoParams",
    "Params",
    "PluginError",
    "PluginManager",
    "ProtocolSpec",
    "PublisherSpec",
    "RepresentationCard",
    "ResultRecord",
    "RftbenchError",
    "RunConfig",
    "ScheduleSpec",
    "ThreatModelSpec",
    "UnknownNameError",
    "__version__",
    "compare",
    "compare_many",
    "evaluate",
    "get_dataset",
    "get_manager",
    "get_representation",
    "group_runs",
    "hookimpl",
    "list_cards",
    "load_card",
    "load_cards",
    "load_config",
    "load_group",
    "load_model",
    "read_record",
    "resolve_config",
    "run",
    "set_manager",
]
