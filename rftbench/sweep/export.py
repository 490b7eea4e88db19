"""Result records as rows: list, filter, sort and export them (CSV, Parquet, JSON lines) for pandas.

One row per record: ``id``, ``status``, ``created``, the config flattened (``loss`` is the loss's
name, ``loss.beta`` its parameter, ``optimizer.lr_head`` a nested field), the metrics flattened
(``clean_acc``, ``linf:4/255.acc``; prefixed ``metrics.`` only if a name clashes with a config
column) and the timings (``timings.total_s``). Parquet is written with pyarrow
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
        rows.append(flatten_record(record))
    return rows


def flatten_record(record: ResultRecord) -> dict[str, Any]:
    """One record as a flat mapping of column → scalar (see the module docstring)."""
    row: dict[str, Any] = {"id": record.id, "status": record.status, "created": record.created}
    for key, value in record.config.items():
        if isinstance(value, Mapping):
            if "name" in value:
                row[key] = value["name"]
            for sub, v in value.items():
                if sub != "name":
                    row[f"{key}.{sub}"] = _scalar(v)
        elif isinstance(value, list):
            row[key] = ",".join(_component_text(v) for v in value)
        else:
            row[key] = value
    for key, value in _flat(record.metrics).items():
        row[f"metrics.{key}" if key in row else key] = value
    for key, value in record.timings.items():
        row[f"timings.{key}"] = value
    return row


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
    """Sort by columns; ``-col`` sorts descending. Missing values go last."""
    for key in reversed(list(keys)):
        desc = key.startswith("-")
        name = key.lstrip("-")
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
