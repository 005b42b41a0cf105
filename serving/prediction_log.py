"""The prediction log: one SQLite row per customer and model scored, for monitoring and audits.

Writes `settings.prediction_log_path` (SQLite, WAL mode, `busy_timeout`, so several worker
processes append safely), table `predictions`:

    row_id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT, scored_at TEXT (ISO 8601 UTC,
    'YYYY-MM-DDTHH:MM:SS.ffffffZ'), task TEXT, model_name TEXT, model_version TEXT, run_id TEXT,
    customer_ref TEXT, as_of TEXT NULL ('YYYY-MM-DD'), features TEXT (JSON object of the model's
    feature values as scored; null = missing), probability REAL, tier TEXT, action TEXT

with an index on (model_name, model_version, scored_at). One request is one transaction
(`executemany`), written before the service answers: a response that claims success has all its
rows in the log, and a failed write is an error (the service answers 503). No personal data is
ever written: the request schema refuses it and only the model's features are kept.
`read_predictions` reads it back with the features as columns, typed from the JSON (for audits and
tests); `monitoring.predictions.read_log` reads a model version's window typed by its feature
definitions, fast enough for millions of rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from configs import TenureError

if TYPE_CHECKING:  # pandas only for reading the log back; the service's write path never imports it
    import pandas as pd

TABLE = "predictions"
COLUMNS: tuple[str, ...] = ("row_id", "request_id", "scored_at", "task", "model_name", "model_version", "run_id",
                            "customer_ref", "as_of", "features", "probability", "tier", "action")
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
    action TEXT NOT NULL
);
"""
INDEX_SQL = f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_model_time ON {TABLE} (model_name, model_version, scored_at)"
_INSERT = f"INSERT INTO {TABLE} ({', '.join(INSERT_COLUMNS)}) VALUES ({', '.join('?' * len(INSERT_COLUMNS))})"

# (request_id, scored_at, task, model_name, model_version, run_id, customer_ref, as_of, features, probability,
#  tier, action)
LogRow = tuple[str, str, str, str, str, str, str, str | None, str, float, str, str]


class PredictionLogError(TenureError):
    """The prediction log cannot be opened, written or read; the message names the file."""


def utc_now_iso() -> str:
    """Now as 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (fixed width, so text order is time order)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5000, synchronous: str = "NORMAL"):
        self.path = Path(path)
        self.busy_timeout_ms = int(busy_timeout_ms)
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        self.synchronous = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PredictionLogError(f"cannot create the folder of the prediction log {self.path}: {exc}") from exc
        con = self._connection()
        try:
            mode = enable_wal(con, self.busy_timeout_ms)
            con.execute(SCHEMA_SQL)
            self._check_schema(con)
            con.execute(INDEX_SQL)
        except sqlite3.Error as exc:
            raise PredictionLogError(f"cannot initialise the prediction log {self.path}: {exc}") from exc
        if str(mode).lower() != "wal":
            raise PredictionLogError(f"prediction log {self.path}: SQLite refused WAL mode (got {mode!r}); "
                                     "put the log on a local disk")

    def _connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            try:
                con = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                                      check_same_thread=False)  # used by its own thread only; closed by any
                con.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
                con.execute(f"PRAGMA synchronous={self.synchronous}")
            except sqlite3.Error as exc:
                raise PredictionLogError(f"cannot open the prediction log {self.path}: {exc}") from exc
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    def _check_schema(self, con: sqlite3.Connection) -> None:
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({TABLE})")]
        missing = [c for c in COLUMNS if c not in cols]
        if missing:
            raise PredictionLogError(f"prediction log {self.path}: table {TABLE!r} lacks columns {missing}; "
                                     "point TENURE_PREDICTION_LOG at a new file")

    def write(self, rows: Sequence[LogRow]) -> None:
        """Append `rows` in one transaction; raises PredictionLogError (and writes nothing) on failure."""
        if not rows:
            return
        con = self._connection()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany(_INSERT, rows)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise PredictionLogError(f"writing {len(rows)} rows to the prediction log {self.path} failed: "
                                     f"{exc}") from exc

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                with contextlib.suppress(sqlite3.Error):
                    con.close()
            self._all.clear()
        self._local = threading.local()


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
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    """What the service needs of a log: a committed `write` per request, and `close`."""

    def write(self, rows: Sequence[LogRow]) -> None: ...

    def close(self) -> None: ...


def open_prediction_log(target: str | Path, *, busy_timeout_ms: int = 5000,
                        synchronous: str = "NORMAL") -> PredictionLogWriter:
    """The log the service writes, chosen by `target` (`settings.prediction_log_target`): a
    `postgresql://` URL opens `serving.prediction_log_pg.PostgresPredictionLog` (the busy timeout
    bounds each write there too), anything else is the SQLite file `PredictionLog`."""
    from configs.settings import is_postgres_url

    if is_postgres_url(target):
        from serving.prediction_log_pg import PostgresPredictionLog

        return PostgresPredictionLog(str(target), timeout_ms=busy_timeout_ms)
    return PredictionLog(target, busy_timeout_ms=busy_timeout_ms, synchronous=synchronous)
