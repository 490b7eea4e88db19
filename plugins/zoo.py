"""Built-in plugin ``zoo``: contributes the cards in ``registry/``."""

from __future__ import annotations

from pathlib import Path

from rftbench import hookimpl
from rftbench_registry import DATASETS_DIR, REPRESENTATIONS_DIR


@hookimpl
def rftbench_add_representations() -> list[Path]:
    return [REPRESENTATIONS_DIR]


@hookimpl
def rftbench_add_datasets() -> list[Path]:
    return [DATASETS_DIR]
