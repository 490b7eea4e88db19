"""The model zoo: look up, list and filter the representation and dataset cards plugins contribute."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from .cards import DatasetCard, RepresentationCard
from .errors import RftbenchError, close_matches
from .plugins import PluginManager, get_manager

#: Short filter names users type, and the card field each one means.
FILTER_ALIASES = {
    "pretraining": "pretraining.strategy",
    "strategy": "pretraining.strategy",
    "data": "pretraining.data",
    "license": "provenance.license",
    "resolution": "input.resolution",
}


def get_representation(name: str, manager: PluginManager | None = None) -> RepresentationCard:
    """The representation card ``name`` (an unknown name lists close matches)."""
    return (manager or get_manager()).get("representation", name)


def get_dataset(name: str, manager: PluginManager | None = None) -> DatasetCard:
    """The dataset card ``name`` (an unknown name lists close matches)."""
    return (manager or get_manager()).get("dataset", name)


def parse_filters(pairs: list[str] | None) -> dict[str, str]:
    """``["family=convolutional", "size=small"]`` → a dict; a pair without ``=`` is an error."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RftbenchError(f"filter {pair!r} must look like key=value (e.g. family=convolutional)")
        out[key.strip()] = value.strip()
    return out


def _matches(value: Any, wanted: str) -> bool:
    if isinstance(value, list):
        return any(_matches(v, wanted) for v in value)
    return fnmatch.fnmatchcase(str(value).lower(), wanted.lower())


def list_cards(
    kind: str = "representation",
    pattern: str | None = None,
    filters: Mapping[str, str] | None = None,
    manager: PluginManager | None = None,
) -> list[Any]:
    """Cards of ``kind`` whose id matches the wildcard ``pattern`` and every ``key=value`` filter.

    Filter keys are card fields (dotted for nested ones, e.g. ``pretraining.data``) or the
    short names in :data:`FILTER_ALIASES`; values may use wildcards (``size=*m*``).
    """
    manager = manager or get_manager()
    cards = manager.items(kind)
    if not cards:
        return []
    keys = set().union(*(c.flat().keys() for c in cards))
    resolved: dict[str, str] = {}
    for key, value in (filters or {}).items():
        field = FILTER_ALIASES.get(key, key)
        if field not in keys:
            choices = sorted(keys | set(FILTER_ALIASES))
            hint = close_matches(key, choices)
            raise RftbenchError(
                f"Unknown filter {key!r} for {kind} cards."
                + (f" Did you mean: {', '.join(hint)}?" if hint else "")
                + f"\nFilter keys: {', '.join(choices)}"
            )
        resolved[field] = value
    out = []
    for card in cards:
        if pattern and not (fnmatch.fnmatchcase(card.id, pattern) or any(fnmatch.fnmatchcase(a, pattern) for a in card.aliases)):
            continue
        flat = card.flat()
        if all(_matches(flat.get(field), value) for field, value in resolved.items()):
            out.append(card)
    return out
