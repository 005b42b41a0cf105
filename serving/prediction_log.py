"""The prediction log: one SQLite row per customer and model scored, for monitoring and audits.

Writes `settings.prediction_log_path` (SQLite, WAL mode, `busy_timeout`, so several worker
processes append safely), table `predictions`:

    row_id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT, scored_at TEXT (ISO 8601 UTC,
    'YYYY-MM-DDTHH:MM:SS.ffffffZ'), task TEXT, model_name TEXT, model_version TEXT, run_id TEXT,
    customer_ref TEXT, as_of TEXT NULL ('YYYY-MM-DD'), features TEXT (JSON object of the model's
    feature values as scored; null = missing), probability REAL, tier TEXT, action TEXT,
    shadow INTEGER NOT NULL DEFAULT 0 (1 = a shadow challenger's score, never answered)

with an index on (model_name, model_version, scored_at). A log written before the `shadow` column
existed gets it on open (`ALTER TABLE ... ADD COLUMN`, every old row 0). One request is one
transaction (`executemany`), written before the service answers: a response that claims success
has all its rows in the log, and a failed write is an error (the service answers 503) naming
SQLite's own error (a failed ROLLBACK never hides it). The file's identity (device, inode) is
checked before and after each write: a log deleted or replaced under the running service is
noticed, reopened (created anew) and the rows written there, never into an unlinked file.
`try_write` is the event loop's write: it never waits for another writer's lock (it answers False
and the caller hands the rows to a thread for `write`). No personal data is
ever written: the request schema refuses it and only the model's features are kept.
`read_predictions` reads it back with the features as columns, typed from the JSON (for audits and
tests); `monitoring.predictions.read_log` reads a model version's window typed by its feature
definitions, fast enough for millions of rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from configs import TenureError

if TYPE_CHECKING:  # pandas only for reading the log back; the service's write path never imports it
    import pandas as pd

logger = logging.getLogger("tenure.serving")
TABLE = "predictions"
COLUMNS: tuple[str, ...] = ("row_id", "request_id", "scored_at", "task", "model_name", "model_version", "run_id",
                            "customer_ref", "as_of", "features", "probability", "tier", "action", "shadow")
INSERT_COLUMNS: tuple[str, ...] = COLUMNS[1:]
SCHEMA_SQL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    row_id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    scored_at TEXT NOT NULL,
    task TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    run_id TEXT NOT NULL,
    customer_ref TEXT NOT NULL,
    as_of TEXT NULL,
    features TEXT NOT NULL,
    probability REAL NOT NULL,
    tier TEXT NOT NULL,
    action TEXT NOT NULL,
    shadow INTEGER NOT NULL DEFAULT 0
);
"""
# columns added after the first release: (name, definition) for ALTER TABLE on an older log
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (("shadow", "INTEGER NOT NULL DEFAULT 0"),)
INDEX_SQL = f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_model_time ON {TABLE} (model_name, model_version, scored_at)"
_INSERT = f"INSERT INTO {TABLE} ({', '.join(INSERT_COLUMNS)}) VALUES ({', '.join('?' * len(INSERT_COLUMNS))})"

# (request_id, scored_at, task, model_name, model_version, run_id, customer_ref, as_of, features, probability,
#  tier, action, shadow)
LogRow = tuple[str, str, str, str, str, str, str, str | None, str, float, str, str, int]


class PredictionLogError(TenureError):
    """The prediction log cannot be opened, written or read; the message names the file."""


def log_time(moment: dt.datetime) -> str:
    """An aware time in the log's text form, 'YYYY-MM-DDTHH:MM:SS.ffffffZ' in UTC (fixed width, so
    text order is time order)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now_iso() -> str:
    """Now in the log's text form (`log_time`)."""
    return log_time(dt.datetime.now(dt.UTC))


