"""Reading the prediction log: the rows one model version scored in a time window, features expanded.

Reads the prediction log written by serving (`settings.prediction_log_target`): a SQLite file or
a PostgreSQL database (`postgresql://...`, `serving.prediction_log_pg`), table `predictions`:
row_id, request_id, scored_at (UTC), task, model_name, model_version, run_id, customer_ref,
as_of ('YYYY-MM-DD' or NULL), features (JSON object of the model's feature values as scored),
probability, tier, action; writes nothing.

SQLite: the JSON of every row is parsed in one pass by Arrow's JSON reader (fast enough for
millions of rows); when a row breaks the expected types (a number sent as text, say), the log
falls back to Python's parser and counts the values that are not numbers, so data quality can
report them. PostgreSQL: the database turns the JSON into one typed column per feature and
streams the window out with `COPY ... TO STDOUT (FORMAT csv)`, which Arrow's CSV reader parses
into columns; a second query counts the values that are not numbers. No JSON is decoded in
Python. Both give the same frame: numeric features as float64 (missing -> NaN), categorical
features as pandas categoricals whose categories are the definition's followed by any unknown
values seen.
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

from configs.settings import is_postgres_url, redact_url
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


def _connect(path: Path) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection, and whether the table has the `shadow` column (a log written before
    shadow scoring lacks it: every row there was answered)."""
    path = Path(path)
    if not path.exists():
        raise PredictionLogError(f"prediction log {path} does not exist; serve the model (`tenure serve`) "
                                 "or point TENURE_PREDICTION_LOG at the log")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({TABLE})")]
    except sqlite3.DatabaseError as exc:
        raise PredictionLogError(f"prediction log {path} is not a readable SQLite database: {exc}") from exc
    missing = [c for c in LOG_COLUMNS if c not in cols and c != "shadow"]
    if missing:
        con.close()
        if not cols:
            raise PredictionLogError(f"prediction log {path} has no table {TABLE!r}")
        raise PredictionLogError(f"prediction log {path}: table {TABLE!r} lacks columns {missing}")
    return con, "shadow" in cols


def read_log(path: Path | str, *, task: str | None = None, model_name: str | None = None,
             model_version: str | int | None = None, since: str | None = None, until: str | None = None,
             features: Sequence[Mapping[str, Any]] = (), shadow: bool | None = False) -> LogWindow:
    """Log rows matching the filters (`since` inclusive, `until` exclusive, on `scored_at`).

    `shadow`: False (default) reads the answered rows only, True a shadow challenger's rows only,
    None both.

    `path`: the SQLite file, or a `postgresql://` URL. `features` are feature definitions (`name`,
    `kind`, `categories`) to expand from the JSON; keys of the JSON not named there are ignored,
    and a feature absent from a row is missing.
    """
    equals = {"task": task, "model_name": model_name, "model_version": model_version,
              "shadow": None if shadow is None else int(shadow)}
    bounds = utc_bound(since, "--since"), utc_bound(until, "--until")
    acc = _Columns()
    if is_postgres_url(path):
        non_numeric = _read_postgres(str(path), equals, *bounds, features, acc)
    else:
        non_numeric = _read_sqlite(Path(path), equals, *bounds, features, acc)
    return LogWindow(frame=_frame(acc, features), non_numeric=non_numeric)


def _read_sqlite(path: Path, equals: Mapping[str, Any], since: str | None, until: str | None,
                 features: Sequence[Mapping[str, Any]], acc: _Columns) -> dict[str, int]:
    con, has_shadow = _connect(path)
    equals = dict(equals)
    columns = list(LOG_COLUMNS)
    if not has_shadow:  # an older log: every row was answered
        columns[columns.index("shadow")] = "0 AS shadow"
        if equals.pop("shadow", None) == 1:
            equals["row_id"] = -1  # no row
    sql, args = select_sql(columns, equals, since, until)
    non_numeric: dict[str, int] = {}
    try:
        cursor = con.execute(sql, args)
        while rows := cursor.fetchmany(CHUNK_ROWS):  # the JSON of a large window is never in memory at once
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
    return non_numeric


