"""Fetching and verifying weights: pins recorded by `rftbench zoo fetch`, offline loads, bad downloads removed."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from rftbench import hookimpl
from rftbench.cards import DatasetCard, InputConfig
from rftbench.fetch import FetchError, hub_file, read_lock, record_pin, revision_of, sha256_file, url_file
from rftbench_plugins import datasets, hf_source, open_clip_source, timm_source, url_source

from _fabricate import make_card, offline_hub, timm_hub_repo
from tests.cli_helpers import run_cli as run

MODEL = "test_vit.r160_in1k"
CARD = make_card(MODEL, "timm", MODEL, weights={"hub_id": f"timm/{MODEL}"}, family="attention",
                 input=InputConfig(resolution=64, mean=(0.5,) * 3, std=(0.5,) * 3))


class _Cards:
    def __init__(self, reps=(), data=()):
        self.reps, self.data = list(reps), list(data)

    @hookimpl
    def rftbench_add_representations(self):
        return self.reps

    @hookimpl
    def rftbench_add_datasets(self):
        return self.data


@pytest.fixture
def manager(fresh_manager, tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    for module, name in ((timm_source, "timm"), (url_source, "url"), (hf_source, "hf"), (open_clip_source, "open_clip"), (datasets, "datasets")):
        fresh_manager.register(module, name)
    return fresh_manager


def test_fetch_records_the_revision_and_later_loads_use_it(manager, tmp_path, monkeypatch, capsys):
    manager.register(_Cards([CARD]), "cards")
    reference, rev = timm_hub_repo(tmp_path / "hub", MODEL, seed=0)
    offline_hub(monkeypatch, tmp_path / "hub")
    code, out, err = run(capsys, "zoo", "fetch", "test_vit*", "--check", "--json")
    assert code == 0, err
    row = json.loads(out)[0]
    assert row["revision"] == rev and row["num_features"] == 64
    assert row["sha256"] == sha256_file(row["file"])
    code, out, _ = run(capsys, "zoo", "show", MODEL)
    assert "fetched (zoo lock)" in out and rev[:12] in out
    # the repo moves on upstream (a new commit on main): loads keep using the recorded revision
    timm_hub_repo(tmp_path / "hub", MODEL, seed=1, revision="9" * 40)
    backbone = timm_source.build(CARD, pretrained=True).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = reference.forward_head(reference.forward_features((x - 0.5) / 0.5), pre_logits=True)
        torch.testing.assert_close(backbone.forward_features(x), expected)


def test_unknown_name_lists_close_matches(manager, capsys):
    manager.register(_Cards([CARD]), "cards")
    code, _, err = run(capsys, "zoo", "fetch", "test_vit.r160_in1")
    assert code == 2 and "Did you mean" in err and MODEL in err


def test_sha256_mismatch_removes_the_file_and_says_so(manager, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    (tmp_path / "served.pt").write_bytes(b"checkpoint bytes")
    card = make_card("x.robust", "url", "test_resnet", weights={"url": (tmp_path / "served.pt").as_uri(), "sha256": "a" * 64, "filename": "x.pt"})
    manager.register(_Cards([card]), "cards")
    code, _, err = run(capsys, "zoo", "fetch", "x.robust")
    assert code == 2 and "does not match the pinned sha256" in err
    assert [p for p in (tmp_path / "rft" / "weights").rglob("*") if p.is_file()] == []  # no file, no .partial
    assert "x.robust" not in read_lock()


@pytest.mark.parametrize("sha", ["a" * 64, None], ids=["wrong-sha", "no-sha"])
def test_symlinked_card_folder_is_refused_and_nothing_outside_is_written_or_deleted(manager, tmp_path, monkeypatch, capsys, sha):
    """Hostile row 1: <cache>/weights/<card> a link to another folder; a wrong sha256 must not delete the victim."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    (tmp_path / "served.pt").write_bytes(b"checkpoint bytes")
    victim_dir = tmp_path / "elsewhere"
    victim_dir.mkdir()
    (victim_dir / "x.pt").write_bytes(b"precious")
    (tmp_path / "rft" / "weights").mkdir(parents=True)
    (tmp_path / "rft" / "weights" / "x.robust").symlink_to(victim_dir, target_is_directory=True)
    weights = {"url": (tmp_path / "served.pt").as_uri(), "filename": "x.pt",
               **({"sha256": sha} if sha else {"trust_on_first_fetch": True})}
    manager.register(_Cards([make_card("x.robust", "url", "test_resnet", weights=weights)]), "cards")
    code, _, err = run(capsys, "zoo", "fetch", "x.robust")
    assert code == 2 and "inside the cache" in err and "Traceback" not in err
    assert sorted(p.name for p in victim_dir.iterdir()) == ["x.pt"]
    assert (victim_dir / "x.pt").read_bytes() == b"precious"


