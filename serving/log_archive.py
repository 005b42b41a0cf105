"""Archiving the prediction log: rows scored before a time move into an SQLite archive file, safely
while the service keeps writing.

`tenure log archive --before WHEN --to FILE` (`archive_log`) reads the log the settings name (the
SQLite file or the PostgreSQL database) and moves every row with `scored_at < WHEN` into `FILE`, an
SQLite database with the log's own table (`serving.prediction_log.SCHEMA_SQL`, the SQLite log's
text forms), so `read_predictions`, `tenure monitor` and `tenure compare` read an archive as they
read a log (`TENURE_PREDICTION_LOG=FILE`). Each run is recorded in the archive's `archive_runs`
table (when, from where, up to when, how many rows).

Why not `mv` the file: the SQLite log runs in WAL mode, so its newest rows are in `<log>-wal` until
a checkpoint copies them into the file; a moved file leaves them behind, and the service, finding a
new file at the path, removes the old `-wal` (SQLite would otherwise replay it into the new file).
And a PostgreSQL log has no file to move.

The guarantee: every row is in the live log or in the archive, never lost. Rows move in batches
of `batch_rows` (in row order); each batch is first copied into the archive and committed there
(rollback journal, `synchronous=FULL`), then deleted from the live log in one transaction, and only
rows the archive holds identically are deleted. A crash between the two leaves the batch in both;
the next run finds it archived (same row id, request, time, customer reference, model and
probability), copies nothing and deletes it. An archive holding a different row under the same
row id (another log's archive) is refused before anything of that batch is copied or deleted. The
service's writes wait at most one batch's delete (they retry within their busy timeout). The freed
space of an SQLite log is reused by new rows; the file does not shrink.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from configs import TenureError
from serving.prediction_log import (
    COLUMNS,
    INDEX_SQL,
    SCHEMA_SQL,
    TABLE,
    features_json,
    log_time,
    utc_bound,
    utc_now_iso,
)

RUNS_SQL = """
CREATE TABLE IF NOT EXISTS archive_runs (
    archived_at TEXT NOT NULL,
    source TEXT NOT NULL,
    before TEXT NOT NULL,
    rows INTEGER NOT NULL
)
"""
# what must be equal for a row already in the archive to be the same row
IDENTITY = ("request_id", "scored_at", "customer_ref", "model_name", "probability")


class ArchiveError(TenureError):
    """The prediction log cannot be archived as asked; the message names the file and the reason."""


@dataclass(frozen=True)
class ArchiveResult:
    source: str
    archive: Path
    before: str
    rows_archived: int
    rows_left: int
    oldest_left: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "archive": str(self.archive), "before": self.before,
                "rows_archived": self.rows_archived, "rows_left": self.rows_left, "oldest_left": self.oldest_left}


def archive_log(target: str, to: Path | str, before: str | dt.datetime | dt.date, *, batch_rows: int = 20_000,
                busy_timeout_ms: int = 5000) -> ArchiveResult:
    """Move the rows of the log `target` (an SQLite path or a PostgreSQL URL) scored before
    `before` into the archive `to`; see the module docstring for the guarantee."""
    from configs.settings import is_postgres_url, redact_url

    bound = utc_bound(before, "--before")
    if bound is None:
        raise ArchiveError("--before is required: the time (ISO 8601, UTC if no offset) before which rows are archived")
    if batch_rows < 1:
        raise ArchiveError(f"--batch-rows must be at least 1, got {batch_rows}")
    archive = Path(to)
    postgres = is_postgres_url(target)
    if not postgres:
        source = Path(target)
        if not source.exists():
            raise ArchiveError(f"prediction log {source} does not exist (TENURE_PREDICTION_LOG / settings prediction_log)")
        if archive.exists() and archive.resolve() == source.resolve():
            raise ArchiveError(f"--to {archive} is the live prediction log itself; name another file")
    con = _open_archive(archive)
    try:
        if postgres:
            moved, left, oldest = _from_postgres(target, con, archive, bound, batch_rows, busy_timeout_ms)
            where = redact_url(target)
        else:
            moved, left, oldest = _from_sqlite(Path(target), con, archive, bound, batch_rows, busy_timeout_ms)
            where = str(Path(target).resolve())
        with con:
            con.execute("INSERT INTO archive_runs VALUES (?, ?, ?, ?)", (utc_now_iso(), where, bound, moved))
    finally:
        con.close()
    return ArchiveResult(where, archive, bound, moved, left, oldest)


def _open_archive(path: Path) -> sqlite3.Connection:
    """The archive, created with the log's table if new; refused when it is not an SQLite file or
    its table lacks a log column."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=30)
        con.execute("PRAGMA synchronous=FULL")
        with con:
            con.execute(SCHEMA_SQL)
            con.execute(INDEX_SQL)
            con.execute(RUNS_SQL)
        have = {r[1] for r in con.execute(f"PRAGMA table_info({TABLE})")}
    except (OSError, sqlite3.Error) as exc:
        raise ArchiveError(f"archive {path}: cannot open it as an SQLite prediction-log archive: {exc}") from exc
    missing = [c for c in COLUMNS if c not in have]
    if missing:
        con.close()
        raise ArchiveError(f"archive {path}: table {TABLE!r} lacks columns {missing}; name a new file")
    return con


