"""rftbench.runner: `run(config)` end to end on test-size cards, resume, load_model and bad input."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from rftbench import hookimpl, load_model, run
from rftbench.config import load_config
from rftbench.engine import CheckpointError, NonFiniteLossError, RunInterrupted
from rftbench.errors import ConfigError
from rftbench.results import read_record
from rftbench.specs import LossSpec, NoParams, ProtocolSpec
from rftbench_plugins.losses import ClassicAT
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def tiny(tmp_path: Path, **extra) -> list[str]:
    values = {
        "representation": "micro_resnet.test", "dataset": "digits_small", "epochs": 2, "batch_size": 16,
        "threat": "{name: linf, eps: 4/255, attack: pgd, steps: 2}", "loss": "trades",
        "evaluation": "[{name: linf, eps: 4/255, attack: pgd, steps: 3}]", "n_eval": 32,
        "output_dir": str(tmp_path / "runs"), "optimizer.lr_backbone": 0.01, "optimizer.lr_head": 0.01,
        "seed": 0,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def test_run_writes_a_complete_record_and_a_loadable_model(engine_manager, tmp_path):
    record = run(overrides=tiny(tmp_path), manager=engine_manager)
    config = load_config(overrides=tiny(tmp_path), manager=engine_manager)
    path = tmp_path / "runs" / f"{config.config_hash()}.json"
    assert record.id == config.config_hash() and path.is_file()
    on_disk = read_record(path)
    assert on_disk.status == "complete" and on_disk.config == config.to_dict()
    assert set(on_disk.metrics) >= {"clean_acc", "threats"} and "linf:4/255" in on_disk.metrics["threats"]
    assert on_disk.curves["epoch"] == [1, 2] and len(on_disk.curves["val_acc"]) == 2
    assert on_disk.timings["train_images_per_s"] > 0
    # the plots are named relative to the record's folder (tmp_path is absolute), like the per-example file
    assert on_disk.metrics["plots"] and all(p.startswith(f"{record.id}/") and (path.parent / p).is_file() for p in on_disk.metrics["plots"])
    prov = on_disk.provenance
    assert prov["plugins"]["loss"]["plugin"] == "losses" and prov["plugins"]["representation"]["plugin"] == "engine_cards"
    assert prov["torch"] == torch.__version__ and len(prov["model_sha256"]) == 64
    assert not (tmp_path / "runs" / record.id / "checkpoints").exists()  # removed once the record is written
    model = load_model(tmp_path / "runs" / record.id, manager=engine_manager)
    assert isinstance(model, torch.nn.Module) and not model.training
    from rftbench.data import build_data

    data = build_data(engine_manager.get("representation", "micro_resnet.test"), engine_manager.get("dataset", "digits_small"),
                      batch_size=16, manager=engine_manager)
    x = torch.stack([data.test[i][0] for i in range(32)])
    y = torch.tensor([data.test[i][1] for i in range(32)])
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc == pytest.approx(on_disk.metrics["clean_acc"], abs=1e-6)
    # the same config again returns the stored record without training
    again = run(overrides=tiny(tmp_path), manager=engine_manager)
    assert again.created == record.created


@pytest.mark.parametrize("stop_at", [(0, 2), (1, 0)])
def test_an_interrupted_run_resumes_to_the_same_result(engine_manager, tmp_path, stop_at):
    whole = run(overrides=tiny(tmp_path / "a"), manager=engine_manager)

    def ctrl_c(trainer, epoch, step):
        if (epoch, step) == stop_at or (stop_at[1] == 0 and epoch == stop_at[0] and step == trainer.micro_per_epoch):
            os.kill(os.getpid(), signal.SIGINT)  # the real Ctrl-C path: the handler asks the loop to stop

    with pytest.raises(RunInterrupted, match="Run the same command again to resume"):
        run(overrides=tiny(tmp_path / "b"), manager=engine_manager, callback=ctrl_c)
    digest = whole.id
    assert (tmp_path / "b" / "runs" / digest / "checkpoints" / "LATEST").is_file()
    assert not (tmp_path / "b" / "runs" / f"{digest}.json").exists()
    resumed = run(overrides=tiny(tmp_path / "b"), manager=engine_manager)
    assert resumed.provenance["resumed_from_steps"]
    assert resumed.provenance["model_sha256"] == whole.provenance["model_sha256"]
    assert resumed.metrics["clean_acc"] == whole.metrics["clean_acc"]
    assert resumed.curves["train_loss"] == whole.curves["train_loss"]


def test_a_corrupt_checkpoint_is_refused(engine_manager, tmp_path):
    def stop(trainer, epoch, step):
        if epoch == 1:
            trainer.request_stop()

    with pytest.raises(RunInterrupted):
        run(overrides=tiny(tmp_path), manager=engine_manager, callback=stop)
    ckpt_root = next((tmp_path / "runs").glob("*/checkpoints"))
    folder = ckpt_root / (ckpt_root / "LATEST").read_text().strip()
    weights = folder / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-5] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match=r"model.safetensors: checksum mismatch .* not used; delete .* --restart"):
        run(overrides=tiny(tmp_path), manager=engine_manager)
    # --restart ignores it and trains from scratch
    assert run(overrides=tiny(tmp_path), manager=engine_manager, resume=False).status == "complete"


def test_batch_larger_than_the_dataset(engine_manager, tmp_path):
    with pytest.raises(ConfigError, match=r"batch_size = 500 is larger than the train split of dataset 'digits_small' \(96 images\)"):
        run(overrides=tiny(tmp_path, batch_size=500), manager=engine_manager)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*.json"))


def test_classes_that_do_not_match_the_head(engine_manager, tmp_path):
    with pytest.raises(ConfigError, match=r"dataset 'digits_wrong_classes': .*10 classes but the card's num_classes .* is 5"):
        run(overrides=tiny(tmp_path, dataset="digits_wrong_classes"), manager=engine_manager)


def test_unknown_names_are_refused_naming_the_field(engine_manager, tmp_path):
    with pytest.raises(ConfigError, match=r"loss: Unknown loss 'tradez'.\n.*Did you mean: trades"):
        run(overrides=tiny(tmp_path, loss="tradez"), manager=engine_manager)
    with pytest.raises(ConfigError, match=r"protocol: Unknown protocol"):
        run(overrides=tiny(tmp_path, protocol="lpp"), manager=engine_manager)
    with pytest.raises(ConfigError, match=r"eps_schedule: Unknown schedule"):
        run(overrides=tiny(tmp_path, eps_schedule="epsilon-schedule"), manager=engine_manager)


class FreezeAll:
    def trainable(self, model, epoch, epochs):
        return set()


class NanAfter(ClassicAT):
    calls = 0

    def __call__(self, y, *, clean=None, adv=None):
        NanAfter.calls += 1
        value = super().__call__(y, clean=clean, adv=adv)
        return value * float("nan") if NanAfter.calls > 8 else value


class BadPlugin:
    @hookimpl
    def rftbench_add_protocols(self):
        return [ProtocolSpec(name="freeze-all", params=NoParams, factory=FreezeAll, description="trains nothing")]

    @hookimpl
    def rftbench_add_losses(self):
        return [LossSpec(name="nan-after", params=NoParams, factory=NanAfter, description="NaN from the 9th batch")]


def test_a_protocol_that_freezes_everything(engine_manager, tmp_path):
    engine_manager.register(BadPlugin(), "bad")
    with pytest.raises(ConfigError, match=r"protocol: 'freeze-all' leaves no parameter trainable in epoch 1 of 2"):
        run(overrides=tiny(tmp_path, protocol="freeze-all"), manager=engine_manager)


def test_nan_guard_stops_keeps_the_last_good_checkpoint_and_the_old_record(engine_manager, tmp_path):
    engine_manager.register(BadPlugin(), "bad")
    NanAfter.calls = 0
    overrides = tiny(tmp_path, loss="nan-after")
    config = load_config(overrides=overrides, manager=engine_manager)
    record_path = tmp_path / "runs" / f"{config.config_hash()}.json"
    record_path.parent.mkdir(parents=True)
    record_path.write_text(json.dumps({"id": config.config_hash(), "config": config.to_dict(), "status": "complete", "metrics": {"clean_acc": 0.5}}))
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2, step 3 .*last good checkpoint \(e0001-s000000\) is kept"):
        run(overrides=overrides, manager=engine_manager, rerun=True)
    assert read_record(record_path).metrics == {"clean_acc": 0.5}  # the earlier record is untouched
    assert (record_path.with_suffix("") / "checkpoints" / "e0001-s000000" / "manifest.json").is_file()


def test_a_dict_config_and_its_errors(engine_manager, tmp_path):
    data = {k: v for k, v in (a.split("=", 1) for a in tiny(tmp_path))}
    import yaml

    config = {k: yaml.safe_load(v) for k, v in data.items() if "." not in k}
    config["optimizer"] = {"lr_backbone": 0.01, "lr_head": 0.01}
    record = run(config, manager=engine_manager)
    assert record.status == "complete" and record.config["optimizer"]["lr_head"] == 0.01
    with pytest.raises(ConfigError, match=r"invalid run config:\n  epochs: Input should be greater than or equal to 1"):
        run({**config, "epochs": 0}, manager=engine_manager)
