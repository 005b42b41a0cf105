"""The dataset manifest: `<dataset_dir>/manifest.json`, what a dataset is and where it came from.

Written by the synthetic generator (`features.synthetic`) and, for a company's own extracts, by
hand or by a script (only `end_date`, the last day the data covers, is required to read a
dataset). The generator's manifest holds:

- `dataset`, `generator`, `generator_version`, `seed`, `customers`, `months`,
- `start_date` (first day covered) and `end_date` (last day covered, inclusive),
- `scenario`: `name`, `start_date` of the shift (null for the baseline), `shifted_features`,
  `outcome_effects`, `description`,
- `tables`: per table its `file`, `rows` and the `sha256` of the file; for a table folder of part
  files (chunked generation) also `parts`, and `sha256` is the SHA-256 of the parts' hashes in order,
- `chunk_customers` (only for chunked generation): customers per chunk.

It carries no creation time on purpose: the same seed and config give a byte-identical manifest,
so `manifest_hash` identifies a dataset's content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from configs import TenureError
from features.io import file_sha256, write_json_atomic

MANIFEST_FILE = "manifest.json"


class ManifestError(TenureError, ValueError):
    """A manifest that is missing or cannot be used; the message names the file and the field."""


def table_entries(dataset_dir: Path, tables: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per table: its file name, row count (from the Parquet footer) and file hash."""
    dataset_dir = Path(dataset_dir)
    out: dict[str, dict[str, Any]] = {}
    for name in tables:
        path = dataset_dir / f"{name}.parquet"
        if not path.exists():
            raise ManifestError(f"table file {path} does not exist; cannot describe it in the manifest")
        if path.is_dir():
            parts = sorted(path.glob("part-*.parquet"))
            out[name] = {
                "file": path.name,
                "rows": sum(int(pq.ParquetFile(p).metadata.num_rows) for p in parts),
                "sha256": hashlib.sha256("".join(file_sha256(p) for p in parts).encode()).hexdigest(),
                "parts": len(parts),
            }
            continue
        out[name] = {
            "file": path.name,
            "rows": int(pq.ParquetFile(path).metadata.num_rows),
            "sha256": file_sha256(path),
        }
    return out


def build_manifest(
    *,
    dataset: str,
    generator: str,
    generator_version: str,
    seed: int | None,
    customers: int | None,
    months: int | None,
    start_date: dt.date,
    end_date: dt.date,
    scenario: dict[str, Any],
    tables: dict[str, dict[str, Any]],
    chunk_customers: int | None = None,
) -> dict[str, Any]:
    """The manifest as a dict, keys in their documented order (so the JSON is stable)."""
    if end_date < start_date:
        raise ManifestError(f"end_date {end_date} is before start_date {start_date}")
    manifest = {
        "dataset": dataset,
        "generator": generator,
        "generator_version": generator_version,
        "seed": seed,
        "customers": customers,
        "months": months,
        "start_date": start_date.isoformat(),
        "end_date": end_date.isoformat(),
        "scenario": scenario,
        "tables": tables,
    }
    if chunk_customers is not None:
        manifest["chunk_customers"] = chunk_customers
    return manifest


def write_manifest(dataset_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write `<dataset_dir>/manifest.json` atomically; returns its path."""
    if "end_date" not in manifest:
        raise ManifestError("a manifest needs an end_date (the last day the data covers)")
    path = Path(dataset_dir) / MANIFEST_FILE
    write_json_atomic(path, manifest)
    return path


def read_manifest(dataset_dir: Path) -> dict[str, Any]:
    """The manifest of a dataset folder; it must at least name a valid ISO `end_date`."""
    path = Path(dataset_dir) / MANIFEST_FILE
    if not path.exists():
        raise ManifestError(
            f"{path} does not exist; a dataset folder needs a manifest.json holding at least "
            f'the last day its data covers, e.g. {{"end_date": "2024-12-31"}}')
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path} cannot be read as JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path} must hold a JSON object, got {type(manifest).__name__}")
    for key in ("end_date", "start_date"):  # start_date is optional for own extracts
        if key == "start_date" and key not in manifest:
            continue
        value = manifest.get(key)
        try:
            dt.date.fromisoformat(str(value))
        except ValueError as exc:
            raise ManifestError(f"{path}: field {key!r} must be an ISO date (YYYY-MM-DD), got {value!r}") from exc
    return manifest


def manifest_hash(manifest: dict[str, Any]) -> str:
    """SHA-256 of the manifest's canonical JSON (sorted keys, no whitespace).

    The manifest lists every table file's hash, so this one hash identifies the whole dataset.
    """
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
