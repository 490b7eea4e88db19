"""Result records as flat rows: flattening, filters with wildcards and comparisons, sorting, Parquet typing."""

from __future__ import annotations

import pytest

from rftbench.errors import RftbenchError
from rftbench.results import ResultRecord, write_record
from rftbench.sweep.export import filter_rows, flatten_record, load_rows, sort_rows, write_rows

CONFIG = {
    "representation": "conv_small.a",
    "loss": {"name": "trades", "beta": 6.0},
    "threat": {"name": "linf", "eps": "4/255"},
    "optimizer": {"name": "adamw", "lr_head": 0.001, "betas": [0.9, 0.95]},
    "evaluation": [{"name": "linf", "eps": "4/255"}, "l2"],
    "seed": 1,
}


def record(id: str, **config) -> ResultRecord:
    return ResultRecord(id=id, config={**CONFIG, **config}, metrics={"clean_acc": 0.5, "linf:4/255": {"acc": 0.25}}, timings={"total_s": 3.0})


def test_flatten_names_components_parameters_and_metrics():
    row = flatten_record(record("a"))
    assert row["loss"] == "trades" and row["loss.beta"] == 6.0 and row["threat.eps"] == "4/255"
    assert row["optimizer.lr_head"] == 0.001 and row["optimizer.betas"] == "[0.9, 0.95]"
    assert row["evaluation"] == "linf(eps=4/255),l2"
    assert row["clean_acc"] == 0.5 and row["linf:4/255.acc"] == 0.25 and row["timings.total_s"] == 3.0


def test_filters_wildcards_numbers_fractions_and_comparisons():
    rows = [flatten_record(record("a", seed=0)), flatten_record(record("b", seed=2, representation="vit_small.a")), flatten_record(record("c", seed=5, threat={"name": "linf", "eps": "8/255"}))]
    ids = lambda rs: [r["id"] for r in rs]  # noqa: E731
    assert ids(filter_rows(rows, ["representation=conv*"])) == ["a", "c"]
    assert ids(filter_rows(rows, ["seed>=2", "seed<5"])) == ["b"]
    assert ids(filter_rows(rows, ["threat.eps=0.03137254901960784"])) == ["c"]  # 8/255 written as a float
    assert ids(filter_rows(rows, ["representation!=vit*"])) == ["a", "c"]
    assert ids(sort_rows(rows, ["-seed"])) == ["c", "b", "a"]
    with pytest.raises(RftbenchError, match="must look like column=value"):
        filter_rows(rows, ["seed"])


def test_load_rows_skips_sweep_bookkeeping_and_broken_files(tmp_path):
    write_record(record("a"), tmp_path / "a.json")
    write_record(record("b"), tmp_path / "failures" / "b.json")
    (tmp_path / "broken.json").write_text("{")
    write_record(record("c"), tmp_path / "sub" / "c.json")
    assert [r["id"] for r in load_rows(tmp_path)] == ["a"]
    assert sorted(r["id"] for r in load_rows(tmp_path, recursive=True)) == ["a", "c"]


def test_parquet_columns_of_mixed_kinds_become_strings(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [flatten_record(record("a")), flatten_record(record("b", threat={"name": "linf", "eps": 0.03}))]
    write_rows(rows, ["id", "threat.eps", "seed"], "parquet", tmp_path / "r.parquet")
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.column("threat.eps").to_pylist() == ["4/255", "0.03"] and table.column("seed").to_pylist() == [1, 1]


def evaluated(id: str, clean: float, linf: float, n: int = 200, **config) -> ResultRecord:
    metrics = {"clean_acc": clean, "n_examples": n, "threats": {"linf:4/255": {"acc": linf, "n": n, "seconds": 1.0}}}
    return ResultRecord(id=id, config={**CONFIG, **config}, metrics=metrics)


def test_rows_carry_wilson_intervals():
    from rftbench.stats import wilson

    row = flatten_record(evaluated("a", 0.5, 0.25))
    assert (row["clean_acc.ci_low"], row["clean_acc.ci_high"]) == pytest.approx(wilson(100, 200))
    assert (row["threats.linf:4/255.acc.ci_low"], row["threats.linf:4/255.acc.ci_high"]) == pytest.approx(wilson(50, 200))


def test_group_rows_aggregates_seeds():
    import math

    from scipy.stats import t

    from rftbench.stats import wilson
    from rftbench.sweep.export import group_rows

    rows = [flatten_record(evaluated(f"t{s}", c, 0.3, seed=s)) for s, c in enumerate((0.50, 0.56, 0.53))]
    rows += [flatten_record(evaluated("ce", 0.7, 0.0, seed=0, loss="ce"))]
    groups = {g["loss"]: g for g in group_rows(rows, ["representation", "loss"])}
    trades = groups["trades"]
    assert trades["runs"] == 3 and trades["seeds"] == "0,1,2" and trades["pooled"] == ""
    assert trades["clean_acc.mean"] == pytest.approx(0.53) and trades["clean_acc.std"] == pytest.approx(0.03)
    seed_half = t.ppf(0.975, 2) * 0.03 / math.sqrt(3)
    test_half = 1.959963984540054 * math.sqrt(0.53 * 0.47 / 200)
    assert trades["clean_acc.ci_high"] - 0.53 == pytest.approx(math.hypot(seed_half, test_half))
    # one run: its Wilson interval
    assert (groups["ce"]["clean_acc.ci_low"], groups["ce"]["clean_acc.ci_high"]) == pytest.approx(wilson(140, 200))
    # grouping by the representation alone pools the two losses, and says so
    pooled = group_rows(rows, ["representation"])[0]
    assert pooled["runs"] == 4 and pooled["pooled"] == "loss,loss.beta"
    with pytest.raises(RftbenchError, match="--group-by: unknown column 'los'"):
        group_rows(rows, ["los"])