def _conflicts(archive: sqlite3.Connection, rows: list[tuple]) -> list[int]:
    """Row ids of `rows` (full log rows, `COLUMNS` order) the archive holds as a different row."""
    index = [COLUMNS.index(c) for c in IDENTITY]
    ids = [r[0] for r in rows]
    held: dict[int, tuple] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        sql = (f"SELECT row_id, {', '.join(IDENTITY)} FROM {TABLE} "
               f"WHERE row_id IN ({', '.join('?' * len(chunk))})")
        held.update({r[0]: tuple(r[1:]) for r in archive.execute(sql, chunk)})
    return [r[0] for r in rows if r[0] in held and held[r[0]] != tuple(r[i] for i in index)]


def _copy(archive: sqlite3.Connection, path: Path, rows: list[tuple], copied_before: int) -> None:
    """Commit `rows` into the archive (rows it already holds identically are skipped)."""
    bad = _conflicts(archive, rows)
    if bad:
        raise ArchiveError(
            f"archive {path} holds other rows under the row ids {bad[:5]}{' ...' if len(bad) > 5 else ''} "
            f"(the archive of another log?); nothing of this batch was copied or deleted ({copied_before} rows "
            "archived before it stay archived); name a new file")
    sql = f"INSERT OR IGNORE INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    try:
        with archive:
            archive.executemany(sql, rows)
    except sqlite3.Error as exc:
        raise ArchiveError(f"writing to the archive {path} failed: {exc} ({copied_before} rows archived before "
                           "this batch; the log keeps every row not archived)") from exc


def _move(select_batch: Callable[[int], list[tuple]], delete: Callable[[list[int]], None],
          errors: tuple[type[BaseException], ...], where: str, archive: sqlite3.Connection, path: Path) -> int:
    """Batch by batch in row order: `select_batch(after_row_id)` (rows scored before the bound, in the
    SQLite log's forms), copied into the archive, then `delete(row_ids)` from the log. Returns the
    rows moved; a database error (`errors`) is an ArchiveError saying what stayed where."""
    from serving.prediction_log_pg import error_text

    moved, last = 0, 0
    while True:
        try:
            rows = select_batch(last)
        except errors as exc:
            raise ArchiveError(f"reading the prediction log {where} failed: {error_text(exc)} ({moved} rows "
                               "moved before)") from exc
        if not rows:
            return moved
        _copy(archive, path, rows, moved)
        ids = [r[0] for r in rows]
        try:
            delete(ids)
        except errors as exc:
            raise ArchiveError(f"deleting archived rows from the prediction log {where} failed: {error_text(exc)} "
                               f"({moved} rows moved before; this batch of {len(ids)} is in both, and the next run "
                               "removes it from the log)") from exc
        moved += len(ids)
        last = ids[-1]


