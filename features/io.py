"""Atomic writes and content hashes: nothing half-written, everything traceable."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it over `target`.

    On any error the temporary file is removed and `target` is left as it was (absent, or its
    previous content), so a failed run never leaves a half-written output behind. A folder at
    `target` (a partitioned output of an earlier run) is replaced too.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if target.is_dir():
            replace_path(tmp_path, target)
        else:
            os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def replace_path(new: Path, target: Path) -> None:
    """Move the finished `new` (file or folder) to `target`, replacing what is there (file or
    folder); if the move fails, the previous `target` is put back."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.replace(target, old / target.name)
    try:
        os.replace(new, target)
    except OSError:
        if old is not None:
            os.replace(old / target.name, target)
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_json_atomic(target: Path, payload: Any) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def frame_sha256(df: pd.DataFrame) -> str:
    """A content hash of a frame that does not depend on the Parquet writer's version.

    Hashes column names, dtypes and the row-wise hash of the values, in order. Each row's hash
    depends on that row only, so a frame written in parts hashes the same when the parts' row
    hashes are fed in order (`features.distributed`).
    """
    h = hashlib.sha256()
    h.update(frame_dtypes_bytes(df))
    h.update(frame_row_hashes(df))
    return h.hexdigest()


def frame_dtypes_bytes(df: pd.DataFrame) -> bytes:
    return json.dumps([[c, str(t)] for c, t in df.dtypes.items()]).encode()


def frame_row_hashes(df: pd.DataFrame) -> bytes:
    return pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()
