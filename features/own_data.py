"""A user's own table (CSV or Parquet) -> a Tenure feature set, described by a dataset config.

Reads the table named by a `configs.dataset.DatasetConfig` and writes one feature set in the
format of `features.featureset` (default `<home>/features/own/<name>.parquet`), the same format
the synthetic builder produces, so training, serving and monitoring take it unchanged:

- the id column keeps the user's name (`FeatureSet.id_column`); without one, `row_id` = 1..n;
- `snapshot_date` is the time column parsed as dates, or the constant 1970-01-01 when there is
  none (lineage `split: "random"` then tells training to split at random, not out of time);
- every remaining column is a feature, in table order: numeric as float64 (booleans 0/1),
  text as pandas `category` with the sorted observed values as categories;
- group columns are kept for fairness audits, not used as features;
- the label `label` (int8) is `target == positive_label`.

Column names are made safe for LightGBM (which rejects `[]{}:,"` in feature names): runs of
characters other than letters, digits and `_` become `_`; the mapping from new to original names
is kept in the lineage (`renamed_columns`) and the descriptions quote the original names.

Columns whose names look like personal data (`configs.dataset.PERSONAL_DATA_NAMES`) are dropped
before anything else, reported with a `PersonalDataWarning` and listed in the lineage.
Problems with the table stop the build with an `OwnDataError` naming the config file, the field
and the column; nothing is written.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from configs import TenureError
from configs.dataset import DatasetConfig, is_personal_column, load_dataset_config
from configs.settings import Settings
from features.featureset import FeatureSet, write_featureset
from features.io import file_sha256

LABEL = "label"
TIME = "snapshot_date"
ROW_ID = "row_id"
NO_TIME_SNAPSHOT = pd.Timestamp("1970-01-01")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zip", ".csv.bz2", ".csv.xz")
PARQUET_SUFFIXES = (".parquet", ".pq")
# an inferred text column with more distinct values than this and than half its rows is an
# identifier or free text, not a category
MAX_INFERRED_CATEGORIES = 50
# the fewest rows of each class a table needs: a 20 % test holdout and 5-fold cross-validation
# give every part at least one (`training.split.min_class_rows(5, 0.2)`); `tenure train
# --dataset-config` asks for what its own training config needs
MIN_CLASS_ROWS = 8

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


class OwnDataError(TenureError, ValueError):
    """A user table that does not fit its dataset config; the message names file, field, column."""


class PersonalDataWarning(UserWarning):
    """Columns that look like personal data were dropped from a user's table."""


