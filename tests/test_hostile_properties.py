"""Property-based hostile input (hypothesis): never a traceback, always a named error or a valid result, quickly.

Each property counts its outcomes; the totals are written to
build/test-artifacts/hostile-inputs.json (or $RFTBENCH_ARTIFACTS) when the module finishes, for
the issue's figures. ``max_examples`` stays modest so the suite stays fast.
"""

from __future__ import annotations

import collections
import json
import math
import os
import resource
import string
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leaderboard_helpers import make_entry
from rftbench.errors import RftbenchError

ARTIFACTS = Path(os.environ.get("RFTBENCH_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "test-artifacts"))
COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
PROPERTY = settings(max_examples=150, deadline=3000, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                    derandomize=True)


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    totals = collections.Counter()
    for counter in COUNTS.values():
        totals.update(counter)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "hostile-inputs.json").write_text(json.dumps(
        {"per_property": {k: dict(v) for k, v in COUNTS.items()}, "total": dict(totals), "peak_rss_growth_mib": round(grown_mib, 1)},
        indent=2))
    assert grown_mib < 1024, f"hostile inputs grew the process by {grown_mib:.0f} MiB"


def outcome(prop: str, fn, *args, seconds: float = 3.0, **kwargs):
    """Call ``fn``; a named (Rftbench) error or a result is fine, anything else fails the property."""
    start = time.perf_counter()
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
        assert time.perf_counter() - start < seconds


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
