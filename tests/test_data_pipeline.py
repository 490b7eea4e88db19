"""The training data path (issue 18 item 3): workers, seeded examples, the decoded cache, device augmentation, bad input."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from rftbench import run
from rftbench.config import DataConfig, load_config, usable_cores
from rftbench.data import (
    DeviceAugment,
    EpochBatches,
    TrainSplit,
    build_data,
    cache_prepared,
    jitter_brightness,
    jitter_contrast,
    jitter_saturation,
    resolve_workers,
    rotate_batch,
)
from rftbench.engine import DataLoaderFailed, RunInterrupted
from rftbench.engine.trainer import describe_loader_error
from tests.cli_helpers import run_cli
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture
from tests.test_run import tiny

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _data(manager, **kw):
    rep = manager.get("representation", "micro_resnet.test")
    return build_data(rep, manager.get("dataset", "digits_small"), batch_size=16, seed=3, manager=manager, **kw)


# ------------------------------------------------------------------ config


def test_num_workers_and_cache_are_out_of_the_hash_device_augmentation_is_in():
    base = load_config().config_hash()
    assert load_config(overrides=["data.num_workers=0"]).config_hash() == base
    assert load_config(overrides=["data.cache=off"]).config_hash() == base
    assert load_config(overrides=["data.augment_on=device"]).config_hash() != base
    assert DataConfig().num_workers == "auto"


@pytest.mark.parametrize("value, words", [
    ("-1", "use 0 (load in the main process)"),
    (str(usable_cores() + 1), f"more than the {usable_cores()} CPU cores"),
    ("1.5", "whole number ≥ 0 or auto"),
    ("many", "whole number ≥ 0 or auto"),
    ("true", "boolean"),
])
def test_bad_num_workers_is_a_named_error_with_exit_2(capsys, tmp_path, value, words):
    code, out, err = run_cli(capsys, "run", "--set", f"data.num_workers={value}", "--set", f"output_dir={tmp_path}", "--no-progress")
    assert code == 2 and "data.num_workers" in err and words in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing trained


def test_auto_workers_is_a_share_of_the_usable_cores(monkeypatch):
    import rftbench.config as config

    monkeypatch.setattr(config, "usable_cores", lambda: 16)
    assert resolve_workers("auto", "cuda") == 8 and resolve_workers("auto", "cpu") == 4 and resolve_workers(3, "cpu") == 3
    monkeypatch.setattr(config, "usable_cores", lambda: 2)
    assert resolve_workers("auto", "cuda") == 1 and resolve_workers("auto", "cpu") == 0


# ------------------------------------------------------------------ seeded examples and the cache


def test_an_examples_augmentation_depends_on_seed_epoch_index_only(engine_manager):
    data = _data(engine_manager, cache=False)
    a = data.train[(2, 5)][0]
    torch.manual_seed(999)  # the global RNG does not matter
    assert torch.equal(data.train[(2, 5)][0], a)
    assert not torch.equal(data.train[(3, 5)][0], a)  # another epoch, another draw
    state = torch.get_rng_state()
    data.train[(2, 6)]
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left as it was


def test_an_examples_seeding_is_torch_manual_seed_on_the_cpu_without_its_lazy_device_seeding(monkeypatch):
    """The draw is the one ``torch.manual_seed(sample_seed(...))`` gives, but no formatted stack trace is
    queued per example for CUDA/XPU/MTIA (what ``torch.manual_seed`` does while they are not initialised)."""
    import traceback

    from rftbench.data import sample_seed

    base = torch.utils.data.TensorDataset(torch.zeros(4, 1, 2, 2), torch.arange(4))
    split = TrainSplit(base, lambda img: img, lambda img: img + torch.rand(img.shape), seed=7)
    stacks = []
    real = traceback.format_stack
    monkeypatch.setattr(traceback, "format_stack", lambda *a, **k: stacks.append(1) or real(*a, **k))
    got = [split[(1, i)][0] for i in range(4)]
    assert stacks == []
    monkeypatch.setattr(traceback, "format_stack", real)
    for i, img in enumerate(got):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(7, 1, i))
            assert torch.equal(img, torch.rand(1, 2, 2))


def test_batches_are_the_same_with_and_without_workers_and_with_the_cache(engine_manager):
    def epoch(data, e):
        data.train_batches.set_epoch(e)
        return [(x.clone(), y.clone()) for x, y in data.train_loader]

    plain = _data(engine_manager, cache=False, num_workers=0)
    assert plain.train.cache is None
    reference = epoch(plain, 1)
    cached = _data(engine_manager, cache=True, num_workers=2)
    assert cached.train.cache is not None and cached.train.cache[0].shape == (len(cached.train), 3, 16, 16)
    for (x0, y0), (x1, y1) in zip(reference, epoch(cached, 1), strict=True):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)
    assert not torch.equal(epoch(cached, 2)[0][0], reference[0][0])


def test_the_cache_keeps_8_bit_images_as_uint8_and_respects_its_budget():
    from PIL import Image

    class Pngs(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return Image.new("RGB", (40, 30), color=(i * 40, 10, 200)), i % 2

    from rftbench.data import _augment_transform, _prepare_transform
    from tests.test_data import REP

    split = TrainSplit(Pngs(), _prepare_transform(REP), _augment_transform(None, True), seed=0)
    assert not cache_prepared(split, budget=100) and split.cache is None
    uncached = [split[(0, i)][0] for i in range(6)]
    assert cache_prepared(split, budget=1 << 20)
    assert split.cache[0].dtype == torch.uint8 and split.cache[0].shape == (6, 3, 24, 24)
    for i in range(6):
        assert torch.equal(split[(0, i)][0], uncached[i])  # the same images, so the same results


def test_shards_of_a_global_batch_for_distributed_training():
    whole = list(EpochBatches(20, 8, seed=1))
    shards = [list(EpochBatches(20, 8, seed=1, rank=r, world=2)) for r in range(2)]
    for batch, a, b in zip(whole, *shards, strict=True):
        assert a == batch[0::2] and b == batch[1::2]


# ------------------------------------------------------------------ device augmentation


def test_device_augmentation_matches_torchvision_per_example():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 20, 28)
    factor = torch.tensor([0.8, 1.2, 1.0, 0.76]).view(4, 1, 1, 1)
    for mine, ref in ((jitter_brightness, TF.adjust_brightness), (jitter_contrast, TF.adjust_contrast),
                      (jitter_saturation, TF.adjust_saturation)):
        out = mine(x, factor)
        for i in range(4):
            torch.testing.assert_close(out[i], ref(x[i], float(factor[i])), atol=1e-6, rtol=0)
    angle = torch.tensor([1.5, -2.0, 0.3, 0.0])
    out = rotate_batch(x, angle)
    for i in range(4):
        assert torch.equal(out[i], TF.rotate(x[i], float(angle[i]), interpolation=TF.InterpolationMode.NEAREST))


def test_device_augmentation_draws_per_example_and_per_batch_seed():
    x = torch.rand(64, 3, 8, 8)
    aug = DeviceAugment(seed=0)
    a = aug(x, 0, 0)
    assert torch.equal(a, aug(x, 0, 0)) and not torch.equal(a, aug(x, 0, 1))
    flipped = [torch.equal(rotate_batch(x[i : i + 1].flip(-1), torch.zeros(1)), x[i : i + 1].flip(-1)) for i in range(2)]
    assert all(flipped)
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1
    uint8 = DeviceAugment(seed=0, flip=False)((x * 255).round().to(torch.uint8), 0, 0)
    assert uint8.dtype == torch.float32 and float(uint8.max()) <= 1
    # per-example parameters: the brightness of identical images differs within one batch
    same = torch.full((16, 3, 8, 8), 0.5)
    means = DeviceAugment(seed=0, flip=False, degrees=0.0)(same, 0, 0).mean((1, 2, 3))
    assert len(set(means.tolist())) > 8


def test_a_run_with_device_augmentation(engine_manager, tmp_path):
    record = run(overrides=tiny(tmp_path, epochs=1, **{"data.augment_on": "device"}), manager=engine_manager)
    assert record.status == "complete" and record.config["data"]["augment_on"] == "device"


# ------------------------------------------------------------------ resume with workers, a worker that dies


@pytest.mark.slow
def test_an_interrupted_run_with_workers_resumes_to_the_uninterrupted_result(engine_manager, tmp_path):
    whole = run(overrides=tiny(tmp_path / "a", **{"data.num_workers": 0}), manager=engine_manager)

    def ctrl_c(trainer, epoch, step):
        if (epoch, step) == (0, 3):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(RunInterrupted):
        run(overrides=tiny(tmp_path / "b", **{"data.num_workers": 2}), manager=engine_manager, callback=ctrl_c)
    resumed = run(overrides=tiny(tmp_path / "b", **{"data.num_workers": 2}), manager=engine_manager)
    assert resumed.provenance["resumed_from_steps"] == [3]
    assert resumed.provenance["model_sha256"] == whole.provenance["model_sha256"]
    assert resumed.curves["train_loss"] == whole.curves["train_loss"]
    assert resumed.metrics["clean_acc"] == whole.metrics["clean_acc"]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_worker_that_dies_stops_the_run_keeps_the_checkpoint_and_a_rerun_resumes(engine_manager, tmp_path, monkeypatch, how):
    settings = {"data.num_workers": 1, "data.cache": "false"}
    whole = run(overrides=tiny(tmp_path / "a", **settings), manager=engine_manager)
    main_pid = os.getpid()
    original = TrainSplit.__getitem__

    def dying(self, index):
        if isinstance(index, tuple) and index[0] == 1 and os.getpid() != main_pid:  # in a worker, in epoch 2
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise MemoryError("boom in the loader")
        return original(self, index)

    monkeypatch.setattr(TrainSplit, "__getitem__", dying)
    with pytest.raises(DataLoaderFailed) as caught:
        run(overrides=tiny(tmp_path / "b", **settings), manager=engine_manager)
    message = str(caught.value)
    assert "training-data worker failed" in message and "epoch 2" in message and "run the same command again" in message
    assert ("worker process 0" in message and "boom in the loader" in message) if how == "raise" else "pid" in message
    ckpt = tmp_path / "b" / "runs" / whole.id / "checkpoints" / "LATEST"
    assert ckpt.is_file()
    monkeypatch.setattr(TrainSplit, "__getitem__", original)
    resumed = run(overrides=tiny(tmp_path / "b", **settings), manager=engine_manager)
    assert resumed.provenance["resumed_from_steps"] and resumed.provenance["model_sha256"] == whole.provenance["model_sha256"]


def test_describe_loader_error():
    err = RuntimeError("Caught ValueError in DataLoader worker process 3.\nOriginal Traceback (most recent call last):\n  x\nValueError: bad")
    assert describe_loader_error(err) == "Caught ValueError in DataLoader worker process 3: ValueError: bad"
    assert describe_loader_error(RuntimeError("DataLoader worker (pid 12) is killed by signal: Killed.")).startswith("DataLoader worker (pid 12)")
