"""rftbench verify: download a pinned checkpoint from a fake Hub, re-evaluate it, compare with the entry."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save
from torch import nn

import rftbench_plugins.attacks as attacks_plugin
import rftbench_plugins.threats as threats_plugin
from hub_server import WRITE_TOKEN, fake_hub, hub_env  # noqa: F401 - fixtures
from leaderboard_helpers import make_entry
from rftbench.evaluation import evaluate
from rftbench.leaderboard.entry import load_entry
from rftbench.leaderboard.errors import RepoNotFoundError, VerificationError
from rftbench.leaderboard.verify import allowed_difference, threat_suite, verify_entry

SUITE = [{"name": "linf", "eps": "4/255", "attack": "pgd", "steps": 2, "seed": 0}]


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))


def tiny_data() -> torch.utils.data.TensorDataset:
    gen = torch.Generator().manual_seed(1)
    return torch.utils.data.TensorDataset(torch.rand(40, 3, 4, 4, generator=gen), torch.randint(0, 3, (40,), generator=gen))


def load(folder, **_):
    """Stands in for rftbench.load_model(run_dir, *, device, manager) with the tiny model."""
    from safetensors.torch import load_file

    model = tiny_model()
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model


@pytest.fixture
def manager(fresh_manager):
    fresh_manager.register(threats_plugin, "threats")
    fresh_manager.register(attacks_plugin, "attacks")  # the attacks the threat models run
    return fresh_manager


@pytest.fixture
def checkpoint(fake_hub):
    """The tiny model's weights in a model repo on the fake Hub; returns (repo, pinned sha, true numbers)."""
    model = tiny_model()
    repo = fake_hub.create_repo("alice/mini-rft", repo_type="model", files={"model.safetensors": save(model.state_dict())})
    sha = repo.branches["main"]
    # the branch moves on afterwards: verify must use the pinned commit, not main
    repo.branches["main"] = repo.commit({"model.safetensors": save(nn.Sequential(nn.Flatten(), nn.Linear(48, 3)).state_dict())}, sha, "retrain")
    return "alice/mini-rft", sha


def entry_claiming(clean: float, linf: float, sha: str, n_eval: int = 40):
    entry = make_entry(clean=clean, linf=linf)
    data = entry.model_dump(exclude={"id", "content_hash", "verification"})
    data["config"] = {**data["config"], "evaluation": SUITE, "seed": 0}
    data["metrics"] = {"clean_acc": clean, "threats": {"linf:4/255": {"norm": "linf", "eps": 4 / 255, "acc": linf}}, "n_eval": n_eval}
    data["checkpoint"] = {"repo": "alice/mini-rft", "revision": sha}
    return type(entry).seal(**data)


def truth(manager):
    """The pinned model's real numbers (tiny_model() is seeded: the same weights as the pinned file)."""
    result = evaluate(tiny_model(), tiny_data(), SUITE, n_examples=40, seed=0, manager=manager, progress=False)
    return result["clean_acc"], result["threats"]["linf:4/255"]["acc"]


def test_honest_entry_is_verified(fake_hub, manager, checkpoint):
    _, sha = checkpoint
    clean, linf = truth(manager)
    entry = entry_claiming(clean, linf, sha)
    result = verify_entry(entry, n=40, endpoint=fake_hub.url, manager=manager, load=load, data=tiny_data())
    assert result.verified, result.report()
    assert [c.key for c in result.comparisons] == ["clean_acc", "linf:4/255"]
    assert all(c.allowed == pytest.approx(0.01) for c in result.comparisons)  # n = N: no sampling allowance
    block = result.verification()
    assert block.status == "verified" and block.measured["clean_acc"] == pytest.approx(clean)
    assert any(f"/alice/mini-rft/resolve/{sha}/" in path for _, path, _ in fake_hub.requests)


def test_inflated_claim_is_a_mismatch_with_both_numbers(fake_hub, manager, checkpoint):
    _, sha = checkpoint
    clean, linf = truth(manager)
    entry = entry_claiming(min(1.0, clean + 0.3), linf, sha)
    result = verify_entry(entry, n=40, endpoint=fake_hub.url, manager=manager, load=load, data=tiny_data())
    assert not result.verified
    report = result.report()
    assert f"claimed {min(1.0, clean + 0.3):.4f}, measured {clean:.4f}" in report and "MISMATCH" in report


