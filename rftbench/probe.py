"""``rftbench zoo probe``: a representation's adversarial sensitivity on a dataset, before any fine-tuning.

Nern et al. (NeurIPS 2023) bound the robustness of a linear probe ``f = W g`` by the
robustness of the representation ``g``: a low adversarial sensitivity (AS, the mean
``‖g(x+δ) − g(x)‖₂`` with δ maximising it within the threat budget) on the downstream data
predicts that robustness transfers through linear probing. The probe measures AS with the
``adversarial_sensitivity`` metric plugin on the first ``n`` images of a split (transformed
for the representation exactly as a run's evaluation would be) and writes one JSON record
per (representation, dataset, threat) to ``<output_dir>/probes/``, beside the runs' result
records. Only the representation matters: the head the metric needs is a fresh one, so the
metric's head-dependent quantities (CE gap, certified share) are left out of the record.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from .cards import DatasetCard, RepresentationCard
from .errors import RftbenchError, UnknownNameError
from .plugins import PluginManager, get_manager
from .results import atomic_write_text

METRIC = "adversarial_sensitivity"
#: What the record keeps from the metric's output (the rest depends on the untrained head).
KEPT = ("value", "as_std", "n", "attack")


def probe_path(output_dir: str | Path, rep: str, data: str, label: str) -> Path:
    """Where the probe record of ``rep`` on ``data`` for the metric ``label`` is written."""
    safe = label.replace(":", "_").replace("/", "-")
    return Path(output_dir) / "probes" / f"{rep}__{data}__{safe}.json"


def probe(
    rep: RepresentationCard | str,
    data: DatasetCard | str,
    *,
    norm: str = "linf",
    eps: float | str = "4/255",
    steps: int = 10,
    n: int = 256,
    split: str = "test",
    batch_size: int = 32,
    seed: int = 0,
    device: str = "auto",
    data_root: str | Path | None = None,
    download: bool = True,
    pretrained: bool = True,
    output_dir: str | Path | None = "runs",
    manager: PluginManager | None = None,
) -> dict[str, Any]:
    """Measure AS of ``rep`` on ``data`` and write its record (unless ``output_dir`` is None)."""
    from .data import Transformed, load_splits, make_transform
    from .evaluation.context import EvalContext
    from .model import build_classifier

    manager = manager or get_manager()
    rep = manager.get("representation", rep) if isinstance(rep, str) else rep
    data = manager.get("dataset", data) if isinstance(data, str) else data
    try:
        spec = manager.get("metric", METRIC)
    except UnknownNameError:
        raise RftbenchError(f"`zoo probe` needs the {METRIC!r} metric plugin, which is not installed or is disabled") from None
    metric = spec.build(norm=norm, eps=eps, steps=steps, n=n)
    splits = load_splits(data, root=data_root, download=download, manager=manager)
    if split not in splits:
        raise RftbenchError(f"dataset {data.id!r} has no {split!r} split (it has {', '.join(sorted(splits))}); use --split")
    from .engine.hardware import parse_device

    dev = parse_device(device, "--device")
    images = Transformed(splits[split], make_transform(rep, data, train=False))
    subset = torch.utils.data.Subset(images, range(min(n, len(images))))
    torch.manual_seed(seed)
    model = build_classifier(rep, data.num_classes, pretrained=pretrained, manager=manager).to(dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    from .evaluation.evaluate import check_data, check_inputs

    check_inputs(model, check_data(subset, None), dev)  # images the model cannot take: a named error, as in `rftbench eval`
    ctx = EvalContext(model=model, data=subset, batch_size=batch_size, device=dev, seed=seed, manager=manager)
    start = time.perf_counter()
    raw = metric.compute(ctx)
    seconds = time.perf_counter() - start
    from . import __version__
    from .fetch import pin_of

    record = {
        "kind": "probe",
        "representation": rep.id,
        "dataset": data.id,
        "split": split,
        "metric": metric.label(),
        **{k: raw[k] for k in KEPT if k in raw},
        "threat": {"norm": norm, "eps": float(getattr(metric, "eps", eps)), "steps": steps},
        "seed": seed,
        "seconds": round(seconds, 3),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "provenance": {
            "rftbench": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(dev),
            "pretrained": pretrained,
            "weights": {**rep.weights.model_dump(exclude_none=True), **{k: v for k, v in pin_of(rep).items() if v}},
        },
    }
    if output_dir is not None:
        path = probe_path(output_dir, rep.id, data.id, record["metric"])
        atomic_write_text(path, json.dumps(record, indent=2))
        record["path"] = str(path)
    return record


__all__ = ["METRIC", "probe", "probe_path"]
