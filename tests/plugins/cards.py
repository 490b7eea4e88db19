"""Ships two valid test cards as objects and one as a folder."""

from pathlib import Path

from rftbench import RepresentationCard, hookimpl

TINY = {
    "source": "timm",
    "model": "resnet18",
    "family": "convolutional",
    "size": "small",
    "params_m": 11.7,
    "pretraining": {"strategy": "supervised", "data": "in1k", "volume": 1281167},
    "input": {"resolution": 32},
    "provenance": {"license": "apache-2.0"},
}


@hookimpl
def rftbench_add_representations():
    return [
        RepresentationCard(id="tinynet_a.in1k", aliases=["tinynet_a.old"], **TINY),
        RepresentationCard(id="tinynet_b.in22k", **{**TINY, "family": "attention", "size": "medium", "pretraining": {"strategy": "clip", "data": "laion2b"}}),
    ]
