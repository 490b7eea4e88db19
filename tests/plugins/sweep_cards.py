"""Representation and dataset cards for the sweep tests (zoo filters need a few families and sizes).

Registered beside ``tests.plugins.minimal``, which supplies the default config's names.
"""

from rftbench import DatasetCard, RepresentationCard, hookimpl

from .minimal import CARD


def _rep(id: str, family: str, size: str) -> RepresentationCard:
    return RepresentationCard(id=id, **{**CARD, "family": family, "size": size})


@hookimpl
def rftbench_add_representations():
    return [
        _rep("conv_small.a", "convolutional", "small"),
        _rep("conv_small.b", "convolutional", "small"),
        _rep("conv_large.a", "convolutional", "large"),
        _rep("vit_small.a", "attention", "small"),
    ]


@hookimpl
def rftbench_add_datasets():
    return [
        DatasetCard(
            id="shapes",
            source="offline",
            num_classes=4,
            splits={"train": {"rule": "generated"}, "test": {"rule": "generated"}},
            provenance={"license": "apache-2.0"},
        )
    ]
