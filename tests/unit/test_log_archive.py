"""`tenure log archive` (`serving.log_archive.archive_log`): old rows move from the live prediction log
into an SQLite archive; every row stays in one of the two, also while the service writes, after a
failed delete and when the archive is another log's."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from serving.log_archive import ArchiveError, archive_log
from serving.prediction_log import PredictionLog, features_json, read_predictions, utc_now_iso


def _row(i: int, when: str, prefix: str = "req") -> tuple:
    return (f"{prefix}{i}", when, "churn", "churn", "2", "run-1", f"C-{i}", "2025-03-01" if i % 2 else None,
            features_json({"dpd_current": float(i), "industry": "retail" if i % 3 else None}), (i % 97) / 97,
            "low", "none", 0)


def _old(i: int) -> str:
    return f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00.{i % 1_000_000:06d}Z"


def _request_ids(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute("SELECT request_id FROM predictions ORDER BY row_id")]
    finally:
        con.close()


def test_rows_before_the_time_move_and_read_back_the_same(tmp_path: Path) -> None:
    log_path, archive = tmp_path / "log.db", tmp_path / "archive" / "2025.sqlite"
    log = PredictionLog(log_path)
    old = [_row(i, _old(i)) for i in range(7)]
    new = [_row(100 + i, f"2026-02-0{1 + i}T00:00:00.000000Z") for i in range(3)]
    log.write(old[:4])
    log.write(new[:2])
    log.write(old[4:] + new[2:])
    before = read_predictions(log_path)

    result = archive_log(str(log_path), archive, "2026-01-01", batch_rows=2)

    assert result.rows_archived == 7 and result.rows_left == 3
    assert result.oldest_left == "2026-02-01T00:00:00.000000Z"
    archived, left = read_predictions(archive), read_predictions(log_path)
    cut = before["scored_at"] < pd.Timestamp("2026-01-01", tz="UTC")
    # the same rows, row ids kept, features read back alike
    pd.testing.assert_frame_equal(archived, before[cut].reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(left, before[~cut].reset_index(drop=True), check_dtype=False)
    runs = sqlite3.connect(archive).execute("SELECT source, before, rows FROM archive_runs").fetchall()
    assert runs == [(str(log_path.resolve()), "2026-01-01T00:00:00.000000Z", 7)]
    # again: nothing left to move; the service keeps writing to the same file
    assert archive_log(str(log_path), archive, "2026-01-01").rows_archived == 0
    log.write([_row(200, utc_now_iso())])
    assert len(read_predictions(log_path)) == 4
    log.close()


def test_nothing_is_lost_while_the_service_writes_and_the_wal_is_not_checkpointed(tmp_path: Path) -> None:
    """The service's log does not checkpoint on writes (background_checkpoints): the old rows are still
    in the -wal file, which is what a `mv` of the log leaves behind."""
    log_path, archive = tmp_path / "log.db", tmp_path / "archive.sqlite"
    log = PredictionLog(log_path, background_checkpoints=True)
    for start in range(0, 3000, 300):
        log.write([_row(i, _old(i)) for i in range(start, start + 300)])
    assert (tmp_path / "log.db-wal").stat().st_size > 0
    written: list[str] = [f"req{i}" for i in range(3000)]
    stop = threading.Event()

    def serve() -> None:
        n = 0
        while not stop.is_set():
            rows = [_row(n + k, utc_now_iso(), prefix="live") for k in range(5)]
            log.write(rows)
            written.extend(r[0] for r in rows)
            n += 5
            time.sleep(0.001)

    writer = threading.Thread(target=serve)
    writer.start()
    try:
        result = archive_log(str(log_path), archive, "2026-01-01", batch_rows=250)
    finally:
        stop.set()
        writer.join()
    log.close()
    in_archive, in_log = _request_ids(archive), _request_ids(log_path)
    assert result.rows_archived == 3000 and len(in_archive) == 3000
    assert not set(in_archive) & set(in_log)
    assert sorted(in_archive + in_log) == sorted(written)
    assert any(r.startswith("live") for r in in_log)


def test_a_failed_delete_leaves_the_batch_in_both_and_the_next_run_finishes(tmp_path: Path) -> None:
    log_path, archive = tmp_path / "log.db", tmp_path / "archive.sqlite"
    log = PredictionLog(log_path)
    log.write([_row(i, _old(i)) for i in range(10)])
    blocker = sqlite3.connect(log_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock longer than the busy timeout
    try:
        with pytest.raises(ArchiveError, match=r"deleting archived rows from the prediction log .*log\.db.*"
                                               r"this batch of 4 is in both"):
            archive_log(str(log_path), archive, "2026-01-01", batch_rows=4, busy_timeout_ms=50)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert len(_request_ids(archive)) == 4 and len(_request_ids(log_path)) == 10
    result = archive_log(str(log_path), archive, "2026-01-01", batch_rows=4)
    assert result.rows_archived == 10 and result.rows_left == 0
    assert sorted(_request_ids(archive)) == sorted(f"req{i}" for i in range(10))  # no row twice
    log.close()


def test_the_archive_of_another_log_is_refused_before_anything_moves(tmp_path: Path) -> None:
    archive = tmp_path / "archive.sqlite"
    first = PredictionLog(tmp_path / "a.db")
    first.write([_row(i, _old(i)) for i in range(5)])
    archive_log(str(tmp_path / "a.db"), archive, "2026-01-01")
    second = PredictionLog(tmp_path / "b.db")  # its row ids 1..5 again, other requests
    second.write([_row(i, _old(i), prefix="other") for i in range(5)])
    with pytest.raises(ArchiveError, match=r"archive .*archive\.sqlite holds other rows under the row ids \[1, 2, 3, "
                                           r"4, 5\] \(the archive of another log\?\); nothing of this batch"):
        archive_log(str(tmp_path / "b.db"), archive, "2026-01-01")
    assert _request_ids(tmp_path / "b.db") == [f"other{i}" for i in range(5)]
    assert _request_ids(archive) == [f"req{i}" for i in range(5)]
    first.close()
    second.close()


def test_bad_input_is_refused_in_one_line_naming_what(tmp_path: Path) -> None:
    log_path = tmp_path / "log.db"
    PredictionLog(log_path).write([_row(1, _old(1))])
    with pytest.raises(Exception, match=r"--before 'last spring' is not an ISO 8601 date or time"):
        archive_log(str(log_path), tmp_path / "x.sqlite", "last spring")
    with pytest.raises(ArchiveError, match=r"--to .*log\.db is the live prediction log itself"):
        archive_log(str(log_path), log_path, "2026-01-01")
    with pytest.raises(ArchiveError, match=r"prediction log .*missing\.db does not exist"):
        archive_log(str(tmp_path / "missing.db"), tmp_path / "x.sqlite", "2026-01-01")
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    with pytest.raises(ArchiveError, match=r"archive .*notes\.txt: cannot open it as an SQLite"):
        archive_log(str(log_path), tmp_path / "notes.txt", "2026-01-01")
    with pytest.raises(ArchiveError, match=r"--batch-rows must be at least 1"):
        archive_log(str(log_path), tmp_path / "x.sqlite", "2026-01-01", batch_rows=0)
    assert _request_ids(log_path) == ["req1"]  # nothing moved


def test_the_cli_prints_json_and_errors_in_one_line(tmp_path: Path) -> None:
    from tenure.cli import app

    log_path = tmp_path / "log.db"
    PredictionLog(log_path).write([_row(i, _old(i)) for i in range(3)] + [_row(9, utc_now_iso())])
    env = {"TENURE_HOME": str(tmp_path / "home"), "TENURE_PREDICTION_LOG": str(log_path)}
    runner = CliRunner()
    res = runner.invoke(app, ["log", "archive", "--before", "2026-01-01", "--to", str(tmp_path / "a.sqlite")], env=env)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert (out["rows_archived"], out["rows_left"], out["archive"]) == (3, 1, str(tmp_path / "a.sqlite"))
    res = runner.invoke(app, ["log", "archive", "--before", "soon", "--to", str(tmp_path / "a.sqlite")], env=env)
    assert res.exit_code == 2 and "error: --before 'soon' is not an ISO 8601 date or time" in res.output
    assert "Traceback" not in res.output
