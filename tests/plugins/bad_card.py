"""Ships a representation card with an out-of-range field."""

from pathlib import Path

from rftbench import hookimpl

HERE = Path(__file__).parent


@hookimpl
def rftbench_add_representations():
    return [HERE / "cards" / "bad_resolution.yaml"]
