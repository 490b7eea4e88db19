"""``rftbench plugin new``: write a working plugin distribution (pyproject, module, README, tests).

The generated tests use :mod:`rftbench.testing`, so they pass right after ``pip install -e``
and fail the day a contribution stops meeting its contract.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from .errors import RftbenchError

#: Kinds the scaffold can write, in the order they appear in the module.
KINDS = ("loss", "threat_model", "attack", "metric", "schedule", "protocol", "architecture", "dataset", "executor",
         "publisher")

_TEMPLATES: dict[str, dict[str, str]] = {
    "loss": {
        "imports": "from rftbench import LossSpec",
        "code": '''
            class WeightedParams(Params):
                # `lambda` is a Python keyword: the field is `lam`, users write and see `lambda`.
                lam: float = Field(0.5, alias="lambda", ge=0, le=1, description="weight of the adversarial term")


            class WeightedAT:
                """(1 − λ)·CE(clean) + λ·CE(adv); the attack maximises cross-entropy."""

                uses_clean, uses_adv = True, True  # adversarial: the spec's (LossSpec default True)

                def __init__(self, lam: float):
                    self.lam = lam

                def attack_objective(self, model, x, y):
                    return None

                def __call__(self, y, *, clean=None, adv=None):
                    import torch.nn.functional as F

                    return (1 - self.lam) * F.cross_entropy(clean.float(), y) + self.lam * F.cross_entropy(adv.float(), y)


            @hookimpl
            def rftbench_add_losses():
                return [LossSpec(name="{slug}-weighted-at", description="(1 − λ)·CE(clean) + λ·CE(adv)",
                                 params=WeightedParams, factory=WeightedAT)]
        ''',
        "check": '("loss", "{slug}-weighted-at", {{"lambda": 0.3}})',
    },
    "threat_model": {
        "imports": "from rftbench import Epsilon, ThreatModelSpec",
        "code": '''
            class NoiseParams(Params):
                eps: Epsilon = Field(8 / 255, le=1, description="L∞ radius on the [0, 1] scale; '8/255' accepted")
                seed: int = Field(0, ge=0, description="seed of the noise")


            class UniformNoise:
                norm = "linf"

                def __init__(self, eps: float, seed: int):
                    self.eps, self.seed = eps, seed

                def label(self):
                    return f"{slug}-noise:{{self.eps:.4g}}"

                def perturb(self, model, x, y, *, eps=None, **_):
                    import torch

                    eps = self.eps if eps is None else eps
                    g = torch.Generator(device=x.device).manual_seed(self.seed)
                    noise = (torch.rand(x.shape, generator=g, device=x.device) * 2 - 1) * eps
                    return (x + noise).clamp(0, 1).to(x.dtype)


            @hookimpl
            def rftbench_add_threat_models():
                return [ThreatModelSpec(name="{slug}-noise", norm="linf", description="uniform noise in the L∞ ball",
                                        params=NoiseParams, factory=UniformNoise)]
        ''',
        "check": '("threat_model", "{slug}-noise", {{"eps": "8/255"}})',
    },
    "attack": {
        "imports": "from rftbench import AttackSpec",
        "code": '''
            def margin(logits, y, index=None):
                """max_{{k≠y}} z_k − z_y per example (the Carlini–Wagner loss)."""
                import torch

                logits = logits.float()
                true = logits.gather(1, y[:, None]).squeeze(1)
                others = logits.masked_fill(torch.nn.functional.one_hot(y, logits.shape[1]).bool(), float("-inf"))
                return others.amax(1) - true


            def margin_pgd(model, x, y, *, norm, eps, steps, step_size=None, restarts=1, random_start=True,
                           generator=None, early_stop=False, objective=None, x_init=None, **_):
                """PGD on the logit margin; random start, x_init, early stop and restarts from rftbench's helpers."""
                from rftbench.attacks import ascent_direction, first_start, iterate, project_to_ball, with_restarts

                x = x.detach().float()
                if eps == 0 or steps == 0:
                    return x.clone()
                objective = objective or margin  # the loss's objective in training (TRADES' KL), else the margin
                alpha = step_size if step_size is not None else 2.5 * eps / steps

                def step(x0, x_adv, grad):
                    return project_to_ball(x0, x_adv + alpha * ascent_direction(grad, norm), norm, eps)

                def once(xs, ys, index, *, random_start, x_init):
                    start = first_start(xs, norm, eps, random_start=random_start, generator=generator, x_init=x_init)
                    return iterate(model, xs, ys, start, step, steps=steps, early_stop=early_stop, objective=objective,
                                   index=index)

                return with_restarts(once, model, x, y, restarts=restarts, random_start=random_start, x_init=x_init,
                                     early_stop=early_stop, objective=objective)


            @hookimpl
            def rftbench_add_attacks():
                return [AttackSpec(name="{slug}-margin-pgd", norms=("linf", "l2"), default_steps=5,
                                   description="PGD on the logit margin (CW loss)", factory=lambda: margin_pgd)]
        ''',
        "check": '("attack", "{slug}-margin-pgd", {{}})',
    },
    "metric": {
        "imports": "from rftbench import MetricSpec, NoParams",
        "code": '''
            class MeanConfidence:
                def label(self):
                    return "{pkg}_confidence"

                def compute(self, ctx):
                    probs = ctx.clean_logits.float().softmax(1)
                    return {{"value": float(probs.max(1).values.mean())}}


            @hookimpl
            def rftbench_add_metrics():
                return [MetricSpec(name="{slug}-confidence", description="mean top-1 probability on clean points",
                                   params=NoParams, factory=MeanConfidence)]
        ''',
        "check": '("metric", "{slug}-confidence", {{}})',
    },
    "schedule": {
        "imports": "from rftbench import ScheduleSpec",
        "code": '''
            class StepDecayParams(Params):
                every: float = Field(1.0, gt=0, description="epochs between decays")
                factor: float = Field(0.5, gt=0, le=1, description="multiplier at each decay")


            def step_decay(every: float, factor: float):
                return lambda t, total: factor ** int(t // every)


            @hookimpl
            def rftbench_add_schedules():
                return [ScheduleSpec(name="{slug}-step-decay", targets=("lr",), params=StepDecayParams, factory=step_decay,
                                     description="multiply the learning rate by `factor` every `every` epochs")]
        ''',
        "check": '("schedule", "{slug}-step-decay", {{"every": 0.5}})',
    },
    "protocol": {
        "imports": "from rftbench import NoParams, ProtocolSpec",
        "code": '''
            class HeadAndNorms:
                def trainable(self, model, epoch, epochs):
                    from torch import nn

                    names = {{n for n, _ in model.head.named_parameters(prefix="head")}}
                    for prefix, module in model.backbone.named_modules(prefix="backbone"):
                        if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
                            names |= {{n for n, _ in module.named_parameters(prefix=prefix)}}
                    return names


            @hookimpl
            def rftbench_add_protocols():
                return [ProtocolSpec(name="{slug}-head-and-norms", description="train the head and the normalisation layers",
                                     params=NoParams, factory=HeadAndNorms)]
        ''',
        "check": '("protocol", "{slug}-head-and-norms", {{}})',
    },
    "architecture": {
        "imports": "from rftbench import ArchitectureSpec, RepresentationCard",
        "code": '''
            class NetParams(Params):
                # `pretrained` reaches the factory through the spec (rftbench builds with pretrained=False in tests).
                pretrained: bool = Field(True, description="load the card's weights (False: random init, no download)")


            def build_net(card, *, pretrained=True):
                from torch import nn

                from rftbench.model import Normalize

                class Net(nn.Module):
                    def __init__(self, width: int):
                        super().__init__()
                        self.normalize = Normalize(card.input.mean, card.input.std)
                        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
                        self.num_features = width

                    def forward_features(self, x):
                        return self.body(self.normalize(x))

                    def forward(self, x):
                        return self.forward_features(x)

                return Net(int(card.args.get("width", 8)))  # load the card's weights here when pretrained


            @hookimpl
            def rftbench_add_architectures():
                return [ArchitectureSpec(name="{slug}-net", description="a one-layer CNN", params=NetParams,
                                         factory=build_net)]


            @hookimpl
            def rftbench_add_representations():
                return [RepresentationCard(
                    id="{pkg}_net.scratch", source="{slug}-net", model="{pkg}_net", family="convolutional", size="tiny",
                    params_m=0.001, input={{"resolution": 16, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}},
                    pretraining={{"strategy": "none", "data": "none"}}, provenance={{"license": "Apache-2.0"}},
                )]
        ''',
        "check": '("architecture", "{slug}-net", {{}})',
    },
    "dataset": {
        "imports": "from rftbench import DatasetCard, DatasetSourceSpec",
        "code": '''
            def load_blobs(card, *, root, download, **_):
                import torch
                from torch.utils.data import TensorDataset

                class Split(TensorDataset):
                    def __init__(self, n, seed):
                        g = torch.Generator().manual_seed(seed)
                        labels = torch.arange(n) % card.num_classes
                        centres = torch.linspace(0.2, 0.8, card.num_classes)[labels].view(-1, 1, 1, 1)
                        super().__init__((centres + 0.05 * torch.randn(n, 3, 16, 16, generator=g)).clamp(0, 1), labels)
                        self.targets = labels.tolist()
                        self.classes = [f"blob{{i}}" for i in range(card.num_classes)]

                    def __getitem__(self, i):
                        return self.tensors[0][i], int(self.tensors[1][i])

                return {{"train": Split(96, 0), "val": Split(32, 1), "test": Split(32, 2)}}


            @hookimpl
            def rftbench_add_dataset_sources():
                return [DatasetSourceSpec(name="{slug}-blobs", description="grey blobs, one brightness per class",
                                          factory=load_blobs)]


            @hookimpl
            def rftbench_add_datasets():
                generated = {{"rule": "generated"}}
                return [DatasetCard(id="{pkg}_blobs", source="{slug}-blobs", num_classes=3, resolution=16, tags=["no-hflip"],
                                    splits={{"train": generated, "val": generated, "test": generated}},
                                    provenance={{"license": "CC0-1.0"}})]
        ''',
        "check": '("dataset", "{pkg}_blobs", {{}})',
    },
    "executor": {
        "imports": "from rftbench import ExecutorSpec, NoParams",
        "code": '''
            class Serial:
                """Runs each item when submitted, in this process."""

                slots = 1

                def start(self, results_dir):
                    pass

                def submit(self, fn, items):
                    return [fn(item) for item in items]

                def wait(self, handles, timeout):
                    return list(handles)

                def result(self, handle):
                    return handle

                def shutdown(self):
                    pass


            @hookimpl
            def rftbench_add_executors():
                return [ExecutorSpec(name="{slug}-serial", description="one run after another in this process",
                                     params=NoParams, factory=Serial)]
        ''',
        "check": '("executor", "{slug}-serial", {{}})',
    },
    "publisher": {
        "imports": "from pathlib import Path\n\nfrom rftbench import PublisherSpec",
        "code": '''
            class FolderParams(Params):
                repo: str = Field(description="the folder entries are written to")


            class FolderPublisher:
                def __init__(self, repo: str):
                    self.folder = Path(repo)
                    self.target = f"folder:{{self.folder.resolve()}}"

                def identity(self):
                    return "local"

                def publish(self, entry, *, dry_run=False):
                    from rftbench.leaderboard.errors import DuplicateEntryError
                    from rftbench.leaderboard.outbox import Submission

                    path = self.folder / f"{{entry.id}}.json"
                    if path.exists():
                        raise DuplicateEntryError(f"entry {{entry.id}} is already in {{self.folder}}")
                    if not dry_run:
                        self.folder.mkdir(parents=True, exist_ok=True)
                        path.write_text(entry.to_json())
                    return Submission(entry.id, self.target, "dry-run" if dry_run else "opened", path_in_repo=path.name)


            @hookimpl
            def rftbench_add_publishers():
                return [PublisherSpec(name="{slug}-folder", description="write entries to a local folder",
                                      params=FolderParams, factory=FolderPublisher)]
        ''',
        "check": '("publisher", "{slug}-folder", {{"repo": "entries"}})',
    },
}

_DIST = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,60}$")


def package_name(dist: str) -> str:
    """The import name of distribution ``dist`` (``acme-rft`` → ``acme_rft``)."""
    return re.sub(r"[-.]+", "_", dist).lower()


def new_plugin(name: str, kinds: list[str] | None, directory: str | Path = ".") -> Path:
    """Write the distribution ``name`` into ``directory/name``; returns its folder.

    Raises :class:`~rftbench.errors.RftbenchError` for an invalid name or kind, or a folder that exists.
    """
    if not _DIST.match(name):
        raise RftbenchError(f"plugin name {name!r}: use letters, digits, '-', '_' or '.', starting with a letter (e.g. acme-rft)")
    kinds = list(dict.fromkeys(kinds or ["loss"]))
    unknown = [k for k in kinds if k not in _TEMPLATES]
    if unknown:
        from .errors import UnknownNameError

        raise UnknownNameError("kind for `plugin new`", unknown[0], _TEMPLATES, hint="Repeat --kind for several.")
    root = Path(directory) / name
    if root.exists():
        raise RftbenchError(f"{root} already exists; choose another name or --dir, or remove it")
    pkg = package_name(name)
    if pkg in {"rftbench", "rftbench_plugins", "rftbench_registry", "rftbench_leaderboard"} or not pkg.isidentifier():
        raise RftbenchError(f"plugin name {name!r} gives the package {pkg!r}, which is taken or not a Python name; choose another")
    slug = pkg.replace("_", "-")
    ordered = [k for k in KINDS if k in kinds]
    fill = {"pkg": pkg, "slug": slug, "name": name}

    lines = {line for k in ordered for line in _TEMPLATES[k]["imports"].splitlines() if line.strip()}
    names = {"Params", "hookimpl"}
    for line in [line for line in lines if line.startswith("from rftbench import ")]:
        names |= {n.strip() for n in line.removeprefix("from rftbench import ").split(",")}
        lines.discard(line)
    std = sorted(line for line in lines if line.startswith("from pathlib"))
    other = sorted(line for line in lines if not line.startswith("from pathlib"))
    module = ['"""rftbench plugin ``' + name + '``: ' + ", ".join(k.replace("_", " ") for k in ordered) + '.',
              "", "Each hook returns specs; see https://github.com/rftbench/rftbench/blob/main/docs/plugins.md for",
              "every kind's contract. Keep imports of torch and other heavy libraries inside factories and",
              'methods: `rftbench plugins` imports this module and should stay fast.', '"""', "",
              "from __future__ import annotations", ""]
    rftbench_import = f"from rftbench import {', '.join(sorted(names))}"
    if len(rftbench_import) > 100:
        rftbench_import = "from rftbench import (\n" + "".join(f"    {n},\n" for n in sorted(names)) + ")"
    module += std + ([""] if std else []) + ["from pydantic import Field", "", rftbench_import] + other
    for kind in ordered:
        module += ["", "", textwrap.dedent(_TEMPLATES[kind]["code"]).strip().format(**fill)]
    module_text = "\n".join(module) + "\n"

    checks = ",\n    ".join(_TEMPLATES[k]["check"].format(**fill) for k in ordered)
    tests = f'''"""Tests of {name}: it loads cleanly and each contribution meets its contract (rftbench.testing)."""

import pytest

from rftbench.testing import check, plugin_manager

CONTRIBUTIONS = [
    {checks},
]


@pytest.fixture(scope="module")
def manager():
    # The built-ins + this distribution's entry point (installed with `pip install -e .`); fails on any load problem.
    return plugin_manager("{pkg}")


def test_everything_is_contributed_by_this_distribution(manager):
    for kind, name, _ in CONTRIBUTIONS:
        assert manager.info_of(kind, name).distribution == "{name}"


@pytest.mark.parametrize("kind, name, params", CONTRIBUTIONS, ids=[c[1] for c in CONTRIBUTIONS])
def test_contract(manager, kind, name, params, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a contribution writes stays in tmp_path
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "cache"))
    check(kind, name, params, manager=manager).assert_ok()
