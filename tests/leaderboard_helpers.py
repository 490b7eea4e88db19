"""Tiny result records and entries shared by the leaderboard tests (no training involved)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rftbench.leaderboard.entry import Entry
from rftbench.leaderboard.records import entry_from_record
from rftbench.plugins import PluginManager
from rftbench.results import ResultRecord

DATE = datetime(2025, 9, 1, 12, 0, tzinfo=timezone.utc)
CKPT_REV = "0123456789abcdef0123456789abcdef01234567"


def make_record(run_id: str = "a1b2c3d4e5f60718", *, clean: float = 0.81, linf: float = 0.42, **config: Any) -> ResultRecord:
    """A complete record in the engine's shape: resolved config dict, metrics per threat label."""
    cfg = {
        "representation": "mini_resnet.shapes_standard",
        "dataset": "digits",
        "protocol": "fft",
        "loss": {"name": "trades", "beta": 6.0},
        "threat": {"name": "linf", "eps": "4/255"},
        "eps_schedule": "constant",
        "lr_schedule": "cosine",
        "epochs": 3,
        "n_eval": 64,
        "evaluation": [{"name": "linf", "eps": "4/255"}, {"name": "l2", "eps": 0.5}],
        **config,
    }
    return ResultRecord(
        id=run_id,
        config=cfg,
        metrics={
            "clean_acc": clean,
            "threats": {"linf:4/255": {"acc": linf, "loss": 1.25}, "l2:0.5": {"acc": 0.5}},
            "expected_robustness": {"value": 0.6},
            "margin_consistency": {"kendall_tau": 0.7},
        },
        provenance={"rftbench": "0.1.0", "torch": "2.15", "device": "cpu", "weights": {"source": "recipe"}},
    )


def make_entry(run_id: str = "a1b2c3d4e5f60718", *, checkpoint: bool = True, **kw: Any) -> Entry:
    ckpt = {"repo": "alice/mini-rft", "revision": CKPT_REV} if checkpoint else None
    # an empty plugin manager: no zoo card, so the model labels stay empty (and nothing slow loads)
    return entry_from_record(make_record(run_id, **kw), checkpoint=ckpt, submitter="alice", date=DATE, manager=PluginManager())