def _from_sqlite(source: Path, archive: sqlite3.Connection, path: Path, bound: str, batch_rows: int,
                 busy_timeout_ms: int) -> tuple[int, int, str | None]:
    try:
        con = sqlite3.connect(source, timeout=busy_timeout_ms / 1000, isolation_level=None)
        con.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise ArchiveError(f"cannot open the prediction log {source}: {exc}") from exc
    if TABLE not in tables:
        con.close()
        raise ArchiveError(f"{source} is not a prediction log (no table {TABLE!r})")
    select = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE scored_at < ? AND row_id > ? ORDER BY row_id LIMIT ?"

    def delete(ids: list[int]) -> None:
        try:
            con.execute("BEGIN IMMEDIATE")
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                con.execute(f"DELETE FROM {TABLE} WHERE row_id IN ({', '.join('?' * len(chunk))})", chunk)
            con.execute("COMMIT")
        except sqlite3.Error:
            if con.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
            raise

    moved = 0
    try:
        moved = _move(lambda last: [tuple(r) for r in con.execute(select, (bound, last, batch_rows))], delete,
                      (sqlite3.Error,), str(source), archive, path)
        with contextlib.suppress(sqlite3.Error):
            con.execute("PRAGMA wal_checkpoint(PASSIVE)")
        left, oldest = con.execute(f"SELECT COUNT(*), MIN(scored_at) FROM {TABLE}").fetchone()
    except sqlite3.Error as exc:
        raise ArchiveError(f"reading the prediction log {source} failed: {exc} ({moved} rows moved)") from exc
    finally:
        con.close()
    return moved, int(left), oldest


def _text_row(r: tuple) -> tuple:
    """A PostgreSQL log row in the SQLite log's text forms."""
    values = dict(zip(COLUMNS, r, strict=True))
    values["scored_at"] = log_time(values["scored_at"])
    values["as_of"] = values["as_of"].isoformat() if values["as_of"] is not None else None
    values["features"] = features_json(values["features"])
    values["row_id"], values["shadow"] = int(values["row_id"]), int(values["shadow"])
    return tuple(values[c] for c in COLUMNS)


def _from_postgres(url: str, archive: sqlite3.Connection, path: Path, bound: str, batch_rows: int,
                   busy_timeout_ms: int) -> tuple[int, int, str | None]:
    import psycopg

    from configs.settings import redact_url
    from serving.prediction_log_pg import connect, error_text

    where = redact_url(url)
    try:
        con = connect(url, busy_timeout_ms)
    except Exception as exc:  # psycopg.Error and connection failures alike
        raise ArchiveError(f"cannot connect to the prediction log {where}: {error_text(exc)}") from exc
    select = (f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE scored_at < %s::timestamptz AND row_id > %s "
              "ORDER BY row_id LIMIT %s")

    def delete(ids: list[int]) -> None:
        with con.transaction():
            con.execute(f"DELETE FROM {TABLE} WHERE row_id = ANY(%s)", (ids,))

    moved = 0
    try:
        if con.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()[0] is None:
            raise ArchiveError(f"{where} holds no prediction log (no table {TABLE!r})")
        moved = _move(lambda last: [_text_row(r) for r in con.execute(select, (bound, last, batch_rows)).fetchall()],
                      delete, (psycopg.Error,), where, archive, path)
        count, oldest = con.execute(f"SELECT COUNT(*), MIN(scored_at) FROM {TABLE}").fetchone()
    except psycopg.Error as exc:
        raise ArchiveError(f"reading the prediction log {where} failed: {error_text(exc)} ({moved} rows moved)") from exc
    finally:
        with contextlib.suppress(Exception):
            con.close()
    return moved, int(count), (log_time(oldest) if oldest is not None else None)
