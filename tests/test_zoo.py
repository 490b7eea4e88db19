"""Listing and filtering zoo cards."""

from __future__ import annotations

import pytest

from rftbench.errors import RftbenchError, UnknownNameError
from rftbench.zoo import get_representation, list_cards, parse_filters
from tests.plugins import cards


@pytest.fixture
def manager(fresh_manager):
    fresh_manager.register(cards, "cards")
    return fresh_manager


def ids(found):
    return [c.id for c in found]


def test_wildcards_and_filters(manager):
    assert ids(list_cards()) == ["tinynet_a.in1k", "tinynet_b.in22k"]
    assert ids(list_cards(pattern="*in22k")) == ["tinynet_b.in22k"]
    assert ids(list_cards(pattern="*.old")) == ["tinynet_a.in1k"]  # deprecated ids are searched too
    assert ids(list_cards(filters={"family": "attention"})) == ["tinynet_b.in22k"]
    assert ids(list_cards(filters={"pretraining": "clip"})) == ["tinynet_b.in22k"]
    assert ids(list_cards(filters={"pretraining.data": "in*", "size": "small"})) == ["tinynet_a.in1k"]
    assert ids(list_cards(filters={"size": "large"})) == []


def test_unknown_filter_key(manager):
    with pytest.raises(RftbenchError, match="Unknown filter 'famly' for representation cards. Did you mean: family"):
        list_cards(filters={"famly": "x"})


def test_parse_filters():
    assert parse_filters(["family=convolutional", "size = small"]) == {"family": "convolutional", "size": "small"}
    with pytest.raises(RftbenchError, match="must look like key=value"):
        parse_filters(["family"])


def test_unknown_representation(manager):
    with pytest.raises(UnknownNameError, match="(?s)Unknown representation 'tinynet_a'.*Did you mean: tinynet_a.in1k"):
        get_representation("tinynet_a")
