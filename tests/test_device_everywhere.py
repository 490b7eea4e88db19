"""A bad device is a named error on every public path that takes one, before anything loads (issue 23 §2 row 9, §5)."""

from __future__ import annotations

import pytest
import torch

from rftbench.errors import ConfigError, RftbenchError


def test_load_model_names_a_bad_device_before_reading_the_run(tmp_path):
    from rftbench.trained import load_model

    with pytest.raises(ConfigError, match="device='bogus' is not a device"):
        load_model(tmp_path / "no-such-run", device="bogus")  # the device is checked first: no "not a run folder"


def test_verify_names_a_bad_device_before_downloading(monkeypatch, capsys):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from leaderboard_helpers import make_entry

    import rftbench.leaderboard.verify as verify

    downloads = []
    monkeypatch.setattr(verify, "download_checkpoint", lambda entry, **kw: downloads.append(entry) or None)
    monkeypatch.setattr(verify, "threat_suite", lambda entry, manager=None: [])
    with pytest.raises(RftbenchError, match="device='bogus'"):
        verify.verify_entry(make_entry(), device="bogus")
    assert downloads == []


def test_autoattack_run_names_a_bad_device():
    from rftbench.attacks.autoattack import AutoAttack

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x, y = torch.rand(2, 3, 2, 2), torch.tensor([0, 1])
    with pytest.raises(ConfigError, match="device='bogus'"):
        AutoAttack("linf", 4 / 255).run(model, x, y, device="bogus")
