"""Batch scoring (`tenure predict`): a registered model and a CSV or Parquet file -> one probability per row.

Reads the model through the MLflow registry (`training.pyfunc.load_tenure_model`) and a table
(`.csv`, `.csv.gz`, `.parquet`, `.pq`); writes `<out>` (CSV or Parquet by suffix) atomically with
the id column and `probability` for every input row, in input order.

Invalid rows are never dropped silently. A row is invalid when a numeric feature holds something
that is not a number (or is infinite) or a number outside the feature's range, or a categorical
feature holds a category the model does not know; a missing feature column makes every row
invalid. The range is the one the API enforces (`FeatureDef.out_of_range` of the feature
catalogue, `features.definitions`, which also bounds the request schema), so a row the service
refuses with 400 is refused here too rather than scored. Missing values are fine (the model
routes them as missing). By default any invalid row stops the run: the error lists the rows (1 =
the first data row) and fields, and nothing is written. With `skip_invalid`, the valid rows are
scored and written and the invalid ones go to `<out stem>.rejected.csv` (row, id, field, value,
reason: one line per bad value); a missing feature column still stops the run, since no row
could be scored.

Values are read as the feature-set builder reads them: CSV cells as text, numbers parsed
(`true`/`false` read as 1/0), categories compared as text with surrounding spaces removed and
`2.0` read as `2`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from configs import TenureError
from features.definitions import FEATURES_BY_NAME
from features.io import atomic_path

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zip", ".csv.bz2", ".csv.xz")
PARQUET_SUFFIXES = (".parquet", ".pq")
MAX_SHOWN = 20


class PredictError(TenureError, ValueError):
    """Input that cannot be scored; the message names the file, rows and fields."""


@dataclass
class PredictResult:
    out: Path
    rows: int  # input rows
    scored: int
    rejected: int  # invalid rows (written to `rejected_path` with skip_invalid)
    rejected_path: Path | None
    model_uri: str


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise PredictError(f"{path}: use a CSV ({', '.join(CSV_SUFFIXES)}) or Parquet ({', '.join(PARQUET_SUFFIXES)}) file")


def read_input(path: Path) -> pd.DataFrame:
    """The rows to score; CSV cells stay text (parsed per feature later), so nothing is coerced silently."""
    path = Path(path)
    kind = _kind(path)
    if not path.exists():
        raise PredictError(f"input file {path} does not exist")
    try:
        if kind == "csv":
            return pd.read_csv(path, dtype=str, keep_default_na=True)
        return pd.read_parquet(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise PredictError(f"input file {path} cannot be read as {kind}: {exc}") from exc


def _category_text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _as_known_number(text: str | None, allowed: frozenset[str]) -> str | None:
    """`"2.0"` -> `"2"` when only the latter is a category (the builder reads numbers, then categories)."""
    if text is None or text in allowed:
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    if number.is_integer() and str(int(number)) in allowed:
        return str(int(number))
    return text


def _numbers(col: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Numeric values (missing -> NaN) and a mask of cells that are present but not numbers."""
    col = col.reset_index(drop=True)
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return col.astype("float64"), np.zeros(len(col), dtype=bool)
    text = col.astype("string").str.strip()
    text = text.mask(text == "", pd.NA)
    lowered = text.str.lower()
    text = text.mask((lowered == "true").fillna(False), "1").mask((lowered == "false").fillna(False), "0")
    ok = pd.to_numeric(text, errors="coerce").notna().to_numpy(dtype=bool)
    values = np.full(len(text), np.nan)
    # pandas' fast text parser can be off in the last bit; Python's float() is exact, and a
    # threshold of the model may sit right there
    values[ok] = text[ok].to_numpy(dtype=object).astype(np.float64)
    return pd.Series(values), (~ok & text.notna().to_numpy(dtype=bool))


