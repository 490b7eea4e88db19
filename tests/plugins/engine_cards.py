"""Fixture plugin for the engine and run tests: a test-only micro backbone and a small digits card."""

from __future__ import annotations

import pytest

from rftbench import hookimpl
from rftbench.cards import DatasetCard, RepresentationCard

_INPUT = {"resolution": 16, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "interpolation": "bilinear"}


@hookimpl
def rftbench_add_representations():
    return [
        RepresentationCard(
            id="micro_resnet.test", source="recipe", model="micro_resnet", family="convolutional", size="tiny",
            params_m=0.002, input=_INPUT, pretraining={"strategy": "none", "data": "none"},
            provenance={"license": "Apache-2.0"},
        ),
    ]


@hookimpl
def rftbench_add_datasets():
    splits = {"train": {"rule": "stratified"}, "val": {"rule": "stratified", "fraction": 0.2}, "test": {"rule": "stratified", "fraction": 0.2}}
    return [
        DatasetCard(id="digits_small", source="offline", args={"generator": "digits", "seed": 0, "limit": 96}, num_classes=10,
                    resolution=16, splits=splits, provenance={"license": "CC-BY-4.0"}, tags=["no-hflip"]),
        # says 5 classes while the data has 10: the run must refuse it naming num_classes
        DatasetCard(id="digits_wrong_classes", source="offline", args={"generator": "digits", "limit": 64}, num_classes=5,
                    resolution=16, splits=splits, provenance={"license": "CC-BY-4.0"}),
    ]


@pytest.fixture
def engine_manager(builtins, tmp_path, monkeypatch):
    """The built-ins plus these test-only cards; rftbench's cache in ``tmp_path``.

    Test modules import it (``from tests.plugins.engine_cards import engine_manager``).
    """
    import sys

    import torch

    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "cache"))
    builtins.register(sys.modules[__name__], "engine_cards")
    # Test-size tensors gain nothing from intra-op threads, and on a shared, loaded machine
    # OpenMP barriers make them 10-50x slower: run these tests single-threaded.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield builtins
    torch.set_num_threads(threads)