'''
    pyproject = f'''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"
description = "rftbench plugin: {', '.join(k.replace('_', ' ') for k in ordered)}"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["rftbench"]

[project.optional-dependencies]
test = ["pytest"]

# rftbench finds the plugin through this entry point: name = module with the @hookimpl functions.
[project.entry-points.rftbench]
{pkg} = "{pkg}.plugin"

[tool.setuptools]
packages = ["{pkg}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''
    names = "\n".join(f"- {k.replace('_', ' ')}: `{_TEMPLATES[k]['check'].format(**fill).split(', ')[1].strip(chr(34))}`" for k in ordered)
    readme = f'''# {name}

An [rftbench](https://github.com/rftbench/rftbench) plugin. It contributes:

{names}

## Install and check

```bash
pip install -e .
rftbench plugins --kind {ordered[0]}     # lists this plugin's contribution
pytest                                    # the contracts, checked by rftbench.testing
```

## Develop

Edit `{pkg}/plugin.py`; the guide to every kind's contract (when rftbench calls it, on which
device, how parameters appear in configs, records and results) is rftbench's `docs/plugins.md`.
The tests run each contribution through rftbench's engine and evaluator on a micro backbone and
a tiny offline dataset (seconds on a CPU) and list any contract violation.
'''
    (root / pkg).mkdir(parents=True)
    (root / "tests").mkdir()
    (root / pkg / "__init__.py").write_text(f'"""{name}: an rftbench plugin (the hooks are in `plugin.py`)."""\n')
    (root / pkg / "plugin.py").write_text(module_text)
    (root / "tests" / f"test_{pkg}.py").write_text(tests)
    (root / "pyproject.toml").write_text(pyproject)
    (root / "README.md").write_text(readme)
    return root
