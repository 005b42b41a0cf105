"""Feature sets on a Dask cluster (`tenure features build --engine dask`): customer partitions.

Reads a dataset folder (tables as files or as folders of part files) and writes, per task, a
partitioned feature set `<out_dir>/<task>.parquet/` (format: `features.featureset`) with the same
rows, dtypes, metadata and content hash as the pandas path (`features.build.build_featuresets`).

Why partitions by customer are exact: every feature and label is a function of one customer's rows
at one snapshot (no aggregate across customers), and every reference between tables (a payment's
invoice, an invoice's lease, a renewal's lease) stays within one customer. So the customers are cut
into ranges of ids; each task of the cluster reads the rows of its range from every table
(`features.validate.read_dataset(customers=...)`, which checks them as usual), runs the unchanged
builder on them and writes its part of every task's feature set itself. Nothing but small
summaries (row counts, snapshot dates, the rows' hashes) travels back to the client, so the client's
memory does not grow with the data; a worker holds one partition at a time.

The workers must see the dataset folder and the output folder at the same paths (one machine, or
a shared file system). Outputs are staged in temporary folders beside their targets and moved into
place only when every partition of every task is written; a failure leaves earlier outputs as they
were.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from configs import TenureError
from configs.features import FeaturesConfig

PARTITION_CUSTOMERS = 25_000


def scheduler_address(option: str | None, settings: Any) -> str | None:
    """`--scheduler` (checked like the setting) or else the `dask_scheduler` setting; None: start
    a local cluster."""
    from pydantic import ValidationError

    from configs import ConfigError, format_validation_error
    from configs.settings import Settings

    if option is None:
        return settings.dask_scheduler
    try:
        return Settings.model_validate({"dask_scheduler": option}).dask_scheduler
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "--scheduler")) from exc


@contextlib.contextmanager
def dask_client(scheduler: str | None, *, workers: int = 2, memory_limit: str | int = "auto",
                processes: bool = True) -> Iterator[Any]:
    """A `distributed.Client`: of the scheduler at `scheduler` (`tcp://host:port`), or of a
    LocalCluster started here (`workers` processes of one thread, `memory_limit` each; threads of
    this process with `processes=False`) and stopped on exit."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise TenureError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); is it running? "
                              "(TENURE_DASK_SCHEDULER / --scheduler)") from exc
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=":0",
                      memory_limit=memory_limit) as cluster, Client(cluster) as client:
        yield client


def customer_partitions(dataset_dir: Path, size: int) -> list[tuple[int, int]]:
    """Customer id ranges `[lo, hi)` of about `size` customers each, in id order."""
    from features.validate import DataValidationError

    if size < 1:
        raise TenureError(f"partition size must be at least 1 customer, got {size}")
    path = Path(dataset_dir) / "customers.parquet"
    if not path.exists():
        raise DataValidationError("customers", None, f"file {path.name} is missing from {dataset_dir}")
    files = sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]
    try:
        ids = pads.dataset([str(f) for f in files], format="parquet").to_table(columns=["customer_id"])
    except Exception as exc:  # pyarrow raises several types; the message says what
        raise DataValidationError("customers", "customer_id", f"cannot be read: {exc}", path=path) from exc
    values = np.unique(ids.column("customer_id").to_numpy(zero_copy_only=False))
    if not len(values):
        raise DataValidationError("customers", None, "has no rows; nothing to build", path=path)
    if not np.issubdtype(values.dtype, np.integer):
        raise DataValidationError("customers", "customer_id", f"must be integers, found {values.dtype}", path=path)
    starts = values[::size]
    ends = [*starts[1:], values[-1] + 1]
    return [(int(lo), int(hi)) for lo, hi in zip(starts, ends, strict=True)]


