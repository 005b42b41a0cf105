"""The prediction log under faults, the start-up checks, and hot swaps and shadow scoring without a server."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from pathlib import Path

import pytest

from configs import TenureError
from configs.serve import load_serve_config
from serving.prediction_log import (
    PredictionLog,
    PredictionLogError,
    features_json,
    read_predictions,
    utc_now_iso,
)
from serving.startup import bind_address, check_port_free, is_loopback


def _rows(request_id: str, n: int = 2, shadow: int = 0) -> list[tuple]:
    return [(request_id, utc_now_iso(), "churn", "churn", "1", "run-1", f"C-{i}", None,
             features_json({"dpd_current": float(i)}), 0.1, "low", "none", shadow) for i in range(n)]


class _SmallDisk(PredictionLog):
    """The real log whose connections may only grow the file by a few pages: SQLite answers SQLITE_FULL."""

    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        con = super()._connect(busy_timeout_ms)
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        con.execute(f"PRAGMA max_page_count={max(pages, 8) + 2}")
        return con


def test_a_full_disk_is_reported_as_such_not_as_a_failed_rollback(tmp_path):
    log = _SmallDisk(tmp_path / "log.db")
    big = [(f"r{i}", utc_now_iso(), "churn", "churn", "1", "run", "C", None, features_json({"x": "y" * 2000}),
            0.1, "low", "none", 0) for i in range(200)]
    with pytest.raises(PredictionLogError) as info:
        log.write(big)
    assert "full" in str(info.value)
    assert "cannot rollback" not in str(info.value)
    log.close()
    assert read_predictions(tmp_path / "log.db").empty  # nothing half-written


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_log_deleted_or_replaced_under_the_writer_is_noticed(tmp_path, how):
    path = tmp_path / "log.db"
    log = PredictionLog(path)
    log.write(_rows("before"))
    if how == "deleted":
        path.unlink()  # as `rm predictions.db` does: its -wal and -shm stay
    else:
        other = tmp_path / "other.db"
        PredictionLog(other).close()
        os.replace(other, path)
    log.write(_rows("after"))  # must land in the file now at `path`, not in the unlinked one
    assert path.exists()
    assert read_predictions(path)["request_id"].tolist() == ["after", "after"]
    log.close()


def test_try_write_never_waits_for_a_locked_log(tmp_path):
    path = tmp_path / "log.db"
    log = PredictionLog(path, busy_timeout_ms=60_000)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        assert log.try_write(_rows("r1")) is False  # returns at once instead of waiting 60 s
        done = threading.Event()
        writer = threading.Thread(target=lambda: (log.write(_rows("r2")), done.set()))
        writer.start()
        assert not done.wait(0.3)  # `write` does wait for the lock
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    writer.join(10)
    assert done.is_set()
    assert log.try_write(_rows("r3")) is True
    assert read_predictions(path)["request_id"].tolist() == ["r2", "r2", "r3", "r3"]
    log.close()


def test_an_older_log_gets_the_shadow_column_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute("""CREATE TABLE predictions (row_id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL,
        scored_at TEXT NOT NULL, task TEXT NOT NULL, model_name TEXT NOT NULL, model_version TEXT NOT NULL,
        run_id TEXT NOT NULL, customer_ref TEXT NOT NULL, as_of TEXT NULL, features TEXT NOT NULL,
        probability REAL NOT NULL, tier TEXT NOT NULL, action TEXT NOT NULL)""")
    con.execute("INSERT INTO predictions (request_id, scored_at, task, model_name, model_version, run_id, "
                "customer_ref, as_of, features, probability, tier, action) VALUES "
                "('old', '2025-01-01T00:00:00.000000Z', 'churn', 'churn', '1', 'r', 'C', NULL, '{}', 0.1, 'low', 'n')")
    con.commit()
    con.close()
    log = PredictionLog(path)
    log.write(_rows("new", 1, shadow=1))
    log.close()
    frame = read_predictions(path)
    assert frame["request_id"].tolist() == ["old", "new"]
    assert frame["shadow"].tolist() == [0, 1]


def test_bind_address_follows_the_command_line_then_the_environment_then_the_config():
    cfg = load_serve_config(None)
    assert bind_address(cfg, ["bentoml", "serve", "serving.service:Tenure"], {}) == ("127.0.0.1", 3000)
    assert bind_address(cfg, ["x", "--host", "0.0.0.0", "-p", "8000"], {}) == ("0.0.0.0", 8000)
    assert bind_address(cfg, ["x", "--host=::1", "--port=81"], {"BENTOML_HOST": "10.0.0.1"}) == ("::1", 81)
    assert bind_address(cfg, ["x"], {"BENTOML_HOST": "10.0.0.1", "BENTOML_PORT": "99"}) == ("10.0.0.1", 99)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_a_busy_port_is_one_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(TenureError, match=f"port {port} on 127.0.0.1 is already in use"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again


def _paired_log(path: Path, n: int, start: str = "2026-01-01", days: float = 3.0) -> list[tuple]:
    """`n` requests, each answered by churn v1 (p = i / 2n) and shadowed by v2 (v1 + 0.1 on odd customers)."""
    import pandas as pd

    rows = []
    times = pd.date_range(start, periods=n, freq=pd.Timedelta(days=days) / max(n - 1, 1), tz="UTC")
    for i, t in enumerate(times):
        at = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        p1 = i / (2 * n)
        p2 = p1 + (0.1 if i % 2 else 0.0)
        for version, p, shadow in (("1", p1, 0), ("2", p2, 1)):
            tier = "high" if p >= 0.5 else "low"
            rows.append((f"req{i}", at, "churn", "churn", version, "run", f"C-{i}", "2025-12-01",
                         features_json({"dpd_current": float(i)}), p, tier, "act", shadow))
    log = PredictionLog(path)
    log.write(rows)
    log.close()
    return rows


def test_compare_pairs_champion_and_shadow_on_the_same_rows_and_joins_outcomes(tmp_path):
    import pandas as pd

    from serving.compare import compare_shadow

    path = tmp_path / "log.db"
    _paired_log(path, 40)
    labels = pd.DataFrame({"customer_ref": [f"C-{i}" for i in range(40)], "as_of": ["2025-12-01"] * 40,
                           "label": [int(i >= 20) for i in range(40)]})
    report = compare_shadow(path, "churn", labels=labels)
    (c,) = report["comparisons"]
    assert (c["champion_version"], c["challenger_version"], c["rows"]) == ("1", "2", 40)
    assert c["mean_abs_diff"] == pytest.approx(0.05, abs=1e-9)
    assert c["max_abs_diff"] == pytest.approx(0.1, abs=1e-9)
    assert 0.9 < c["spearman"] < 1.0
    # customers 33, 35, 37, 39 (p 0.4125-0.4875) cross 0.5 with +0.1: low -> high
    assert c["tier_changes"] == 4 and c["tier_moves"] == [{"from": "low", "to": "high", "rows": 4}]
    assert c["labelled_rows"] == 40 and c["auc_champion"] == 1.0 and c["auc_challenger"] < 1.0
    assert compare_shadow(path, "upsell")["comparisons"] == []


def test_promotion_can_require_a_shadow_period(tmp_path):
    from configs.promote import load_promote_config
    from configs.settings import Settings
    from tenure.promotion import shadow_evidence
    from training.gates import shadow_period_gate

    path = tmp_path / "log.db"
    _paired_log(path, 40, days=3.0)
    settings = Settings(home=tmp_path, prediction_log=str(path))
    cfg = load_promote_config(None).model_copy(update={"min_shadow_days": 2, "min_shadow_rows": 30})
    evidence = shadow_evidence(settings, "churn")
    gate = shadow_period_gate(evidence("2"), cfg)
    assert gate.passed and gate.value == pytest.approx(3.0)
    assert "40 shadow rows" in gate.detail
    assert not shadow_period_gate(evidence("2"), cfg.model_copy(update={"min_shadow_days": 7})).passed
    assert not shadow_period_gate(evidence("2"), cfg.model_copy(update={"min_shadow_rows": 41})).passed
    assert not shadow_period_gate(evidence("3"), cfg).passed  # never shadowed
    # an unreadable log shows no shadow period, and says why
    broken = Settings(home=tmp_path, prediction_log=str(tmp_path / "missing" / "log.db"))
    rows, days, note = shadow_evidence(broken, "churn")("2")
    assert (rows, days) == (0, 0.0)


def test_background_checkpoints_leave_the_wal_to_the_owner(tmp_path):
    path = tmp_path / "log.db"
    log = PredictionLog(path, background_checkpoints=True)
    for i in range(600):
        log.write(_rows(f"r{i}", 10))
    # no write checkpointed (and fsynced) on the request path: the WAL outgrew SQLite's 1000-page
    # automatic checkpoint and the database file still holds only the empty table
    assert (tmp_path / "log.db-wal").stat().st_size > 1000 * 4096
    before = path.stat().st_size
    log.checkpoint()
    assert path.stat().st_size > before + 500 * 1024  # the owner's checkpoint copied the rows in
    log.close()
    assert len(read_predictions(path)) == 6000
