"""The size of rftbench's TRADES-KL start clamp, against the original code's unclamped start.

    OMP_NUM_THREADS=1 python benchmarks/bench_trades_start.py [--epochs 1] [--batch 128] [--attack apgd-ce]
                                                              [--no-train] [--json out.json]

The original TRADES code (``trades.py`` of yaodongyu/TRADES) starts its KL attack at
x + 0.001·N(0, 1) and takes the first gradient there, clamping to [0, 1] only after each step;
rftbench moves every attack's ``x_init`` into the ball and the box first, so pixels at 0 or 1
start up to ~0.003 closer to the box. This script measures what that changes:

1. **One batch** (``--batch`` test images of the offline default's data) on the model the
   offline default trains in ``--epochs`` epochs: the training attack (the offline default's
   threat, or ``--attack``) from rftbench's clamped start and from the unclamped start, with the
   *same* noise draw; it prints how many adversarial examples differ (at all, and by more than
   1/255 anywhere), the largest |difference|, the TRADES loss on each and the accuracy on each
   (robust accuracy under the training attack).
2. **Training** (unless ``--no-train``): the offline default trained ``--epochs`` epochs each way
   (same seed), and the clean and robust accuracy its evaluation reports.

The unclamped start is the original's: x + project(x_init − x) (the 0.001 noise is far inside
the ball at 4/255) with no box clamp before the first gradient; the final iterates are clamped
to [0, 1] as the original does (APGD keeps its best iterate, which may be the start).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import rftbench  # noqa: E402
import importlib  # noqa: E402

_helpers = importlib.import_module("rftbench.attacks.helpers")
_apgd = importlib.import_module("rftbench.attacks.apgd")  # the modules (the package exports functions of these names)
_pgd = importlib.import_module("rftbench.attacks.pgd")
from rftbench.attacks._ball import project  # noqa: E402

_CLAMPED = _helpers.first_start
#: the offline default with TRADES' own (KL) inner attack, the one that has a start x + 0.001·N(0, 1)
KL = ["loss.params.inner=kl"]


CALLS = {"unclamped": 0}


def _unclamped_first_start(x, norm, eps, *, random_start, generator=None, x_init=None):
    """The original TRADES start: ``x_init`` moved into the ball only, not into the box."""
    if x_init is not None:
        CALLS["unclamped"] += 1
        return x + project(x_init.detach().float() - x, norm, eps)
    return _CLAMPED(x, norm, eps, random_start=random_start, generator=generator, x_init=None)


@contextlib.contextmanager
def unclamped_start() -> Iterator[None]:
    """Within the block, every built-in attack starts at the unclamped ``x_init`` (the original TRADES start)."""
    modules = (_helpers, _apgd, _pgd)
    saved = [m.first_start for m in modules]
    for m in modules:
        m.first_start = _unclamped_first_start
    try:
        yield
    finally:
        for m, f in zip(modules, saved):
            m.first_start = f


def train(output_dir: Path, epochs: int, overrides: list[str]) -> rftbench.ResultRecord:
    """The offline default with TRADES' KL attack (``loss.params.inner=kl``) trained ``epochs`` epochs."""
    return rftbench.run(None, overrides=[*KL, f"epochs={epochs}", f"output_dir={output_dir}", *overrides], rerun=True)