def test_cli_verify_writes_the_verification(fake_hub, manager, checkpoint, tmp_path, capsys, monkeypatch):
    _, sha = checkpoint
    clean, linf = truth(manager)
    path = tmp_path / "entry.json"
    path.write_text(entry_claiming(clean, linf, sha).to_json())
    import rftbench

    monkeypatch.setattr(rftbench, "load_model", load, raising=False)
    monkeypatch.setattr("rftbench.leaderboard.verify.default_test_data", lambda entry, manager=None: tiny_data())
    from rftbench.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["verify", str(path), "--n", "40", "--endpoint", fake_hub.url, "--write", str(tmp_path / "v.json"), "--json"])
    assert exit_.value.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["verified"] and out["n"] == 40
    verified = load_entry(tmp_path / "v.json")
    assert verified.verification.status == "verified" and verified.content_hash == load_entry(path).content_hash


def test_sampling_allowance():
    assert allowed_difference(0.5, 100, None, 0.01) == pytest.approx(0.01 + 3 * 0.05)
    assert allowed_difference(0.5, 100, 400, 0.0) == pytest.approx(3 * (0.25 / 100 * 0.75) ** 0.5)
    assert allowed_difference(0.9, 500, 500, 0.02) == 0.02


def test_entry_without_checkpoint_or_unknown_repo(fake_hub, manager):
    entry = entry_claiming(0.5, 0.1, "ab" * 20)
    with pytest.raises(VerificationError, match="has no checkpoint"):
        verify_entry(entry.resealed(checkpoint=None), manager=manager, load=load, data=tiny_data())
    with pytest.raises(RepoNotFoundError, match="model repo 'alice/mini-rft' does not exist"):
        verify_entry(entry, endpoint=fake_hub.url, manager=manager, load=load, data=tiny_data())


def test_threats_the_installation_cannot_rebuild(fresh_manager):
    entry = entry_claiming(0.5, 0.1, "ab" * 20)
    with pytest.raises(VerificationError, match="no installed threat model reproduces linf:4/255"):
        threat_suite(entry, fresh_manager)


def _outcomes_checkpoint(fake_hub, manager, tmp_path, flip=()):
    """A checkpoint repo holding the model and its per-example outcomes (some points flipped), and the entry sealing them."""
    import hashlib

    import numpy as np

    from rftbench.outcomes import points_for, read_outcomes, write_outcomes

    result = evaluate(tiny_model(), tiny_data(), SUITE, n_examples=40, seed=0, manager=manager, progress=False,
                      output_dir=tmp_path, points=points_for("digits", manager))
    outcomes = read_outcomes(tmp_path / result["outcomes"]["file"], result["outcomes"]["sha256"])
    for i in flip:
        outcomes.correct["linf:4/255"][i] = not outcomes.correct["linf:4/255"][i]
    ref = write_outcomes(outcomes, tmp_path / "claimed.npz")
    data = (tmp_path / "claimed.npz").read_bytes()
    assert hashlib.sha256(data).hexdigest() == ref["sha256"]
    repo = fake_hub.create_repo("bob/mini-rft", repo_type="model",
                                files={"model.safetensors": save(tiny_model().state_dict()), f"outcomes-{ref['sha256'][:16]}.npz": data})
    sha = repo.branches["main"]
    linf = float(np.mean(outcomes.correct["linf:4/255"]))
    entry = entry_claiming(result["clean_acc"], linf, sha)
    fields = entry.model_dump(exclude={"id", "content_hash", "verification"})
    fields["checkpoint"] = {"repo": "bob/mini-rft", "revision": sha}
    fields["outcomes"] = {"file": f"outcomes-{ref['sha256'][:16]}.npz", "sha256": ref["sha256"], "points": ref["points"]}
    return type(entry).seal(**fields), ref