def _build_partition(dataset_dir: str, bounds: tuple[int, int], tasks: list[str], cfg: dict[str, Any],
                     staging: dict[str, str], index: int) -> dict[str, dict[str, Any]]:
    """On a worker: one customer range -> one part file per task; returns each part's summary."""
    from features.build import build_task_featureset, compute_panel
    from features.featureset import arrow_table, checked_frame
    from features.io import frame_dtypes_bytes, frame_row_hashes
    from features.validate import read_dataset
    from models import load_spec

    dataset = read_dataset(Path(dataset_dir), customers=bounds)
    panel = compute_panel(dataset)
    out = {}
    for task in tasks:
        fs = build_task_featureset(panel, dataset, load_spec(task), FeaturesConfig(**cfg))
        frame = checked_frame(fs)
        pq.write_table(arrow_table(frame), Path(staging[task]) / f"part-{index:05d}.parquet", compression="zstd")
        fs.frame = frame.iloc[:0]  # the summary carries the definitions, not the rows
        out[task] = {"featureset": fs, "rows": len(frame), "positives": int(frame[fs.label_name].sum()),
                     "snapshots": list(pd.unique(frame[fs.time_column])), "dtypes": frame_dtypes_bytes(frame),
                     "row_hashes": frame_row_hashes(frame)}
    return out


def build_featuresets_dask(dataset_dir: Path, tasks: list[str], out_dir: Path, cfg: FeaturesConfig,
                           client: Any, partition_customers: int = PARTITION_CUSTOMERS) -> dict[str, Path]:
    """Build every task's feature set on the cluster of `client`; returns task -> folder written."""
    from features.featureset import COMMON_METADATA, META_KEY, featureset_meta
    from features.io import replace_path
    from features.manifest import read_manifest

    dataset_dir, out_dir = Path(dataset_dir).resolve(), Path(out_dir).resolve()
    if not dataset_dir.is_dir():
        raise TenureError(f"dataset folder {dataset_dir} does not exist")
    read_manifest(dataset_dir)  # a missing or bad manifest fails here, before the cluster works
    bounds = customer_partitions(dataset_dir, partition_customers)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = {t: Path(tempfile.mkdtemp(prefix=f".{t}.parquet.", suffix=".tmp", dir=out_dir)) for t in tasks}
    try:
        futures = [client.submit(_build_partition, str(dataset_dir), b, tasks, cfg.model_dump(),
                                 {t: str(p) for t, p in staging.items()}, i, pure=False,
                                 key=f"tenure-features-{i:05d}-{staging[tasks[0]].name}")
                   for i, b in enumerate(bounds)]
        hashes = {t: hashlib.sha256() for t in tasks}
        totals: dict[str, dict[str, Any]] = {t: {"rows": 0, "positives": 0, "snapshots": set()} for t in tasks}
        first: dict[str, Any] = {}
        for fut in futures:  # in partition order: the content hash is the file's, row by row
            parts = fut.result()
            fut.release()
            for t, part in parts.items():
                if t not in first:
                    first[t] = part["featureset"]
                    hashes[t].update(part["dtypes"])
                hashes[t].update(part["row_hashes"])
                totals[t]["rows"] += part["rows"]
                totals[t]["positives"] += part["positives"]
                totals[t]["snapshots"].update(part["snapshots"])
        paths = {}
        for t in tasks:
            fs = first[t]
            meta = featureset_meta(fs, rows=totals[t]["rows"], positives=totals[t]["positives"],
                                   snapshots=sorted(totals[t]["snapshots"]), content_hash=hashes[t].hexdigest())
            meta["parts"] = len(bounds)
            schema = pq.read_schema(staging[t] / "part-00000.parquet")
            schema = schema.with_metadata({**(schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
            pq.write_metadata(schema, staging[t] / COMMON_METADATA)
        for t in tasks:
            target = out_dir / f"{t}.parquet"
            replace_path(staging[t], target)
            paths[t] = target
        return paths
    finally:
        for p in staging.values():
            shutil.rmtree(p, ignore_errors=True)
