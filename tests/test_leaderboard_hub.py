"""Submitting to the Hub: the real huggingface_hub client against a local fake Hub server."""

from __future__ import annotations

import json
import pytest

from hub_server import EXPIRED_TOKEN, READ_TOKEN, WRITE_TOKEN, FakeHub, fake_hub, hub_env  # noqa: F401 - fixtures
from leaderboard_helpers import make_entry, make_record
from rftbench.leaderboard.entry import load_entry
from rftbench.leaderboard.hub import HubLeaderboard, HubPublisher
from rftbench.results import write_record
import rftbench_plugins.hub_publisher as hub_publisher
from tests.cli_helpers import run_cli as run


@pytest.fixture
def manager(fresh_manager):
    fresh_manager.register(hub_publisher, "hub")
    return fresh_manager


@pytest.fixture
def record_file(tmp_path):
    return write_record(make_record(), tmp_path / "runs" / "a1b2c3d4e5f60718.json")


def submit(capsys, hub_url, record, outbox, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "submit", str(record), "--repo", "org/board", "--endpoint", hub_url, "--outbox", str(outbox),
               "--checkpoint", "alice/mini-rft@" + "ab" * 20, *extra)


def commits(hub: FakeHub) -> list[str]:
    return [path for method, path, _ in hub.requests if method == "POST" and "/commit/" in path]


def kept_files(outbox) -> list:
    return sorted(p for p in outbox.rglob("*.json"))