def one_batch(record, batch: int, attack: str | None, extra: list[str]) -> dict:
    """The training attack on ``batch`` test images from both starts with the same noise."""
    from rftbench.config import load_config
    from rftbench.plugins import get_manager
    from rftbench.prepare import prepare
    from rftbench.trained import load_model

    manager = get_manager()
    overrides = [*KL, f"epochs={record.config['epochs']}", f"output_dir={record.config['output_dir']}", *extra]
    if attack:
        overrides.append(f"threat.attack={attack}")
    config = load_config(None, overrides, manager=manager)
    setup = prepare(config, manager)
    model = load_model(record.run_dir, manager=manager).eval()
    loss, threat = setup.parts.loss, setup.parts.threat
    xs, ys = zip(*(setup.data.test[i] for i in range(batch)))
    x, y = torch.stack(xs).float(), torch.as_tensor(ys)
    torch.manual_seed(1)
    x_init = loss.attack_start(x)  # the same noise for both starts
    eps = threat.eps

    def attack_from(ctx) -> torch.Tensor:
        with ctx:
            objective = loss.attack_objective(model, x, y)
            out = threat.perturb(model, x, y, eps=eps, objective=objective, x_init=x_init)
        return out.detach().clamp(0, 1)

    a = attack_from(contextlib.nullcontext())
    control = int(((a - attack_from(contextlib.nullcontext())).abs().flatten(1).amax(1) > 0).sum())  # 0: deterministic
    b = attack_from(unclamped_start())
    diff = (a - b).abs().flatten(1).amax(1)
    with torch.no_grad():
        clean = model(x)
        la, lb = model(a), model(b)
        ta = float(loss(y, clean=clean, adv=la))
        tb = float(loss(y, clean=clean, adv=lb))
    box = ((x_init < 0) | (x_init > 1)).flatten(1).any(1)
    return {
        "attack": repr(threat), "steps": threat.steps,
        "eps": eps, "batch": batch,
        "control_points_differing_clamped_twice": control,
        "points_with_start_outside_box": int(box.sum()),
        "points_differing": int((diff > 0).sum()),
        "points_differing_over_1/255": int((diff > 1 / 255).sum()),
        "max_abs_difference": float(diff.max()),
        "trades_loss_clamped": ta, "trades_loss_unclamped": tb,
        "robust_acc_clamped": float((la.argmax(1) == y).float().mean()),
        "robust_acc_unclamped": float((lb.argmax(1) == y).float().mean()),
        "clean_acc": float((clean.argmax(1) == y).float().mean()),
    }


def _accs(record) -> tuple[list[str], list[float]]:
    """``(names, values)``: clean accuracy and each evaluated threat's accuracy of a record."""
    names = ["clean_acc", *(f"acc[{label}]" for label in record.metrics["threats"])]
    return names, [record.metrics["clean_acc"], *(t["acc"] for t in record.metrics["threats"].values())]


def _cpu() -> str:
    with contextlib.suppress(Exception):
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--attack", default=None, help="the attack of the one-batch check (default: the offline default's)")
    parser.add_argument("--no-train", action="store_true", help="skip the unclamped training run")
    parser.add_argument("--set", action="append", default=[], help="extra config override for both runs")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result: dict = {"cpu": _cpu(), "load": os.getloadavg(), "threads": torch.get_num_threads()}
    from rftbench.config import load_config
    from rftbench.plugins import get_manager

    # a bad --set/--attack is named before any training
    load_config(None, [*KL, *args.set, *([f"threat.attack={args.attack}"] if args.attack else [])], manager=get_manager())
    with tempfile.TemporaryDirectory(prefix="bench_trades_start") as tmp:
        rec_a = train(Path(tmp) / "clamped", args.epochs, args.set)
        result["one_batch"] = one_batch(rec_a, args.batch, args.attack, args.set)
        print(json.dumps(result["one_batch"], indent=1), flush=True)
        if not args.no_train:
            with unclamped_start():
                rec_b = train(Path(tmp) / "unclamped", args.epochs, args.set)
            same = rec_a.provenance["model_sha256"] == rec_b.provenance["model_sha256"]
            result["training"] = {"epochs": args.epochs, "unclamped_starts_taken": CALLS["unclamped"], "same_weights": same,
                                  **{k: {"clamped": a, "unclamped": b} for k, a, b in zip(*_accs(rec_a), _accs(rec_b)[1])}}
            print(json.dumps(result["training"], indent=1), flush=True)
    result["load_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("cpu", "load", "load_after", "threads")}))


if __name__ == "__main__":
    main()
