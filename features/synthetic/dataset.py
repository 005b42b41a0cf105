"""Writing a synthetic dataset: the seven source tables of `features.schema` and their manifest.

Reads a `configs.data.DataConfig`; writes `<out_dir>/<table>.parquet` for every table of
`features.schema.TABLES` and `<out_dir>/manifest.json` (see `features.manifest`). Everything is
written into a temporary folder beside `out_dir` that replaces it only once complete, so a failed
run leaves nothing half-written. The same config and seed give byte-identical files.

Chunked generation (`chunk_customers`, `tenure data generate --chunk-customers N`) keeps memory to
one chunk: the customers are simulated N at a time, each chunk a book of its own (its random
streams spawned from the seed and the chunk's number), all chunks under one economy (the monthly
industry shocks drawn once from the seed). Each table becomes a folder `<table>.parquet/` of
`part-NNNNN.parquet` files, one per chunk, holding the chunk's customers with all their rows; ids
run on across chunks. It is its own deterministic stream: the same seed and chunk size give
byte-identical files, but not the data of an unchunked run or of another chunk size, because the
book at the start is drawn across all customers of a simulation and ids are numbered in sign-up
order within it.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from configs import TenureError
from configs.data import DataConfig
from features import schema
from features.io import replace_path
from features.manifest import MANIFEST_FILE, build_manifest, table_entries, write_manifest
from features.synthetic.priors import INDUSTRY_SHOCK_SD
from features.synthetic.scenarios import scenario_info
from features.synthetic.simulation import Simulation

GENERATOR = "tenure-synthetic"
GENERATOR_VERSION = "1.0.0"


class GenerateError(TenureError):
    """The synthetic dataset cannot be generated or written where asked."""


def end_date(cfg: DataConfig) -> dt.date:
    """The last day the data covers: start + months, minus one day."""
    last = np.datetime64(cfg.start_date, "M") + np.timedelta64(cfg.months, "M")
    return (last.astype("datetime64[D]") - np.timedelta64(1, "D")).astype(dt.date)


def generate_tables(cfg: DataConfig, progress: bool = False) -> dict[str, pd.DataFrame]:
    """Simulate the dataset in memory: table name -> frame (columns and dtypes as in the schema)."""
    return dict(_iter_tables(cfg, progress))


def _iter_tables(cfg: DataConfig, progress: bool, sim: Simulation | None = None,
                 label: str = "") -> Iterator[tuple[str, pd.DataFrame]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    sim = sim or Simulation(cfg)
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=True) as bar:
        job = bar.add_task(f"simulating {sim.N:,} customers{label}", total=cfg.months)
        for m in range(cfg.months):
            sim.run_month(m)
            bar.advance(job)
    sim.finish()
    yield from sim.tables()


_ECONOMY_STREAM = 1 << 30  # spawn key of the economy's stream in chunked generation (chunks count from 0)


def _iter_chunks(cfg: DataConfig, progress: bool) -> Iterator[tuple[int, str, pd.DataFrame]]:
    """(chunk, table, frame) for every chunk of `cfg.chunk_customers` customers, ids run on."""
    size = int(cfg.chunk_customers or cfg.customers)
    economy = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(_ECONOMY_STREAM,)))
    shocks = INDUSTRY_SHOCK_SD * economy.standard_normal((cfg.months, len(schema.INDUSTRIES)))
    offsets = dict.fromkeys(schema.TABLES, 0)
    n_chunks = -(-cfg.customers // size)
    for j in range(n_chunks):
        part = cfg.model_copy(update={"customers": min(size, cfg.customers - j * size)})
        sim = Simulation(part, seed=np.random.SeedSequence(cfg.seed, spawn_key=(j,)), shocks=shocks)
        base = dict(offsets)  # ids of the earlier chunks
        for name, frame in _iter_tables(part, progress, sim, label=f" (chunk {j + 1} of {n_chunks})"):
            offsets[name] = base[name] + len(frame)
            yield j, name, _offset_ids(name, frame, base)


def _offset_ids(name: str, frame: pd.DataFrame, offsets: dict[str, int]) -> pd.DataFrame:
    """A chunk's table with its keys and references moved past the earlier chunks' ids."""
    spec = schema.TABLES[name]
    for col in spec.columns:
        target = name if col.name == spec.key else (col.references or ".").partition(".")[0]
        if target and offsets[target]:
            frame[col.name] = frame[col.name] + offsets[target]
    return frame


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write one table as Parquet, deterministically (no timestamps; fixed writer options)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, compression="zstd", compression_level=3, use_dictionary=True,
                   write_statistics=True, row_group_size=1 << 20)


def generate_dataset(cfg: DataConfig, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Generate every source table and the manifest into `out_dir`; returns the manifest.

    With `cfg.chunk_customers`, chunk by chunk into table folders of part files (module docstring).

    The files are written into a temporary folder beside `out_dir`, which replaces `out_dir`
    only when everything is written. An existing `out_dir` is replaced only if it is empty or
    holds a dataset made by this generator, never an unrelated folder.
    """
    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    except OSError as exc:
        raise GenerateError(f"cannot create a folder beside {out_dir}: {exc}") from exc
    try:
        if cfg.chunk_customers is None:
            for name, frame in _iter_tables(cfg, progress):
                assert list(frame.columns) == list(schema.TABLES[name].column_names), name
                write_table(frame, tmp / f"{name}.parquet")
                del frame
        else:
            for j, name, frame in _iter_chunks(cfg, progress):
                (tmp / f"{name}.parquet").mkdir(exist_ok=True)
                write_table(frame, tmp / f"{name}.parquet" / f"part-{j:05d}.parquet")
                del frame
        manifest = build_manifest(
            dataset=cfg.name, generator=GENERATOR, generator_version=GENERATOR_VERSION, seed=cfg.seed,
            customers=cfg.customers, months=cfg.months, start_date=cfg.start_date, end_date=end_date(cfg),
            scenario=scenario_info(cfg), tables=table_entries(tmp, schema.TABLES),
            chunk_customers=cfg.chunk_customers)
        write_manifest(tmp, manifest)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _check_replaceable(out_dir: Path) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise GenerateError(f"output {out_dir} exists and is not a folder; choose another --out")
    if not any(out_dir.iterdir()):
        return
    manifest = out_dir / MANIFEST_FILE
    try:
        ours = json.loads(manifest.read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise GenerateError(
            f"output folder {out_dir} is not empty and holds no dataset made by {GENERATOR} "
            f"(no {MANIFEST_FILE} naming it); refusing to replace it, choose another --out or --name")


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    """Move the finished `tmp` folder to `out_dir`, replacing an older dataset there."""
    replace_path(tmp, out_dir)
