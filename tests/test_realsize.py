"""Real size on CPU (issue 18 item 6): `rftbench run` with timm ResNet-50, ViT-S/16 and ConvNeXt-T at 224 px.

Random init (the weight-loading path is tested in test_timm_source), TRADES + APGD-CE 3 steps, one
optimiser step of batch 3 on a generated 224-px image folder, then evaluation under APGD-CE 3 steps.
"""

from __future__ import annotations

import functools
import json
import sys

import pytest

from tests.cli_helpers import run_cli
from tests.plugins import realsize_cards

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.slow]


@pytest.fixture
def realsize(builtins, tmp_path, monkeypatch):
    import torch

    from rftbench import model, prepare

    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "cache"))
    builtins.register(sys.modules[realsize_cards.__name__], "realsize_cards")
    realsize_cards.write_images(tmp_path / "data")
    # random init: prepare() builds with the card's weights, which these cards do not pin
    monkeypatch.setattr(prepare, "build_classifier", functools.partial(model.build_classifier, pretrained=False))
    threads = torch.get_num_threads()
    yield tmp_path
    torch.set_num_threads(threads)


# All three run in the slow suite: 33 s together on a quiet 2-core AMD EPYC (10, 9 and 7 s a run), minutes each
# on a loaded one.
@pytest.mark.parametrize("name", realsize_cards.MODELS)
def test_a_224px_timm_backbone_trains_and_evaluates_through_rftbench_run(realsize, capsys, name):
    tmp = realsize
    settings = {
        "representation": f"{name}.random", "dataset": "realsize224", "data_root": str(tmp / "data"), "epochs": 1,
        "batch_size": 3, "loss": "trades", "threat": "{name: linf, eps: 4/255, attack: apgd-ce, steps: 3}",
        "evaluation": "[{name: linf, eps: 4/255, attack: apgd-ce, steps: 3}]", "n_eval": 3, "precision": "fp32",
        "output_dir": str(tmp / "runs"), "data.num_workers": 0,
    }
    argv = [a for k, v in settings.items() for a in ("--set", f"{k}={v}")]
    code, out, err = run_cli(capsys, "run", *argv, "--no-progress", "--json")
    assert code == 0, err
    record = json.loads(next((tmp / "runs").glob("*.json")).read_text())
    assert record["status"] == "complete" and record["config"]["representation"] == f"{name}.random"
    assert record["curves"]["images_per_s"][0] > 0  # 3 train images: 1 step of 3
    assert "linf:4/255" in record["metrics"]["threats"]
    peak = record["timings"]["peak_host_memory_mb"]
    assert peak > 200  # a 22-28 M-parameter network at 224 px, with its activations
