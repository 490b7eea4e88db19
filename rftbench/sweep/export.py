"""Result records as rows: list, filter, sort and export them (CSV, Parquet, JSON lines) for pandas.

One row per record: ``id``, ``status``, ``created``, the config flattened (``loss`` is the loss's
name, ``loss.beta`` its parameter, ``optimizer.lr_head`` a nested field), the metrics flattened
(``clean_acc``, ``linf:4/255.acc``, the union accuracies ``union.acc`` and ``union_all.acc``, computed
from the per-example file for records written before they were recorded; prefixed ``metrics.`` only if a
name clashes with a config column), the Wilson 95% interval of each accuracy (``clean_acc.ci_low``/``clean_acc.ci_high``,
``linf:4/255.acc.ci_low``…, from the number of points evaluated) and the timings
(``timings.total_s``). :func:`group_rows` aggregates rows over seeds (mean, standard deviation and
a 95% interval per accuracy). Parquet is written with pyarrow
(``pip install 'rftbench[parquet]'``); ``pandas.read_parquet`` or ``pandas.read_csv`` reads either.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import RftbenchError
from ..results import ResultRecord, read_record

FORMATS = ("table", "csv", "parquet", "jsonl")
#: The union accuracies' keys in a record's metrics (:data:`rftbench.outcomes.UNIONS`; not imported, to keep numpy out of listing).
UNIONS = ("union", "union_all")
_CONDITION = re.compile(r"^\s*([^<>=!]+?)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$")


def find_records(root: str | Path, *, recursive: bool = False) -> list[Path]:
    """Result record files in ``root`` (``<hash>.json``); ``recursive`` also looks in sub-folders."""
    root = Path(root)
    if not root.is_dir():
        raise RftbenchError(f"results directory {str(root)!r} does not exist (a sweep's results_dir, or a run's output_dir)")
    pattern = "**/*.json" if recursive else "*.json"
    skip = {"failures", "claims", "slurm", "corrupt"}
    return sorted(p for p in root.glob(pattern) if not skip & set(p.relative_to(root).parts[:-1]))


def load_rows(root: str | Path, *, recursive: bool = False, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """Every readable record under ``root`` as a flat row; each unreadable file is named in ``problems``."""
    rows = []
    for path in find_records(root, recursive=recursive):
        try:
            record = read_record(path)
        except RftbenchError as err:
            if problems is not None:
                problems.append(str(err).splitlines()[0])
            continue
        if record.metrics.get("outcomes") and not any(u in record.metrics for u in UNIONS):
            # written before union accuracies were recorded: computed from its per-example file (unknown without one)
            from ..outcomes import unions_on_read

            record = record.model_copy(update={"metrics": {**record.metrics, **unions_on_read(record.metrics, path.parent)}})
        from ..curves import curve_problem

        problem = curve_problem(record)
        if problem is not None:  # a record written by another tool: left out, the reason said
            if problems is not None:
                problems.append(f"{path}: left out: {problem}")
            continue
        rows.append(flatten_record(record))
    return rows


def flatten_record(record: ResultRecord) -> dict[str, Any]:
    """One record as a flat mapping of column → scalar (see the module docstring)."""
    row: dict[str, Any] = {"id": record.id, "status": record.status, "created": record.created}
    row.update(flatten_config(record.config))
    for key, value in _flat(record.metrics).items():
        if key.startswith("outcomes."):
            continue  # the per-example file's reference: not a number to tabulate
        row[f"metrics.{key}" if key in row else key] = value
    _add_intervals(row, record.metrics)
    for key, value in record.timings.items():
        row[f"timings.{key}"] = value
    from ..curves import summary_columns

    row.update({k: v for k, v in summary_columns(record).items() if k not in row})  # Pareto AUC, warnings, cost.*
    return row


def flatten_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run config as flat columns: ``loss`` (the component's name), ``loss.beta``, ``optimizer.lr_head``, ``evaluation``…

    A parameter that is itself a mapping (``threat.attack_params``) also gets one column per
    key (``threat.attack_params.decay``), so it can be filtered and sorted like any other.
    """
    row: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            if "name" in value:
                row[key] = value["name"]
            for sub, v in value.items():
                if sub != "name":
                    row[f"{key}.{sub}"] = _scalar(v)
                    if isinstance(v, Mapping):
                        for leaf, w in v.items():
                            row[f"{key}.{sub}.{leaf}"] = _scalar(w)
        elif isinstance(value, list):
            row[key] = ",".join(_component_text(v) for v in value)
        else:
            row[key] = value
    return row


