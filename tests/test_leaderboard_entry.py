"""The entry schema: building from records, the content hash, and clear errors for bad entries."""

from __future__ import annotations

import json
import math

import pytest

from leaderboard_helpers import make_entry
from rftbench.leaderboard.entry import (
    Entry,
    load_entry,
    parse_threat_label,
    read_entries_jsonl,
    threat_label,
    write_entries_jsonl,
    write_entry,
)
from rftbench.leaderboard.errors import EntryError, TamperedEntryError


def test_round_trip_keeps_the_hash(tmp_path):
    entry = make_entry()
    path = write_entry(entry, tmp_path / "e.json")
    again = load_entry(path)
    assert again == entry and again.expected_hash() == entry.content_hash
    write_entries_jsonl([entry, make_entry("ffffffffffffffff")], tmp_path / "e.jsonl")
    assert {e.id for e in read_entries_jsonl(tmp_path / "e.jsonl")} == {entry.id, make_entry("ffffffffffffffff").id}


def test_hash_changes_with_content_but_not_with_verification():
    entry = make_entry()
    assert make_entry(clean=0.8).content_hash != entry.content_hash
    verified = entry.model_copy(
        update={"verification": {"status": "verified", "tolerance": 0.02, "n_eval": 8, "measured": {}, "claimed": {}, "date": "2025-09-02T00:00:00Z"}}
    )
    assert verified.expected_hash() == entry.content_hash


def test_tampered_metrics_are_refused_with_both_hashes():
    data = json.loads(make_entry().to_json())
    data["metrics"]["clean_acc"] = 0.99
    data["metrics"]["sum"] += 0.99 - 0.81
    data["metrics"]["geom"] = 0.99 * 0.42 * 0.5
    with pytest.raises(TamperedEntryError) as err:
        load_entry(data)
    assert data["content_hash"] in str(err.value) and "computed" in str(err.value)


def test_inconsistent_aggregates_are_refused():
    data = json.loads(make_entry().to_json())
    data["metrics"]["sum"] = 3.0
    with pytest.raises(EntryError, match=r"metrics: .*sum is 3.0"):
        load_entry(data)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("metrics", "clean_acc"), 1.5, r"metrics.clean_acc: Input should be less than or equal to 1"),
        (("setup", "epochs"), 0, r"setup.epochs: Input should be greater than or equal to 1"),
        (("checkpoint", "revision"), "main", r"checkpoint.revision: String should match pattern"),
        (("schema_version",), 2, None),
    ],
)
def test_out_of_range_fields_are_named(path, value, expected):
    data = json.loads(make_entry().to_json())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    if expected is None:
        load_entry(data)
        return
    with pytest.raises(EntryError, match=expected):
        load_entry(data)


def test_missing_field_is_named_and_unknown_version_refused():
    data = json.loads(make_entry().to_json())
    del data["setup"]["dataset"]
    with pytest.raises(EntryError, match=r"setup.dataset: Field required"):
        load_entry(data)
    data = json.loads(make_entry().to_json())
    data["schema_version"] = 7
    with pytest.raises(EntryError, match="schema_version 7 is not supported"):
        load_entry(data)


def test_label_must_agree_with_budget():
    data = json.loads(make_entry().to_json())
    data["metrics"]["threats"]["linf:4/255"]["eps"] = 8 / 255
    with pytest.raises(EntryError, match=r"threats.linf:4/255: the label says linf"):
        load_entry(data)


def test_threat_labels_round_trip():
    assert threat_label("linf", 4 / 255) == "linf:4/255"
    assert threat_label("l2", 2.0) == "l2:2"
    assert threat_label("l1", 75) == "l1:75"
    assert threat_label("corruption", 3) == "corruptions:3"
    norm, eps = parse_threat_label("linf:8/255")
    assert norm == "linf" and math.isclose(eps, 8 / 255)
    assert parse_threat_label("corruptions:3") == ("corruption", 3.0)
    with pytest.raises(ValueError, match="not 'norm:budget'"):
        parse_threat_label("linf")


def test_seal_ignores_forged_hash_fields():
    entry = make_entry()
    data = entry.model_dump()
    data.update(id="f" * 16, content_hash="f" * 64)
    assert Entry.seal(**data).content_hash == entry.content_hash
    assert entry.resealed(submitter="bob").submitter == "bob"


def test_version_1_entries_load_and_migrate():
    from rftbench.leaderboard.entry import Entry, migrate_entry

    v2 = make_entry()
    v1 = Entry.seal(**{**v2.model_dump(exclude={"id", "content_hash", "verification", "outcomes"}), "schema_version": 1})
    loaded = load_entry(json.loads(v1.to_json()))  # a v1 file keeps loading, hash unchanged
    assert loaded.schema_version == 1 and loaded.content_hash == v1.content_hash
    migrated = migrate_entry(loaded)
    assert migrated.schema_version == 2 and migrated.content_hash != v1.content_hash
    assert load_entry(json.loads(migrated.to_json())).metrics == v1.metrics
    assert migrate_entry(migrated) is migrated


def test_migration_of_the_published_v1_entries_reproduces_the_shipped_file():
    """The shipped guide2025.jsonl is the v2 import; migrating the v1 form of a row gives the same entry (n_eval = 1,000)."""
    from rftbench.leaderboard.entry import ENTRY_SCHEMA_VERSION, Entry, migrate_entry, read_entries_jsonl
    from rftbench_leaderboard import ENTRIES_DIR

    shipped = read_entries_jsonl(ENTRIES_DIR / "guide2025.jsonl")[:20]
    for entry in shipped:
        assert entry.schema_version == ENTRY_SCHEMA_VERSION and entry.metrics.n_eval == 1000
        data = entry.model_dump(exclude={"id", "content_hash", "verification", "outcomes"})
        data["schema_version"] = 1
        data["metrics"] = {**data["metrics"], "n_eval": None}
        v1 = Entry.seal(**data)
        assert v1.n_eval == 1000  # known from the source file even before migration
        assert migrate_entry(v1).content_hash == entry.content_hash


def test_outcomes_need_version_2():
    data = json.loads(make_entry().to_json())
    data["schema_version"] = 1
    data["outcomes"] = {"file": "outcomes-0123456789abcdef.npz", "sha256": "a" * 64, "points": {"n": 5}}
    with pytest.raises(EntryError, match="outcomes needs schema_version 2"):
        load_entry(data, check_hash=False)
    data["schema_version"] = 2
    data["outcomes"]["file"] = "../x.npz"
    with pytest.raises(EntryError, match="outcomes.file"):
        load_entry(data, check_hash=False)
