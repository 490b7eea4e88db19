"""Zoo cards: validation with errors naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rftbench.cards import DatasetCard, RepresentationCard, load_card, load_cards
from rftbench.errors import CardError
from tests.plugins import bad_card, cards

GOOD = {
    "id": "tinynet.in1k",
    "source": "timm",
    "model": "tinynet",
    "family": "convolutional",
    "size": "small",
    "params_m": 1.5,
    "pretraining": {"strategy": "supervised", "data": "in1k"},
    "input": {"resolution": 224},
    "provenance": {"license": "apache-2.0"},
}


def write(tmp_path: Path, data: dict, name: str | None = None) -> Path:
    path = tmp_path / f"{name or data['id']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_good_card_loads_with_defaults(tmp_path):
    card = load_card(write(tmp_path, GOOD), "representation")
    assert isinstance(card, RepresentationCard)
    assert card.input.mean == (0.485, 0.456, 0.406)
    assert card.flat()["pretraining.strategy"] == "supervised"


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"family": "transformer"}, "family: Input should be 'convolutional', 'attention' or 'hybrid'"),
        ({"input": {"resolution": 4}}, "input.resolution: Input should be greater than or equal to 8"),
        ({"input": {"resolution": 224, "std": [0.2, 0, 0.2]}}, "input.std.1: Input should be greater than 0"),
        ({"pretraining": {"strategy": "magic", "data": "in1k"}}, "pretraining.strategy: Input should be"),
        ({"weights": {"url": "https://x/y.pth"}}, "weights: a weights.url needs weights.sha256"),
        ({"weights": {"revision": "main"}}, "weights.revision: String should match pattern"),
        ({"params_m": -1}, "params_m: Input should be greater than 0"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_card_names_file_and_field(tmp_path, change, expected):
    path = write(tmp_path, {**GOOD, **change})
    with pytest.raises(CardError) as info:
        load_card(path, "representation")
    message = str(info.value)
    assert message.startswith(f"{path}: invalid representation card:")
    assert expected in message


def test_missing_field(tmp_path):
    data = dict(GOOD)
    del data["provenance"]
    with pytest.raises(CardError, match="provenance: Field required"):
        load_card(write(tmp_path, data), "representation")


def test_id_must_match_file_name(tmp_path):
    path = write(tmp_path, GOOD, name="other")
    with pytest.raises(CardError, match=r"id 'tinynet.in1k' must match its file name \(tinynet.in1k.yaml\)"):
        load_card(path, "representation")


def test_not_yaml_or_not_a_mapping(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("id: [\n")
    with pytest.raises(CardError, match="x.yaml: not valid YAML"):
        load_card(path, "representation")
    path.write_text("- 1\n")
    with pytest.raises(CardError, match="must be a YAML mapping, got list"):
        load_card(path, "representation")


def test_load_cards_folder(tmp_path):
    write(tmp_path, GOOD)
    write(tmp_path, {**GOOD, "id": "tinynet.in22k"})
    assert [c.id for c in load_cards(tmp_path, "representation")] == ["tinynet.in1k", "tinynet.in22k"]
    with pytest.raises(CardError, match="does not exist"):
        load_cards(tmp_path / "nope", "representation")


def test_dataset_card_needs_train_and_test():
    with pytest.raises(Exception, match=r"splits must define \['test'\]"):
        DatasetCard(id="d", source="offline", num_classes=3, splits={"train": {}}, provenance={"license": "x"})


def test_plugin_shipped_bad_card_is_reported_with_plugin_and_file(fresh_manager):
    fresh_manager.register(bad_card, "badcards")
    fresh_manager.register(cards, "cards")
    assert fresh_manager.names("representation") == ["tinynet_a.in1k", "tinynet_b.in22k"]
    (problem,) = fresh_manager.problems
    assert problem.startswith("plugin 'badcards': ")
    assert "bad_resolution.yaml: invalid representation card" in problem
    assert "input.resolution: Input should be greater than or equal to 8 (got 4)" in problem
