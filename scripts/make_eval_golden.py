"""Write tests/golden/eval_default.json: an evaluation's output, to prove later versions give the same.

    python scripts/make_eval_golden.py [--repo PATH] [--out FILE]

Evaluates the offline default representation (``mini_resnet.shapes_standard``, seeded head) on
the first 96 test points of ``digits`` (PIL images through the card's transform, in batches of
32) under the default run's evaluation (L∞ 4/255, APGD-CE), the ``quick`` suite's items (APGD-CE 10 steps, here at 1/255,
and corruptions at severity 3) and PGD-3 at L2 0.1 from a random start (seeded per batch), and
stores every number but timings and paths, plus each point's outcome per threat. The head is
ridge-regressed on 400 other test points first, so that the accuracies are not trivial. ``--repo``
picks the checkout whose rftbench runs (the fixture in the repository was made from main before
evaluation prepared its points once: ``tests/test_evaluation_golden.py`` compares against it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N, BATCH = 96, 32
SUITE = [
    {"name": "linf", "eps": "4/255"},
    {"name": "linf", "eps": "1/255", "attack": "apgd-ce", "steps": 10},
    {"name": "corruptions", "severity": 3},
    {"name": "l2", "eps": 0.1, "attack": "pgd", "steps": 3, "random_start": True},
]
DROP = {"seconds", "plots", "file", "outcomes"}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in DROP}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def fit_head(model, data) -> None:
    """Ridge-regress the head on test points N … N + 399 (not evaluated), so that accuracies are not trivial."""
    import torch

    from rftbench.evaluation.context import collate

    xs, ys = collate([data[i] for i in range(N, min(N + 400, len(data)))])
    with torch.no_grad():
        feats = model.features(xs).double()
        feats = torch.cat([feats, torch.ones(len(feats), 1, dtype=torch.float64)], 1)
        target = torch.nn.functional.one_hot(ys, model.num_classes).double()
        w = torch.linalg.solve(feats.T @ feats + 1e-2 * torch.eye(feats.shape[1], dtype=torch.float64), feats.T @ target)
        model.head.weight.copy_(w[:-1].T.float())
        model.head.bias.copy_(w[-1].float())


def evaluate_default(manager=None) -> dict:
    """The evaluation the fixture holds, run by the rftbench on ``sys.path``."""
    import numpy as np
    import torch

    from rftbench.config import load_config
    from rftbench.evaluation import evaluate
    from rftbench.plugins import get_manager
    from rftbench.runner import prepare

    manager = manager or get_manager()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(overrides=["device=cpu", "precision=fp32", f"output_dir={tmp}"], manager=manager)
        setup = prepare(config, manager)
        model = setup.model.eval()
        fit_head(model, setup.data.test)
        result = evaluate(model, setup.data.test, SUITE, batch_size=BATCH, n_examples=N, device="cpu", seed=0,
                          manager=manager, output_dir=tmp, progress=False)
        per_point = {}
        for path in Path(tmp).glob("outcomes-*.npz"):
            with np.load(path, allow_pickle=False) as npz:
                per_point = {k: npz[k].tolist() for k in npz.files if npz[k].dtype.kind in "biuf"}
    return {"cpu": {"aten": torch.backends.cpu.get_cpu_capability()}, "result": _strip(result), "per_point": per_point}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "golden" / "eval_default.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.repo.resolve()))
    data = evaluate_default()
    args.out.write_text(json.dumps(data, sort_keys=True) + "\n")
    print(f"wrote {args.out}: clean_acc {data['result']['clean_acc']}, "
          f"{ {k: v['acc'] for k, v in data['result']['threats'].items()} }")


if __name__ == "__main__":
    main()