def test_per_example_outcomes_are_compared(fake_hub, manager, tmp_path):
    entry, _ = _outcomes_checkpoint(fake_hub, manager, tmp_path)
    result = verify_entry(entry, n=40, endpoint=fake_hub.url, manager=manager, load=load, data=tiny_data())
    assert result.agreement == {"clean_acc": 1.0, "linf:4/255": 1.0} and result.flipped["linf:4/255"] == []
    assert "100.0% agree; 0 flipped" in result.report()
    assert result.verification().agreement == {"clean_acc": 1.0, "linf:4/255": 1.0}


def test_flipped_points_are_named(fake_hub, manager, tmp_path):
    entry, _ = _outcomes_checkpoint(fake_hub, manager, tmp_path, flip=(3, 27))
    result = verify_entry(entry, n=40, endpoint=fake_hub.url, manager=manager, load=load, data=tiny_data())
    assert result.flipped["linf:4/255"] == [3, 27] and result.agreement["linf:4/255"] == pytest.approx(38 / 40)
    assert "2 flipped (test indices 3, 27)" in result.report()
    # on the first 20 points only one of them is compared
    result = verify_entry(entry, n=20, endpoint=fake_hub.url, manager=manager, load=load, data=tiny_data())
    assert result.n == 20 and result.flipped_count["linf:4/255"] == 1, result.report()
    assert result.flipped["linf:4/255"] == [3]


def test_altered_outcomes_in_the_checkpoint_are_an_error(fake_hub, manager, tmp_path):
    from rftbench.outcomes import OutcomesError

    entry, ref = _outcomes_checkpoint(fake_hub, manager, tmp_path)
    fields = entry.model_dump(exclude={"id", "content_hash", "verification"})
    fields["outcomes"] = {**fields["outcomes"], "sha256": "0" * 64}
    altered = type(entry).seal(**fields)
    with pytest.raises(OutcomesError, match="does not match"):
        verify_entry(altered, n=40, endpoint=fake_hub.url, manager=manager, load=load, data=tiny_data())


def test_entry_without_outcomes_says_totals_only(fake_hub, manager, checkpoint):
    _, sha = checkpoint
    clean, linf = truth(manager)
    result = verify_entry(entry_claiming(clean, linf, sha), n=40, endpoint=fake_hub.url, manager=manager, load=load, data=tiny_data())
    assert result.agreement == {} and "compared totals only" in result.report()


def test_a_claimed_union_is_re_measured(fake_hub, manager, checkpoint):
    """An entry's union accuracy is verified like the per-threat ones: an honest claim passes, a wrong one is a mismatch."""
    _, sha = checkpoint
    suite = SUITE + [{"name": "l2", "eps": 0.3, "attack": "pgd", "steps": 2, "seed": 0}]
    result = evaluate(tiny_model(), tiny_data(), suite, n_examples=40, seed=0, manager=manager, progress=False)
    linf, l2, union = result["threats"]["linf:4/255"]["acc"], result["threats"]["l2:0.3"]["acc"], result["union"]["acc"]

    def claiming(value):
        entry = make_entry()
        data = entry.model_dump(exclude={"id", "content_hash", "verification"})
        data["config"] = {**data["config"], "evaluation": suite, "seed": 0}
        data["metrics"] = {"clean_acc": result["clean_acc"], "n_eval": 40,
                           "threats": {"linf:4/255": {"norm": "linf", "eps": 4 / 255, "acc": linf}, "l2:0.3": {"norm": "l2", "eps": 0.3, "acc": l2}},
                           "union": {"acc": value, "of": ["linf:4/255", "l2:0.3"]}}
        data["checkpoint"] = {"repo": "alice/mini-rft", "revision": sha}
        return type(entry).seal(**data)

    honest = verify_entry(claiming(union), n=40, endpoint=fake_hub.url, manager=manager, load=load, data=tiny_data())
    assert honest.verified and [c.key for c in honest.comparisons][-1] == "union", honest.report()
    # a claim off by 15 points (below the measured one: a union above its threats is refused before verify runs)
    assert union >= 0.15
    wrong = verify_entry(claiming(union - 0.15), n=40, endpoint=fake_hub.url, manager=manager, load=load, data=tiny_data())
    assert not wrong.verified and f"claimed {union - 0.15:.4f}, measured {union:.4f}" in wrong.report()