def features_json(values: dict[str, Any]) -> str:
    """The feature values as compact JSON (finite numbers, strings, null)."""
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def enable_wal(con: sqlite3.Connection, timeout_ms: int) -> str:
    """`PRAGMA journal_mode=WAL`, retried for up to `timeout_ms` while another process holds a lock:
    SQLite answers this switch "database is locked" at once, without its busy timeout, so two
    replicas opening one new log together would otherwise fail at start. Returns the mode."""
    import time

    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        try:
            return str(con.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


class PredictionLog:
    """Appends rows to the log; one connection per thread, one transaction per `write`."""

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5000, synchronous: str = "NORMAL",
                 background_checkpoints: bool = False):
        self.path = Path(path)
        # True: writes never checkpoint the WAL themselves (the fsync of a checkpoint stays off the
        # request path); the owner calls `checkpoint()` regularly instead (the service's reload thread)
        self.background_checkpoints = background_checkpoints
        self.busy_timeout_ms = int(busy_timeout_ms)
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        self.synchronous = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file the connections write
        self._generation = 0  # bumped when the file is reopened; older connections are closed by their thread
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PredictionLogError(f"cannot create the folder of the prediction log {self.path}: {exc}") from exc
        with self._lock:
            self._open_file()

    # ---- the file ---------------------------------------------------------------------------
    def _stat_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PredictionLogError(f"cannot stat the prediction log {self.path}: {exc}") from exc
        return st.st_dev, st.st_ino

    def _open_file(self) -> None:
        """Create (if missing) and check the file, remember its identity and record it in the
        `<path>.reopen` marker (under its exclusive lock). Caller holds `_lock`.

        The marker is how processes agree on which file is current: a process that finds the file
        at `path` changed and the marker not naming it is the first to notice, and removes the
        `-wal`/`-shm` left by the old file before opening the new one (SQLite would otherwise
        replay the old file's pages into the new one); the others see the marker and just open it."""
        import fcntl

        marker = self.path.with_name(self.path.name + ".reopen")
        try:
            with open(marker, "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.seek(0)
                recorded = fh.read().strip()
                current = self._stat_identity()
                if self._identity is not None and (current is None or recorded != _identity_text(current)):
                    if current is None:
                        logger.warning("prediction log %s was deleted under the running service; creating a new one "
                                       "(earlier rows are in the deleted file only)", self.path)
                    else:
                        logger.warning("prediction log %s was replaced under the running service; writing to the "
                                       "file now at that path", self.path)
                    for suffix in ("-wal", "-shm"):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(f"{self.path}{suffix}")
                self._initialise()
                identity = self._stat_identity()
                fh.seek(0)
                fh.truncate()
                fh.write(_identity_text(identity))
                fh.flush()
        except OSError as exc:
            raise PredictionLogError(f"cannot open the prediction log {self.path}: {exc}") from exc
        self._identity = identity
        self._generation += 1

    def _initialise(self) -> None:
        con = self._connect(self.busy_timeout_ms)
        try:
            mode = enable_wal(con, self.busy_timeout_ms)
            con.execute(SCHEMA_SQL)
            _add_missing_columns(con)
            self._check_schema(con)
            con.execute(INDEX_SQL)
        except sqlite3.Error as exc:
            raise PredictionLogError(f"cannot initialise the prediction log {self.path}: {exc}") from exc
        finally:
            con.close()
        if str(mode).lower() != "wal":
            raise PredictionLogError(f"prediction log {self.path}: SQLite refused WAL mode (got {mode!r}); "
                                     "put the log on a local disk")

    def _reopen(self) -> None:
        """The file at `path` is not the one the connections write (deleted, moved or replaced):
        open the file now at the path, creating a new log when there is none."""
        with self._lock:
            if self._identity is not None and self._stat_identity() == self._identity:
                return  # another thread did it
            self._open_file()

    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=busy_timeout_ms / 1000, isolation_level=None,
                                  check_same_thread=False)  # used by its own thread only; closed by any
            con.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            con.execute(f"PRAGMA synchronous={self.synchronous}")
            if self.background_checkpoints:
                con.execute("PRAGMA wal_autocheckpoint=0")
        except sqlite3.Error as exc:
            raise PredictionLogError(f"cannot open the prediction log {self.path}: {exc}") from exc
        return con

    def _connection(self, *, nowait: bool = False) -> sqlite3.Connection:
        """This thread's connection (`nowait`: a second one that never waits for a lock) to the current file."""
        key = "nowait" if nowait else "con"
        held = getattr(self._local, key, None)
        if held is not None and held[1] == self._generation:
            return held[0]
        if held is not None:  # opened on a file that has since been reopened
            self._forget(held[0])
        con = self._connect(0 if nowait else self.busy_timeout_ms)
        setattr(self._local, key, (con, self._generation))
        with self._lock:
            self._all.append(con)
        return con

    def _forget(self, con: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):
            con.close()
        with self._lock, contextlib.suppress(ValueError):
            self._all.remove(con)

    def _check_schema(self, con: sqlite3.Connection) -> None:
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({TABLE})")]
        missing = [c for c in COLUMNS if c not in cols]
        if missing:
            raise PredictionLogError(f"prediction log {self.path}: table {TABLE!r} lacks columns {missing}; "
                                     "point TENURE_PREDICTION_LOG at a new file")

    # ---- writing ----------------------------------------------------------------------------
    def _append(self, rows: Sequence[LogRow], nowait: bool) -> bool:
        """One attempt on the current file; False when `nowait` and another writer holds the lock.
        Returns True only when the rows are committed to the file now at `path`."""
        for attempt in (1, 2):
            if self._stat_identity() != self._identity or self._identity is None:
                self._reopen()
            identity = self._identity
            con = self._connection(nowait=nowait)
            try:
                try:
                    con.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if nowait and _is_busy(exc):
                        return False
                    raise
                con.executemany(_INSERT, rows)
                con.execute("COMMIT")
            except sqlite3.Error as exc:
                if con.in_transaction:  # SQLite may have rolled back itself (disk full): keep ITS error
                    with contextlib.suppress(sqlite3.Error):
                        con.execute("ROLLBACK")
                if nowait and _is_busy(exc):
                    return False
                raise PredictionLogError(f"writing {len(rows)} rows to the prediction log {self.path} failed: "
                                         f"{exc}") from exc
            if self._stat_identity() == identity:
                return True
            # the file was deleted or replaced while we wrote: those rows are in a file nobody reads
            logger.warning("prediction log %s changed during a write; writing the %d rows again to the file now "
                           "at that path", self.path, len(rows))
            if attempt == 2:
                break
        raise PredictionLogError(f"the prediction log {self.path} keeps being deleted or replaced; "
                                 f"{len(rows)} rows not written")

    def write(self, rows: Sequence[LogRow]) -> None:
        """Append `rows` in one transaction, waiting up to the busy timeout for other writers;
        raises PredictionLogError (and writes nothing) on failure."""
        if rows:
            self._append(rows, nowait=False)

    def try_write(self, rows: Sequence[LogRow]) -> bool:
        """Append `rows` in one transaction if no other writer holds the log's lock right now
        (never waits, so it may run on an event loop); False: nothing written, call `write`."""
        return True if not rows else self._append(rows, nowait=True)

    def checkpoint(self) -> None:
        """Copy the WAL into the database file as far as readers allow (PASSIVE: never waits for a lock)."""
        with contextlib.suppress(sqlite3.Error):
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                with contextlib.suppress(sqlite3.Error):
                    con.close()
            self._all.clear()
        self._local = threading.local()