def read_table(cfg: DatasetConfig) -> pd.DataFrame:
    """The table at `cfg.path` (CSV or Parquet), with errors naming the config and the file."""
    path = Path(cfg.path)
    lower = path.name.lower()
    if not path.exists():
        raise OwnDataError(f"{cfg.where}: path {path} does not exist (a relative path is read from "
                           "the folder of the dataset config)")
    if path.is_dir():
        raise OwnDataError(f"{cfg.where}: path {path} is a folder; point it at one CSV or Parquet file")
    try:
        if lower.endswith(CSV_SUFFIXES):
            return pd.read_csv(path, low_memory=False)
        if lower.endswith(PARQUET_SUFFIXES):
            return pd.read_parquet(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        kind = "CSV" if lower.endswith(CSV_SUFFIXES) else "Parquet"
        raise OwnDataError(f"{cfg.where}: path {path} cannot be read as {kind}: {exc}") from exc
    raise OwnDataError(f"{cfg.where}: path {path} must be a CSV ({', '.join(CSV_SUFFIXES)}) or "
                       f"Parquet ({', '.join(PARQUET_SUFFIXES)}) file")


def build_from_dataset_config(config_path: Path, out: Path | None, settings: Settings, *,
                              min_class_rows: int = MIN_CLASS_ROWS) -> Path:
    """Read the dataset config and its table, write the feature set, return its path.

    Every check runs before anything is written (a refused table leaves no feature set behind)."""
    cfg = load_dataset_config(config_path)
    df = read_table(cfg)
    lineage = {
        "source_path": str(cfg.path),
        "source_sha256": file_sha256(cfg.path),
        "dataset_config_path": str(Path(config_path).resolve()),
    }
    fs = featureset_from_frame(df, cfg, cfg.path.name, lineage=lineage, min_class_rows=min_class_rows)
    target = Path(out) if out is not None else settings.features_dir / "own" / f"{cfg.name}.parquet"
    return write_featureset(fs, target)


def featureset_from_frame(df: pd.DataFrame, cfg: DatasetConfig, source_desc: str,
                          lineage: dict[str, Any] | None = None, *, min_class_rows: int = 1) -> FeatureSet:
    """The feature set of a user table: validated against `cfg`, nothing written.

    `source_desc` names the table (a file name) in definitions, lineage and messages; `lineage`
    adds entries (source path, file hash) to the lineage. Refused: a table with fewer than
    `min_class_rows` rows of a class (`build_from_dataset_config`: `MIN_CLASS_ROWS`), and one with
    no usable feature (every feature column empty or constant).
    """
    where = cfg.where
    if len(df) == 0:
        raise OwnDataError(f"{where}: table {source_desc} has no rows")
    df = df.copy()
    df.columns = [str(c) for c in df.columns]
    _check_columns_exist(df, cfg, source_desc)
    _check_no_reserved_columns(df, cfg, source_desc)

    roles = {cfg.target, cfg.id_column, cfg.time_column}
    personal = [c for c in df.columns if is_personal_column(c) and c not in roles]
    if personal:
        warnings.warn(f"{where}: dropped columns that look like personal data from {source_desc}: "
                      f"{personal} (they never reach a feature set)", PersonalDataWarning, stacklevel=2)

    label, positive_values, classes = _label(df, cfg, source_desc)
    _check_class_rows(label, cfg, source_desc, min_class_rows)
    ids, id_name = _ids(df, cfg, source_desc)
    times = _times(df, cfg, source_desc)
    _check_unique(ids, times, id_name, cfg, source_desc)

    excluded = roles | set(cfg.drop) | set(cfg.group_columns) | set(personal)
    candidates = [c for c in df.columns if c not in excluded]
    if not candidates:
        raise OwnDataError(f"{where}: no feature columns left in {source_desc} after removing the "
                           "target, id, time, drop, group and personal-data columns")
    explicit = set(cfg.categorical or [])
    taken = {id_name, TIME, LABEL, *cfg.group_columns}
    out: dict[str, pd.Series] = {id_name: ids, TIME: times}
    features: list[dict[str, Any]] = []
    renamed: dict[str, str] = {}
    for col in candidates:
        values, kind = _feature_values(df[col], col, col in explicit, cfg, source_desc)
        safe = _safe_name(col, taken)
        taken.add(safe)
        if safe != col:
            renamed[safe] = col
        out[safe] = values
        features.append(_definition(safe, col, kind, values, source_desc))
    _check_usable(out, features, cfg, source_desc)
    for g in cfg.group_columns:
        out[g] = df[g].reset_index(drop=True)
    out[LABEL] = label

    frame = pd.DataFrame(out)
    shown = positive_values[0] if len(positive_values) == 1 else positive_values
    op = "==" if len(positive_values) == 1 else "in"
    n_snapshots = int(times.nunique())
    return FeatureSet(
        frame=frame,
        task=cfg.name,
        features=features,
        label={
            "name": LABEL,
            "definition": f"{cfg.target} {op} {shown}",
            "horizon_months": cfg.label_horizon_months,
            "target_column": cfg.target,
            "positive_label": positive_values[0] if len(positive_values) == 1 else positive_values,
            "classes": classes,
        },
        id_column=id_name,
        time_column=TIME,
        group_columns=list(cfg.group_columns),
        lineage={
            "source": source_desc,
            "kind": "own_data",
            "dataset_config": cfg.model_dump(mode="json"),
            "split": "time" if cfg.time_column and n_snapshots > 1 else "random",
            "source_rows": len(df),
            "dropped_columns": list(cfg.drop),
            "personal_columns_dropped": personal,
            "renamed_columns": renamed,
            "generated_id": cfg.id_column is None,
            **(lineage or {}),
        },
    )


# ---------------------------------------------------------------------------------------- checks

def _check_columns_exist(df: pd.DataFrame, cfg: DatasetConfig, source: str) -> None:
    wanted = [("target", cfg.target), ("id_column", cfg.id_column), ("time_column", cfg.time_column),
              *(("categorical", c) for c in cfg.categorical or []), *(("drop", c) for c in cfg.drop),
              *(("group_columns", c) for c in cfg.group_columns)]
    missing = [f"{field} {col!r}" for field, col in wanted if col is not None and col not in df.columns]
    if missing:
        raise OwnDataError(f"{cfg.where}: {', '.join(missing)} not a column of {source}; "
                           f"available columns: {list(df.columns)}")


def _check_no_reserved_columns(df: pd.DataFrame, cfg: DatasetConfig, source: str) -> None:
    reserved = {LABEL: cfg.target, TIME: cfg.time_column}
    if cfg.id_column is None:
        reserved[ROW_ID] = None
    for name, allowed in reserved.items():
        if name in df.columns and allowed != name and name not in cfg.drop:
            hint = " (or set id_column: row_id)" if name == ROW_ID else ""
            raise OwnDataError(f"{cfg.where}: column {name!r} of {source} clashes with the column "
                               f"Tenure writes under that name; list it in `drop`{hint}")
    if cfg.id_column in (LABEL, TIME) or LABEL in cfg.group_columns or TIME in cfg.group_columns:
        raise OwnDataError(f"{cfg.where}: {LABEL!r} and {TIME!r} are reserved; the id and group "
                           "columns cannot use those names")


def _canon(value: Any) -> str:
    """A class value in a form that compares robustly: 1 == "1" == True == "yes" -> "true"."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        text = str(int(value))
    elif isinstance(value, float | np.floating):
        text = str(int(value)) if float(value).is_integer() else repr(float(value))
    else:
        text = str(value).strip().lower()
    if text in _TRUE:
        return "true"
    if text in _FALSE:
        return "false"
    return text


def _label(df: pd.DataFrame, cfg: DatasetConfig, source: str) -> tuple[pd.Series, list[Any], list[Any]]:
    target = df[cfg.target]
    missing = target.isna()
    if missing.any():
        rows = list(df.index[missing][:5])
        raise OwnDataError(f"{cfg.where}: target {cfg.target!r} is missing in {int(missing.sum())} rows "
                           f"of {source} (e.g. rows {rows}, counted from 0); remove them or fill them in")
    raw = list(pd.unique(target))
    canon = {v: _canon(v) for v in raw}
    classes = sorted(set(canon.values()))
    found = _plain(sorted(raw, key=str))
    if len(classes) != 2:
        raise OwnDataError(f"{cfg.where}: target {cfg.target!r} must have exactly two classes, "
                           f"found {len(classes)} in {source}: {found[:20]}")
    positive = _canon(cfg.positive_label)
    if positive not in classes:
        hint = (" (YAML reads unquoted Yes/No/On/Off as true/false; quote the value)"
                if isinstance(cfg.positive_label, bool) else "")
        raise OwnDataError(f"{cfg.where}: positive_label {cfg.positive_label!r} is not a value of target "
                           f"{cfg.target!r} in {source}; values found: {found}{hint}")
    matched = _plain(sorted((v for v in raw if canon[v] == positive), key=str))
    label = target.map(canon).eq(positive).astype("int8").reset_index(drop=True)
    return label, matched, found


def _check_class_rows(label: pd.Series, cfg: DatasetConfig, source: str, need: int) -> None:
    counts = label.value_counts()
    for value, name in ((1, "positive"), (0, "negative")):
        have = int(counts.get(value, 0))
        if have < need:
            raise OwnDataError(f"{cfg.where}: {source} has {have} {name} rows (target {cfg.target!r}) of "
                               f"{len(label)}; training needs at least {need} of each class for its test "
                               "holdout and cross-validation folds: add rows or lower cv.folds")


def _check_usable(columns: dict[str, pd.Series], features: list[dict[str, Any]], cfg: DatasetConfig,
                  source: str) -> None:
    """At least one feature must vary: a table whose features are all empty or constant is refused."""
    if any(columns[f["name"]].nunique(dropna=False) > 1 and columns[f["name"]].notna().any() for f in features):
        return
    shown = [f["description"].removesuffix(" (from your data)") for f in features][:10]
    raise OwnDataError(f"{cfg.where}: {source} has no usable feature: every feature column is empty or "
                       f"constant ({', '.join(shown)}{', ...' if len(features) > 10 else ''}); nothing to learn from")


def _plain(values: list[Any]) -> list[Any]:
    """numpy scalars -> Python ones, so they serialise to JSON."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _ids(df: pd.DataFrame, cfg: DatasetConfig, source: str) -> tuple[pd.Series, str]:
    if cfg.id_column is None:
        return pd.Series(np.arange(1, len(df) + 1, dtype="int64"), name=ROW_ID), ROW_ID
    ids = df[cfg.id_column].reset_index(drop=True)
    missing = ids.isna()
    if missing.any():
        raise OwnDataError(f"{cfg.where}: id_column {cfg.id_column!r} is empty in {int(missing.sum())} "
                           f"rows of {source} (e.g. rows {list(df.index[missing.to_numpy()][:5])}, counted from 0)")
    return ids, cfg.id_column


def _times(df: pd.DataFrame, cfg: DatasetConfig, source: str) -> pd.Series:
    if cfg.time_column is None:
        return pd.Series(NO_TIME_SNAPSHOT, index=range(len(df)), dtype="datetime64[ns]", name=TIME)
    col = df[cfg.time_column].reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        # 20240131 style integers; plain numbers are not dates
        parsed = pd.to_datetime(col.astype("Int64").astype(str), format="%Y%m%d", errors="coerce")
    else:
        text = col.astype(str).where(col.notna())
        try:
            parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
            retry = parsed.isna() & text.notna()
            if retry.any():  # other formats ("31/01/2024", "Jan 2024"): slower, value by value
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    parsed = pd.to_datetime(text, errors="coerce", format="mixed")
        except (ValueError, TypeError, OverflowError) as exc:
            raise OwnDataError(f"{cfg.where}: time_column {cfg.time_column!r} of {source} cannot be read "
                               f"as dates ({exc}); use one format and one time zone") from exc
    bad = parsed.isna()
    if bad.any():
        examples = _plain(list(pd.unique(col[bad]))[:5])
        raise OwnDataError(f"{cfg.where}: time_column {cfg.time_column!r} has {int(bad.sum())} values in "
                           f"{source} that are not dates, e.g. {examples}")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)  # the local calendar date, not the UTC one
    return parsed.dt.normalize().astype("datetime64[ns]").rename(TIME)


