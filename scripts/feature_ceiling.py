"""How far a linear read-out of a representation's frozen features can go on a dataset.

    python scripts/feature_ceiling.py mini_resnet.scenes_standard mini_convnext.scenes_standard

Extracts the backbone's features (eval mode, no augmentation) of the dataset's train and test
images, standardises them on the train split and fits scikit-learn's multinomial logistic regression
(L-BFGS, ``C`` per ``--C``): its test accuracy is the ceiling a linear probe approaches with a long
enough budget, so a probe far below it is short of optimisation, and one near it is limited by the
representation. Prints train and test accuracy per representation and ``C``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("representation", nargs="+", help="representation card ids, e.g. mini_convnext.scenes_standard")
    parser.add_argument("--dataset", default="textures", help="a dataset card id (default: textures)")
    parser.add_argument("--C", type=float, nargs="+", default=[1.0, 10.0], help="inverse regularisation strengths")
    args = parser.parse_args()

    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from rftbench.data import load_splits, make_transform
    from rftbench.model import build_backbone
    from rftbench.plugins import get_manager

    manager = get_manager()
    data = manager.get("dataset", args.dataset)
    splits = load_splits(data, manager=manager)

    def features(backbone: torch.nn.Module, split, transform) -> tuple:
        images, labels = zip(*(split[i] for i in range(len(split))))
        x = torch.stack([transform(image) for image in images])
        with torch.no_grad():
            out = torch.cat([backbone(x[i:i + 250]) for i in range(0, len(x), 250)])
        return out.numpy(), torch.tensor(labels).numpy()

    for rep in args.representation:
        card = manager.get("representation", rep)
        backbone = build_backbone(card, manager=manager).eval()
        transform = make_transform(card, data, train=False)  # the evaluation's resize / crop, no augmentation
        (x_train, y_train), (x_test, y_test) = (features(backbone, splits[name], transform) for name in ("train", "test"))
        scaler = StandardScaler().fit(x_train)
        x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
        for c in args.C:
            clf = LogisticRegression(C=c, max_iter=3000).fit(x_train, y_train)
            print(f"{rep} on {args.dataset}: {x_train.shape[1]} features, C = {c:g}: "
                  f"train {100 * clf.score(x_train, y_train):.1f}%, test {100 * clf.score(x_test, y_test):.1f}%", flush=True)


if __name__ == "__main__":
    main()