def _add_intervals(row: dict[str, Any], metrics: Mapping[str, Any]) -> None:
    from ..stats import accuracy_interval

    n = metrics.get("n_examples")
    found = [("clean_acc", metrics.get("clean_acc"), n)]
    for label, result in dict(metrics.get("threats") or {}).items():
        if isinstance(result, Mapping):
            found.append((f"threats.{label}.acc", result.get("acc"), result.get("n", n)))
    for name in UNIONS:  # the union accuracies (rftbench.outcomes): points correct under every threat of the set
        result = metrics.get(name)
        if isinstance(result, Mapping):
            found.append((f"{name}.acc", result.get("acc"), result.get("n", n)))
    for column, acc, size in found:
        key = column if column in row else f"metrics.{column}"
        ci = accuracy_interval(acc, size) if isinstance(acc, (int, float)) and isinstance(size, int) else None
        if key in row and ci is not None:
            row[f"{key}.ci_low"], row[f"{key}.ci_high"] = ci


def is_accuracy(column: str) -> bool:
    """Whether a row column is an accuracy (``clean_acc``, ``<threat>.acc``)."""
    last = column.split(".")[-1]
    return last == "acc" or last.endswith("_acc")


def group_rows(rows: Iterable[dict[str, Any]], keys: Iterable[str]) -> list[dict[str, Any]]:
    """Aggregate rows sharing the values of ``keys`` (e.g. everything but the seed).

    Per group: the keys, ``runs`` (how many), ``seeds`` (their seeds), ``pooled`` (other config
    columns whose values differ inside the group, so a pooling is never silent) and, for every
    accuracy column, ``<col>.mean``, ``<col>.std`` (sample, over the runs), ``<col>.ci_low`` and
    ``<col>.ci_high``: a 95% interval of the configuration's accuracy, covering seeds and test
    points (:func:`rftbench.stats.recipe_interval`: with k ≥ 2 runs its half-width adds in
    quadrature the seed-to-seed part, t quantile with k − 1 degrees of freedom times s/√k, and the
    test-set part, 1.96·√(p(1 − p)/n), clipped to [0, 1]); with one run it is that run's Wilson
    interval (test points only). Other numeric metric columns get ``.mean`` and ``.std``.
    """
    from ..config import RunConfig
    from ..stats import mean_interval, recipe_interval

    rows = list(rows)
    keys = list(keys)
    columns = set().union(*(r.keys() for r in rows)) if rows else set()
    unknown = [k for k in keys if k not in columns]
    if rows and unknown:
        from ..errors import close_matches

        hint = close_matches(unknown[0], columns)
        raise RftbenchError(f"--group-by: unknown column {unknown[0]!r}." + (f" Did you mean: {', '.join(hint)}?" if hint else "")
                            + f"\nColumns: {', '.join(sorted(columns))}")
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(json.dumps(row.get(k), sort_keys=True, default=str) for k in keys), []).append(row)
    config_cols = {c for c in columns if c.split(".")[0] in RunConfig.model_fields}
    skip = {"id", "status", "created", "seed", "n_examples", *keys}
    out = []
    for members in groups.values():
        first = members[0]
        agg: dict[str, Any] = {k: first.get(k) for k in keys}
        agg["runs"] = len(members)
        agg["seeds"] = ",".join(str(m.get("seed")) for m in members)
        agg["pooled"] = ",".join(sorted(c for c in config_cols - skip
                                        if len({json.dumps(m.get(c), default=str) for m in members}) > 1))
        for col in sorted(columns - skip - config_cols):
            if col.startswith("timings.") or col.endswith((".ci_low", ".ci_high", ".seconds", ".n")):
                continue
            values = [_number(m.get(col)) for m in members]
            if not any(v is not None for v in values) or any(isinstance(m.get(col), bool) for m in members):
                continue
            single = None
            if len(members) == 1 and is_accuracy(col):
                low, high = first.get(f"{col}.ci_low"), first.get(f"{col}.ci_high")
                single = (low, high) if low is not None else None
            present = [v for v in values if v is not None]
            stats = mean_interval(present, single)
            agg[f"{col}.mean"], agg[f"{col}.std"] = stats["mean"], stats["std"]
            if is_accuracy(col):
                low, high = stats["ci_low"], stats["ci_high"]
                n = _points(first, col)
                if stats["k"] >= 2 and n:
                    low, high = recipe_interval(present, n)
                agg[f"{col}.ci_low"] = None if low is None else max(0.0, low)
                agg[f"{col}.ci_high"] = None if high is None else min(1.0, high)
        out.append(agg)
    return out


def _points(row: Mapping[str, Any], column: str) -> int | None:
    """How many test points an accuracy column was measured on."""
    n = row.get(column[: -len(".acc")] + ".n") if column.endswith(".acc") else None
    n = n if n is not None else row.get("n_examples", row.get("metrics.n_examples"))
    return int(n) if isinstance(n, (int, float)) and not isinstance(n, bool) and n > 0 else None


def filter_rows(rows: Iterable[dict[str, Any]], conditions: Iterable[str]) -> list[dict[str, Any]]:
    """Rows meeting every condition: ``key=value`` (wildcards), ``key!=value``, ``key>0.5``, ``key<=3``…"""
    parsed = [_parse_condition(c) for c in conditions]
    rows = list(rows)
    columns = set().union(*(r.keys() for r in rows)) if rows else set()
    for key, _, _ in parsed:
        if rows and key not in columns:
            from ..errors import close_matches

            hint = close_matches(key, columns)
            raise RftbenchError(
                f"filter on unknown column {key!r}." + (f" Did you mean: {', '.join(hint)}?" if hint else "")
                + f"\nColumns: {', '.join(sorted(columns))}"
            )
    return [r for r in rows if all(_holds(r.get(k), op, v) for k, op, v in parsed)]


