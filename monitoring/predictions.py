"""Reading the prediction log: the rows one model version scored in a time window, features expanded.

Reads the SQLite prediction log written by serving (`settings.prediction_log_path`, table
`predictions`: row_id, request_id, scored_at (ISO 8601, UTC), task, model_name, model_version,
run_id, customer_ref, as_of ('YYYY-MM-DD' or NULL), features (JSON object of the model's feature
values as scored), probability, tier, action); writes nothing.

The JSON of every row is parsed in one pass by Arrow's JSON reader (fast enough for millions of
rows); when a row breaks the expected types (a number sent as text, say), the log falls back to
Python's parser and counts the values that are not numbers, so data quality can report them.
Numeric features come back as float64 (missing -> NaN), categorical features as pandas
categoricals whose categories are the definition's followed by any unknown values seen.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serving.prediction_log import COLUMNS, TABLE, PredictionLogError, select_sql, utc_bound

CHUNK_ROWS = 20_000  # rows read and parsed at a time
LOG_COLUMNS: tuple[str, ...] = COLUMNS
META_COLUMNS: tuple[str, ...] = tuple(c for c in LOG_COLUMNS if c != "features")
# few distinct values per window: kept as categoricals
REPEATED_COLUMNS: tuple[str, ...] = ("task", "model_name", "model_version", "run_id", "as_of", "tier", "action")


@dataclass
class LogWindow:
    """Rows of the log with their features as columns, and the values that were not numbers."""

    frame: pd.DataFrame
    non_numeric: dict[str, int] = field(default_factory=dict)  # feature -> count of non-number values

    def __len__(self) -> int:
        return len(self.frame)


def _connect(path: Path) -> sqlite3.Connection:
    path = Path(path)
    if not path.exists():
        raise PredictionLogError(f"prediction log {path} does not exist; serve the model (`tenure serve`) "
                                 "or point TENURE_PREDICTION_LOG at the log")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({TABLE})")]
    except sqlite3.DatabaseError as exc:
        raise PredictionLogError(f"prediction log {path} is not a readable SQLite database: {exc}") from exc
    missing = [c for c in LOG_COLUMNS if c not in cols]
    if missing:
        con.close()
        if not cols:
            raise PredictionLogError(f"prediction log {path} has no table {TABLE!r}")
        raise PredictionLogError(f"prediction log {path}: table {TABLE!r} lacks columns {missing}")
    return con


def read_log(path: Path, *, task: str | None = None, model_name: str | None = None,
             model_version: str | int | None = None, since: str | None = None, until: str | None = None,
             features: Sequence[Mapping[str, Any]] = ()) -> LogWindow:
    """Log rows matching the filters (`since` inclusive, `until` exclusive, on `scored_at`).

    `features` are feature definitions (`name`, `kind`, `categories`) to expand from the JSON;
    keys of the JSON not named there are ignored, and a feature absent from a row is missing.
    """
    sql, args = select_sql(LOG_COLUMNS, {"task": task, "model_name": model_name, "model_version": model_version},
                           utc_bound(since, "--since"), utc_bound(until, "--until"))
    con = _connect(path)
    acc = _Columns()
    non_numeric: dict[str, int] = {}
    rows_read = 0
    try:
        cursor = con.execute(sql, args)
        while rows := cursor.fetchmany(CHUNK_ROWS):  # the JSON of a large window is never in memory at once
            rows_read += len(rows)
            data = dict(zip(LOG_COLUMNS, zip(*rows, strict=True), strict=True))
            del rows
            _add_meta(acc, data)
            frame, bad = expand_features(data["features"], features)
            for f in features:
                if f["kind"] == "numeric":
                    acc.add(f["name"], frame[f["name"]].to_numpy())
                else:
                    acc.add_categorical(f["name"], frame[f["name"]])
            for name, count in bad.items():
                non_numeric[name] = non_numeric.get(name, 0) + count
    except sqlite3.DatabaseError as exc:
        raise PredictionLogError(f"prediction log {path}: reading table {TABLE!r} failed: {exc}") from exc
    finally:
        con.close()
    out: dict[str, Any] = {}
    for c in META_COLUMNS:
        if c in REPEATED_COLUMNS:
            out[c] = acc.categorical(c)
        elif c == "scored_at":
            out[c] = pd.DatetimeIndex(acc.array(c, "datetime64[ns]")).tz_localize("UTC")
        else:
            out[c] = acc.array(c, {"row_id": "int64", "probability": "float64"}.get(c, "object"))
    for f in features:
        if f["kind"] == "numeric":
            out[f["name"]] = acc.array(f["name"], "float64")
        else:
            out[f["name"]] = acc.categorical(f["name"], [str(c) for c in (f.get("categories") or [])])
    return LogWindow(frame=pd.DataFrame(out, copy=False), non_numeric=non_numeric)


class _Columns:
    """Column chunks, concatenated once at the end; categorical values coded against categories
    collected over all chunks (an unknown value keeps its code from the first chunk it shows in)."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}
        self.codes: dict[str, dict[str, int]] = {}

    def add(self, name: str, values: np.ndarray) -> None:
        self.parts.setdefault(name, []).append(values)

    def add_categorical(self, name: str, values: Any) -> None:
        cat = values.array if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype) else \
            pd.Categorical(pd.Series(values, dtype="object"))
        mapping = self.codes.setdefault(name, {})
        lut = np.array([mapping.setdefault(str(c), len(mapping)) for c in cat.categories] + [-1], dtype=np.int32)
        self.add(name, lut[np.asarray(cat.codes)])

    def array(self, name: str, dtype: str) -> np.ndarray:
        parts = self.parts.get(name) or [np.empty(0, dtype=dtype)]
        return np.concatenate(parts).astype(dtype, copy=False)

    def categorical(self, name: str, known: Sequence[str] | None = None) -> pd.Categorical:
        """Known categories first (a feature's definition), then the others sorted."""
        codes = self.array(name, "int32")
        seen = list(self.codes.get(name, {}))
        cat = pd.Categorical.from_codes(codes, categories=seen) if seen else \
            pd.Categorical.from_codes(np.full(len(codes), -1, dtype=np.int32), categories=[])
        if known is None:
            return cat
        return cat.set_categories(list(known) + sorted(set(seen) - set(known)))


