"""Reading the prediction log (`monitoring.predictions`) from a SQLite file in the serving schema."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from configs import TenureError
from monitoring.predictions import read_log
from serving.prediction_log import PredictionLogError, utc_bound

SCHEMA = """CREATE TABLE predictions (row_id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT, scored_at TEXT,
task TEXT, model_name TEXT, model_version TEXT, run_id TEXT, customer_ref TEXT, as_of TEXT NULL, features TEXT,
probability REAL, tier TEXT, action TEXT)"""
DEFS = [
    {"name": "dpd_current", "kind": "numeric", "min": 0, "max": 10000},
    {"name": "credit_class", "kind": "categorical", "categories": ["good", "average", "bad"]},
]


def _log(path: Path, rows: list[tuple]) -> Path:
    con = sqlite3.connect(path)
    con.execute(SCHEMA)
    con.executemany("INSERT INTO predictions (request_id, scored_at, task, model_name, model_version, run_id, "
                    "customer_ref, as_of, features, probability, tier, action) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()
    return path


def _row(i: int, when: str, features: dict, version: str = "3", model: str = "churn") -> tuple:
    return (f"req{i}", when, "churn", model, version, "run1", str(100 + i), "2025-01-01", json.dumps(features),
            0.1 * (i % 10), "low", "none")


def test_reads_one_version_in_a_window_with_features_as_columns(tmp_path: Path) -> None:
    path = _log(tmp_path / "p.db", [
        _row(0, "2025-01-31T23:59:59.999999Z", {"dpd_current": 1, "credit_class": "good"}),
        _row(1, "2025-02-01T00:00:00.000000Z", {"dpd_current": 2.5, "credit_class": "bad", "other": 7}),
        _row(2, "2025-02-10T08:00:00.000000Z", {"credit_class": None}),
        _row(3, "2025-02-11T00:00:00.000000Z", {"dpd_current": 4, "credit_class": "platinum"}),
        _row(4, "2025-02-05T00:00:00.000000Z", {"dpd_current": 9}, version="2"),
        _row(5, "2025-03-01T00:00:00.000000Z", {"dpd_current": 9}),
    ])
    window = read_log(path, model_name="churn", model_version=3, since="2025-02-01", until="2025-03-01",
                      features=DEFS)
    f = window.frame
    assert f["request_id"].tolist() == ["req1", "req2", "req3"]
    np.testing.assert_array_equal(f["dpd_current"].to_numpy(), [2.5, np.nan, 4.0])
    assert f["dpd_current"].dtype == np.float64
    assert list(f["credit_class"].cat.categories) == ["good", "average", "bad", "platinum"]
    assert f["credit_class"].isna().tolist() == [False, True, False]
    assert "other" not in f.columns
    assert str(f["scored_at"].dt.tz) == "UTC"
    assert window.non_numeric == {}


def test_a_number_sent_as_text_is_counted_not_fatal(tmp_path: Path) -> None:
    path = _log(tmp_path / "p.db", [
        _row(0, "2025-02-01T00:00:00Z", {"dpd_current": "12", "credit_class": "good"}),
        _row(1, "2025-02-01T00:00:01Z", {"dpd_current": "n/a", "credit_class": "average"}),
        _row(2, "2025-02-01T00:00:02Z", {"dpd_current": True, "credit_class": "average"}),
    ])
    window = read_log(path, features=DEFS)
    np.testing.assert_array_equal(window.frame["dpd_current"].to_numpy(), [12.0, np.nan, 1.0])
    assert window.non_numeric == {"dpd_current": 1}
    assert window.frame["credit_class"].tolist() == ["good", "average", "average"]


def test_window_bounds_accept_offsets_and_compare_in_utc(tmp_path: Path) -> None:
    assert utc_bound("2025-02-01T08:00:00+08:00", "--since") == "2025-02-01T00:00:00.000000Z"
    assert utc_bound("2025-02-01", "--since") == "2025-02-01T00:00:00.000000Z"
    assert utc_bound(None, "--since") is None and utc_bound("", "--since") is None
    with pytest.raises(TenureError, match="--until 'yesterday' is not an ISO 8601"):
        utc_bound("yesterday", "--until")
    path = _log(tmp_path / "p.db", [_row(0, "2025-01-31T23:30:00.000000Z", {"dpd_current": 1})])
    assert len(read_log(path, since="2025-02-01T07:00:00+08:00", features=DEFS)) == 1
    assert len(read_log(path, since="2025-02-01T08:00:00+08:00", features=DEFS)) == 0


def test_empty_window_keeps_the_columns(tmp_path: Path) -> None:
    path = _log(tmp_path / "p.db", [_row(0, "2025-02-01T00:00:00Z", {"dpd_current": 1})])
    window = read_log(path, model_name="nope", features=DEFS)
    assert len(window) == 0
    assert {"probability", "dpd_current", "credit_class"} <= set(window.frame.columns)


def test_errors_name_the_file_and_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(PredictionLogError, match="does not exist"):
        read_log(tmp_path / "missing.db")
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(PredictionLogError, match="has no table 'predictions'"):
        read_log(empty)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE predictions (row_id INTEGER, scored_at TEXT)")
    con.close()
    with pytest.raises(PredictionLogError, match=r"lacks columns \['request_id'"):
        read_log(other)
    text = tmp_path / "text.db"
    text.write_text("not a database at all" * 100)
    with pytest.raises(PredictionLogError, match="not a readable SQLite database"):
        read_log(text)


def test_reads_what_the_serving_log_writes(tmp_path: Path) -> None:
    """Compatibility with the writer of serving (when it is importable)."""
    writer = pytest.importorskip("serving.prediction_log")
    log = writer.PredictionLog(tmp_path / "served.db")
    row = ("req", writer.utc_now_iso(), "churn", "churn", "5", "run", "42", "2025-01-01",
           writer.features_json({"dpd_current": 3.0, "credit_class": "bad"}), 0.25, "high", "call", 0)
    shadow_row = ("req", writer.utc_now_iso(), "churn", "churn", "5", "run", "42", "2025-01-01",
                  writer.features_json({"dpd_current": 9.0, "credit_class": "good"}), 0.5, "high", "call", 1)
    log.write([row, shadow_row])
    window = read_log(tmp_path / "served.db", model_name="churn", model_version="5", features=DEFS)
    assert window.frame["dpd_current"].tolist() == [3.0]  # answered rows only by default
    assert read_log(tmp_path / "served.db", shadow=True, features=DEFS).frame["dpd_current"].tolist() == [9.0]
    assert read_log(tmp_path / "served.db", shadow=None).frame["shadow"].tolist() == [0, 1]
    assert window.frame["credit_class"].tolist() == ["bad"]
    assert pd.api.types.is_datetime64_any_dtype(window.frame["scored_at"])
