"""The prediction log: the exact schema monitoring reads, atomic writes, many writer processes, read-back."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
import uuid
from pathlib import Path

import pandas as pd
import pytest

from serving.prediction_log import (
    COLUMNS,
    PredictionLog,
    PredictionLogError,
    features_json,
    read_predictions,
    utc_now_iso,
)


def _rows(request_id: str, scored_at: str, n: int = 3, version: str = "1") -> list[tuple]:
    return [(request_id, scored_at, f"task{i}", "churn", version, "run-1", f"C-{i}", "2025-03-01" if i else None,
             features_json({"dpd_current": float(i), "industry": "retail" if i else None}), 0.1 * i, "low", "none", 0)
            for i in range(n)]


def test_schema_index_and_wal_are_what_monitoring_expects(tmp_path):
    log = PredictionLog(tmp_path / "sub" / "log.db")
    con = sqlite3.connect(tmp_path / "sub" / "log.db")
    info = {r[1]: (r[2], r[3], r[5]) for r in con.execute("PRAGMA table_info(predictions)")}
    assert tuple(info) == COLUMNS
    assert info["row_id"] == ("INTEGER", 0, 1)
    assert {c: t for c, (t, _, _) in info.items()} == {
        "row_id": "INTEGER", "request_id": "TEXT", "scored_at": "TEXT", "task": "TEXT", "model_name": "TEXT",
        "model_version": "TEXT", "run_id": "TEXT", "customer_ref": "TEXT", "as_of": "TEXT", "features": "TEXT",
        "probability": "REAL", "tier": "TEXT", "action": "TEXT", "shadow": "INTEGER"}
    assert info["as_of"][1] == 0  # nullable
    sql = con.execute("SELECT sql FROM sqlite_master WHERE name = 'predictions'").fetchone()[0]
    assert "AUTOINCREMENT" in sql
    indexes = {r[1]: [c[2] for c in con.execute(f"PRAGMA index_info({r[1]})")]
               for r in con.execute("PRAGMA index_list(predictions)")}
    assert ["model_name", "model_version", "scored_at"] in indexes.values()
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    log.close()
    PredictionLog(tmp_path / "sub" / "log.db").close()  # reopening an existing log is fine


def test_scored_at_is_fixed_width_utc():
    stamps = [utc_now_iso() for _ in range(5)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", s) for s in stamps)
    assert stamps == sorted(stamps)


def test_read_back_with_filters_and_expanded_features(tmp_path):
    path = tmp_path / "log.db"
    log = PredictionLog(path)
    log.write(_rows("r1", "2025-03-01T10:00:00.000000Z"))
    log.write(_rows("r2", "2025-03-02T10:00:00.000000Z", version="2"))
    log.write(_rows("r3", "2025-03-03T10:00:00.000000Z", version="2"))
    log.close()
    frame = read_predictions(path)
    assert len(frame) == 9 and list(frame["row_id"]) == sorted(frame["row_id"])
    assert "features" not in frame.columns
    assert frame["dpd_current"].dtype == "float64"
    assert list(frame["dpd_current"][:3]) == [0.0, 1.0, 2.0]
    assert frame["industry"][0] is None and frame["industry"][1] == "retail"
    assert str(frame["scored_at"].dt.tz) == "UTC"
    assert frame["as_of"][0] is None and frame["as_of"][1] == "2025-03-01"
    assert set(read_predictions(path, model_version="2")["request_id"]) == {"r2", "r3"}
    assert set(read_predictions(path, model_version=2, since="2025-03-03")["request_id"]) == {"r3"}
    assert set(read_predictions(path, until="2025-03-02T10:00:00Z")["request_id"]) == {"r1"}  # exclusive
    assert set(read_predictions(path, since=pd.Timestamp("2025-03-02T10:00:00"))["request_id"]) == {"r2", "r3"}
    assert read_predictions(path, model_name="default_risk").empty
    with pytest.raises(PredictionLogError, match="does not exist"):
        read_predictions(tmp_path / "nope.db")
    with pytest.raises(PredictionLogError, match="not an ISO 8601"):
        read_predictions(path, since="yesterday-ish")


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    path = tmp_path / "log.db"
    log = PredictionLog(path, busy_timeout_ms=20)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(PredictionLogError, match="database is locked"):
        log.write(_rows("r1", utc_now_iso()))
    blocker.execute("ROLLBACK")
    bad = _rows("r2", utc_now_iso())
    bad[2] = bad[2][:5] + (None,) + bad[2][6:]  # run_id NOT NULL: the last row of the batch fails
    with pytest.raises(PredictionLogError, match="NOT NULL"):
        log.write(bad)
    assert read_predictions(path).empty  # neither request left a partial batch
    log.write(_rows("r3", utc_now_iso()))
    assert len(read_predictions(path)) == 3
    blocker.close()
    log.close()


def test_refuses_a_log_with_another_schema(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE predictions (row_id INTEGER PRIMARY KEY, request_id TEXT)")
    con.commit()
    con.close()
    with pytest.raises(PredictionLogError, match="lacks columns"):
        PredictionLog(path)


def _writer(path: str, worker: int, requests: int, out: multiprocessing.Queue) -> None:
    log = PredictionLog(Path(path), busy_timeout_ms=10_000)
    ids = []
    for _ in range(requests):
        request_id = f"{worker}-{uuid.uuid4()}"
        log.write(_rows(request_id, utc_now_iso(), n=1 + worker % 3))
        ids.append(request_id)
    log.close()
    out.put(ids)


def test_concurrent_writer_processes_lose_and_duplicate_nothing(tmp_path):
    path = tmp_path / "log.db"
    PredictionLog(path).close()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(path), w, 60, queue)) for w in range(4)]
    for p in procs:
        p.start()
    written = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    counts = read_predictions(path).groupby("request_id").size().to_dict()
    expected = {rid: 1 + int(rid.split("-")[0]) % 3 for ids in written for rid in ids}
    assert counts == expected