def _add_meta(acc: _Columns, data: Mapping[str, Sequence[Any]]) -> None:
    for c in META_COLUMNS:
        values = data[c]
        if c in REPEATED_COLUMNS:
            acc.add_categorical(c, values)
        elif c == "scored_at":
            stamps = pd.to_datetime(pd.Series(values, dtype="object"), utc=True, format="ISO8601", errors="coerce")
            acc.add(c, stamps.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]"))
        elif c == "probability":
            acc.add(c, pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce").to_numpy(dtype=np.float64))
        elif c == "row_id":
            acc.add(c, np.asarray(values, dtype=np.int64))
        else:
            acc.add(c, np.asarray(values, dtype=object))


def expand_features(texts: Sequence[str | None], features: Sequence[Mapping[str, Any]]
                    ) -> tuple[pd.DataFrame, dict[str, int]]:
    """The JSON objects `texts` as one column per feature definition, and non-number counts."""
    if not features:
        return pd.DataFrame(index=range(len(texts))), {}
    if not texts:
        return _typed(pd.DataFrame({f["name"]: pd.Series([], dtype="object") for f in features}), features), {}
    try:
        return _typed(_arrow_parse(texts, features), features), {}
    except Exception:  # noqa: BLE001 - any type surprise: the careful parser below counts it
        return _python_parse(texts, features)


def _arrow_parse(texts: Sequence[str | None], features: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.json as pj

    schema = pa.schema([(f["name"], pa.float64() if f["kind"] == "numeric" else pa.string()) for f in features])
    body = "\n".join(t if t else "{}" for t in texts).encode()
    table = pj.read_json(pa.BufferReader(body),
                         parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
                         read_options=pj.ReadOptions(block_size=1 << 24))
    if table.num_rows != len(texts):
        raise ValueError("row count mismatch")
    out = {}
    for f in features:
        col = table.column(f["name"])
        if f["kind"] == "numeric":
            out[f["name"]] = col.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            out[f["name"]] = col.dictionary_encode().to_pandas()
    return pd.DataFrame(out)


def _python_parse(texts: Sequence[str | None], features: Sequence[Mapping[str, Any]]
                  ) -> tuple[pd.DataFrame, dict[str, int]]:
    records = []
    for t in texts:
        try:
            obj = json.loads(t) if t else {}
        except ValueError:
            obj = {}
        records.append(obj if isinstance(obj, dict) else {})
    names = [f["name"] for f in features]
    raw = pd.DataFrame.from_records(records, columns=names)
    non_numeric: dict[str, int] = {}
    for f in features:
        name = f["name"]
        if f["kind"] == "numeric":
            col = raw[name]
            if col.dtype == object:
                col = col.map(lambda v: float(v) if isinstance(v, bool) else v)
            num = pd.to_numeric(col, errors="coerce")
            bad = int((num.isna() & col.notna()).sum())
            if bad:
                non_numeric[name] = bad
            raw[name] = num.astype("float64")
        else:
            raw[name] = raw[name].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    return _typed(raw, features), non_numeric


def _typed(frame: pd.DataFrame, features: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Numeric as float64; categorical as categories = definition's + unknown values seen."""
    out = {}
    for f in features:
        col = frame[f["name"]]
        if f["kind"] == "numeric":
            out[f["name"]] = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
        else:
            known = [str(c) for c in (f.get("categories") or [])]
            if isinstance(col.dtype, pd.CategoricalDtype):  # Arrow's dictionary: the values seen
                col = col.cat.rename_categories([str(c) for c in col.cat.categories])
                seen = list(col.cat.categories)
            else:
                col = col.astype("object")
                seen = [str(v) for v in pd.unique(col[col.notna()])]
            extra = sorted(set(seen) - set(known))
            if isinstance(col.dtype, pd.CategoricalDtype):
                out[f["name"]] = col.cat.set_categories(known + extra).array
            else:
                out[f["name"]] = pd.Categorical(col, categories=known + extra)
    return pd.DataFrame(out, index=frame.index)