def test_submit_opens_a_pull_request(fake_hub, manager, record_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    code, out, err = submit(capsys, fake_hub.url, record_file, tmp_path / "outbox")
    assert code == 0, err
    repo = fake_hub.repos[("dataset", "org/board")]
    assert len(repo.prs) == 1 and repo.prs[0]["author"] == "alice"
    assert f"{fake_hub.url}/datasets/org/board/discussions/1" in out
    files = repo.commits[repo.prs[0]["sha"]]
    [path] = [p for p in files if p.startswith("entries/")]
    entry = load_entry(json.loads(files[path]))
    assert path == f"entries/{entry.id}.json"
    assert entry.submitter == "alice" and entry.checkpoint.revision == "ab" * 20
    assert entry.metrics.clean_acc == 0.81 and entry.run_id == "a1b2c3d4e5f60718"
    assert repo.commits[repo.branches["main"]].keys() == {"README.md"}  # main untouched until merged
    # create_pr was asked for, and the token went only into the Authorization header
    assert any("create_pr" in path or method == "POST" for method, path, _ in fake_hub.requests)
    for f in kept_files(tmp_path / "outbox"):
        assert WRITE_TOKEN not in f.read_text()
    assert WRITE_TOKEN not in out + err


def test_rerun_after_success_prints_the_same_pr_and_sends_nothing(fake_hub, manager, record_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    assert submit(capsys, fake_hub.url, record_file, tmp_path / "outbox")[0] == 0
    n = len(fake_hub.requests)
    code, out, _ = submit(capsys, fake_hub.url, record_file, tmp_path / "outbox")
    assert code == 0 and "already submitted" in out and "/discussions/1" in out
    assert len(fake_hub.requests) == n
    assert len(fake_hub.repos[("dataset", "org/board")].prs) == 1


def test_duplicate_of_a_merged_entry_is_refused(fake_hub, manager, record_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    assert submit(capsys, fake_hub.url, record_file, tmp_path / "outbox")[0] == 0
    fake_hub.merge("org/board", 1)
    # the same run from another machine (fresh outbox: the entry is built again)
    code, _, err = submit(capsys, fake_hub.url, record_file, tmp_path / "other-outbox")
    assert code == 2 and "duplicates entries/" in err and "nothing was sent" in err
    assert len(commits(fake_hub)) == 1


def test_same_run_submitter_and_checkpoint_is_a_duplicate_whatever_the_date():
    from datetime import datetime, timezone

    from rftbench.leaderboard.hub import find_duplicate

    entry = make_entry()
    later = entry.resealed(date=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert later.content_hash != entry.content_hash
    assert find_duplicate(later, [entry]) is entry
    assert find_duplicate(later.resealed(submitter="bob"), [entry]) is None
    assert find_duplicate(later.resealed(checkpoint=None), [entry]) is None


def test_identical_entry_file_is_a_duplicate(fake_hub, manager, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    entry = make_entry()
    fake_hub.repos[("dataset", "org/board")].branches["main"] = fake_hub.repos[("dataset", "org/board")].commit(
        {f"entries/{entry.id}.json": entry.to_json().encode()}, None, "seed")
    path = tmp_path / "entry.json"
    path.write_text(entry.to_json())
    code, _, err = run(capsys, "submit", str(path), "--repo", "org/board", "--endpoint", fake_hub.url, "--outbox", str(tmp_path / "o"))
    assert code == 2 and "identical content" in err and not commits(fake_hub)


def test_repo_that_does_not_exist(fake_hub, manager, record_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    code, _, err = run(capsys, "submit", str(record_file), "--repo", "org/nope", "--endpoint", fake_hub.url,
                       "--outbox", str(tmp_path / "outbox"))
    assert code == 2
    assert "'org/nope' does not exist" in err and "Traceback" not in err
    assert "kept at" in err and len(kept_files(tmp_path / "outbox")) == 1
    assert not commits(fake_hub)


def test_expired_token_is_named_and_never_printed(fake_hub, manager, record_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", EXPIRED_TOKEN)
    code, out, err = run(capsys, "submit", str(record_file), "--repo", "org/board", "--endpoint", fake_hub.url,
                         "--outbox", str(tmp_path / "outbox"), "--submitter", "carol")
    assert code == 2 and "refused your token (401" in err and "expired" in err
    assert EXPIRED_TOKEN not in out + err
    assert not commits(fake_hub)
    [kept] = kept_files(tmp_path / "outbox")
    assert EXPIRED_TOKEN not in kept.read_text()
    # without --submitter, the token is checked first (whoami) and refused before anything is kept
    code, _, err = run(capsys, "submit", str(record_file), "--repo", "org/board", "--endpoint", fake_hub.url,
                       "--outbox", str(tmp_path / "outbox2"))
    assert code == 2 and "401" in err and EXPIRED_TOKEN not in err


def test_read_only_token_cannot_open_a_pr(fake_hub, manager, record_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", READ_TOKEN)
    code, _, err = submit(capsys, fake_hub.url, record_file, tmp_path / "outbox")
    assert code == 2 and "403 Forbidden" in err and "write access" in err
    assert not fake_hub.repos[("dataset", "org/board")].prs


def test_no_token(fake_hub, manager, record_file, tmp_path, capsys):
    code, _, err = submit(capsys, fake_hub.url, record_file, tmp_path / "outbox", "--submitter", "alice")
    assert code == 2 and "no Hugging Face token found" in err and "hf auth login" in err


def test_offline_then_retry_sends_the_kept_entry(fake_hub, manager, record_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    url = fake_hub.url
    port = int(url.rsplit(":", 1)[1])
    fake_hub.stop()  # the Hub goes away: connections are refused
    outbox = tmp_path / "outbox"
    code, _, err = run(capsys, "submit", str(record_file), "--repo", "org/board", "--endpoint", url,
                       "--outbox", str(outbox), "--submitter", "alice")
    assert code == 2 and "could not reach the Hub" in err and "run the same command again" in err
    [kept] = kept_files(outbox)
    kept_entry = load_entry(kept)
    fake_hub.start(port)  # back online, same address
    code, out, err = run(capsys, "submit", str(record_file), "--repo", "org/board", "--endpoint", url,
                         "--outbox", str(outbox), "--submitter", "alice")
    assert code == 0, err
    repo = fake_hub.repos[("dataset", "org/board")]
    [pr] = repo.prs
    sent = load_entry(json.loads(repo.commits[pr["sha"]][f"entries/{kept_entry.id}.json"]))
    assert sent == kept_entry  # the very entry kept while offline was sent (same date, same hash)


def test_server_error_publishes_nothing_and_retry_succeeds(fake_hub, manager, record_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    fake_hub.fail_commits = 1
    code, _, err = submit(capsys, fake_hub.url, record_file, tmp_path / "outbox")
    assert code == 2 and "500" in err and "Nothing was published" in err
    repo = fake_hub.repos[("dataset", "org/board")]
    assert not repo.prs
    [kept] = kept_files(tmp_path / "outbox")
    code, out, _ = submit(capsys, fake_hub.url, record_file, tmp_path / "outbox")
    assert code == 0 and len(repo.prs) == 1 and load_entry(kept).id in out


def test_tampered_or_invalid_entries_never_reach_the_network(fake_hub, manager, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    data = json.loads(make_entry().to_json())
    data["metrics"]["threats"]["linf:4/255"]["acc"] = 0.6
    data["metrics"]["sum"] += 0.18
    data["metrics"]["geom"] = 0.81 * 0.6 * 0.5
    (tmp_path / "tampered.json").write_text(json.dumps(data))
    code, _, err = run(capsys, "submit", str(tmp_path / "tampered.json"), "--repo", "org/board", "--endpoint", fake_hub.url)
    assert code == 2 and "does not match its content_hash" in err
    data = json.loads(make_entry().to_json())
    data["metrics"]["clean_acc"] = 1.7
    (tmp_path / "bad.json").write_text(json.dumps(data))
    code, _, err = run(capsys, "submit", str(tmp_path / "bad.json"), "--repo", "org/board", "--endpoint", fake_hub.url)
    assert code == 2 and "metrics.clean_acc: Input should be less than or equal to 1" in err
    code, _, err = run(capsys, "submit", str(tmp_path / "missing.json"), "--repo", "org/board", "--endpoint", fake_hub.url)
    assert code == 2 and "no such result record" in err
    assert fake_hub.requests == []


def test_bad_repo_name_and_checkpoint(manager, record_file, capsys):
    code, _, err = run(capsys, "submit", str(record_file), "--repo", "just-a-name")
    assert code == 2 and "expected ORG/NAME" in err
    code, _, err = run(capsys, "submit", str(record_file), "--repo", "org/board", "--checkpoint", "alice/model")
    assert code == 2 and "REPO@REVISION" in err


def test_leaderboard_entries_read_back_through_snapshot_download(fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    pub = HubPublisher("org/board", endpoint=fake_hub.url)
    sub = pub.publish(make_entry())
    assert sub.status == "opened" and sub.pr_url.endswith("/discussions/1")
    fake_hub.merge("org/board", 1)
    sha, entries = HubLeaderboard("org/board", endpoint=fake_hub.url).entries()
    assert sha == fake_hub.repos[("dataset", "org/board")].branches["main"]
    assert [e.id for e in entries] == [make_entry().id]


@pytest.mark.parametrize("offline", ["env", "dns"])
def test_build_from_a_repo_fails_at_once_offline(capsys, monkeypatch, tmp_path, offline):
    """HF_HUB_OFFLINE set, or a Hub whose name does not resolve: an error before any request (no client retries)."""
    import socket

    from huggingface_hub import HfApi

    def no_request(*args, **kwargs):
        raise AssertionError("the Hub was asked")

    monkeypatch.setattr(HfApi, "repo_info", no_request)
    if offline == "env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        endpoint, expected = "https://huggingface.co", "HF_HUB_OFFLINE is set"
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

        def unresolvable(host, *args, **kwargs):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
        endpoint, expected = "https://hub.example.invalid", "'hub.example.invalid' does not resolve"
    code, _, err = run(capsys, "leaderboard", "build", "--repo", "org/board", "--endpoint", endpoint, "-o", str(tmp_path / "site"))
    assert code == 2 and "error: reading org/board" in err and expected in err and "Traceback" not in err
    assert not (tmp_path / "site").exists()
