"""The example third-party plugin, installed for real and found through its entry-point metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rftbench.plugins import PluginManager

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "rftbench-example-plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """pip-install the example distribution into a private target folder (no network needed)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(EXAMPLE)],
        check=True,
    )
    assert list(target.glob("rftbench_example_plugin-*.dist-info/entry_points.txt"))
    return target


def test_discovered_through_entry_points(installed, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))
    manager = PluginManager()
    manager.load_entrypoints(only={"example"})
    info = manager.plugins["example"]
    assert (info.status, info.distribution, info.version) == ("ok", "rftbench-example-plugin", "0.1.0")
    spec = manager.get("threat_model", "uniform-noise")
    assert spec.plugin == "example"

    threat = spec.build(eps="8/255", seed=3)
    assert threat.label() == "uniform-noise:8/255"
    x = torch.rand(4, 3, 8, 8)
    x_noisy = threat.perturb(None, x, torch.zeros(4, dtype=torch.long))
    assert (x_noisy - x).abs().max() <= 8 / 255 + 1e-6
    assert (x_noisy != x).float().mean() > 0.9
    assert 0 <= x_noisy.min() and x_noisy.max() <= 1
    with pytest.raises(Exception, match="less than or equal to 1"):
        spec.build(eps=8)

    loss = manager.get("loss", "alp").build(pairing=2.0)
    clean, adv, y = torch.randn(5, 3), torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    expected = 0.5 * (F.cross_entropy(clean, y) + F.cross_entropy(adv, y)) + 2.0 * (clean - adv).pow(2).sum(1).mean()
    assert torch.allclose(loss(y, clean=clean, adv=adv), expected)
    assert loss.adversarial and loss.uses_clean and loss.uses_adv
    sys.modules.pop("rftbench_example", None)


def test_listed_by_the_cli(installed):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-m", "rftbench", "plugins", "--json"], capture_output=True, text=True, env=env, check=True
    ).stdout
    plugins = {p["name"]: p for p in json.loads(out)["plugins"]}
    assert plugins["example"]["contributions"] == {"loss": ["alp"], "threat_model": ["uniform-noise"]}
    assert plugins["example"]["distribution"] == "rftbench-example-plugin"
    assert plugins["zoo"]["distribution"] == "rftbench"
