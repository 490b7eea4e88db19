"""`rftbench zoo probe`: adversarial sensitivity of a pretrained representation on a dataset, offline."""

from __future__ import annotations

import importlib
import json

import pytest
from PIL import Image

from rftbench import hookimpl
from rftbench.cards import DatasetCard, InputConfig
from rftbench.cli import main
from rftbench.probe import probe
from rftbench_plugins import datasets, timm_source

from _fabricate import make_card, offline_hub, timm_hub_repo

MODEL = "test_vit.r160_in1k"
REP = make_card(MODEL, "timm", MODEL, weights={"hub_id": f"timm/{MODEL}"}, family="attention",
                input=InputConfig(resolution=32, mean=(0.5,) * 3, std=(0.5,) * 3), num_features=64)
DATA = DatasetCard(id="tiny-caltech", source="torchvision", args={"class": "Caltech101"}, num_classes=2,
                   splits={"train": {"rule": "stratified"}, "test": {"rule": "stratified", "fraction": 0.4}},
                   provenance={"license": "test"})


class _Cards:
    @hookimpl
    def rftbench_add_representations(self):
        return [REP]

    @hookimpl
    def rftbench_add_datasets(self):
        return [DATA]


@pytest.fixture
def setup(fresh_manager, tmp_path, monkeypatch):
    try:
        metrics = importlib.import_module("rftbench_plugins.metrics")
    except ModuleNotFoundError:
        pytest.skip("the metrics plugin (adversarial_sensitivity) is not installed")
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    for module, name in ((timm_source, "timm"), (datasets, "datasets"), (metrics, "metrics"), (_Cards(), "cards")):
        fresh_manager.register(module, name)
    timm_hub_repo(tmp_path / "hub", MODEL)
    offline_hub(monkeypatch, tmp_path / "hub")
    base = tmp_path / "data" / "caltech101" / "101_ObjectCategories"
    for c, colour in (("BACKGROUND_Google", 0), ("a", 60), ("b", 200)):
        (base / c).mkdir(parents=True)
        for i in range(1, 6):  # torchvision's Caltech101 reads image_0001.jpg, image_0002.jpg, …
            Image.new("RGB", (12, 12), (colour, i * 40, 255 - colour)).save(base / c / f"image_{i:04d}.jpg")
    return fresh_manager


def test_probe_writes_a_record_and_grows_with_the_budget(setup, tmp_path):
    small = probe(MODEL, "tiny-caltech", eps="1/255", steps=3, n=4, data_root=tmp_path / "data", output_dir=tmp_path / "runs", manager=setup)
    large = probe(MODEL, "tiny-caltech", eps="16/255", steps=3, n=4, data_root=tmp_path / "data", output_dir=tmp_path / "runs", manager=setup)
    assert 0 < small["value"] < large["value"]
    record = json.loads(open(large["path"]).read())
    assert record["representation"] == MODEL and record["dataset"] == "tiny-caltech" and record["n"] == 4
    assert record["provenance"]["weights"]["hub_id"] == f"timm/{MODEL}"
    assert "certified_share" not in record  # depends on the untrained head: left out


def test_probe_cli_and_bad_split(setup, tmp_path, capsys):
    try:
        main(["zoo", "probe", MODEL, "--dataset", "tiny-caltech", "--steps", "2", "--n", "2", "--split", "val",
              "--data-root", str(tmp_path / "data"), "--output-dir", str(tmp_path / "runs")])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "has no 'val' split" in capsys.readouterr().err
