"""Reading the YAML files users write (configs, cards, sweeps), with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import RftbenchError

#: libyaml's safe loader when PyYAML was built with it (10-20x faster: `rftbench plugins` reads every zoo card).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_mapping(path: Path, error: type[RftbenchError], what: str, *, empty_ok: bool = False) -> dict[str, Any]:
    """The YAML mapping in ``path``; ``error`` names the file for bad YAML or another shape.

    ``what`` says what the file should be (e.g. ``"a sweep file (base, axes, …)"``); an empty
    file is ``{}`` when ``empty_ok``.
    """
    try:
        data = yaml.load(path.read_text(), Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML:\n  {err}") from None
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: {what} must be a YAML mapping, got {type(data).__name__}")
    return data