def _check_unique(ids: pd.Series, times: pd.Series, id_name: str, cfg: DatasetConfig, source: str) -> None:
    keys = pd.DataFrame({"id": ids, "t": times})
    dup = keys.duplicated(keep=False)
    if dup.any():
        per = " and time" if cfg.time_column else ""
        examples = _plain(list(pd.unique(ids[dup]))[:5])
        raise OwnDataError(f"{cfg.where}: id_column {id_name!r} must be unique per row{per} in {source}; "
                           f"{int(dup.sum())} rows share an id, e.g. {examples}")


# -------------------------------------------------------------------------------------- features

def _feature_values(col: pd.Series, name: str, explicit_categorical: bool, cfg: DatasetConfig,
                    source: str) -> tuple[pd.Series, str]:
    """The column as a model input (float64 or category) and its kind."""
    col = col.reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
        raise OwnDataError(f"{cfg.where}: column {name!r} of {source} holds dates; list it in `drop` "
                           "(or set it as time_column), or derive a number from it first")
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)
    if col.dtype == object or pd.api.types.is_string_dtype(col):
        col = col.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
        col = col.where(~col.isin([""]) & col.notna(), np.nan)
        present = col.dropna()
        if len(present) and present.map(lambda v: isinstance(v, bool | np.bool_)).all():
            col = col.map(lambda v: v if pd.isna(v) else float(bool(v)))
        else:
            numbers = pd.to_numeric(present, errors="coerce")
            is_text = numbers.isna().any() or present.map(lambda v: isinstance(v, bool | np.bool_)).any()
            if is_text or explicit_categorical:
                return _categorical(col, name, inferred=not explicit_categorical, cfg=cfg, source=source)
            col = pd.to_numeric(col, errors="coerce")
    if explicit_categorical:
        return _categorical(col, name, inferred=False, cfg=cfg, source=source)
    values = col.astype("float64")
    if np.isinf(values.to_numpy()).any():
        raise OwnDataError(f"{cfg.where}: column {name!r} of {source} has infinite values; replace them "
                           "with a number or leave them empty")
    return values, "numeric"


