"""rftbench.engine.syncs: host–device synchronisations counted on the CPU, and the hot path's bound."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rftbench.engine import FusedStep, Precision
from rftbench.engine.syncs import count_syncs, host_read, host_work, sync_counter
from rftbench_plugins.losses import ClassicAT, Trades
from rftbench_plugins.threats import LinfParams, LpThreat
from tests.plugins.engine_cards import engine_manager  # noqa: F401

FP32 = Precision("fp32", "cpu")


def test_the_counter_sees_each_kind_of_sync_once():
    t = torch.tensor([0.5, -1.0, 2.0])
    with sync_counter() as count:
        t.sum().item()  # aten::item (its _local_scalar_dense is the same sync)
        bool(t.max() > 0)  # aten::is_nonzero
        t[t > 0]  # aten::index → nonzero
        with host_read():
            t.tolist()  # a marked read
    assert count.total == 4, count
    assert count.by_op["aten::item"] == 1 and count.by_op["aten::is_nonzero"] == 1 and count.by_op["aten::nonzero"] == 1
    assert count.by_op["rftbench::host_read"] == 1
    assert "4 syncs" in str(count)


def test_masked_arithmetic_and_host_work_and_the_data_loader_are_not_counted():
    t = torch.tensor([0.5, -1.0, 2.0])
    loader = DataLoader(TensorDataset(torch.arange(8.0), torch.arange(8)), batch_size=4)
    with sync_counter() as count:
        torch.where(t > 0, t, torch.zeros_like(t)).sum()
        with host_work():
            int(t.max())
        with host_work():  # creating the iterator draws the loader's base seed (an item() on the CPU)
            batches = iter(loader)
        for x, y in batches:
            x.mul(2)
    assert count.total == 0, count


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10))


def _threat(attack: str, steps: int) -> LpThreat:
    return LpThreat("linf", **LinfParams(eps="4/255", attack=attack, steps=steps).model_dump())


@pytest.mark.parametrize("loss, attack", [(Trades(6.0, "kl"), "apgd-ce"), (Trades(6.0, "ce"), "apgd-ce"), (ClassicAT(), "pgd")],
                         ids=["trades-kl+apgd-ce", "trades-ce+apgd-ce", "classic+pgd"])
def test_one_fused_step_of_the_default_paths_does_not_synchronise(loss, attack):
    model = _model()
    step = FusedStep(model, loss, _threat(attack, 10), torch.optim.AdamW(model.parameters(), lr=1e-3), FP32, check_finite=False)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 3, 8, 8, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    step(x, y, 4 / 255)  # warm-up (lazy optimiser state)
    _, count = count_syncs(step, x, y, 4 / 255)
    assert count.total <= 2, count  # the bound of issue 18; today it is 0
    assert count.total == 0, count


def test_the_early_stop_path_still_works_and_may_synchronise():
    from rftbench.attacks import apgd_ce

    model = _model().eval()
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 3, 8, 8, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    out, count = count_syncs(apgd_ce, model, x, y, norm="linf", eps=8 / 255, steps=5, early_stop=True)
    assert out.shape == x.shape and count.total > 0


def _robust_task(n: int = 32):
    """An untrained net and points labelled with its own predictions: at 2/255 most stay robust, a few fall."""
    model = _model().eval()
    x = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


@pytest.mark.parametrize("attack", ["apgd-ce", "pgd"])
def test_early_stopping_attacks_synchronise_a_fixed_number_of_times_whatever_their_steps(attack):
    from rftbench.attacks import apgd_ce, pgd

    fn = {"apgd-ce": apgd_ce, "pgd": pgd}[attack]
    model, x, y = _robust_task()
    counts = {}
    for steps in (10, 50, 100):
        out, count = count_syncs(fn, model, x, y, norm="linf", eps=2 / 255, steps=steps, early_stop=True, random_start=False)
        with torch.no_grad():
            robust = int((model(out).argmax(1) == y).sum())
        assert 0 < robust < len(x), robust  # some points fall, some stay: no early exit of the loop
        counts[steps] = count.total
    assert counts[10] == counts[50] == counts[100] <= 5, counts  # (APGD: the initial active set) + at most 4 compactions


def test_evaluation_synchronises_per_batch_not_per_attack_iteration():
    from torch.utils.data import TensorDataset

    from rftbench.evaluation.evaluate import evaluate

    model, x, y = _robust_task()
    data = TensorDataset(x, y)
    counts = {}
    for steps in (10, 50):
        suite = [{"name": "linf", "eps": "2/255", "attack": "apgd-ce", "steps": steps}]
        result, count = count_syncs(evaluate, model, data, suite, batch_size=16, progress=False)
        assert 0 < result["threats"]["linf:2/255"]["acc"] < result["clean_acc"]
        counts[steps] = count.total
    assert counts[10] == counts[50], counts


def test_the_finite_check_of_a_standalone_step_is_one_sync():
    model = _model()
    step = FusedStep(model, ClassicAT(), _threat("pgd", 2), torch.optim.SGD(model.parameters(), lr=0.1), FP32)
    x, y = torch.rand(4, 3, 8, 8), torch.randint(0, 10, (4,))
    _, count = count_syncs(step, x, y, 4 / 255)
    assert count.total == 1, count


@pytest.mark.parametrize("loss, threat, log_every", [
    ("trades", "{name: linf, eps: 4/255}", "1"),  # the default: TRADES + APGD-CE 10 steps
    ("classic_at", "{name: linf, eps: 4/255, attack: pgd, steps: 10}", "auto"),
], ids=["trades+apgd-ce", "classic+pgd"])
def test_training_makes_at_most_two_syncs_per_optimiser_step(engine_manager, tmp_path, loss, threat, log_every):
    from rftbench.config import load_config
    from rftbench.engine.trainer import Trainer
    from rftbench.runner import prepare

    overrides = [
        "representation=micro_resnet.test", "dataset=digits_small", "epochs=1", "batch_size=16", f"loss={loss}",
        f"threat={threat}", f"log_every={log_every}", f"output_dir={tmp_path}", "device=cpu", "precision=fp32",
    ]
    config = load_config(overrides=overrides, manager=engine_manager)
    setup = prepare(config, engine_manager)
    trainer = Trainer(config, setup.model, setup.data, setup.parts, device=setup.device, precision=setup.precision,
                      channels_last=setup.channels_last, progress=False)
    with sync_counter() as count:
        state = trainer.fit()
    steps = trainer.micro_per_epoch // trainer.accumulation
    assert steps >= 4 and state.running["n"] == steps * 16
    assert count.total <= 2 * steps, f"{count} in {steps} optimiser steps"
    if log_every == "1":  # one read per step (+ the validation split's one read)
        assert count.by_op["rftbench::host_read"] >= steps


def test_a_nan_read_late_still_names_its_step_and_keeps_the_last_good_checkpoint(engine_manager, tmp_path):
    from rftbench import run
    from rftbench.engine import NonFiniteLossError
    from tests.test_run import BadPlugin, NanAfter, tiny

    engine_manager.register(BadPlugin(), "bad")
    NanAfter.calls = 0
    # read only at the epoch's end: the NaN of epoch 2, step 3 is found 3 steps later, before any checkpoint
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2, step 3 .*last good checkpoint \(e0001-s000000\) is kept"):
        run(overrides=tiny(tmp_path, loss="nan-after", log_every=1000), manager=engine_manager)


def test_the_curves_do_not_depend_on_when_the_statistics_are_read(engine_manager, tmp_path):
    from rftbench import run
    from tests.test_run import tiny

    every = run(overrides=tiny(tmp_path / "a", log_every=1), manager=engine_manager)
    rarely = run(overrides=tiny(tmp_path / "b", log_every=1000), manager=engine_manager)
    assert every.id == rarely.id  # log_every is not part of the result
    assert "CPUs" in every.provenance["threads_reason"]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert every.curves[key] == rarely.curves[key]
    assert every.metrics["clean_acc"] == rarely.metrics["clean_acc"]
    assert {k: v["acc"] for k, v in every.metrics["threats"].items()} == {k: v["acc"] for k, v in rarely.metrics["threats"].items()}