def test_checksum_mismatch_never_deletes_outside_the_root(tmp_path):
    from rftbench.fetch import ChecksumError, _verify

    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"keep me")
    root = tmp_path / "cache"
    root.mkdir()
    (root / "link.bin").symlink_to(outside)
    with pytest.raises(ChecksumError, match="left in place"):
        _verify(root / "link.bin", "0" * 64, "test", root=root)
    assert outside.read_bytes() == b"keep me"
    (root / "inside.bin").write_bytes(b"bad")
    with pytest.raises(ChecksumError, match="was removed"):
        _verify(root / "inside.bin", "0" * 64, "test", root=root)
    assert not (root / "inside.bin").exists()


def _record_many(args):
    import os

    cache, worker = args
    os.environ["RFTBENCH_CACHE"] = cache
    for i in range(15):
        record_pin(f"w{worker}.c{i}", sha256=str(i) * 64)


def test_lock_file_keeps_concurrent_writers_pins_and_follows_the_umask(tmp_path, monkeypatch):
    import multiprocessing
    import os
    import stat

    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        pool.map(_record_many, [(str(tmp_path), w) for w in range(4)])
    assert len(read_lock()) == 60  # without the lock, read-modify-write by 4 processes loses pins
    old = os.umask(0o022)
    try:
        record_pin("one.more", sha256="f" * 64)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "zoo-lock.json").stat().st_mode) == 0o644


def test_url_file_offline_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rft"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FetchError, match="offline"):
        url_file("https://example.invalid/a.pt", filename="a.pt", sha256=None, folder=tmp_path / "w")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "a.pt").write_bytes(b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    assert url_file("https://example.invalid/a.pt", filename="a.pt", sha256=digest, folder=tmp_path / "w").read_bytes() == b"abc"


def test_failed_hub_download_leaves_no_partial_blob(tmp_path, monkeypatch):
    offline_hub(monkeypatch, tmp_path / "hub")
    blobs = tmp_path / "hub" / "models--timm--absent" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / "0123.incomplete").write_bytes(b"half")
    with pytest.raises(FetchError, match="HF_HUB_OFFLINE is set"):
        hub_file("timm/absent", "model.safetensors")
    assert not list(blobs.iterdir())


def test_lock_file_round_trip_and_revision_of(tmp_path, monkeypatch):
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path))
    record_pin("a.b", revision="1" * 40, sha256="2" * 64)
    assert read_lock()["a.b"]["revision"] == "1" * 40
    assert revision_of(f"/c/models--x--y/snapshots/{'f' * 40}/model.safetensors") == "f" * 40
    assert revision_of("/c/model.safetensors") is None
    (tmp_path / "zoo-lock.json").write_text("{not json")
    with pytest.raises(FetchError, match="not valid JSON"):
        read_lock()


def test_fetch_a_dataset(manager, tmp_path, capsys):
    from PIL import Image

    base = tmp_path / "data" / "caltech101" / "101_ObjectCategories"
    for c in ["BACKGROUND_Google", "a", "b"]:
        for i in range(1, 11):  # torchvision's Caltech101 names: image_0001.jpg, …
            (base / c).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8)).save(base / c / f"image_{i:04d}.jpg")
    card = DatasetCard(id="tiny-caltech", source="torchvision", args={"class": "Caltech101"}, num_classes=2,
                       splits={"train": {"rule": "stratified"}, "test": {"rule": "stratified", "fraction": 0.2}},
                       provenance={"license": "test"})
    manager.register(_Cards(data=[card]), "cards")
    code, out, err = run(capsys, "zoo", "fetch", "--kind", "dataset", "tiny-caltech", "--data-root", str(tmp_path / "data"), "--json")
    assert code == 0, err
    assert json.loads(out) == [{"id": "tiny-caltech", "test": 4, "train": 16}]


def test_list_filters(builtins, capsys):
    code, out, _ = run(capsys, "zoo", "list", "--family", "hybrid", "--size", "small", "--json")
    assert code == 0
    assert {c["id"] for c in json.loads(out)} == {"coat_tiny.in1k", "edgenext_small.usi_in1k", "mobilevit_s.apple_in1k"}
    code, out, _ = run(capsys, "zoo", "list", "--pretraining", "adversarially-robust", "--source", "url", "--json")
    assert len(json.loads(out)) == 5
    code, out, _ = run(capsys, "zoo", "list", "--kind", "dataset", "-f", "tags=guide2025", "--json")
    assert len(json.loads(out)) == 6