def sort_rows(rows: list[dict[str, Any]], keys: Iterable[str]) -> list[dict[str, Any]]:
    """Sort by columns; ``-col`` sorts descending. Missing values go last; a column no row has is an error."""
    for key in reversed(list(keys)):
        desc = key.startswith("-")
        name = key.lstrip("-")
        if rows and not any(name in r for r in rows):
            from ..errors import close_matches

            columns = select_columns(rows, None)
            hint = close_matches(name, columns)
            raise RftbenchError(f"--sort {key!r}: no column {name!r}." + (f" Did you mean: {', '.join(hint)}?" if hint else "")
                                + f"\nColumns: {', '.join(columns)}")
        present = [r for r in rows if r.get(name) is not None]
        missing = [r for r in rows if r.get(name) is None]
        present.sort(key=lambda r: _sort_key(r[name]), reverse=desc)
        rows = present + missing
    return rows


def select_columns(rows: list[dict[str, Any]], columns: list[str] | None) -> list[str]:
    """The columns to show: ``columns`` (wildcards allowed) or all, in first-seen order."""
    seen: list[str] = []
    for row in rows:
        for key in row:
            if key not in seen:
                seen.append(key)
    if not columns:
        return seen
    out = []
    for pattern in columns:
        matched = [c for c in seen if fnmatch.fnmatchcase(c, pattern)]
        if not matched and rows:
            raise RftbenchError(f"no column matches {pattern!r}. Columns: {', '.join(seen)}")
        out += [c for c in matched if c not in out]
    return out


def write_rows(rows: list[dict[str, Any]], columns: list[str], fmt: str, path: str | Path | None) -> str | None:
    """Write rows as ``csv``, ``jsonl`` or ``parquet`` to ``path``; with no path, return the text (not parquet)."""
    if fmt not in FORMATS or fmt == "table":
        raise RftbenchError(f"unknown export format {fmt!r}; use csv, parquet or jsonl")
    if fmt == "parquet":
        if path is None:
            raise RftbenchError("Parquet is binary: give a file with --output results.parquet")
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise RftbenchError("Parquet export needs pyarrow: pip install 'rftbench[parquet]' (or export --format csv)") from None
        data = {c: _column([r.get(c) for r in rows]) for c in columns}
        pq.write_table(pa.table(data), str(path))
        return None
    buffer = io.StringIO()
    if fmt == "csv":
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        for row in rows:
            buffer.write(json.dumps({c: row.get(c) for c in columns}, default=str) + "\n")
    if path is None:
        return buffer.getvalue()
    Path(path).write_text(buffer.getvalue())
    return None


def to_dataframe(root: str | Path, conditions: Iterable[str] = (), *, recursive: bool = False):
    """The records under ``root`` as a pandas DataFrame (pandas must be installed)."""
    try:
        import pandas as pd
    except ImportError:
        raise RftbenchError("to_dataframe needs pandas: pip install pandas") from None
    rows = filter_rows(load_rows(root, recursive=recursive), conditions)
    return pd.DataFrame(rows, columns=select_columns(rows, None))


# ---------------------------------------------------------------------------- helpers


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = _scalar(value)
    return out


def _scalar(value: Any) -> Any:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return value


def _component_text(value: Any) -> str:
    if isinstance(value, Mapping):
        params = ",".join(f"{k}={v}" for k, v in value.items() if k != "name")
        return f"{value.get('name')}({params})" if params else str(value.get("name"))
    return str(value)


def _parse_condition(text: str) -> tuple[str, str, str]:
    match = _CONDITION.match(text)
    if not match or not match.group(1):
        raise RftbenchError(f"filter {text!r} must look like column=value, column!=value or column>number (e.g. loss=trades, clean_acc>0.5)")
    return match.group(1), match.group(2), match.group(3)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        from ..specs import parse_number

        try:
            return float(parse_number(value))
        except (ValueError, TypeError):
            return None
    return None


def _holds(value: Any, op: str, wanted: str) -> bool:
    if op in ("=", "!="):
        a, b = _number(value), _number(wanted)
        same = (a == b) if a is not None and b is not None else fnmatch.fnmatchcase(str(value).lower(), wanted.lower())
        return same if op == "=" else not same
    a, b = _number(value), _number(wanted)
    if a is None or b is None:
        return False
    return {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]


def _sort_key(value: Any) -> tuple[int, Any]:
    number = _number(value)
    return (0, number) if number is not None else (1, str(value))


def _column(values: list[Any]) -> list[Any]:
    """A column pyarrow can type: values of mixed kinds (e.g. '4/255' and 0.03) become strings."""
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) > 1 and not kinds <= {int, float}:
        return [None if v is None else str(v) for v in values]
    return values
