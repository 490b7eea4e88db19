"""Published results → leaderboard entries, marked ``imported`` with their source.

First source: the reference study's 1,440 results (Heuillet et al., *A Guide to Robust
Generalization*, arXiv:2508.14079), shipped as ``leaderboard/data/guide2025_results.csv``.
Its columns map onto rftbench's vocabulary as follows:

============================  ==================================================
CSV                           entry
============================  ==================================================
clean_acc                     metrics.clean_acc
Linf_acc / L2_acc / L1_acc    metrics.threats ``linf:4/255`` / ``l2:2`` / ``l1:75``
common_acc                    metrics.threats ``corruptions:3`` (round robin)
ft_strategy                   setup.protocol (``fft``/``lp``) and setup.epochs
loss_function                 setup.loss (``classic_at``, ``trades`` with β = 1)
model_type, model_size        model.family, model.size
pre_training_*                model.pretraining, pretraining_data, pretraining_volume
backbone, backbone_name       setup.representation, model.short_name
============================  ==================================================

Training used APGD-CE, L∞ ε = 4/255, 10 steps (REFERENCES.md §1): that is the entries'
``setup.threat``. The CSV's own ``sum``/``geom`` columns are checked against the recomputed
aggregates, so a corrupted file is refused rather than imported.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..cards import format_validation_error
from .entry import AGGREGATE_TOLERANCE, PUBLISHED_N_EVAL, Entry, threat_label, write_entries_jsonl
from .errors import EntryError

GUIDE2025_REFERENCE = (
    "Heuillet et al., A Guide to Robust Generalization: The Impact of Architecture, Pre-training, "
    "and Optimization Strategy (arXiv:2508.14079, 2025)"
)
GUIDE2025_URL = "https://arxiv.org/abs/2508.14079"

#: CSV accuracy column → (norm, budget) of the threat model it was measured under.
GUIDE2025_THREATS: dict[str, tuple[str, float]] = {
    "Linf_acc": ("linf", 4 / 255),
    "L2_acc": ("l2", 2.0),
    "L1_acc": ("l1", 75.0),
    "common_acc": ("corruption", 3.0),
}
#: The study's test-time suite, as an rftbench ``evaluation`` list that validates (AutoAttack
#: standard for each Lp threat; the 11 corruption types at severity 3, one per image, round robin).
GUIDE2025_EVALUATION: list[dict[str, Any]] = [
    {"name": "linf", "eps": "4/255", "attack": "autoattack"},
    {"name": "l2", "eps": 2.0, "attack": "autoattack"},
    {"name": "l1", "eps": 75.0, "attack": "autoattack"},
    {"name": "corruptions", "severity": 3, "mode": "round_robin"},
]
GUIDE2025_PROTOCOLS: dict[str, tuple[str, int]] = {
    "FFT (50 epochs)": ("fft", 50),
    "FFT (5 epochs)": ("fft", 5),
    "LP (50 epochs)": ("lp", 50),
}
GUIDE2025_LOSSES: dict[str, tuple[str, dict[str, Any]]] = {
    "Classic AT": ("classic_at", {}),
    "TRADES": ("trades", {"beta": 1.0}),
}
GUIDE2025_FAMILIES = {"fully convolutional": "convolutional", "fully attention": "attention", "hybrid": "hybrid"}
GUIDE2025_PRETRAINING = {
    "supervised": "supervised",
    "supervised (multistep)": "supervised-multistep",
    "supervised (robust)": "adversarially-robust",
    "self-supervised": "self-supervised",
    "self-supervised (multimodal)": "clip",
    "fusion": "fusion",
}
GUIDE2025_COLUMNS = (
    "clean_acc", "Linf_acc", "L2_acc", "L1_acc", "common_acc", "sum", "geom", "model_size", "backbone",
    "dataset", "loss_function", "pre_training_dataset", "pre_training_strategy", "volume_pre_training_data",
    "backbone_name", "model_type", "ft_strategy",
)  # fmt: skip


def _lookup(table: dict[str, Any], value: str, column: str, where: str) -> Any:
    if value not in table:
        raise EntryError(f"{where}: column {column} has {value!r}, which the importer does not know; known: {', '.join(table)}")
    return table[value]


def guide2025_entry(row: dict[str, str], *, where: str, file_name: str) -> Entry:
    """One CSV row of the reference study → a sealed, imported entry."""
    protocol, epochs = _lookup(GUIDE2025_PROTOCOLS, row["ft_strategy"], "ft_strategy", where)
    loss, loss_params = _lookup(GUIDE2025_LOSSES, row["loss_function"], "loss_function", where)
    try:
        clean = float(row["clean_acc"])
        threats = {}
        for column, (norm, eps) in GUIDE2025_THREATS.items():
            threats[threat_label(norm, eps)] = {"norm": norm, "eps": eps, "acc": float(row[column])}
        published_sum, published_geom = float(row["sum"]), float(row["geom"])
        volume = int(row["volume_pre_training_data"]) if row["volume_pre_training_data"] else None
    except ValueError as err:
        raise EntryError(f"{where}: a number column does not parse ({err})") from None
    accs = [clean, *(t["acc"] for t in threats.values())]
    if abs(math.fsum(accs) - published_sum) > AGGREGATE_TOLERANCE or abs(math.prod(accs) - published_geom) > AGGREGATE_TOLERANCE:
        raise EntryError(
            f"{where}: the row's sum/geom ({published_sum!r}, {published_geom!r}) disagree with its accuracies "
            f"({math.fsum(accs)!r}, {math.prod(accs)!r}): the file is corrupted"
        )
    threat = {"name": "linf", "eps": "4/255", "attack": "apgd-ce", "steps": 10, "random_start": False}
    config = {
        "representation": row["backbone"],
        "dataset": row["dataset"],
        "protocol": protocol,
        "loss": {"name": loss, **loss_params} if loss_params else loss,
        "threat": threat,
        "epochs": epochs,
        "optimizer": {"name": "adamw", "betas": [0.9, 0.95]},
        "effective_batch_size": 1024,
        "evaluation": GUIDE2025_EVALUATION,
    }
    try:
        return Entry.seal(
            source={
                "kind": "imported",
                "reference": GUIDE2025_REFERENCE,
                "url": GUIDE2025_URL,
                "file": file_name,
                "row": int(row[""]) if row.get("") not in (None, "") else None,
                "published": "2025-08",
            },
            setup={
                "representation": row["backbone"],
                "dataset": row["dataset"],
                "protocol": protocol,
                "loss": loss,
                "loss_params": loss_params,
                "threat": {"norm": "linf", "eps": 4 / 255},
                "epochs": epochs,
            },
            config=config,
            metrics={"clean_acc": clean, "threats": threats, "n_eval": PUBLISHED_N_EVAL.get(file_name)},
            model={
                "family": _lookup(GUIDE2025_FAMILIES, row["model_type"], "model_type", where),
                "size": row["model_size"] or None,
                "pretraining": _lookup(GUIDE2025_PRETRAINING, row["pre_training_strategy"], "pre_training_strategy", where),
                "pretraining_data": row["pre_training_dataset"] or None,
                "pretraining_volume": volume,
                "short_name": row["backbone_name"] or None,
            },
            provenance={"weights": {"name": row["backbone"]}},
        )
    except ValidationError as err:
        raise EntryError(f"{where}: does not make a valid entry:\n{format_validation_error(err)}") from None


def import_guide2025(path: str | Path) -> list[Entry]:
    """Read the reference study's results CSV into sealed entries (1,440 for the published file)."""
    path = Path(path)
    if not path.is_file():
        raise EntryError(f"{path}: no such file (the published results are leaderboard/data/guide2025_results.csv)")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in GUIDE2025_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise EntryError(f"{path}: missing columns {', '.join(missing)}; is this the reference study's results file?")
        entries = [guide2025_entry(row, where=f"{path.name}:{i + 2}", file_name=path.name) for i, row in enumerate(reader)]
    return entries


#: Published sources ``rftbench leaderboard import`` knows: name → reader.
IMPORTERS: dict[str, Callable[[Path], list[Entry]]] = {"guide2025": import_guide2025}


def import_published(source: str, path: str | Path, out: str | Path) -> list[Entry]:
    """Import a published source and write its entries as JSON lines to ``out``."""
    if source not in IMPORTERS:
        raise EntryError(f"unknown published source {source!r}; known: {', '.join(IMPORTERS)}")
    entries = IMPORTERS[source](Path(path))
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        raise EntryError(f"{path}: {len(ids) - len(set(ids))} rows are exact duplicates of others")
    write_entries_jsonl(entries, out)
    return entries