def _identity_text(identity: tuple[int, int] | None) -> str:
    return "" if identity is None else f"{identity[0]}:{identity[1]}"


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _add_missing_columns(con: sqlite3.Connection) -> None:
    """Migrate a log written by an older release: add the columns it lacks (old rows get the default)."""
    have = {r[1] for r in con.execute(f"PRAGMA table_info({TABLE})")}
    for name, definition in ADDED_COLUMNS:
        if name not in have:
            try:
                con.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {definition}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # another process added it just now
                    raise


def utc_bound(value: str | dt.datetime | dt.date | None, what: str) -> str | None:
    """A time bound in the log's text form ('YYYY-MM-DDTHH:MM:SS.ffffffZ', which compares as text
    with `scored_at`); naive times are taken as UTC; None or "" is no bound."""
    import pandas as pd

    if value is None or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise PredictionLogError(f"{what} {value!r} is not an ISO 8601 date or time (e.g. 2025-03-01 or "
                                 "2025-03-01T12:00:00Z)") from exc
    return log_time(ts.tz_localize("UTC") if ts.tzinfo is None else ts)


def select_sql(columns: Sequence[str], equals: dict[str, Any], since: str | None,
               until: str | None) -> tuple[str, list[str]]:
    """SELECT of the log's rows in write order: columns equal to the non-None `equals` values, and
    `scored_at` in [since, until) (UTC ISO text, either end open when None)."""
    where, args = [], []
    for col, value in equals.items():
        if value is not None:
            where.append(f"{col} = ?")
            args.append(str(value))
    for cond, bound in (("scored_at >= ?", since), ("scored_at < ?", until)):
        if bound is not None:
            where.append(cond)
            args.append(bound)
    sql = f"SELECT {', '.join(columns)} FROM {TABLE}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY row_id", args


def read_predictions(path: Path | str, model_name: str | None = None, model_version: str | int | None = None,
                     since: str | dt.datetime | dt.date | None = None,
                     until: str | dt.datetime | dt.date | None = None) -> pd.DataFrame:
    """Log rows (optionally one model / version, `since` inclusive, `until` exclusive) in write order.

    The features JSON becomes one column per feature (numbers as float, categories as text,
    missing as NaN/None); `scored_at` is a UTC timestamp.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise PredictionLogError(f"prediction log {path} does not exist")
    sql, args = select_sql(COLUMNS, {"model_name": model_name, "model_version": model_version},
                           utc_bound(since, "since"), utc_bound(until, "until"))
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute(sql, args).fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise PredictionLogError(f"reading the prediction log {path} failed: {exc}") from exc
    meta = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    features = _expand(meta.pop("features"))
    meta["scored_at"] = pd.to_datetime(meta["scored_at"], utc=True, format="ISO8601")
    meta["probability"] = meta["probability"].astype("float64")
    clash = [c for c in features.columns if c in meta.columns]
    if clash:
        features = features.rename(columns={c: f"feature_{c}" for c in clash})
    return pd.concat([meta, features], axis=1)


def _expand(texts: Iterable[str]) -> pd.DataFrame:
    import pandas as pd

    records = [json.loads(t) if t else {} for t in texts]
    frame = pd.DataFrame.from_records(records)
    for col in frame.columns:
        values = frame[col]
        if values.map(lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool))).all():
            frame[col] = pd.to_numeric(values, errors="coerce").astype("float64")
    return frame


class PredictionLogWriter(Protocol):
    """What the service needs of a log: a committed `write` per request, a `try_write` that never
    waits (False: nothing written, use `write` off the event loop), and `close`."""

    def write(self, rows: Sequence[LogRow]) -> None: ...

    def try_write(self, rows: Sequence[LogRow]) -> bool: ...

    def checkpoint(self) -> None: ...

    def close(self) -> None: ...
