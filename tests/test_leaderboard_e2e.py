"""From a real run to a verified leaderboard entry: run → upload → submit → check → merge → verify.

Uses the engine (``rftbench.run``, ``rftbench.load_model``), the offline dataset and mini
backbone, the evaluator, and the real huggingface_hub client against the fake Hub server.
"""

from __future__ import annotations

import json

import pytest

from hub_server import WRITE_TOKEN, fake_hub, hub_env  # noqa: F401 - fixtures
from tests.cli_helpers import run_cli as cli

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("protocol", ["fft", "{name: lora, r: 4}"])  # lora: model.json names it, load_model adds the layers
def test_run_submit_check_verify(fake_hub, builtins, tmp_path, capsys, monkeypatch, protocol):
    runner = pytest.importorskip("rftbench.runner", reason="the engine's runner is not installed")
    if "digits" not in builtins.names("dataset"):
        pytest.skip("the offline 'digits' dataset is not installed")
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    # mini_resnet.scratch: no pretraining recipe to build, so the run takes seconds
    record = runner.run(None, overrides=[
        "representation=mini_resnet.scratch", f"protocol={protocol}", "epochs=1", "n_eval=32", "batch_size=32", f"output_dir={tmp_path / 'runs'}",
        "evaluation=[{name: linf, eps: 4/255, attack: pgd, steps: 2, seed: 0}]",
    ])
    run_dir = tmp_path / "runs" / record.id
    files = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name.startswith("model")}
    assert {"model.json", "model.safetensors"} <= set(files)
    sha = fake_hub.create_repo("alice/mini-rft", repo_type="model", files=files).branches["main"]

    code, out, err = cli(capsys, "submit", str(run_dir), "--repo", "org/board", "--endpoint", fake_hub.url,
                         "--checkpoint", f"alice/mini-rft@{sha}", "--outbox", str(tmp_path / "outbox"))
    assert code == 0, err
    assert "/datasets/org/board/discussions/1" in out

    code, out, err = cli(capsys, "leaderboard", "check", "--repo", "org/board", "--pr", "1", "--endpoint", fake_hub.url, "--json")
    assert code == 0 and json.loads(out)["ok"], out + err
    fake_hub.merge("org/board", 1)

    board = fake_hub.repos[("dataset", "org/board")]
    [path] = [p for p in board.commits[board.branches["main"]] if p.startswith("entries/")]
    entry_id = path.split("/")[1].removesuffix(".json")
    code, out, err = cli(capsys, "verify", entry_id[:8], "--repo", "org/board", "--endpoint", fake_hub.url,
                         "--n", "32", "--json")
    report = json.loads(out)
    assert code == 0 and report["verified"], out + err
    assert [c["key"] for c in report["comparisons"]] == ["clean_acc", "linf:4/255"]
    assert all(c["measured"] == pytest.approx(c["claimed"], abs=1e-6) for c in report["comparisons"])
