"""The prediction log on PostgreSQL (`serving.prediction_log_pg`) against a real server.

Writes go through the same factory the service uses (`serving.startup.open_prediction_log`); reading a window
(`monitoring.predictions.read_log`) must give the very frame the SQLite log gives for the same
rows. Needs PostgreSQL server binaries (the `postgres_db` fixture starts a private server).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from configs.settings import Settings
from monitoring.predictions import read_log
from serving.prediction_log import PredictionLog, PredictionLogError
from serving.prediction_log_pg import PostgresPredictionLog
from serving.startup import open_prediction_log

pytestmark = pytest.mark.integration

DEFS = [
    {"name": "dpd_current", "kind": "numeric"},
    {"name": "utilisation_3m", "kind": "numeric"},
    {"name": "credit_class", "kind": "categorical", "categories": ["good", "average", "bad"]},
]


def _row(i: int, when: str, features: dict, version: str = "3", model: str = "churn",
         as_of: str | None = "2025-01-01") -> tuple:
    return (f"req{i}", when, "churn", model, version, "run1", str(100 + i), as_of, json.dumps(features),
            0.1 * (i % 10), "low", "none", 0)


ROWS = [
    _row(0, "2025-01-31T23:59:59.999999Z", {"dpd_current": 1, "credit_class": "good"}),
    _row(1, "2025-02-01T00:00:00.000000Z", {"dpd_current": 2.5, "credit_class": "bad", "other": 7,
                                            "utilisation_3m": 0.5}),
    _row(2, "2025-02-10T08:00:00.000000Z", {"credit_class": None}, as_of=None),
    _row(3, "2025-02-11T00:00:00.000000Z", {"dpd_current": 4, "credit_class": "platinum"}),
    _row(4, "2025-02-05T00:00:00.000000Z", {"dpd_current": 9}, version="2"),
    _row(5, "2025-02-12T00:00:00.000000Z", {"dpd_current": "12", "credit_class": "a,\"quoted\"\nvalue"}),
    _row(6, "2025-02-12T00:00:01.000000Z", {"dpd_current": "n/a", "utilisation_3m": True, "credit_class": ""}),
    _row(7, "2025-03-01T00:00:00.000000Z", {"dpd_current": 9}),
]


@pytest.mark.parametrize("window", [
    {},
    {"model_name": "churn", "model_version": 3, "since": "2025-02-01", "until": "2025-03-01"},
    {"since": "2025-02-01T07:00:00+08:00"},
    {"model_name": "nope"},
])
def test_a_window_reads_the_same_from_postgresql_as_from_sqlite(postgres_db: str, tmp_path: Path,
                                                                window: dict) -> None:
    sqlite_log = PredictionLog(tmp_path / "p.db")
    sqlite_log.write(ROWS)
    sqlite_log.close()
    pg_log = open_prediction_log(postgres_db)
    assert isinstance(pg_log, PostgresPredictionLog)
    pg_log.write(ROWS)
    pg_log.close()

    expected = read_log(tmp_path / "p.db", features=DEFS, **window)
    got = read_log(postgres_db, features=DEFS, **window)
    pd.testing.assert_frame_equal(got.frame.drop(columns="row_id"), expected.frame.drop(columns="row_id"))
    assert got.non_numeric == expected.non_numeric
    if not window:
        assert got.non_numeric == {"dpd_current": 1}
        assert got.frame["credit_class"].tolist()[5:7] == ['a,"quoted"\nvalue', ""]
        np.testing.assert_array_equal(got.frame["utilisation_3m"].to_numpy()[[1, 6]], [0.5, 1.0])


def test_a_failed_write_commits_nothing_and_the_next_write_works(postgres_db: str) -> None:
    log = PostgresPredictionLog(postgres_db)
    bad = [ROWS[0], (None, *ROWS[1][1:]), ROWS[2]]  # request_id NOT NULL
    with pytest.raises(PredictionLogError, match="writing 3 rows to the prediction log"):
        log.write(bad)
    assert len(read_log(postgres_db)) == 0
    log.write(ROWS[:2])
    assert len(read_log(postgres_db)) == 2
    log.close()


def test_a_dropped_connection_fails_one_write_then_reconnects(postgres_db: str) -> None:
    import psycopg

    log = PostgresPredictionLog(postgres_db)
    log.write(ROWS[:1])
    with psycopg.connect(postgres_db, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'tenure-prediction-log' AND pid <> pg_backend_pid()")
    with pytest.raises(PredictionLogError, match="failed"):
        log.write(ROWS[1:2])
    log.write(ROWS[2:3])
    assert read_log(postgres_db).frame["request_id"].tolist() == ["req0", "req2"]
    log.close()


def test_concurrent_writers_lose_and_repeat_nothing(postgres_db: str) -> None:
    logs = [PostgresPredictionLog(postgres_db) for _ in range(2)]  # two "replicas", created at once is fine

    def work(log: PostgresPredictionLog, worker: int) -> None:
        for i in range(40):
            log.write([_row(1000 * worker + i, "2025-02-01T00:00:00Z", {"dpd_current": i})] * 2)

    threads = [threading.Thread(target=work, args=(logs[w % 2], w)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = read_log(postgres_db).frame["request_id"]
    assert len(ids) == 6 * 40 * 2
    assert ids.value_counts().eq(2).all()
    for log in logs:
        log.close()


def test_unreachable_database_is_one_clear_error_without_the_password() -> None:
    with pytest.raises(PredictionLogError) as err:
        PostgresPredictionLog("postgresql://tenure:s3cret@127.0.0.1:9/predictions", timeout_ms=1000)
    assert "cannot connect to the prediction log postgresql://tenure:***@127.0.0.1:9/predictions" in str(err.value)
    assert "s3cret" not in str(err.value)
    with pytest.raises(PredictionLogError, match="cannot connect") as err:
        read_log("postgresql://tenure:s3cret@127.0.0.1:9/predictions")
    assert "s3cret" not in str(err.value)


def test_a_postgresql_setting_never_becomes_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   postgres_db: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TENURE_PREDICTION_LOG", postgres_db)
    from configs.settings import load_settings

    settings = load_settings()
    assert settings.prediction_log_target == postgres_db
    log = open_prediction_log(settings.prediction_log_target)
    log.write(ROWS[:1])
    log.close()
    assert list(tmp_path.iterdir()) == []
    assert len(read_log(settings.prediction_log_target)) == 1
    with pytest.raises(Exception, match="not a file"):
        _ = Settings(prediction_log=postgres_db).prediction_log_path


def test_archiving_moves_the_same_rows_from_postgresql_as_from_sqlite(postgres_db: str, tmp_path: Path) -> None:
    from serving.log_archive import archive_log

    sqlite_log = PredictionLog(tmp_path / "p.db")
    sqlite_log.write(ROWS)
    sqlite_log.close()
    pg_log = PostgresPredictionLog(postgres_db)
    pg_log.write(ROWS)
    pg_log.close()

    from_sqlite = archive_log(str(tmp_path / "p.db"), tmp_path / "a_sqlite.db", "2025-02-10", batch_rows=2)
    from_pg = archive_log(postgres_db, tmp_path / "a_pg.db", "2025-02-10", batch_rows=2)

    assert (from_pg.rows_archived, from_pg.rows_left) == (from_sqlite.rows_archived, from_sqlite.rows_left) == (3, 5)
    assert from_pg.oldest_left == from_sqlite.oldest_left == "2025-02-10T08:00:00.000000Z"
    archived = read_log(tmp_path / "a_pg.db", features=DEFS)
    pd.testing.assert_frame_equal(archived.frame.drop(columns="row_id"),
                                  read_log(tmp_path / "a_sqlite.db", features=DEFS).frame.drop(columns="row_id"))
    assert archived.frame["request_id"].tolist() == ["req0", "req1", "req4"]
    assert read_log(postgres_db, features=DEFS).frame["request_id"].tolist() == ["req2", "req3", "req5", "req6", "req7"]
    assert archive_log(postgres_db, tmp_path / "a_pg.db", "2025-02-10").rows_archived == 0
