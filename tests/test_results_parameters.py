"""``parameters.*`` (trainable / total / added / share) as columns of ``rftbench results``: listed, filtered, sorted."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from rftbench.sweep.export import load_rows
from tests.cli_helpers import run_cli as cli

STUDY05 = Path(__file__).resolve().parents[1] / "examples" / "studies" / "05-peft" / "records"


def test_parameter_counts_are_columns_of_every_row():
    rows = load_rows(STUDY05)
    assert rows
    for row in rows:
        protocol = row["protocol"]
        assert row["parameters.total"] > 0 and 0 < row["parameters.trainable"] <= row["parameters.total"]
        assert abs(row["parameters.share"] - row["parameters.trainable"] / row["parameters.total"]) < 1e-3
        assert (row["parameters.added"] > 0) == (protocol == "lora"), row  # only LoRA adds parameters
        assert (row["parameters.trainable"] == row["parameters.total"]) == (protocol == "fft")


def test_results_filters_and_sorts_on_parameter_counts(capsys):
    code, out, err = cli(capsys, "results", str(STUDY05), "-f", "parameters.share<0.05", "-s", "-parameters.trainable",
                         "-c", "id,protocol,parameters.*", "-F", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and {r["protocol"] for r in rows} == {"lp", "bitfit"}  # LoRA (20%) and FFT (100%) filtered out
    trainable = [int(float(r["parameters.trainable"])) for r in rows]
    assert trainable == sorted(trainable, reverse=True) and trainable[0] > trainable[-1]
    assert {"parameters.trainable", "parameters.total", "parameters.added", "parameters.share"} <= set(rows[0])
