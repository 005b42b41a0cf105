"""Validated reading of a dataset's source tables.

Reads `<dataset_dir>/manifest.json` (for the dataset's `end_date`) and `<dataset_dir>/<table>.parquet`
for each table of `features.schema` (a file, or a folder of `part-NNNNN.parquet` files as
`tenure data generate --chunk-customers` writes them), checks every rule the schema states and returns the tables
coerced to canonical dtypes, so downstream code can rely on them:

- `int` -> `int64` (`Int64` when the column is nullable), `float` -> `float64`, `bool` -> `bool`
  (`boolean` when nullable), `category` -> `category` with exactly the schema's categories,
  `date` -> `datetime64[ns]` floored to the day, `string` -> `object` holding `str` or `None`.

The first problem found stops the read with a `DataValidationError` naming the table, the column,
the problem and up to five offending rows (key value and offending value). Nothing is written.

Columns a file holds beyond the schema are allowed and never read. Personal-data columns
(`schema.PERSONAL_DATA_COLUMNS`) must be present in the file, but `read_dataset` does not load
them unless asked to (`drop_personal_data=False`).

All checks are vectorised (Arrow and numpy); example rows are built only for a failing check.

`customers=(lo, hi)` reads one customer partition: the rows of every table whose `customer_id` is in
`[lo, hi)`, checked as above (keys, references and time order within the partition). Every table
carries `customer_id` and every reference stays within one customer's rows, so a partition is a
dataset of its own: the Dask feature build (`features.distributed`) reads one per task.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from configs import TenureError
from features.schema import PERSONAL_DATA_COLUMNS, TABLES, Column, Table

MANIFEST_FILE = "manifest.json"
MAX_EXAMPLES = 5
_DAY_NS = 86_400 * 10**9


class DataValidationError(TenureError, ValueError):
    """A source table (or the dataset's manifest) that breaks the schema.

    `table` and `column` say where (either may be `None` for dataset-level problems), `problem`
    says what, and `examples` holds up to five offending rows as dicts (key value and the
    offending value(s); `row` is the 0-based row position when no key value is usable).
    """

    def __init__(self, table: str | None, column: str | None, problem: str,
                 examples: Sequence[dict[str, Any]] = (), path: Path | None = None) -> None:
        self.table = table
        self.column = column
        self.problem = problem
        self.examples = [dict(e) for e in examples]
        self.path = path
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.table is not None:
            where.append(f"table {self.table!r}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        text = (", ".join(where) + ": " if where else "") + self.problem
        if self.examples:
            shown = ", ".join(" ".join(f"{k}={_show(v)}" for k, v in row.items())
                              for row in self.examples[:MAX_EXAMPLES])
            text += f"; e.g. {shown}" + (", ..." if len(self.examples) > MAX_EXAMPLES else "")
        if self.path is not None:
            text += f" (file {self.path})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.table, self.column, self.problem, self.examples, self.path))


@dataclass
class Dataset:
    """A validated dataset: its folder, manifest, end date and tables (name -> frame)."""

    path: Path
    manifest: dict[str, Any]
    end_date: pd.Timestamp
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.DataFrame:
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"table {name!r} was not read from {self.path}; "
                           f"read: {', '.join(self.tables) or 'none'}") from None


# --------------------------------------------------------------------------------------- public


def read_dataset(dataset_dir: Path, tables: Iterable[str] | None = None, *,
                 drop_personal_data: bool = True, end_date: str | None = None,
                 customers: tuple[int, int] | None = None) -> Dataset:
    """Read and check the dataset's manifest and tables, then the foreign keys between them.

    `tables` defaults to every table of the schema. `end_date` (ISO date) overrides the
    manifest's; without it the folder must hold `manifest.json` with an `end_date`. A reference
    to a table not asked for is still checked, by reading that table's key column only.
    `customers=(lo, hi)`: only the rows of customers with `lo <= customer_id < hi` (see above).
    """
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise DataValidationError(None, None, f"dataset folder {dataset_dir} does not exist")
    names = _table_names(tables)
    manifest, end = _manifest_and_end(dataset_dir, end_date)

    frames: dict[str, pd.DataFrame] = {}
    for name in names:
        spec = TABLES[name]
        cols = [c.name for c in spec.columns
                if not (drop_personal_data and c.name in PERSONAL_DATA_COLUMNS)]
        frames[name] = read_table(dataset_dir, name, end, cols, customers=customers)
    _check_foreign_keys(dataset_dir, frames, end, customers)
    return Dataset(path=dataset_dir, manifest=manifest, end_date=end, tables=frames)


def read_table(dataset_dir: Path, table: str, end_date: pd.Timestamp,
               columns: list[str] | None = None, *, customers: tuple[int, int] | None = None) -> pd.DataFrame:
    """Read `<dataset_dir>/<table>.parquet`, check it against the schema, return canonical dtypes.

    `columns` (schema column names; default all) are the columns loaded and returned, in that
    order. Every schema column must be present in the file even when not loaded; the key column
    is always read for the checks (and dropped again if not asked for). Checks that need a
    column not loaded (an ordered date pair, a self-reference) are skipped. References to other
    tables are checked by `read_dataset`.
    """
    spec = _table_spec(table)
    wanted = _column_names(spec, columns)
    load = wanted if spec.key in wanted else [spec.key, *wanted]
    path = Path(dataset_dir) / f"{table}.parquet"
    end = pd.Timestamp(end_date)

    raw = _read_parquet(path, spec, load, customers)
    checker = _TableChecker(spec, path, raw)
    out: dict[str, pd.Series] = {}
    for name in load:
        out[name] = checker.column(spec.column(name), end)
    frame = pd.DataFrame(out, copy=False)
    checker.unique_key(frame[spec.key])
    checker.ordered_dates(frame)
    for col in spec.columns:
        ref = _reference(col)
        if ref is not None and ref[0] == spec.name and col.name in frame:
            checker.references(col, frame[col.name], frame[ref[1]], ref)
    return frame[wanted] if wanted != load else frame


# --------------------------------------------------------------------------------- dataset level


def _table_names(tables: Iterable[str] | None) -> list[str]:
    if tables is None:
        return list(TABLES)
    names = list(dict.fromkeys(tables))
    for name in names:
        _table_spec(name)
    return names


def _table_spec(table: str) -> Table:
    try:
        return TABLES[table]
    except KeyError:
        raise DataValidationError(table, None, f"unknown table; the schema has: {', '.join(TABLES)}") from None


def _column_names(spec: Table, columns: list[str] | None) -> list[str]:
    if columns is None:
        return list(spec.column_names)
    names = list(dict.fromkeys(columns))
    unknown = [c for c in names if c not in spec.column_names]
    if unknown:
        raise DataValidationError(spec.name, unknown[0],
                                  f"not a column of the schema (columns: {', '.join(spec.column_names)})")
    return names


def _manifest_and_end(dataset_dir: Path, end_date: Any) -> tuple[dict[str, Any], pd.Timestamp]:
    """The manifest (or a minimal one) and the effective dataset end date."""
    path = dataset_dir / MANIFEST_FILE
    manifest: dict[str, Any] | None = None
    if path.exists():
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataValidationError(None, None, f"manifest {path} cannot be read as JSON: {exc}") from exc
        if not isinstance(manifest, dict):
            raise DataValidationError(None, None, f"manifest {path} must hold a JSON object")
    if end_date is not None:
        return (manifest if manifest is not None else {"end_date": str(end_date)},
                _parse_end_date(end_date, "the end_date given"))
    if manifest is None:
        raise DataValidationError(
            None, None,
            f"dataset {dataset_dir} has no {MANIFEST_FILE}; add one holding the last day the data "
            f'covers, e.g. {{"end_date": "2024-12-31"}}, or pass the end date explicitly')
    if manifest.get("end_date") in (None, ""):
        raise DataValidationError(
            None, None, f'manifest {path} has no "end_date"; add the last day the data covers, '
                        f'e.g. "end_date": "2024-12-31"')
    return manifest, _parse_end_date(manifest["end_date"], f"end_date in {path}")


def _parse_end_date(value: Any, where: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataValidationError(None, None, f"{where} ({value!r}) is not an ISO date") from exc
    if ts is pd.NaT or ts.tzinfo is not None:
        raise DataValidationError(None, None, f"{where} ({value!r}) must be a date without time zone")
    return ts.normalize()


def _reference(col: Column) -> tuple[str, str] | None:
    if col.references is None:
        return None
    table, _, column = col.references.partition(".")
    return table, column


def _check_foreign_keys(dataset_dir: Path, frames: dict[str, pd.DataFrame], end: pd.Timestamp,
                        customers: tuple[int, int] | None = None) -> None:
    """Every non-null reference to another table must name an existing key there."""
    keys: dict[str, pd.Series] = {}
    for name, frame in frames.items():
        spec = TABLES[name]
        for col in spec.columns:
            ref = _reference(col)
            if ref is None or ref[0] == name or col.name not in frame:
                continue
            ref_table, ref_col = ref
            if ref_table not in keys:
                if ref_table in frames and ref_col in frames[ref_table]:
                    keys[ref_table] = frames[ref_table][ref_col]
                else:
                    keys[ref_table] = read_table(dataset_dir, ref_table, end, [ref_col],
                                                 customers=customers)[ref_col]
            checker = _TableChecker(spec, dataset_dir / f"{name}.parquet", None, key_values=frame[spec.key])
            checker.references(col, frame[col.name], keys[ref_table], ref)


# ----------------------------------------------------------------------------------- table level


def _read_parquet(path: Path, spec: Table, load: list[str],
                  customers: tuple[int, int] | None = None) -> pa.Table:
    if not path.exists():
        raise DataValidationError(
            spec.name, None, f"file {path.name} is missing from {path.parent}; every dataset needs "
                             f"the table {spec.name!r} ({spec.description})")
    if path.is_dir() or customers is not None:
        return _read_parquet_dataset(path, spec, load, customers)
    try:
        pf = pq.ParquetFile(path)
        present = set(pf.schema_arrow.names)
    except (OSError, pa.ArrowException) as exc:
        raise DataValidationError(spec.name, None, f"cannot be read as Parquet: {exc}", path=path) from exc
    missing = [c for c in spec.column_names if c not in present]
    if missing:
        raise DataValidationError(
            spec.name, missing[0],
            f"missing from the file (missing: {', '.join(missing)}; the schema requires: "
            f"{', '.join(spec.column_names)})", path=path)
    try:
        return pf.read(columns=load, use_threads=True)
    except (OSError, pa.ArrowException) as exc:
        raise DataValidationError(spec.name, None, f"cannot be read as Parquet: {exc}", path=path) from exc


def _read_parquet_dataset(path: Path, spec: Table, load: list[str],
                          customers: tuple[int, int] | None) -> pa.Table:
    """A table folder (`part-*.parquet`, in name order) or file, optionally one customer range only;
    the range filter skips files and row groups by their statistics, so a partition costs its rows."""
    files = sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]
    if not files:
        raise DataValidationError(spec.name, None, f"folder {path} holds no part-*.parquet files", path=path)
    try:
        data = pads.dataset([str(f) for f in files], format="parquet")
    except (OSError, pa.ArrowException) as exc:
        raise DataValidationError(spec.name, None, f"cannot be read as Parquet: {exc}", path=path) from exc
    missing = [c for c in spec.column_names if c not in data.schema.names]
    if missing:
        raise DataValidationError(
            spec.name, missing[0],
            f"missing from the file (missing: {', '.join(missing)}; the schema requires: "
            f"{', '.join(spec.column_names)})", path=path)
    where = None
    if customers is not None:
        if "customer_id" not in spec.column_names:  # pragma: no cover - every table has it
            raise DataValidationError(spec.name, None, "has no customer_id to partition by", path=path)
        lo, hi = customers
        where = (pads.field("customer_id") >= lo) & (pads.field("customer_id") < hi)
    try:
        return data.to_table(columns=load, filter=where)
    except (OSError, pa.ArrowException) as exc:
        raise DataValidationError(spec.name, None, f"cannot be read as Parquet: {exc}", path=path) from exc


class _TableChecker:
    """Checks and coerces the columns of one table, raising with examples on the first problem."""

    def __init__(self, spec: Table, path: Path, raw: pa.Table | None,
                 key_values: pd.Series | None = None) -> None:
        self.spec = spec
        self.path = path
        self.raw = raw
        self.key_values = key_values  # set once the key column passed its checks

    # -- failure with examples

    def fail(self, column: str | None, problem: str, mask: np.ndarray | None = None,
             values: dict[str, Any] | None = None) -> NoReturn:
        """Raise for `column`; example rows are the first rows where `mask` is set.

        `values` maps extra column names to array-likes to show alongside the key value.
        """
        examples: list[dict[str, Any]] = []
        if mask is not None:
            rows = np.flatnonzero(mask)[: MAX_EXAMPLES + 1]
            for i in rows:
                ex: dict[str, Any] = {}
                if self.key_values is not None and column != self.spec.key:
                    ex[self.spec.key] = _native(self.key_values.iloc[i])
                else:
                    ex["row"] = int(i)
                for name, arr in (values or {}).items():
                    ex[name] = _native(_at(arr, i))
                examples.append(ex)
        raise DataValidationError(self.spec.name, column, problem, examples, self.path)

    # -- per column

    def column(self, col: Column, end: pd.Timestamp) -> pd.Series:
        """Check one column's type and values and return it in its canonical dtype."""
        assert self.raw is not None
        arr = self.raw.column(col.name)
        series = self._coerce(col, arr)
        self._nulls(col, series)
        if col.kind in ("int", "float"):
            self._range(col, series)
        elif col.kind == "category":
            series = self._categories(col, series)
        elif col.kind == "date" and col.not_after_end:
            late = (series > end).to_numpy()
            if late.any():
                self.fail(col.name, f"{int(late.sum())} rows are dated after the dataset end "
                                    f"{end.date().isoformat()}", late, {col.name: series})
        if col.name == self.spec.key:
            self.key_values = series
        return series

    def _wrong_type(self, col: Column, arr: pa.ChunkedArray, expected: str) -> NoReturn:
        nonnull = np.flatnonzero(~_null_mask(arr))
        mask = np.zeros(len(arr), dtype=bool)
        mask[nonnull[: MAX_EXAMPLES + 1]] = True
        self.fail(col.name, f"has type {arr.type}, expected {expected}", mask,
                  {col.name: arr})

    def _coerce(self, col: Column, arr: pa.ChunkedArray) -> pd.Series:
        t = arr.type
        kind = col.kind
        if pa.types.is_null(t):
            return _all_null(col, len(arr))
        if pa.types.is_decimal(t) and kind in ("int", "float"):
            arr = pc.cast(arr, pa.float64())
            t = arr.type
        if kind == "int":
            if pa.types.is_integer(t):
                return _int_series(col, arr)
            if pa.types.is_floating(t):
                values = arr.to_numpy()
                bad = ~np.isnan(values) & ((values != np.round(values)) | ~np.isfinite(values))
                if bad.any():
                    self.fail(col.name, f"{int(bad.sum())} rows have non-integer values in an integer "
                                        "column (stored as floats)", bad, {col.name: values})
                nulls = np.isnan(values)
                values = np.where(nulls, 0, values).astype("int64")
                if col.nullable:
                    return pd.Series(pd.arrays.IntegerArray(values, nulls), name=col.name)
                return pd.Series(np.where(nulls, np.nan, values) if nulls.any() else values,
                                 name=col.name)
            self._wrong_type(col, arr, "integer")
        if kind == "float":
            if pa.types.is_integer(t) or pa.types.is_floating(t):
                return pd.Series(arr.to_numpy().astype("float64", copy=False), name=col.name)
            self._wrong_type(col, arr, "float")
        if kind == "bool":
            if pa.types.is_boolean(t):
                return _bool_series(col, arr)
            if pa.types.is_integer(t):
                bad = _fill(pc.invert(pc.is_in(arr, pa.array([0, 1], t))), False)
                if bad.any():
                    self.fail(col.name, f"{int(bad.sum())} rows hold integers other than 0/1 in a "
                                        "boolean column", bad, {col.name: arr})
                return _bool_series(col, pc.cast(arr, pa.bool_()))
            self._wrong_type(col, arr, "boolean")
        if kind == "category":
            if pa.types.is_dictionary(t) and _is_text(t.value_type):
                return arr.to_pandas().rename(col.name)
            if _is_text(t):
                return arr.dictionary_encode().to_pandas().rename(col.name)
            self._wrong_type(col, arr, "string (one of the categories)")
        if kind == "date":
            return self._dates(col, arr)
        if kind == "string":
            if _is_text(t):
                return pd.Series(arr.to_pandas(), name=col.name, dtype=object)
            if pa.types.is_dictionary(t) and _is_text(t.value_type):
                return pd.Series(arr.to_pandas().astype(object), name=col.name, dtype=object)
            self._wrong_type(col, arr, "string")
        raise AssertionError(f"unhandled kind {kind!r}")  # pragma: no cover - schema kinds are closed

    def _dates(self, col: Column, arr: pa.ChunkedArray) -> pd.Series:
        t = arr.type
        if pa.types.is_timestamp(t) and t.tz is not None:
            self.fail(col.name, f"holds timestamps with time zone {t.tz}; store dates without a time zone",
                      ~_null_mask(arr), {col.name: arr})
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            raw = arr.to_pandas(date_as_object=False)
            nulls = raw.isna().to_numpy()
            if raw.dtype != "datetime64[ns]":
                out = ((raw < pd.Timestamp.min) | (raw > pd.Timestamp.max)).to_numpy()
                if out.any():
                    self.fail(col.name, f"{int(out.sum())} rows have dates outside "
                                        f"{pd.Timestamp.min.date()}..{pd.Timestamp.max.date()}",
                              out, {col.name: raw.astype(str)})
                raw = raw.astype("datetime64[ns]")
        elif _is_text(t):
            text = arr.to_pandas()
            nulls = text.isna().to_numpy()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # mixed offsets: reported below
                    raw = pd.to_datetime(text, format="ISO8601", errors="coerce")
            except (ValueError, TypeError):
                raw = None
            if raw is None or getattr(raw.dtype, "tz", None) is not None or raw.dtype == object:
                zoned = text.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", na=False).to_numpy()
                self.fail(col.name, "holds dates with time zone offsets; store dates without a time zone",
                          zoned if zoned.any() else ~nulls, {col.name: text})
            bad = raw.isna().to_numpy() & ~nulls
            if bad.any():
                self.fail(col.name, f"{int(bad.sum())} rows hold text that is not an ISO date "
                                    "(YYYY-MM-DD)", bad, {col.name: text})
            raw = raw.astype("datetime64[ns]")
        else:
            self._wrong_type(col, arr, "date (or ISO date text)")
        ints = raw.to_numpy().view("int64")
        if ((ints % _DAY_NS != 0) & ~nulls).any():  # day resolution: drop times of day
            raw = raw.dt.normalize()
        return raw.rename(col.name)

    def _nulls(self, col: Column, series: pd.Series) -> None:
        if col.nullable:
            return
        nulls = series.isna().to_numpy()
        if nulls.any():
            self.fail(col.name, f"{int(nulls.sum())} rows are null (the column may not be null)",
                      nulls, {col.name: series})

    def _range(self, col: Column, series: pd.Series) -> None:
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        if col.min is not None:
            low = values < col.min
            if low.any():
                what = "negative values" if col.min == 0 else "values below the minimum"
                self.fail(col.name, f"{int(low.sum())} rows have {what} (min {col.min:g})",
                          low, {col.name: series})
        if col.max is not None:
            high = values > col.max
            if high.any():
                self.fail(col.name, f"{int(high.sum())} rows have values above the maximum "
                                    f"(max {col.max:g})", high, {col.name: series})
        if col.kind == "float":
            inf = np.isinf(values)
            if inf.any():
                self.fail(col.name, f"{int(inf.sum())} rows have infinite values", inf, {col.name: series})

    def _categories(self, col: Column, series: pd.Series) -> pd.Series:
        assert col.categories is not None
        allowed = list(col.categories)
        cats = series.cat.categories
        unknown = ~cats.isin(allowed)
        if unknown.any():
            bad = np.isin(series.cat.codes.to_numpy(), np.flatnonzero(unknown))
            if bad.any():
                names = ", ".join(repr(c) for c in cats[unknown][:10])
                self.fail(col.name, f"{int(bad.sum())} rows have unknown categories ({names}); "
                                    f"allowed: {', '.join(allowed)}", bad, {col.name: series.astype(object)})
        if list(cats) == allowed and not series.cat.ordered:
            return series
        return series.cat.set_categories(allowed, ordered=False)

    # -- whole table

    def unique_key(self, key: pd.Series) -> None:
        values = key.to_numpy()
        if len(values) < 2 or bool((values[1:] > values[:-1]).all()):
            return  # strictly increasing: unique without hashing
        dup = key.duplicated(keep=False).to_numpy()
        if dup.any():
            n = int(key[dup].nunique())
            self.fail(self.spec.key, f"{n} key values appear more than once ({int(dup.sum())} rows)",
                      dup, {self.spec.key: key})

    def ordered_dates(self, frame: pd.DataFrame) -> None:
        for earlier, later in self.spec.ordered_dates:
            if earlier not in frame or later not in frame:
                continue
            bad = (frame[earlier] > frame[later]).to_numpy()
            if bad.any():
                self.fail(later, f"{int(bad.sum())} rows have {later} before {earlier}", bad,
                          {earlier: frame[earlier], later: frame[later]})

    def references(self, col: Column, values: pd.Series, keys: pd.Series, ref: tuple[str, str]) -> None:
        present = values.notna().to_numpy()
        ids = values.to_numpy(dtype="int64", na_value=0)
        found = _isin(ids, keys.to_numpy(dtype="int64"))
        orphan = present & ~found
        if orphan.any():
            self.fail(col.name, f"{int(orphan.sum())} rows reference {ref[1]} values missing from "
                                f"{ref[0]}.{ref[1]}", orphan, {col.name: values})


# -------------------------------------------------------------------------------------- helpers


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _null_mask(arr: pa.ChunkedArray) -> np.ndarray:
    return pc.is_null(arr).to_numpy(zero_copy_only=False)


def _fill(arr: pa.ChunkedArray, value: bool) -> np.ndarray:
    return pc.fill_null(arr, value).to_numpy(zero_copy_only=False)


def _int_series(col: Column, arr: pa.ChunkedArray) -> pd.Series:
    nulls = _null_mask(arr) if arr.null_count else None
    values = (pc.fill_null(arr, 0) if nulls is not None else arr).to_numpy().astype("int64", copy=False)
    if col.nullable:
        mask = nulls if nulls is not None else np.zeros(len(values), dtype=bool)
        return pd.Series(pd.arrays.IntegerArray(values, mask), name=col.name)
    if nulls is not None:  # the null check reports it next
        return pd.Series(np.where(nulls, np.nan, values), name=col.name)
    return pd.Series(values, name=col.name)


def _bool_series(col: Column, arr: pa.ChunkedArray) -> pd.Series:
    if arr.null_count or col.nullable:  # a null in a non-nullable column is reported next
        return pd.Series(arr.to_pandas(), name=col.name).astype("boolean")
    return pd.Series(arr.to_numpy(zero_copy_only=False), name=col.name, dtype=bool)


def _all_null(col: Column, n: int) -> pd.Series:
    """A column stored with Arrow's null type: all missing, in the kind's dtype."""
    if col.kind == "string":
        return pd.Series([None] * n, name=col.name, dtype=object)
    dtype: Any = {
        "int": "Int64" if col.nullable else "float64",  # non-nullable: the null check reports it
        "float": "float64",
        "bool": "boolean",
        "category": pd.CategoricalDtype(list(col.categories or ())),
        "date": "datetime64[ns]",
    }[col.kind]
    return pd.Series(pd.array([None] * n, dtype=dtype), name=col.name)


def _isin(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """`values` found in `keys`.

    Keys that are dense (ids 1..n, as generated and as most extracts number them) go into a
    boolean lookup table: one pass, no hashing and no binary search. Sparse keys use hashing.
    """
    if len(keys) == 0:
        return np.zeros(len(values), dtype=bool)
    lo, hi = int(keys.min()), int(keys.max())
    span = hi - lo + 1
    if span <= max(4 * len(keys), 1 << 20):
        table = np.zeros(span, dtype=bool)
        table[keys - lo] = True
        inside = (values >= lo) & (values <= hi)
        return inside & table[np.where(inside, values - lo, 0)]
    return pd.Series(values).isin(keys).to_numpy()


def _at(values: Any, i: int) -> Any:
    if isinstance(values, pd.Series):
        return values.iloc[i]
    if isinstance(values, pa.ChunkedArray):
        return values[int(i)].as_py()
    return values[i]


def _native(value: Any) -> Any:
    """A plain Python value for examples (None for any kind of missing)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        if isinstance(value, float) and np.isnan(value):
            return None
    return value


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, str):
        return repr(value)
    return str(value)