def prepare(frame: pd.DataFrame, features: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The feature columns normalised for `TenureModel.encode_frame`, and every invalid value found.

    The report has one line per bad value: `row` (0-based position), `field`, `value`, `reason`.
    Raises `PredictError` when feature columns are missing.
    """
    missing = [f["name"] for f in features if f["name"] not in frame.columns]
    if missing:
        raise PredictError(f"missing required feature columns {missing} (every row needs them; "
                           f"the model expects {[f['name'] for f in features]})")
    out: dict[str, pd.Series] = {}
    problems: list[pd.DataFrame] = []

    def flag(name: str, col: pd.Series, mask: np.ndarray, reason: str) -> None:
        idx = np.flatnonzero(mask)
        if len(idx):
            problems.append(pd.DataFrame({"row": idx, "field": name,
                                          "value": col.iloc[idx].astype(str).to_numpy(), "reason": reason}))

    for f in features:
        name, col = f["name"], frame[f["name"]].reset_index(drop=True)
        if f["kind"] == "categorical":
            allowed = [str(c) for c in f["categories"]]
            text = col.astype(object).map(_category_text)
            text = text.map(lambda v, a=frozenset(allowed): _as_known_number(v, a))
            bad = (text.notna() & ~text.isin(allowed)).to_numpy(dtype=bool)
            flag(name, col, bad, f"unknown category; allowed: {allowed}")
            out[name] = text.where(~bad, None)
        else:
            values, not_number = _numbers(col)
            infinite = np.isinf(values.to_numpy())
            flag(name, col, not_number, "not a number")
            flag(name, col, infinite, "infinite value")
            bad = not_number | infinite
            defn = FEATURES_BY_NAME.get(name)
            if defn is not None:
                outside = defn.out_of_range(values.to_numpy()) & ~infinite
                flag(name, col, outside, f"out of range: must be {defn.range_text} (the API refuses it too)")
                bad |= outside
            out[name] = values.where(~bad, np.nan)
    columns = ["row", "field", "value", "reason"]
    if not problems:
        return pd.DataFrame(out), pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else object) for c in columns})
    report = pd.concat(problems, ignore_index=True).sort_values(["row", "field"], kind="stable")
    return pd.DataFrame(out), report.reset_index(drop=True)[columns]


def _format(report: pd.DataFrame, where: str) -> str:
    rows = report["row"].nunique()
    shown = "; ".join(f"row {r + 1}: {f}: {reason} (got {v!r})"
                      for r, f, v, reason in report.head(MAX_SHOWN).itertuples(index=False))
    more = f"; ... and {len(report) - MAX_SHOWN} more" if len(report) > MAX_SHOWN else ""
    return (f"{where}: {rows} row(s) have invalid values (rows counted from 1 = the first data row): "
            f"{shown}{more}. Nothing was written; fix them, or pass --skip-invalid to score the valid rows "
            "and list the others in a .rejected.csv file")


def rejected_path_for(out: Path) -> Path:
    """`scores.csv` -> `scores.rejected.csv` (beside the output)."""
    name = out.name
    for suffix in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return out.with_name(f"{name}.rejected.csv")


def _write(frame: pd.DataFrame, path: Path) -> None:
    kind = _kind(path)
    with atomic_path(path) as tmp:
        if kind == "csv":
            compression = {".gz": "gzip", ".zip": "zip", ".bz2": "bz2", ".xz": "xz"}.get(path.suffix.lower())
            frame.to_csv(tmp, index=False, compression=compression)
        else:
            frame.to_parquet(tmp, index=False)


def predict_file(model_uri: str, data: Path, out: Path, *, skip_invalid: bool = False,
                 id_column: str | None = None) -> PredictResult:
    """Score every row of `data` with the model at `model_uri`; see the module docstring."""
    from models.registry import load_tenure_model

    data, out = Path(data), Path(out)
    _kind(out)  # fail on a bad output name before any work
    frame = read_input(data)
    try:
        model = load_tenure_model(model_uri)
    except TenureError:
        raise
    except Exception as exc:  # mlflow raises its own exception types for unknown names/aliases
        raise PredictError(f"cannot load model {model_uri}: {exc}") from exc
    id_name = id_column or model.meta.get("id_column") or "customer_id"
    if id_name in frame.columns:
        ids = frame[id_name].reset_index(drop=True)
    elif id_column is not None:
        raise PredictError(f"{data}: id column {id_column!r} not found; columns: {list(frame.columns)}")
    else:  # e.g. a generated `row_id`: number the rows from 1
        ids = pd.Series(np.arange(1, len(frame) + 1), name=id_name)
    try:
        features, report = prepare(frame, model.features)
    except PredictError as exc:
        raise PredictError(f"{data}: {exc}") from exc
    bad_rows = np.zeros(len(frame), dtype=bool)
    bad_rows[report["row"].to_numpy(dtype=np.int64)] = True
    if bad_rows.any() and not skip_invalid:
        raise PredictError(_format(report, str(data)))
    keep = ~bad_rows
    X = model.encode_frame(features.loc[keep].reset_index(drop=True))  # noqa: N806
    scored = pd.DataFrame({id_name: ids[keep].reset_index(drop=True), "probability": model.predict_proba(X)})
    rejected_path = None
    if bad_rows.any():
        rejected_path = rejected_path_for(out)
        rejected = report.assign(id=ids.iloc[report["row"].to_numpy()].to_numpy(), row=report["row"] + 1)
        _write(rejected[["row", "id", "field", "value", "reason"]], rejected_path)
    _write(scored, out)
    return PredictResult(out=out, rows=len(frame), scored=int(keep.sum()), rejected=int(bad_rows.sum()),
                         rejected_path=rejected_path, model_uri=model_uri)
