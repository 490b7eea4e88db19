"""The maintainers' check of leaderboard pull requests (real huggingface_hub client, fake Hub server)."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from hub_server import WRITE_TOKEN, fake_hub, hub_env  # noqa: F401 - fixtures
from leaderboard_helpers import make_entry
from rftbench.cli import main
from rftbench.leaderboard.check import check_files


def open_pr(hub, files: dict[str, bytes]) -> int:
    """Open a pull request on org/board adding ``files`` (as any contributor could, by hand)."""
    info = HfApi(endpoint=hub.url).create_commit(
        "org/board", [CommitOperationAdd(p, c) for p, c in files.items()], commit_message="pr",
        repo_type="dataset", create_pr=True, token=WRITE_TOKEN,
    )
    return int(info.pr_url.rsplit("/", 1)[1])


def seed_main(hub, *entries) -> None:
    repo = hub.repos[("dataset", "org/board")]
    files = {**repo.commits[repo.branches["main"]], **{f"entries/{e.id}.json": e.to_json().encode() for e in entries}}
    repo.branches["main"] = repo.commit(files, repo.branches["main"], "seed")


def check(capsys, hub, pr: int) -> tuple[int, dict]:
    try:
        main(["leaderboard", "check", "--repo", "org/board", "--pr", str(pr), "--endpoint", hub.url, "--json"])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(capsys.readouterr().out)


def as_file(entry) -> dict[str, bytes]:
    return {f"entries/{entry.id}.json": entry.to_json().encode()}


def test_valid_pull_request_passes(fake_hub, capsys):
    seed_main(fake_hub, make_entry("1" * 16))
    pr = open_pr(fake_hub, as_file(make_entry("2" * 16)) | as_file(make_entry("3" * 16, checkpoint=False)))
    code, report = check(capsys, fake_hub, pr)
    assert code == 0 and report["ok"] and len(report["accepted"]) == 2
    assert any("no checkpoint" in w for w in report["warnings"])


def test_tampered_entry_fails(fake_hub, capsys):
    data = json.loads(make_entry().to_json())
    data["metrics"]["clean_acc"] = 0.99
    data["metrics"]["sum"] = 0.99 + 0.42 + 0.5
    data["metrics"]["geom"] = 0.99 * 0.42 * 0.5
    pr = open_pr(fake_hub, {f"entries/{data['id']}.json": json.dumps(data).encode()})
    code, report = check(capsys, fake_hub, pr)
    assert code == 1 and "does not match its content_hash" in report["problems"][0]


def test_duplicates_of_main_and_within_the_pr_fail(fake_hub, capsys):
    on_main = make_entry("1" * 16)
    seed_main(fake_hub, on_main)
    again = on_main.resealed(date="2026-01-01T00:00:00Z")
    pr = open_pr(fake_hub, as_file(again))
    code, report = check(capsys, fake_hub, pr)
    assert code == 1 and "duplicate of entry" in report["problems"][0] and "on the main branch" in report["problems"][0]
    twin = make_entry("2" * 16)
    pr = open_pr(fake_hub, as_file(twin) | as_file(twin.resealed(date="2026-01-01T00:00:00Z")))
    code, report = check(capsys, fake_hub, pr)
    assert code == 1 and any("in this pull request" in p for p in report["problems"])


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (lambda e: {"README.md": b"hijacked\n"}, "changes a file of the main branch"),
        (lambda e: {"scripts/x.py": b"print(1)\n"}, "may only add entries/<id>.json"),
        (lambda e: {"entries/wrong-name.json": e.to_json().encode()}, "must be stored as entries/"),
        (lambda e: {f"entries/{e.id}.json": b"{not json"}, "not valid JSON"),
        (lambda e: {f"entries/{e.id}.json": json.dumps({**json.loads(e.to_json()), "verification": {
            "status": "verified", "tolerance": 0.5, "n_eval": 1, "measured": {}, "claimed": {}, "date": "2025-01-01T00:00:00Z"}}).encode()},
         "only `rftbench verify`"),
        (lambda e: {f"entries/{e.id}.json": e.model_copy(update={"submitter": None}).to_json().encode()}, "content_hash"),
    ],
)
def test_bad_pull_requests_fail_with_the_reason(fake_hub, capsys, files, expected):
    pr = open_pr(fake_hub, files(make_entry()))
    code, report = check(capsys, fake_hub, pr)
    assert code == 1 and any(expected in p for p in report["problems"]), report


def test_missing_pr_and_bad_arguments(fake_hub, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["leaderboard", "check", "--repo", "org/board", "--pr", "7", "--endpoint", fake_hub.url])
    assert exit_.value.code == 2 and "no such revision" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["leaderboard", "check", "--pr", "7"])
    assert exit_.value.code == 2 and "--pr needs --repo" in capsys.readouterr().err


def test_local_files_against_a_folder(tmp_path):
    main_dir, new_dir = tmp_path / "main", tmp_path / "new"
    main_dir.mkdir(), new_dir.mkdir()
    old = make_entry("1" * 16)
    (main_dir / f"{old.id}.json").write_text(old.to_json())
    (new_dir / "a.json").write_text(make_entry("2" * 16).to_json())
    report = check_files([new_dir], main_dir)
    assert report.ok and report.accepted == [str(new_dir / "a.json")]
    (new_dir / "b.json").write_text(old.to_json())
    report = check_files([new_dir], main_dir)
    assert not report.ok and "duplicate of entry" in report.problems[0]
    assert not check_files([], None).ok  # nothing to check is not a pass


def test_local_files_against_the_hub_main_branch(fake_hub, tmp_path, capsys):
    on_main = make_entry("1" * 16)
    seed_main(fake_hub, on_main)
    (tmp_path / "dup.json").write_text(on_main.to_json())
    (tmp_path / "new.json").write_text(make_entry("2" * 16).to_json())
    with pytest.raises(SystemExit) as exit_:
        main(["leaderboard", "check", str(tmp_path / "dup.json"), str(tmp_path / "new.json"),
              "--repo", "org/board", "--endpoint", fake_hub.url])
    out = capsys.readouterr().out
    assert exit_.value.code == 1 and "duplicate of entry" in out and "1 of 2 entries accepted" in out
