"""Batch scoring on Dask (`tenure predict --engine dask`): the rows of a Parquet input in partitions.

Reads a Parquet file or a folder of part files (a partitioned feature set, for instance) and writes
`<out>` as a folder of `part-NNNNN.parquet` files: the id column and `probability` for every input
row, in input order (parts in order). A partition is one row group of one input file; each is read,
checked and scored on a worker with the same code as `training.predict.predict_file` (`prepare`,
`TenureModel.encode_frame`, `predict_proba`), so every row gets the same probability as there. The
model is loaded once, by the command, and sent to the workers: they need no access to the registry.

Invalid rows follow `predict_file`'s rules: by default any invalid row stops the run naming rows
(counted from 1 over the whole input) and fields, and nothing is written; with `skip_invalid` the
valid rows are written and the invalid ones listed in `<out stem>.rejected.csv`. The output is
staged beside `<out>` and moved into place only when every partition is written.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from training.predict import PredictError, PredictResult, prepare, rejected_path_for


def _units(data: Path) -> list[tuple[str, int, int]]:
    """(file, row group, first row number over the whole input) of every row group, in order."""
    files = sorted(data.glob("part-*.parquet")) if data.is_dir() else [data]
    if not data.exists():
        raise PredictError(f"input {data} does not exist")
    if not files:
        raise PredictError(f"input folder {data} holds no part-*.parquet files")
    units, start = [], 0
    for f in files:
        try:
            meta = pq.ParquetFile(f).metadata
        except Exception as exc:  # pyarrow raises several types; the message says what
            raise PredictError(f"input {f} cannot be read as Parquet: {exc}") from exc
        for g in range(meta.num_row_groups):
            units.append((str(f), g, start))
            start += meta.row_group(g).num_rows
    return units


def _score_unit(model: Any, unit: tuple[str, int, int], id_name: str, number_rows: bool, skip_invalid: bool,
                out_file: str) -> dict[str, Any]:
    """On a worker: read one row group, check, score and (when it may) write its part."""
    path, group, start = unit
    frame = pq.ParquetFile(path).read_row_group(group).to_pandas()
    ids = (pd.Series(np.arange(start + 1, start + len(frame) + 1), name=id_name) if number_rows
           else frame[id_name].reset_index(drop=True))
    features, report = prepare(frame, model.features)
    bad = np.zeros(len(frame), dtype=bool)
    bad[report["row"].to_numpy(dtype=np.int64)] = True
    report = report.assign(id=ids.iloc[report["row"].to_numpy()].to_numpy(), row=report["row"] + start)
    if bad.any() and not skip_invalid:
        return {"rows": len(frame), "scored": 0, "report": report}
    keep = ~bad
    X = model.encode_frame(features.loc[keep].reset_index(drop=True))  # noqa: N806
    scored = pd.DataFrame({id_name: ids[keep].reset_index(drop=True), "probability": model.predict_proba(X)})
    scored.to_parquet(out_file, index=False)
    return {"rows": len(frame), "scored": int(keep.sum()), "report": report}


def predict_partitions(model: Any, model_uri: str, data: Path, out: Path, client: Any, *,
                       skip_invalid: bool = False, id_column: str | None = None) -> PredictResult:
    """Score every row of `data` (Parquet file or folder) on the cluster of `client`; see the module docstring."""
    from features.io import atomic_path, replace_path
    from training.predict import _format

    data, out = Path(data), Path(out)
    if not out.name.lower().endswith((".parquet", ".pq")):
        raise PredictError(f"{out}: with --engine dask the output is a folder of Parquet parts; name it *.parquet")
    units = _units(data)
    schema_names = pq.read_schema(units[0][0]).names
    id_name = id_column or model.meta.get("id_column") or "customer_id"
    if id_column is not None and id_name not in schema_names:
        raise PredictError(f"{data}: id column {id_column!r} not found; columns: {schema_names}")
    missing = [f["name"] for f in model.features if f["name"] not in schema_names]
    if missing:
        raise PredictError(f"{data}: missing required feature columns {missing} (every row needs them; "
                           f"the model expects {[f['name'] for f in model.features]})")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        [shared] = client.scatter([model], broadcast=True)
        futures = [client.submit(_score_unit, shared, u, id_name, id_name not in schema_names, skip_invalid,
                                 str(staging / f"part-{i:05d}.parquet"), pure=False)
                   for i, u in enumerate(units)]
        results = client.gather(futures)
        report = pd.concat([r["report"] for r in results], ignore_index=True)
        if len(report) and not skip_invalid:
            raise PredictError(_format(report.drop(columns="id"), str(data)))
        rejected_path = None
        if len(report):
            rejected_path = rejected_path_for(out)
            rejected = report.assign(row=report["row"] + 1)[["row", "id", "field", "value", "reason"]]
            with atomic_path(rejected_path) as tmp:
                rejected.to_csv(tmp, index=False)
        replace_path(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    rows = sum(r["rows"] for r in results)
    scored = sum(r["scored"] for r in results)
    return PredictResult(out=out, rows=rows, scored=scored, rejected=int(report["row"].nunique()) if len(report) else 0,
                         rejected_path=rejected_path, model_uri=model_uri)
