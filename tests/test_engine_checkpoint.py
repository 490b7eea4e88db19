"""rftbench.engine.checkpoint: safetensors weights + state, atomic LATEST, checksum verification."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from rftbench.engine import CheckpointError, CheckpointStore, load_weights, save_weights


def net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))


def test_round_trip_and_pointer(tmp_path):
    store = CheckpointStore(tmp_path, "abc")
    a = net(0)
    state = {"optimizer": {"lr": 0.1}, "rng": torch.get_rng_state(), "list": [1, 2.5, None]}
    store.save(a, state, epoch=1, step=0)
    store.save(a, state, epoch=2, step=3)
    assert (tmp_path / "checkpoints" / "LATEST").read_text() == "e0002-s000003"
    assert not (tmp_path / "checkpoints" / "e0001-s000000").exists()  # the previous one is removed after the move
    b = net(1)
    ckpt = store.load(b)
    assert (ckpt.epoch, ckpt.step) == (2, 3) and ckpt.state["list"] == [1, 2.5, None]
    assert torch.equal(ckpt.state["rng"], state["rng"])
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


@pytest.mark.parametrize("victim", ["model.safetensors", "state.pt"])
def test_corruption_is_detected_and_named(tmp_path, victim):
    store = CheckpointStore(tmp_path, "abc")
    folder = store.save(net(0), {"x": 1}, epoch=1, step=0)
    blob = bytearray((folder / victim).read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (folder / victim).write_bytes(bytes(blob))
    model = net(1)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(CheckpointError, match=rf"{victim}: checksum mismatch .*not used"):
        store.load(model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # nothing was loaded


def test_other_config_missing_files_and_no_checkpoint(tmp_path):
    store = CheckpointStore(tmp_path, "abc")
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        store.load(net(0))
    folder = store.save(net(0), {}, epoch=1, step=0)
    with pytest.raises(CheckpointError, match="belongs to config 'abc', not 'xyz'"):
        CheckpointStore(tmp_path, "xyz").load(net(0))
    (folder / "state.pt").unlink()
    with pytest.raises(CheckpointError, match="state.pt: missing"):
        store.load(net(0))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.safetensors", "state.pt"}


def test_weights_with_checksum_and_shape_check(tmp_path):
    a = net(0).to(memory_format=torch.channels_last)
    sha = save_weights(a, tmp_path / "w.safetensors")
    b = net(1)
    load_weights(b, tmp_path / "w.safetensors", sha256=sha)
    assert torch.equal(a[0].weight, b[0].weight)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_weights(b, tmp_path / "w.safetensors", sha256="0" * 64)
    with pytest.raises(CheckpointError, match="do not fit the model"):
        load_weights(nn.Sequential(nn.Linear(2, 2)), tmp_path / "w.safetensors")


def test_a_failed_state_write_leaves_no_temporary_file_and_the_previous_checkpoint(tmp_path, monkeypatch):
    """state.pt goes through the one atomic write: a failure mid-write leaves nothing, and LATEST still loads."""
    import os
    import stat

    import rftbench.engine.checkpoint as checkpoint

    old = os.umask(0o022)
    try:
        store = CheckpointStore(tmp_path, "abc")
        store.save(net(0), {"k": 1}, epoch=1, step=0)
        assert stat.S_IMODE((tmp_path / "checkpoints" / "e0001-s000000" / "state.pt").stat().st_mode) == 0o644
        real_save = torch.save

        def disk_full(obj, f, *args, **kwargs):
            real_save(obj, f, *args, **kwargs)
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(checkpoint.torch, "save", disk_full)
        with pytest.raises(OSError, match="No space"):
            store.save(net(1), {"k": 2}, epoch=2, step=0)
    finally:
        os.umask(old)
    monkeypatch.undo()
    left = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "checkpoints").rglob("*"))
    assert left == ["checkpoints/LATEST", "checkpoints/e0001-s000000", "checkpoints/e0001-s000000/manifest.json",
                    "checkpoints/e0001-s000000/model.safetensors", "checkpoints/e0001-s000000/state.pt"]
    assert store.load(net(2)).state == {"k": 1}
