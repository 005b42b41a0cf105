"""The feature-set file: the one format every source (synthetic, public, your own) produces.

A feature set is a Parquet file with one row per entity and snapshot:

- `customer_id` (the id column; for own data it keeps the user's id name in `id_column`),
- `snapshot_date` (datetime64; a single constant date for data with no time column),
- the features, in the order of `features` in the metadata (numeric as float64, categorical as
  pandas `category` with the categories listed in the definition),
- group columns for fairness audits (`age_band`, `city_tier`, `industry` where known),
- the label (int8, 0/1).

The Parquet key-value metadata `tenure` holds JSON: task, label definition, feature definitions,
group columns, snapshot range, row counts, content hash of the frame, and the lineage (dataset
manifest hash or source file hash). Training, serving and monitoring read feature sets only
through `read_featureset`.

A partitioned feature set (`tenure features build --engine dask`) is a folder `<task>.parquet/` of
`part-NNNNN.parquet` files (one per customer partition, in customer order, each holding all rows of
its customers) and `_common_metadata` (the schema with the same `tenure` metadata). Its
`content_hash` is the hash of the parts read in order, i.e. the hash the single file would have.
`read_featureset(path, max_customers=N)` reads a customer-level sample (see `features.sample`).
"""

from __future__ import annotations

import functools
import json
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from configs import TenureError
from features.io import atomic_path, frame_sha256
from features.schema import PERSONAL_DATA_COLUMNS

META_KEY = b"tenure"
FORMAT_VERSION = 1
COMMON_METADATA = "_common_metadata"


class FeatureSetError(TenureError, ValueError):
    """A feature set that cannot be written or read."""


@dataclass
class FeatureSet:
    frame: pd.DataFrame
    task: str
    features: list[dict[str, Any]]  # FeatureDef.to_dict() entries, in model input order
    label: dict[str, Any]  # {"name", "definition", "horizon_months", "positive_label"?, ...}
    id_column: str = "customer_id"
    time_column: str = "snapshot_date"
    group_columns: list[str] = field(default_factory=list)
    lineage: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # filled on write/read

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    @property
    def categorical_features(self) -> list[str]:
        return [f["name"] for f in self.features if f["kind"] == "categorical"]

    @property
    def label_name(self) -> str:
        return self.label["name"]

    @property
    def content_hash(self) -> str:
        return self.meta["content_hash"]

    @property
    def snapshots(self) -> list[pd.Timestamp]:
        return sorted(self.frame[self.time_column].unique())

    def X(self) -> pd.DataFrame:  # noqa: N802 - ML convention
        return self.frame[self.feature_names]

    def y(self) -> pd.Series:
        return self.frame[self.label_name]


def _check(fs: FeatureSet) -> None:
    cols = list(fs.frame.columns)
    from configs.dataset import is_personal_column

    leaked = sorted((PERSONAL_DATA_COLUMNS & set(cols)) | {c for c in cols if is_personal_column(c)})
    if leaked:
        raise FeatureSetError(f"feature set for {fs.task} would contain personal data columns {leaked}")
    expected = [fs.id_column, fs.time_column, *fs.feature_names]
    missing = [c for c in [*expected, *fs.group_columns, fs.label_name] if c not in cols]
    if missing:
        raise FeatureSetError(f"feature set for {fs.task} lacks columns {missing}")
    if len(set(cols)) != len(cols):
        raise FeatureSetError(f"feature set for {fs.task} has duplicate columns")
    if fs.frame.duplicated([fs.id_column, fs.time_column]).any():
        dup = fs.frame.loc[fs.frame.duplicated([fs.id_column, fs.time_column]), [fs.id_column, fs.time_column]]
        raise FeatureSetError(f"feature set for {fs.task} has duplicate rows per id and snapshot, e.g. {dup.head(3).to_dict('records')}")
    labels = set(pd.unique(fs.frame[fs.label_name]))
    if not labels <= {0, 1}:
        raise FeatureSetError(f"label {fs.label_name} must be 0/1, found {sorted(labels)[:5]}")


def checked_frame(fs: FeatureSet) -> pd.DataFrame:
    """Validate; the frame in the file's column order (id, time, features, groups, label)."""
    _check(fs)
    ordered = [fs.id_column, fs.time_column, *fs.feature_names,
               *[g for g in fs.group_columns if g not in fs.feature_names], fs.label_name]
    return fs.frame[ordered].reset_index(drop=True)


