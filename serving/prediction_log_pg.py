"""The prediction log on PostgreSQL: what several service replicas on several machines share.

Writes the table `predictions` of the database named by `TENURE_PREDICTION_LOG=postgresql://...`
(created on first use, columns as the SQLite log's, `serving.prediction_log.COLUMNS`, typed):

    row_id BIGINT identity, request_id TEXT, scored_at TIMESTAMPTZ, task TEXT, model_name TEXT,
    model_version TEXT, run_id TEXT, customer_ref TEXT, as_of DATE NULL, features JSONB (the
    model's feature values as scored), probability DOUBLE PRECISION, tier TEXT, action TEXT,
    shadow INTEGER NOT NULL DEFAULT 0 (1 = a shadow challenger's score, not answered; added to
    a table written by an older release)

with an index on (model_name, model_version, scored_at). The guarantee is the SQLite log's: one
request is one transaction, committed before the service answers; a write that cannot be
committed within `timeout_ms` (connection refused, database down, lock wait, disk full) raises
`PredictionLogError` and the service answers 503 - a response that claims success has its rows in
the log. Each thread keeps one connection (psycopg 3), reopened after a failure. Reading a
window back for monitoring is `monitoring.predictions.read_log`, which has PostgreSQL turn the
JSON into typed columns and export them as CSV (no JSON is decoded in Python).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

from configs.settings import redact_url as redact
from serving.prediction_log import (
    ADDED_COLUMNS,
    COLUMNS,
    INSERT_COLUMNS,
    TABLE,
    LogRow,
    PredictionLogError,
)

# the typed PostgreSQL column of every log column (the SQLite log stores them as TEXT/REAL/INTEGER)
PG_TYPES: dict[str, str] = {
    "row_id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    "request_id": "TEXT NOT NULL",
    "scored_at": "TIMESTAMPTZ NOT NULL",
    "task": "TEXT NOT NULL",
    "model_name": "TEXT NOT NULL",
    "model_version": "TEXT NOT NULL",
    "run_id": "TEXT NOT NULL",
    "customer_ref": "TEXT NOT NULL",
    "as_of": "DATE NULL",
    "features": "JSONB NOT NULL",
    "probability": "DOUBLE PRECISION NOT NULL",
    "tier": "TEXT NOT NULL",
    "action": "TEXT NOT NULL",
    "shadow": "INTEGER NOT NULL DEFAULT 0",
}
SCHEMA_SQL = (f"CREATE TABLE IF NOT EXISTS {TABLE} (\n    "
              + ",\n    ".join(f"{c} {t}" for c, t in PG_TYPES.items()) + "\n)")
INDEX_SQL = f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_model_time ON {TABLE} (model_name, model_version, scored_at)"
# one lock id for creating the table: concurrent `CREATE TABLE IF NOT EXISTS` can still collide
_SCHEMA_LOCK = 0x7E4E_0001


def psycopg_url(url: str) -> str:
    """A libpq URL from an SQLAlchemy-style one (`postgresql+psycopg://` -> `postgresql://`)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


def connect(url: str, timeout_ms: int) -> Any:
    """A psycopg connection that gives up after `timeout_ms` (connecting, and per statement).

    In autocommit mode: each `with con.transaction()` is one BEGIN ... COMMIT, never a savepoint
    inside a transaction some earlier statement opened implicitly."""
    import psycopg

    seconds = max(1, -(-int(timeout_ms) // 1000))
    return psycopg.connect(psycopg_url(url), connect_timeout=seconds, autocommit=True,
                           options=f"-c statement_timeout={int(timeout_ms)} -c lock_timeout={int(timeout_ms)}",
                           application_name="tenure-prediction-log")


def ensure_schema(con: Any, where: str) -> None:
    """Create the table and index if missing; refuse a table that lacks a log column."""
    with con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        con.execute(SCHEMA_SQL)
        for name, definition in ADDED_COLUMNS:  # a table written by an older release
            con.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {name} {definition}")
        con.execute(INDEX_SQL)
    cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_schema = current_schema() AND table_name = %s", (TABLE,))}
    missing = [c for c in COLUMNS if c not in cols]
    if missing:
        raise PredictionLogError(f"prediction log {where}: table {TABLE!r} lacks columns {missing}; "
                                 "point TENURE_PREDICTION_LOG at a new database")


class PostgresPredictionLog:
    """Appends rows to the PostgreSQL log; one connection per thread, one transaction per `write`."""

    def __init__(self, url: str, *, timeout_ms: int = 5000):
        self.url = url
        self.where = redact(url)
        self.timeout_ms = int(timeout_ms)
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._insert = (f"INSERT INTO {TABLE} ({', '.join(INSERT_COLUMNS)}) "
                        f"VALUES ({', '.join(['%s'] * len(INSERT_COLUMNS))})")
        try:
            ensure_schema(self._connection(), self.where)
        except PredictionLogError:
            self.close()
            raise
        except Exception as exc:  # psycopg.Error and connection failures alike
            self.close()
            raise PredictionLogError(f"cannot initialise the prediction log {self.where}: {error_text(exc)}") from exc

    def _connection(self) -> Any:
        con = getattr(self._local, "con", None)
        if con is None or con.closed:
            try:
                con = connect(self.url, self.timeout_ms)
            except Exception as exc:
                raise PredictionLogError(f"cannot connect to the prediction log {self.where}: {error_text(exc)}") from exc
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    def _discard(self, con: Any) -> None:
        with contextlib.suppress(Exception):
            con.close()
        self._local.con = None
        with self._lock, contextlib.suppress(ValueError):
            self._all.remove(con)

    def write(self, rows: Sequence[LogRow]) -> None:
        """Append `rows` in one committed transaction; raises PredictionLogError (nothing written) on failure."""
        if not rows:
            return
        con = self._connection()
        try:
            with con.transaction(), con.cursor() as cur:
                cur.executemany(self._insert, rows)
        except Exception as exc:  # any failure means the rows are not committed
            self._discard(con)  # a broken or aborted connection is reopened by the next write
            raise PredictionLogError(f"writing {len(rows)} rows to the prediction log {self.where} failed: "
                                     f"{error_text(exc)}") from exc

    def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL checkpoints itself."""

    def try_write(self, rows: Sequence[LogRow]) -> bool:
        """Always False: a PostgreSQL write goes over the network, so the service makes it off the event loop."""
        return not rows

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                with contextlib.suppress(Exception):
                    con.close()
            self._all.clear()
        self._local = threading.local()


def error_text(exc: BaseException) -> str:
    """A database error on one line, any password in a URL it quotes redacted."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact(text)
