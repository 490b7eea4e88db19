"""Weights a zoo recipe builds go through the one atomic write and permission policy (issue 23 §5)."""

from __future__ import annotations

import os
import stat
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from torch import nn


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_recipe_weights_follow_the_umask_and_leave_no_temporary_file(builtins, monkeypatch, tmp_path, umask_022):
    """safetensors alone creates 0600: the built backbone must get 0666 less the umask, as records and run weights do."""
    import rftbench.runner as runner
    from rftbench.plugins import get_manager
    from rftbench_plugins import _recipes

    card = get_manager().get("representation", "mini_resnet.scenes_standard")
    torch.manual_seed(0)
    backbone = nn.Linear(3, 2)
    record = SimpleNamespace(id="r" * 16, run_dir=str(tmp_path / "run"), metrics={"clean_acc": 0.5, "threats": {}})
    monkeypatch.setattr(runner, "run", lambda config, **kwargs: record)
    monkeypatch.setattr(runner, "load_model", lambda run_dir, **kwargs: SimpleNamespace(backbone=backbone))
    path = tmp_path / "weights" / "card.safetensors"
    path.parent.mkdir()
    info = _recipes.build_weights(card, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["card.json", "card.safetensors"]  # no temporary left
    saved = load_file(str(path))
    assert set(saved) == {"weight", "bias"} and torch.equal(saved["weight"], backbone.weight.detach())
    from rftbench.engine import sha256_file

    assert info["sha256"] == sha256_file(path)