def featureset_meta(fs: FeatureSet, *, rows: int, positives: int, snapshots: list[pd.Timestamp],
                    content_hash: str) -> dict[str, Any]:
    """The `tenure` metadata of a feature set (`snapshots`: its distinct snapshot dates)."""
    return {
        "format_version": FORMAT_VERSION,
        "task": fs.task,
        "id_column": fs.id_column,
        "time_column": fs.time_column,
        "features": fs.features,
        "label": fs.label,
        "group_columns": fs.group_columns,
        "lineage": fs.lineage,
        "rows": rows,
        "positives": positives,
        "snapshot_range": ([str(pd.Timestamp(min(snapshots)).date()), str(pd.Timestamp(max(snapshots)).date())]
                           if rows else [None, None]),
        "snapshots": len(snapshots),
        "content_hash": content_hash,
    }


def arrow_table(frame: pd.DataFrame, meta: dict[str, Any] | None = None) -> pa.Table:
    """The frame as Arrow (text columns that are all missing stay text, so parts share a schema)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type):
            table = table.set_column(i, pa.field(f.name, pa.string()), table.column(i).cast(pa.string()))
    if meta is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    return table


def write_featureset(fs: FeatureSet, path: Path) -> Path:
    """Validate and write atomically (temp file + rename); returns the path written."""
    frame = checked_frame(fs)
    meta = featureset_meta(fs, rows=len(frame), positives=int(frame[fs.label_name].sum()),
                           snapshots=list(frame[fs.time_column].unique()), content_hash=frame_sha256(frame))
    table = arrow_table(frame, meta)
    with atomic_path(Path(path)) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    fs.frame, fs.meta = frame, meta
    return Path(path)


def read_metadata(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FeatureSetError(f"feature set {path} does not exist; build it with `tenure features build`")
    if path.is_dir():
        if not (path / COMMON_METADATA).exists():
            raise FeatureSetError(f"{path} is a folder without {COMMON_METADATA}: not a finished partitioned "
                                  "feature set; build it again with `tenure features build --engine dask`")
        path = path / COMMON_METADATA
    try:
        raw = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError) as exc:
        raise FeatureSetError(f"{path} is not a readable Parquet file: {exc}") from exc
    if META_KEY not in raw:
        raise FeatureSetError(f"{path} is not a Tenure feature set (no `tenure` metadata)")
    return json.loads(raw[META_KEY])


def part_files(path: Path) -> list[Path]:
    """The Parquet files of a feature set in order: the file itself, or a folder's parts."""
    path = Path(path)
    return sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]


def read_featureset(path: Path, max_customers: int | None = None, *,
                    time_between: tuple[Any, Any] | None = None, ids: Any = None) -> FeatureSet:
    """The feature set at `path` (file or partitioned folder); with `max_customers`, a
    customer-level sample stratified by label (`features.sample`) when it has more customers.

    `time_between=(start, end)` reads only the snapshots in [start, end] and `ids` only those
    entities: a filtered Parquet scan, which drops the other rows batch by batch instead of
    building the whole frame (measured on a 614,253-row churn set, one row group, 22 snapshots:
    the last 3 snapshots in 0.24 s and 364 MB above the interpreter, against 1.53 s and 663 MB for
    the whole set). The metadata, content hash included, is the whole set's."""
    meta = read_metadata(path)
    sample = None
    if max_customers is not None:
        from features.sample import sample_customers

        sample = sample_customers(part_files(path), meta, max_customers)
    if sample is None and time_between is None and ids is None and not Path(path).is_dir():
        frame = pd.read_parquet(path)
    else:
        data = pads.dataset([str(p) for p in part_files(path)], format="parquet")
        id_col, t = pads.field(meta["id_column"]), pads.field(meta["time_column"])
        filters = [] if sample is None else [id_col.isin(sample["kept_ids"])]
        if ids is not None:
            kind = data.schema.field(meta["id_column"]).type
            try:
                wanted = pa.array(pd.unique(pd.Series(ids))).cast(kind)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise FeatureSetError(f"feature set {path}: the ids asked for do not fit its id column "
                                      f"{meta['id_column']!r} ({kind}): {exc}") from exc
            filters.append(id_col.isin(wanted))
        if time_between is not None:
            kind = data.schema.field(meta["time_column"]).type
            start, end = (pa.scalar(pd.Timestamp(v).to_pydatetime(), type=kind) for v in time_between)
            filters.append((t >= start) & (t <= end))
        where = functools.reduce(operator.and_, filters) if filters else None
        frame = data.to_table(filter=where).to_pandas()
    if sample is not None:
        meta = {**meta, "lineage": {**meta["lineage"], "sample": sample["summary"]}}
    for f in meta["features"]:
        if f["kind"] == "categorical":
            frame[f["name"]] = pd.Categorical(frame[f["name"]].astype("object"), categories=f["categories"])
        else:
            frame[f["name"]] = frame[f["name"]].astype("float64")
    return FeatureSet(
        frame=frame,
        task=meta["task"],
        features=meta["features"],
        label=meta["label"],
        id_column=meta["id_column"],
        time_column=meta["time_column"],
        group_columns=meta["group_columns"],
        lineage=meta["lineage"],
        meta=meta,
    )
