"""Union accuracy on the leaderboard: entries carry it (checked), the site shows it with its interval, unknown stays unknown."""

from __future__ import annotations

import re

import pytest

from leaderboard_helpers import make_entry, make_record
from rftbench.leaderboard.build import render_site
from rftbench.leaderboard.entry import Entry, load_entry
from rftbench.leaderboard.errors import EntryError
from rftbench.leaderboard.records import entry_from_record
from rftbench.plugins import PluginManager
from rftbench.stats import accuracy_interval


def union_entry(run_id: str, union: float = 0.3, **kw) -> Entry:
    record = make_record(run_id, **kw)
    record.metrics["union"] = {"acc": union, "n": 64, "of": ["linf:4/255", "l2:0.5"], "reliable": True}
    return entry_from_record(record, submitter="alice", manager=PluginManager())


def test_entries_carry_the_union_from_the_record():
    entry = union_entry("a" * 16, union=0.3)
    assert entry.metrics.union.acc == 0.3 and entry.metrics.union.of == ["linf:4/255", "l2:0.5"]
    assert entry.metrics.union_all is None
    assert not any(k.startswith("union") for k in entry.metrics.extra)  # not also flattened into extra
    # an entry without a union keeps its hash: the field is left out of the hash when unset
    plain = make_entry("b" * 16)
    assert plain.metrics.union is None and plain.expected_hash() == plain.content_hash
    assert load_entry(entry.model_dump(mode="json")).metrics.union.acc == 0.3


def test_a_union_above_its_threats_or_over_unknown_threats_is_refused():
    entry = union_entry("a" * 16)
    data = entry.model_dump(mode="json", exclude={"id", "content_hash", "verification"})
    too_high = {**data, "metrics": {**data["metrics"], "union": {"acc": 0.45, "of": ["linf:4/255", "l2:0.5"]}}}
    with pytest.raises(ValueError, match=r"union.acc is 0.45, above the lowest accuracy of its threats"):
        Entry.seal(**too_high)
    unknown = {**data, "metrics": {**data["metrics"], "union": {"acc": 0.1, "of": ["linf:4/255", "l1:75"]}}}
    with pytest.raises(ValueError, match=r"union.of names 'l1:75', not among the threats"):
        Entry.seal(**unknown)
    sealed = Entry.seal(**{**data, "metrics": {**data["metrics"], "union": {"acc": 0.2, "of": ["linf:4/255", "l2:0.5"]}}})
    raw = sealed.model_dump(mode="json")
    raw["metrics"]["union"]["acc"] = 0.9  # edited after sealing
    with pytest.raises(EntryError, match="union.acc"):
        load_entry(raw)


def test_site_shows_a_sortable_union_column_with_interval_and_unknown_as_a_dash():
    with_union = union_entry("a" * 16, union=0.3)
    without = make_entry("b" * 16)
    html = render_site([("local", with_union), ("local", without)])
    assert re.search(r'<th data-key="union" data-type="num"[^>]*>union</th>', html)
    assert re.search(r'<th data-key="union_all" data-type="num"[^>]*>union \(all\)</th>', html)
    low, high = accuracy_interval(0.3, 64)
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<tr id="e-([0-9a-f]{16})"(.*?)</tr>', html, re.S)}
    cells = re.findall(r'<td class="num acc" data-v="([^"]*)"[^>]*>(.*?)</td>', rows[with_union.id], re.S)
    # clean, L∞, L2, then union and union (all)
    assert cells[3][0] == repr(0.3) and f"{100 * low:.1f}–{100 * high:.1f}" in cells[3][1]
    assert cells[4] == ("", "—")
    assert [c for c in re.findall(r'<td class="num acc" data-v="([^"]*)"', rows[without.id])][3:] == ["", ""]
    # the script marks best and ties on the union columns as on the other accuracies
    assert 'key === "union" || key === "union_all"' in html


def test_local_records_reach_the_site_with_their_union_also_when_recorded_before_it(fresh_manager, tmp_path):
    import json

    from rftbench.leaderboard.collect import entries_from_results
    from tests.plugins import evaluation as fixtures
    from tests.test_union import _record

    fresh_manager.register(fixtures, "eval_fixtures")
    path = _record(tmp_path, "old", model_seed=0)
    data = json.loads(path.read_text())
    union = data["metrics"].pop("union")
    data["config"] = {**make_record().config, "evaluation": [{"name": "tiny_fgsm", "eps": 0.05}, {"name": "tiny_fgsm", "eps": 0.12}]}
    path.write_text(json.dumps(data))
    (entry,) = entries_from_results([path])
    assert entry.metrics.union.acc == pytest.approx(union["acc"])
    assert entry.metrics.union.of == list(entry.metrics.threats) == ["other:0.05", "other:0.12"]  # labels made canonical