def _frame(acc: _Columns, features: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    out: dict[str, Any] = {}
    for c in META_COLUMNS:
        if c in REPEATED_COLUMNS:
            out[c] = acc.categorical(c)
        elif c == "scored_at":
            out[c] = pd.DatetimeIndex(acc.array(c, "datetime64[ns]")).tz_localize("UTC")
        else:
            out[c] = acc.array(c, {"row_id": "int64", "probability": "float64", "shadow": "int64"}.get(c, "object"))
    for f in features:
        if f["kind"] == "numeric":
            out[f["name"]] = acc.array(f["name"], "float64")
        else:
            out[f["name"]] = acc.categorical(f["name"], [str(c) for c in (f.get("categories") or [])])
    return pd.DataFrame(out, copy=False)


# ---- PostgreSQL -------------------------------------------------------------------------------

_NUMBER_TEXT = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


def _pg_numeric(sql: Any, name: str) -> Any:
    """A feature of the JSONB column as float8: numbers, booleans (1/0) and numbers sent as text, as
    the SQLite reader reads them; anything else is NULL."""
    value, text = sql.SQL("features -> {}").format(sql.Literal(name)), sql.SQL("features ->> {}").format(sql.Literal(name))
    return sql.SQL("CASE jsonb_typeof({v}) WHEN 'number' THEN ({t})::float8 "
                   "WHEN 'boolean' THEN CASE WHEN ({v})::boolean THEN 1.0 ELSE 0.0 END "
                   "WHEN 'string' THEN CASE WHEN {t} ~ {rx} THEN ({t})::float8 END END").format(
        v=value, t=text, rx=sql.Literal(_NUMBER_TEXT))


def _pg_where(sql: Any, equals: Mapping[str, Any], since: str | None, until: str | None) -> Any:
    conds = [sql.SQL("{} = {}").format(sql.Identifier(c), sql.Literal(str(v))) for c, v in equals.items()
             if v is not None]
    if since is not None:
        conds.append(sql.SQL("scored_at >= {}::timestamptz").format(sql.Literal(since)))
    if until is not None:
        conds.append(sql.SQL("scored_at < {}::timestamptz").format(sql.Literal(until)))
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds) if conds else sql.SQL("")


def _read_postgres(url: str, equals: Mapping[str, Any], since: str | None, until: str | None,
                   features: Sequence[Mapping[str, Any]], acc: _Columns) -> dict[str, int]:
    """The window, typed by PostgreSQL and exported as CSV, parsed by Arrow in blocks."""
    import tempfile

    import pyarrow as pa
    import pyarrow.csv as pcsv
    from psycopg import sql

    from serving.prediction_log_pg import connect

    where = redact_url(url)
    meta_sql = {"scored_at": sql.SQL("(extract(epoch FROM scored_at) * 1000000)::bigint"),
                "as_of": sql.SQL("as_of::text")}
    meta_types = {"row_id": pa.int64(), "scored_at": pa.int64(), "probability": pa.float64(), "shadow": pa.int64()}
    exprs, names, types = [], [], {}
    for c in META_COLUMNS:
        exprs.append(meta_sql.get(c, sql.Identifier(c)))
        names.append(c)
        types[c] = meta_types.get(c, pa.string())
    for f in features:
        numeric = f["kind"] == "numeric"
        exprs.append(_pg_numeric(sql, f["name"]) if numeric else sql.SQL("features ->> {}").format(sql.Literal(f["name"])))
        names.append(f"f{len(names)}")  # CSV columns by position; feature names may clash with the log's
        types[names[-1]] = pa.float64() if numeric else pa.string()
    where_sql = _pg_where(sql, equals, since, until)
    query = sql.SQL("COPY (SELECT {} FROM {}{} ORDER BY row_id) TO STDOUT (FORMAT csv)").format(
        sql.SQL(", ").join(exprs), sql.Identifier(TABLE), where_sql)
    try:
        con = connect(url, 600_000)
    except Exception as exc:  # psycopg.OperationalError and bad URLs alike
        raise PredictionLogError(f"cannot connect to the prediction log {where}: {_one_line(exc)}") from exc
    try:
        _check_pg_columns(con, where)
        non_numeric = _pg_non_numeric(con, sql, features, where_sql)
        with tempfile.TemporaryFile(prefix="tenure-log-") as tmp:
            with con.cursor() as cur, cur.copy(query) as copy:
                for block in copy:
                    tmp.write(block)
            size = tmp.tell()
            tmp.seek(0)
            if size:
                reader = pcsv.open_csv(
                    tmp, read_options=pcsv.ReadOptions(column_names=names, block_size=1 << 24),
                    parse_options=pcsv.ParseOptions(newlines_in_values=True),
                    convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                                        quoted_strings_can_be_null=False))
                for batch in reader:
                    _add_arrow_batch(acc, batch, names, features)
    except PredictionLogError:
        raise
    except Exception as exc:  # psycopg.Error, Arrow parse errors
        raise PredictionLogError(f"prediction log {where}: reading table {TABLE!r} failed: {_one_line(exc)}") from exc
    finally:
        con.close()
    return non_numeric


