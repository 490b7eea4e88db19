"""Copy a study sweep's finished records from its results folder into the folder shipped with the study.

    python scripts/ship_study_records.py examples/studies/03-reference-comparisons/sweep.yaml
    python scripts/ship_study_records.py examples/studies/03-reference-comparisons/sweep-sizes.yaml

``sweep.yaml``'s records go to ``records/``, ``sweep-NAME.yaml``'s to ``records-NAME/`` (what
``tests/test_study_records.py`` checks). Only runs of the sweep (by config hash) are copied; each
record's ``config.output_dir`` and ``run_dir`` are rewritten to the shipped folder, and only the
per-example outcomes (``<hash>/outcomes-*.npz``) travel with it — not the weights, plots or locks.
The folder is replaced: a record of an older grid does not stay behind.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rftbench.sweep.spec import load_sweep  # noqa: E402


def ship(sweep_file: Path) -> tuple[Path, int, int]:
    sweep = load_sweep(sweep_file)
    results = Path(sweep.results_dir)
    dest = sweep_file.parent / f"records{sweep_file.stem.removeprefix('sweep')}"
    rel = dest.resolve().relative_to(ROOT)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    shipped = 0
    for run in sweep.runs:
        source = results / f"{run.hash}.json"
        if not source.is_file():
            continue
        record = json.loads(source.read_text())
        if record.get("status") != "complete":
            continue
        record["config"]["output_dir"] = str(rel)
        record["run_dir"] = str(rel / run.hash)
        (dest / source.name).write_text(json.dumps(record, indent=2) + "\n")
        (dest / run.hash).mkdir()
        for outcomes in sorted((results / run.hash).glob("outcomes-*.npz")):
            shutil.copy2(outcomes, dest / run.hash / outcomes.name)
        shipped += 1
    return rel, shipped, len(sweep.runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", nargs="+", type=Path, help="a study's sweep*.yaml")
    for sweep_file in parser.parse_args().sweep:
        rel, shipped, total = ship(sweep_file)
        print(f"{rel}: {shipped} of {total} runs shipped")


if __name__ == "__main__":
    main()
