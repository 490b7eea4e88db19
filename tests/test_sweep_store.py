"""The results store: exclusive claims, stale-claim take-over, heartbeats, failure records, writability."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from rftbench.results import ResultRecord
from rftbench.sweep import Store, SweepError
from rftbench.sweep.store import HOST


def test_a_claim_is_exclusive_until_released(tmp_path):
    store = Store(tmp_path, claim_timeout=60)
    store.check_writable()
    first = store.claim("abc")
    assert first is not None and first.still_mine()
    assert store.claim("abc") is None
    info = store.claim_info("abc")
    assert info.host == HOST and not store.is_stale(info)
    assert set(store.running()) == {"abc"}
    first.release()
    assert store.claim_info("abc") is None
    assert store.claim("abc") is not None


def test_a_claim_without_heartbeat_goes_stale_and_is_taken_over(tmp_path):
    store = Store(tmp_path, claim_timeout=0.2)
    store.check_writable()
    old = store.claim("abc")  # never entered: no heartbeat
    time.sleep(0.3)
    new = store.claim("abc")
    assert new is not None and not old.still_mine() and new.still_mine()
    old.release()  # the old holder must not remove the new claim
    assert store.claim_info("abc").token == new.token


def test_the_heartbeat_keeps_a_long_run_claimed(tmp_path):
    store = Store(tmp_path, claim_timeout=0.3)
    store.check_writable()
    with store.claim("abc"):
        time.sleep(0.7)
        assert store.claim("abc") is None
    assert store.claim_info("abc") is None


def test_a_claim_is_judged_by_its_heartbeat_age_never_by_its_pid(tmp_path):
    """A PID that looks dead here may be alive in another PID namespace (a container on this host)."""
    store = Store(tmp_path, claim_timeout=0.5)
    store.check_writable()
    dead = subprocess.Popen(["true"])
    dead.wait()
    store.claim_path("abc").write_text(json.dumps({"token": "x", "host": HOST, "pid": dead.pid, "started": ""}))
    assert not store.is_stale(store.claim_info("abc"))
    assert store.claim("abc") is None  # fresh heartbeat: live, whatever its PID
    time.sleep(0.7)
    assert store.is_stale(store.claim_info("abc"))
    assert store.claim("abc") is not None


def test_failures_are_appended_with_their_traceback(tmp_path):
    store = Store(tmp_path)
    store.check_writable()
    for attempt in range(2):
        try:
            raise ValueError(f"boom {attempt}")
        except ValueError as err:
            assert store.record_failure("abc", {"seed": 1}, err, seconds=0.5) == attempt + 1
    record = store.failure_record("abc")
    assert store.attempts("abc") == 2 and record["config"] == {"seed": 1}
    assert record["attempts"][1]["error"] == "ValueError: boom 1"
    assert "Traceback" in record["attempts"][0]["traceback"] and "boom 0" in record["attempts"][0]["traceback"]
    store.clear_failures("abc")
    assert store.attempts("abc") == 0


def test_results_are_done_only_when_complete_and_readable(tmp_path):
    store = Store(tmp_path)
    store.check_writable()
    store.write_result(ResultRecord(id="aaa", config={}))
    store.write_result(ResultRecord(id="bbb", config={}, status="failed"))
    store.result_path("ccc").write_text("{not json")
    assert store.done() == {"aaa"}
    assert store.is_done("aaa") and not store.is_done("bbb") and not store.is_done("ccc")


def test_an_unwritable_results_dir_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SweepError, match=r"(?s)results directory .* is not writable .*results_dir"):
        Store(blocker / "results").check_writable()