def _categorical(col: pd.Series, name: str, inferred: bool, cfg: DatasetConfig,
                 source: str) -> tuple[pd.Series, str]:
    if pd.api.types.is_float_dtype(col):
        present = col.dropna()
        if len(present) and (present % 1 == 0).all():
            col = col.astype("Int64")  # 1.0 -> "1", not "1.0"
    text = col.astype(object).map(lambda v: v if pd.isna(v) else str(v))
    categories = sorted(pd.unique(text.dropna()))
    n_present = int(text.notna().sum())
    if inferred and len(categories) > MAX_INFERRED_CATEGORIES and len(categories) > n_present / 2:
        raise OwnDataError(f"{cfg.where}: column {name!r} of {source} looks like an identifier or free "
                           f"text ({len(categories)} distinct values in {n_present} rows), not a "
                           "category; list it in `drop`, or set it as id_column")
    return pd.Series(pd.Categorical(text, categories=categories)), "categorical"


def _safe_name(column: str, taken: set[str]) -> str:
    """A LightGBM-safe feature name, unique among `taken`."""
    base = re.sub(r"[^0-9A-Za-z_]+", "_", column).strip("_") or "column"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def _definition(name: str, column: str, kind: str, values: pd.Series, source: str) -> dict[str, Any]:
    lo = None
    if kind == "numeric" and values.notna().any():
        lo = float(values.min())
    return {
        "name": name,
        "kind": kind,
        "source": source,
        "description": f"{column} (from your data)",
        "description_zh": f"{column}（来自您的数据）",
        "unit": "",
        "min": lo,
        "max": None,
        "categories": list(values.cat.categories) if kind == "categorical" else None,
        "dtype": "category" if kind == "categorical" else "float64",
    }
