"""Property-based hostile input (hypothesis): never a traceback, always a named error or a valid result, quickly.

Each property counts its outcomes; the totals are written to $RFTBENCH_ARTIFACTS/hostile-inputs.json
(only when that variable is set: the source tree is never written) when the module finishes, for
the issue's figures. ``max_examples`` stays modest so the suite stays fast. Time budgets are CPU
time of this process (not wall clock, which a loaded shared machine stretches); the memory check
compares the resident set now with the one at the start (not the lifetime peak, which cannot shrink).
"""

from __future__ import annotations

import collections
import json
import math
import os
import string
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leaderboard_helpers import make_entry
from rftbench.errors import RftbenchError

COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
#: No hypothesis deadline (wall clock); :func:`outcome` bounds each call's CPU time instead.
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                    derandomize=True)
#: How much the resident set may grow over the module.
MAX_RSS_GROWTH_MIB = 1024


def current_rss_mib() -> float | None:
    """This process's resident set now (``/proc/self/statm``), in MiB; ``None`` where there is no /proc."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_growth_problem(before: float | None, after: float | None, limit: float = MAX_RSS_GROWTH_MIB) -> str | None:
    """A message when the resident set grew by more than ``limit`` MiB (``None`` when fine or unmeasured)."""
    if before is None or after is None or after - before < limit:
        return None
    return f"hostile inputs grew the process by {after - before:.0f} MiB"


def test_the_rss_check_can_fail():
    assert rss_growth_problem(100.0, 100.0 + MAX_RSS_GROWTH_MIB + 1) is not None
    assert rss_growth_problem(100.0, 200.0) is None
    import mmap

    if current_rss_mib() is None:
        pytest.skip("no /proc/self/statm here")
    # a fresh anonymous mapping: its pages become resident when written (a heap allocation may reuse pages
    # that earlier tests left resident, and then the process does not grow)
    size = 64 * 2**20
    block = mmap.mmap(-1, size)
    before = current_rss_mib()
    for offset in range(0, size, mmap.PAGESIZE):
        block[offset] = 1  # touch every page
    try:
        assert rss_growth_problem(before, current_rss_mib(), limit=32) is not None  # a real 64 MiB growth is seen
    finally:
        block.close()


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    rss0 = current_rss_mib()
    yield
    rss1 = current_rss_mib()
    totals = collections.Counter()
    for counter in COUNTS.values():
        totals.update(counter)
    if os.environ.get("RFTBENCH_ARTIFACTS"):
        artifacts = Path(os.environ["RFTBENCH_ARTIFACTS"])
        artifacts.mkdir(parents=True, exist_ok=True)
        grown = None if rss0 is None or rss1 is None else round(rss1 - rss0, 1)
        (artifacts / "hostile-inputs.json").write_text(json.dumps(
            {"per_property": {k: dict(v) for k, v in COUNTS.items()}, "total": dict(totals), "rss_growth_mib": grown},
            indent=2))
    problem = rss_growth_problem(rss0, rss1)
    assert problem is None, problem


def outcome(prop: str, fn, *args, seconds: float = 3.0, **kwargs):
    """Call ``fn``; a named (Rftbench) error or a result is fine, anything else fails the property.

    ``seconds`` bounds the call's CPU time (``time.process_time``), not the wall clock.
    """
    start = time.process_time()
    try:
        result = fn(*args, **kwargs)
        COUNTS[prop]["valid result"] += 1
        return result
    except RftbenchError as err:
        assert str(err).strip(), "an error without a message"
        assert len(str(err)) < 20_000, "an error message that repeats the whole input"
        COUNTS[prop]["named error"] += 1
        return err
    except BaseException:
        COUNTS[prop]["traceback"] += 1
        raise
    finally:
        assert time.process_time() - start < seconds


# ------------------------------------------------------------------ --set strings and YAML documents

keys = st.sampled_from(["epochs", "batch_size", "loss", "loss.beta", "threat.eps", "threat", "optimizer.lr_head", "n_eval",
                        "evaluation", "seed", "protocol", "compile", "precision", "representation", "x", "loss.name", ""])
yaml_scalars = st.one_of(st.text(max_size=20), st.sampled_from(
    ["true", "4/inf", "nan", ".inf", "-1", "1e999", "{", "[", "*a", "&a [*a]", "!!python/object:os.system", "[/x]", "null", "~",
     "4/255", "8/255", "{name: trades, beta: true}", "{name: linf, eps: 1/0}", "[1, 2", "'", '"\\x00"', "0x10", "1_000"]))


@PROPERTY
@given(st.lists(st.one_of(st.text(max_size=40), st.builds(lambda k, v: f"{k}={v}", keys, yaml_scalars)), max_size=3))
def test_any_set_strings(builtins, assignments):
    from rftbench.config import RunConfig, load_config

    result = outcome("--set", load_config, None, assignments, manager=builtins)
    assert isinstance(result, (RunConfig, RftbenchError))
    if isinstance(result, RunConfig):  # a valid result is really valid: finite numbers, no bool for numbers
        assert type(result.epochs) is int and type(result.batch_size) is int


@PROPERTY
@given(st.builds(lambda k, v: f"{k}={v}", keys, st.one_of(yaml_scalars, st.integers(-5, 10**6).map(str),
                                                         st.floats(allow_nan=True, allow_infinity=True).map(repr),
                                                         st.sampled_from(["trades", "classic_at", "lp", "fft", "cosine"]))))
def test_any_single_set_assignment(builtins, assignment):
    from rftbench.config import RunConfig, load_config

    result = outcome("--set (one)", load_config, None, [assignment], manager=builtins)
    if isinstance(result, RunConfig):
        key, _, value = assignment.partition("=")
        assert not (key == "epochs" and value.strip().lower() in ("true", "false", "yes", "no", "on", "off"))
        from rftbench.specs import parse_number

        assert math.isfinite(result.optimizer.lr_head) and math.isfinite(parse_number(result.threat.params.get("eps", 0)))


yaml_documents = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=string.printable + "&*!|>:-[]{}#%@`'\"\\\u2028\xff", max_size=200),
    st.recursive(st.sampled_from(["a", "1", "x: 1", "*a", "&a x", "[*a, *a]", "{k: *a}", "k: v\nk: w"]),
                 lambda inner: st.builds(lambda a, b: f"&a [{a}, {b}]\n" if len(a) < 50 else a + "\n" + b, inner, inner),
                 max_leaves=12),
)


@PROPERTY
@given(yaml_documents)
def test_any_yaml_document(tmp_path_factory, document):
    from rftbench.errors import ConfigError
    from rftbench.yamlfile import read_mapping

    path = tmp_path_factory.mktemp("y") / "c.yaml"
    path.write_text(document, errors="surrogateescape") if isinstance(document, str) else path.write_bytes(document)
    outcome("yaml", read_mapping, path, ConfigError, "a config", empty_ok=True)


def test_nested_alias_bombs_of_any_depth_are_bounded():
    from rftbench.yamlfile import loads

    for depth in range(1, 12):
        lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, depth)]
        outcome("yaml", loads, "\n".join(lines), seconds=2)


# ------------------------------------------------------------------ leaderboard entries

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
              st.text(max_size=30), st.sampled_from(["javascript:alert(1)", "https://ok.example/x", "../../etc", "/abs",
                                                     "<!--<script>", "</script>", "[/x]", "4/inf"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)),
    max_leaves=8,
)
BASE_ENTRY = json.loads(make_entry().to_json())


def _paths(data, prefix=()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))


ENTRY_PATHS = sorted(set(_paths(BASE_ENTRY)))


@st.composite
def mutated_entries(draw):
    data = json.loads(json.dumps(BASE_ENTRY))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ENTRY_PATHS))
        node = data
        for key in path[:-1]:
            if not isinstance(node, dict):
                break
            node = node.setdefault(key, {})
        if isinstance(node, dict):
            if draw(st.booleans()):
                node[path[-1]] = draw(json_values)
            else:
                node.pop(path[-1], None)
    return data if draw(st.integers(0, 9)) else draw(json_values)


@PROPERTY
@given(mutated_entries())
def test_any_entry_for_leaderboard_check(entry):
    from rftbench.leaderboard.check import check_new_entries

    report = outcome("leaderboard check", check_new_entries, {"entries/x.json": entry}, [], in_repo=False)
    if not isinstance(report, RftbenchError):
        assert report.checked == ["entries/x.json"] and (report.accepted or report.problems)
        if report.problems:  # the check's report names each problem: count it as a named error
            assert all(p.strip() for p in report.problems)
            COUNTS["leaderboard check"]["valid result"] -= 1
            COUNTS["leaderboard check"]["named error"] += 1
        if report.accepted:  # anything accepted must also render safely
            from rftbench.leaderboard.build import render_site
            from rftbench.leaderboard.entry import load_entry

            html = render_site([("submitted", load_entry(entry))])
            assert "javascript:" not in html.lower()


# ------------------------------------------------------------------ suite items and threat labels


@PROPERTY
@given(st.one_of(st.text(max_size=40), st.builds(lambda a, b, c: f"{a}:{b}:{c}", st.sampled_from(
    ["linf", "l2", "l1", "corruptions", "expected_robustness", "nope", ""]), yaml_scalars, yaml_scalars)))
def test_any_suite_item(builtins, text):
    from rftbench.evaluation import resolve_suite
    from rftbench.evaluation.suites import parse_item

    item = outcome("suite item", parse_item, text)
    if not isinstance(item, RftbenchError):
        outcome("suite item (resolved)", resolve_suite, [item], builtins)


@PROPERTY
@given(st.one_of(st.text(min_size=1, max_size=60),
                 st.builds(lambda a: f"{a}:1", st.text(alphabet=st.characters(codec="utf-8", exclude_characters=":"),
                                                       min_size=1, max_size=40)),
                 st.sampled_from(["<!--<script>:1", "</script><script>alert(1)</script>:1", "<!--:1", "]]>:1"])))
def test_any_threat_label_renders_inert(label):
    from rftbench.leaderboard.build import render_site
    from rftbench.leaderboard.entry import load_entry

    data = json.loads(json.dumps(BASE_ENTRY))
    data["metrics"]["threats"][label] = {"norm": "other", "eps": 1.0, "acc": 0.3}
    del data["metrics"]["sum"], data["metrics"]["geom"]
    entry = outcome("threat label", load_entry, data, check_hash=False)
    if isinstance(entry, RftbenchError):
        return
    html = render_site([("local", entry)])
    marker = '<script type="application/json" id="board-config">'
    start = html.index(marker) + len(marker)
    inline = html[start:html.index("</script>", start)]
    assert not set("<>&") & set(inline)
    assert label in [t["label"] for t in json.loads(inline)["threats"]]
