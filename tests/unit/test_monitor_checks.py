"""Alert levels, data quality, the window's checks, config validation and the summary page."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from configs import ConfigError
from configs.monitor import load_monitor_config
from monitoring.alerts import exit_status, level_for, worst
from monitoring.monitor import build_checks, compute_window
from monitoring.quality import feature_quality
from monitoring.reports import summary_record, window_name
from monitoring.summary import render_summary

DEFS = [
    {"name": "dpd_current", "kind": "numeric", "min": 0, "max": 10000},
    {"name": "satisfaction_last", "kind": "numeric", "min": 1, "max": 5},
    {"name": "credit_class", "kind": "categorical", "categories": ["good", "average", "bad"]},
]


def test_levels_and_exit_statuses() -> None:
    assert [level_for(v, 0.1, 0.2) for v in (None, float("nan"), 0.05, 0.1, 0.19, 0.2)] == \
        ["not_measured", "not_measured", "ok", "warn", "warn", "alert"]
    assert worst([]) == "ok" and worst(["ok", "alert", "warn"]) == "alert"
    assert [exit_status(lv, None) for lv in ("ok", "warn", "alert")] == [0, 0, 0]
    assert [exit_status(lv, "warn") for lv in ("ok", "warn", "alert")] == [0, 10, 20]
    assert [exit_status(lv, "alert") for lv in ("ok", "warn", "alert")] == [0, 0, 20]
    with pytest.raises(ValueError):
        exit_status("ok", "error")


def test_config_rejects_inverted_bounds_and_unknown_keys(tmp_path: Path) -> None:
    cfg = load_monitor_config()
    assert cfg.drift.reference == "season" and "snapshot_month" in cfg.drift.exclude
    bad = tmp_path / "m.yaml"
    bad.write_text("drift:\n  share_warn: 0.5\n  share_alert: 0.2\n")
    with pytest.raises(ConfigError, match=r"m\.yaml.*share_warn"):
        load_monitor_config(bad)
    bad.write_text("prediction_drift:\n  warm: 0.1\n")
    with pytest.raises(ConfigError, match="prediction_drift.warm"):
        load_monitor_config(bad)
    bad.write_text("drift:\n  reference: yesterday\n")
    with pytest.raises(ConfigError, match="drift.reference"):
        load_monitor_config(bad)


def test_quality_finds_new_categories_out_of_range_and_more_missing() -> None:
    ref = pd.DataFrame({"dpd_current": [0.0, 5.0, np.nan, 1.0], "satisfaction_last": [4.0, 5.0, 3.0, 2.0],
                        "credit_class": pd.Categorical(["good", "bad", "good", None])})
    cur = pd.DataFrame({"dpd_current": [np.nan, np.nan, -3.0, 2.0, np.nan],
                        "satisfaction_last": [4.0, 9.0, 3.0, 2.0, 1.0],
                        "credit_class": pd.Categorical(["good", "excellent", "excellent", "bad", "bad"])})
    q = feature_quality(cur, ref, DEFS, {"dpd_current": 1})
    assert q["dpd_current"].missing_share == pytest.approx(0.6)
    assert q["dpd_current"].missing_increase == pytest.approx(0.6 - 0.25)
    assert (q["dpd_current"].below_min, q["dpd_current"].non_numeric, q["dpd_current"].invalid) == (1, 1, 2)
    assert q["satisfaction_last"].above_max == 1
    assert q["credit_class"].new_categories == {"excellent": 2}
    assert q["credit_class"].invalid_share == pytest.approx(0.4)
    assert q["credit_class"].reference_missing_share == pytest.approx(0.25)


def _frames(shift: float, rows: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def frame(s: float, n: int) -> pd.DataFrame:
        return pd.DataFrame({
            "dpd_current": rng.poisson(3 + 3 * s, n).astype(float),
            "satisfaction_last": np.clip(np.round(rng.normal(3.5 - s, 0.8, n)), 1, 5),
            "credit_class": pd.Categorical(rng.choice(["good", "average", "bad"], n), categories=["good", "average", "bad"]),
            "probability": rng.beta(1 + 2 * s, 9, n),
        })

    return frame(0.0, rows), frame(shift, rows)


def test_checks_stay_ok_without_a_shift_and_fire_with_one() -> None:
    cfg = load_monitor_config()
    ref, same = _frames(0.0)
    stats = compute_window(ref, same, DEFS, cfg)
    perf = {"reference_roc_auc": stats.estimate.roc_auc, "estimate": stats.estimate.to_dict(), "measured": None}
    checks = build_checks(len(same), stats, perf, cfg)
    assert {c.name: c.level for c in checks} == {"volume": "ok", "data_drift": "ok", "prediction_drift": "ok",
                                                  "missing_values": "ok", "invalid_values": "ok", "performance": "ok"}
    _, shifted = _frames(0.5, seed=1)
    stats = compute_window(ref, shifted, DEFS, cfg)
    checks = {c.name: c for c in build_checks(len(shifted), stats, perf, cfg)}
    assert checks["data_drift"].level == "alert"  # 2 of 3 features
    assert stats.drift.drifted_features == ["dpd_current", "satisfaction_last"]
    assert checks["prediction_drift"].level == "alert"
    assert checks["performance"].estimated
    few = {c.name: c for c in build_checks(10, stats, perf, cfg)}
    assert few["volume"].level == "warn"


def test_measured_performance_replaces_the_estimate() -> None:
    cfg = load_monitor_config()
    ref, cur = _frames(0.0)
    stats = compute_window(ref, cur, DEFS, cfg)
    perf = {"reference_roc_auc": 0.80, "estimate": {"roc_auc": 0.79}, "measured": {"roc_auc": 0.70},
            "labelled_rows": 500}
    check = next(c for c in build_checks(len(cur), stats, perf, cfg) if c.name == "performance")
    assert not check.estimated and check.level == "alert" and check.value == pytest.approx(0.10)
    assert "measured ROC AUC 0.7000 on 500 labelled rows" in check.detail


def test_window_names_are_path_safe_and_stable() -> None:
    now = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    assert window_name(None, None, now) == "start_20250304T050607Z"
    assert window_name("2025-02-01", "2025-03-01T08:00:00+08:00", now) == "20250201T000000Z_20250301T000000Z"
    assert re.fullmatch(r"[0-9A-Za-z_]+", window_name("2025-02-01T10:11:12Z", None, now))


def test_summary_page_is_self_contained() -> None:
    cfg = load_monitor_config()
    ref, cur = _frames(0.3)
    stats = compute_window(ref, cur, DEFS, cfg)
    perf = {"reference_roc_auc": 0.8, "estimate": stats.estimate.to_dict(), "measured": None, "labelled_rows": 0}
    checks = build_checks(len(cur), stats, perf, cfg)
    result = {"task": "churn", "model_name": "churn", "version": "2", "run_id": "r", "rows": len(cur),
              "window": {"name": "w", "first_scored_at": "a", "last_scored_at": "b"}, "created_at": "now",
              "level": worst(c.level for c in checks), "checks": [c.to_dict() for c in checks],
              "drift": stats.drift.to_dict(), "prediction_drift": stats.prediction.to_dict(),
              "quality": {k: q.to_dict() for k, q in stats.quality.items()}, "performance": perf,
              "reference": {"kind": "test", "rows": 3000, "snapshots": ["2024-08-01", "2024-10-01"], "note": None},
              "files": {"data_drift_html": "data_drift.html"}}
    page = render_summary(result)
    assert "ESTIMATED ROC AUC" in page and "dpd_current" in page and 'href="data_drift.html"' in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "<script" not in page and "<link" not in page
    record = summary_record(result)
    assert record["drifted_features"] == stats.drift.drifted_features
    assert record["estimated_roc_auc"] == pytest.approx(stats.estimate.roc_auc)


def test_an_unmeasurable_check_is_not_measured_never_ok():
    from monitoring.alerts import NOT_MEASURED, make_check, reached

    check = make_check("performance", None, 0.03, 0.06, "no test_roc_auc to compare with")
    assert check.level == NOT_MEASURED == level_for(float("nan"), 0.1, 0.2)
    # the overall level is the worst measured check; not_measured only when nothing was measured
    assert worst(["ok", NOT_MEASURED]) == "ok" and worst(["warn", NOT_MEASURED]) == "warn"
    assert worst([NOT_MEASURED, NOT_MEASURED]) == NOT_MEASURED
    assert not reached(NOT_MEASURED, "warn") and reached("alert", "warn")
    assert exit_status(NOT_MEASURED, "warn") == 0
