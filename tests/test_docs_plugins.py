"""docs/plugins.md cannot rot: its `# file:` blocks are installed as one plugin distribution and each
contribution is run through the engine and the evaluator by rftbench.testing.check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import rftbench.hookspecs as hookspecs
from rftbench.testing import check, plugin_manager

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
BLOCK = re.compile(r"```(python|yaml)\n# file: (\S+)\n(.*?)```", re.S)

#: Each example: (kind, name, params) as a user would write them.
EXAMPLES = [
    ("loss", "weighted_at", {"lambda": 0.3}),
    ("threat_model", "uniform-noise", {"eps": "8/255"}),
    ("attack", "random-corner", {}),
    ("attack", "margin-pgd", {}),
    ("architecture", "tiny-cnn", {}),
    ("representation", "tiny_cnn.wide", {}),
    ("dataset_source", "blobs", {}),
    ("dataset", "blobs", {}),
    ("metric", "mean-confidence", {}),
    ("schedule", "step-decay", {"every": 0.5}),
    ("protocol", "head-and-norms", {}),
    ("executor", "serial", {}),
    ("publisher", "folder", {}),
]


def blocks() -> dict[str, str]:
    found = {path: text for _, path, text in BLOCK.findall(GUIDE.read_text())}
    assert found, "no `# file:` blocks in docs/plugins.md"
    return found


@pytest.fixture
def guide_manager(make_distribution, tmp_path, monkeypatch):
    files = blocks()
    modules = {Path(p).stem: text for p, text in files.items() if p.endswith(".py") and not p.startswith("test_")}
    site = make_distribution("rftbench-guide-examples", {m: m for m in modules}, modules)
    for path, text in files.items():
        if path.startswith("test_") or not path.endswith(".py"):
            (site / path).parent.mkdir(parents=True, exist_ok=True)
            (site / path).write_text(text)
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "cache"))
    yield plugin_manager(*modules)
    import sys

    for module in modules:
        sys.modules.pop(module, None)


def test_every_hook_and_kind_has_a_section_and_an_example():
    text = GUIDE.read_text()
    kinds_with_examples = {kind for kind, _, _ in EXAMPLES}
    assert kinds_with_examples == set(hookspecs.HOOK_FOR_KIND)
    for hook in hookspecs.HOOK_FOR_KIND.values():
        assert f"`{hook}`" in text, f"docs/plugins.md does not document {hook}"
    readme = (GUIDE.parents[1] / "README.md").read_text()
    assert "docs/plugins.md" in readme


def test_every_example_runs_through_the_engine_and_the_evaluator(guide_manager, tmp_path):
    for kind, name, params in EXAMPLES:
        if kind == "publisher":
            params = {"repo": str(tmp_path / "entries")}
        assert guide_manager.info_of(kind, name).distribution == "rftbench-guide-examples"
        check(kind, name, params, manager=guide_manager).assert_ok()


def test_the_guides_own_test_example_passes(guide_manager, monkeypatch):
    import importlib
    import sys

    tests = [Path(p).stem for p in blocks() if p.startswith("test_")]
    assert tests, "the guide shows how to test a plugin"
    for name in tests:
        module = importlib.import_module(name)
        for attr in dir(module):
            if attr.startswith("test_"):
                getattr(module, attr)()
        sys.modules.pop(name, None)


def test_the_alias_example_reads_as_written(guide_manager):
    from rftbench.config import load_config

    config = load_config(overrides=["loss=weighted_at", "loss.lambda=0.3"], manager=guide_manager)
    assert config.to_dict()["loss"] == {"name": "weighted_at", "lambda": 0.3}
    assert guide_manager.get("loss", "weighted_at").build(**config.loss.params).lam == 0.3


def test_the_example_threat_model_stays_in_its_ball(guide_manager):
    import torch

    threat = guide_manager.get("threat_model", "uniform-noise").build(eps="8/255")
    x = torch.rand(2, 3, 8, 8)
    assert (threat.perturb(None, x, None) - x).abs().max() <= 8 / 255 + 1e-6


def test_the_guides_attack_keeps_restarts_random_start_x_init_and_early_stop_as_pgd(guide_manager):
    """Written with rftbench.attacks' public helpers, the guide's attack given pgd's objective is pgd, bit for bit."""
    import importlib
    import itertools

    import torch

    from rftbench.attacks import cross_entropy, pgd

    margin_pgd = importlib.import_module("guide_margin_attack").margin_pgd
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5))
    x, y = torch.rand(12, 3, 4, 4), torch.randint(0, 5, (12,))
    x_init = (x + 0.001 * torch.randn(x.shape)).clamp(0, 1)
    for norm, restarts, early_stop, random_start, start in itertools.product(("linf", "l2"), (1, 3), (False, True),
                                                                              (False, True), (None, x_init)):
        kw = dict(norm=norm, eps=8 / 255 if norm == "linf" else 0.5, steps=4, restarts=restarts, early_stop=early_stop,
                  random_start=random_start, x_init=start)
        ours = margin_pgd(model, x, y, generator=torch.Generator().manual_seed(1), objective=cross_entropy, **kw)
        theirs = pgd(model, x, y, generator=torch.Generator().manual_seed(1), **kw)
        assert torch.equal(ours, theirs), kw
    # its own objective, the margin: within the ball and the box, and it moves off x
    out = margin_pgd(model, x, y, norm="linf", eps=8 / 255, steps=4, random_start=False)
    assert (out - x).abs().max() <= 8 / 255 + 1e-6 and 0 <= out.min() and out.max() <= 1 and not torch.equal(out, x)
