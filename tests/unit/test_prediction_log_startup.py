"""Replicas opening one new SQLite prediction log together: the WAL switch waits for the busy
timeout instead of failing at once with "database is locked"."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from serving.prediction_log import PredictionLog, PredictionLogError


def _hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another process's write transaction (rollback journal, as before a log switches to WAL)."""
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute("CREATE TABLE other (a)")
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO other VALUES (1)")

    def release() -> None:
        time.sleep(seconds)
        con.execute("COMMIT")
        con.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_opening_waits_for_another_writer_within_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    holder = _hold_write_lock(path, 0.5)
    started = time.monotonic()
    log = PredictionLog(path, busy_timeout_ms=5000)
    assert time.monotonic() - started >= 0.4
    log.close()
    holder.join()


def test_opening_still_fails_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    holder = _hold_write_lock(path, 1.5)
    with pytest.raises(PredictionLogError, match="database is locked"):
        PredictionLog(path, busy_timeout_ms=200)
    holder.join()