def _one_line(exc: BaseException) -> str:
    return redact_url(" ".join(str(exc).split()) or type(exc).__name__)


def _check_pg_columns(con: Any, where: str) -> None:
    cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_schema = current_schema() AND table_name = %s", (TABLE,))}
    if not cols:
        raise PredictionLogError(f"prediction log {where} has no table {TABLE!r}; serve a model with "
                                 "TENURE_PREDICTION_LOG pointing at it first")
    missing = [c for c in LOG_COLUMNS if c not in cols]
    if missing:
        raise PredictionLogError(f"prediction log {where}: table {TABLE!r} lacks columns {missing}")


def _pg_non_numeric(con: Any, sql: Any, features: Sequence[Mapping[str, Any]], where_sql: Any) -> dict[str, int]:
    """Per numeric feature, the values in the window that are present but not numbers."""
    numeric = [f["name"] for f in features if f["kind"] == "numeric"]
    if not numeric:
        return {}
    counts = [sql.SQL("count(*) FILTER (WHERE jsonb_typeof(features -> {n}) NOT IN ('null') AND {e} IS NULL)").format(
        n=sql.Literal(name), e=_pg_numeric(sql, name)) for name in numeric]
    row = con.execute(sql.SQL("SELECT {} FROM {}{}").format(sql.SQL(", ").join(counts), sql.Identifier(TABLE),
                                                           where_sql)).fetchone()
    return {name: int(n) for name, n in zip(numeric, row, strict=True) if n}


def _add_arrow_batch(acc: _Columns, batch: Any, names: Sequence[str], features: Sequence[Mapping[str, Any]]) -> None:
    columns = dict(zip(names, batch.columns, strict=True))
    for c in META_COLUMNS:
        col = columns[c]
        if c in REPEATED_COLUMNS:
            acc.add_categorical(c, col.to_pandas())
        elif c == "scored_at":
            acc.add(c, col.to_numpy(zero_copy_only=False).astype("datetime64[us]").astype("datetime64[ns]"))
        elif c in ("row_id", "probability", "shadow"):
            acc.add(c, col.to_numpy(zero_copy_only=False))
        else:
            acc.add(c, np.asarray(col.to_pylist(), dtype=object))
    for i, f in enumerate(features, start=len(META_COLUMNS)):
        col = columns[names[i]]
        if f["kind"] == "numeric":
            acc.add(f["name"], col.to_numpy(zero_copy_only=False).astype(np.float64))
        else:
            acc.add_categorical(f["name"], col.to_pandas())


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
