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
