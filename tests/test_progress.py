"""Progress off a terminal: plain lines per epoch and every N seconds; on one, durations that read one way."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress

from rftbench.errors import ConfigError
from rftbench.progress import DurationColumn, LineProgress, Ticker, duration, interval, make_progress

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys
from rftbench.plugins import PluginManager, set_manager
import tests.plugins.engine_cards as cards
manager = PluginManager()
manager.load_entrypoints()
manager.register(cards, "engine_cards")
set_manager(manager)
import torch
torch.set_num_threads(1)
from rftbench.cli import main
main(sys.argv[1:])
"""


def test_durations_carry_their_unit():
    assert [duration(s) for s in (5.25, 59.9, 60, 16 * 60 + 5, 3600 + 2 * 60 + 59, None)] == \
        ["5.2s", "59.9s", "1m00s", "16m05s", "1h02m", "-"]


def test_a_terminal_gets_a_live_bar_with_unambiguous_times_and_a_file_gets_lines(tmp_path):
    with open(tmp_path / "log", "w") as f:
        assert isinstance(make_progress(Console(file=f)), LineProgress)
    bar = make_progress(Console(force_terminal=True))
    assert isinstance(bar, Progress) and sum(isinstance(c, DurationColumn) for c in bar.columns) == 2
    task = bar.add_task("epoch 1/1", total=100, stats="")
    bar.tasks[0].start_time = time.monotonic() - 16 * 60
    bar.update(task, completed=50)
    texts = [c.render(bar.tasks[0]).plain for c in bar.columns if isinstance(c, DurationColumn)]
    assert texts[0].startswith("16m0") and texts[1].startswith("ETA 16m")
    assert isinstance(make_progress(Console(file=open(os.devnull, "w")), enabled=False), Progress)  # disabled: Rich's, silent


def test_line_progress_prints_each_interval_and_at_the_end():
    console = Console(record=True, width=200, file=open(os.devnull, "w"))
    lines = LineProgress(console, images_per_step=16, every=3600)
    task = lines.add_task("epoch 1/2", total=4, stats="")
    for i in range(4):
        lines.update(task, completed=i + 1, stats=f"loss {1.0 / (i + 1):.3f}")
    out = console.export_text().splitlines()
    assert len(out) == 1 and out[0].startswith("epoch 1/2: step 4/4 (100%) · ") and "img/s" in out[0] and "loss 0.250" in out[0]
    lines.every = 0
    task = lines.add_task("epoch 2/2", total=4, stats="")
    lines.update(task, completed=1, stats="x")
    text = console.export_text()  # (export_text clears what it exported)
    assert text.startswith("epoch 2/2: step 1/4 (25%)") and "ETA " in text


def test_ticker_and_the_interval_variable(monkeypatch):
    console = Console(record=True, width=200, file=open(os.devnull, "w"))
    ticker = Ticker("linf:4/255", 100, console=console, every=0)
    time.sleep(0.01)
    ticker.tick(40)
    ticker.finish()
    out = console.export_text().splitlines()
    assert out[0].startswith("eval linf:4/255: 40/100 images (40%)") and "ETA" in out[0] and out[1].endswith("done")
    silent = Ticker("x", 10, console=console, enabled=False)
    silent.tick(5)
    silent.finish()
    assert console.export_text() == ""
    monkeypatch.setenv("RFTBENCH_PROGRESS_SECONDS", "2.5")
    assert interval() == 2.5
    monkeypatch.setenv("RFTBENCH_PROGRESS_SECONDS", "soon")
    with pytest.raises(ConfigError, match="RFTBENCH_PROGRESS_SECONDS"):
        interval()


@pytest.mark.slow
def test_run_into_a_file_shows_progress_lines_before_the_end(tmp_path):
    """`rftbench run > log 2>&1`: the epoch lines are in the file while the run is still going."""
    env = {**os.environ, "RFTBENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("RFTBENCH_PROGRESS_SECONDS", None)  # the default: a line per epoch, and every 30 s
    from tests.test_run import tiny

    argv = [a for pair in tiny(tmp_path, epochs=3) for a in ("--set", pair)]
    log = tmp_path / "log"
    with open(log, "w") as f:
        child = subprocess.Popen([sys.executable, "-c", CHILD, "run", *argv], stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        seen_while_running = ""
        deadline = time.monotonic() + 300
        while child.poll() is None and time.monotonic() < deadline:
            text = log.read_text()
            if "epoch 1/3: step 6/6 (100%)" in text:
                seen_while_running = text
                break
            time.sleep(0.05)
        code = child.wait(timeout=300)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert seen_while_running and "clean accuracy" not in seen_while_running, text[-3000:]
    for epoch in (1, 2, 3):
        assert f"epoch {epoch}/3: step 6/6 (100%) · " in text and "img/s · elapsed " in text
    assert "eval linf:4/255: 32/32 images (100%)" in text
    assert text.index("epoch 3/3: step 6/6") < text.index("clean accuracy")
