"""Out-of-time split with its label-window embargo, and the random split for one-snapshot data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from configs import ConfigError
from configs.train import SplitConfig
from training.split import SplitError, split_featureset


def _panel(months: int, customers: int = 60, seed: int = 0, start: str = "2023-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    snaps = pd.date_range(start, periods=months, freq="MS")
    return pd.DataFrame({
        "customer_id": np.tile(np.arange(customers), months),
        "snapshot_date": np.repeat(snaps.values, customers),
        "x": rng.normal(size=months * customers),
        "y": (rng.random(months * customers) < 0.3).astype("int8"),
    })


def _months(df: pd.DataFrame) -> list[str]:
    return sorted({str(d.date())[:7] for d in pd.to_datetime(df["snapshot_date"])})


def test_out_of_time_split_drops_snapshots_whose_label_window_reaches_the_next_period() -> None:
    df = _panel(20)  # 2023-01 .. 2024-08
    s = split_featureset(df, "snapshot_date", "y", 6, SplitConfig(test_snapshots=3, valid_snapshots=3), seed=0)
    assert s.kind == "out_of_time" and s.gap_months == 6
    assert _months(s.test) == ["2024-06", "2024-07", "2024-08"]
    # a development snapshot s needs s + 6 months <= 2024-06: the last one is 2023-12; 2024-01..05 are dropped
    assert _months(s.train)[-1] == "2023-12" and _months(s.train)[0] == "2023-01"
    # the folds: blocks of 3 fit two folds (2023-10..12 trains up to 2023-04, 2023-07..09 up to
    # 2023-01), fewer than the 3 asked for, so the blocks shrink to 2 snapshots, where 3 fit
    assert len(s.folds) == 3
    dev = s.train.reset_index(drop=True)
    (t1, v1), (t2, v2), (t3, v3) = s.folds
    assert _months(dev.iloc[v3]) == ["2023-11", "2023-12"]
    assert _months(dev.iloc[t3]) == ["2023-01", "2023-02", "2023-03", "2023-04", "2023-05"]
    assert _months(dev.iloc[v2]) == ["2023-09", "2023-10"] and _months(dev.iloc[t2])[-1] == "2023-03"
    assert _months(dev.iloc[v1]) == ["2023-07", "2023-08"] and _months(dev.iloc[t1]) == ["2023-01"]
    assert _months(s.valid) == ["2023-07", "2023-08", "2023-09", "2023-10", "2023-11", "2023-12"]
    window_end = pd.to_datetime(s.train["snapshot_date"]).max() + pd.DateOffset(months=6)
    assert window_end <= pd.to_datetime(s.test["snapshot_date"]).min()
    desc = s.describe("snapshot_date")
    assert desc["kind"] == "out_of_time" and desc["cv"] == "time_series"
    assert desc["train"] == ["2023-01-01", "2023-12-01"] and desc["test"] == ["2024-06-01", "2024-08-01"]
    assert desc["rows"] == {"train": 12 * 60, "valid": 6 * 60, "test": 3 * 60}
    assert desc["folds"][2] == {"train": ["2023-01-01", "2023-05-01"], "valid": ["2023-11-01", "2023-12-01"],
                                "rows": {"train": 5 * 60, "valid": 2 * 60}}
    # with two folds asked for, blocks of 3 fit and are kept
    two = split_featureset(df, "snapshot_date", "y", 6, SplitConfig(test_snapshots=3, valid_snapshots=3), seed=0,
                           time_folds=2)
    assert [_months(two.train.reset_index(drop=True).iloc[v]) for _, v in two.folds] == [
        ["2023-07", "2023-08", "2023-09"], ["2023-10", "2023-11", "2023-12"]]


def test_a_long_horizon_on_a_short_history_shrinks_the_blocks_to_one_snapshot() -> None:
    # the demo's default_risk: 11 development snapshots, a 6-month embargo: blocks of 3 fit one fold
    df = _panel(20)
    s = split_featureset(df, "snapshot_date", "y", 6, SplitConfig(test_snapshots=3, valid_snapshots=3), seed=0,
                         time_folds=5)
    dev = s.train.reset_index(drop=True)
    # blocks of 1 fit the most folds: validating 2023-08..12, each training up to 6 months before
    assert [_months(dev.iloc[v]) for _, v in s.folds] == [[f"2023-{m:02d}"] for m in range(8, 13)]
    assert [_months(dev.iloc[t])[-1] for t, _ in s.folds] == [f"2023-{m:02d}" for m in range(2, 7)]


def test_gap_months_zero_gives_contiguous_periods_and_one_month_horizon_drops_nothing() -> None:
    df = _panel(10)
    s0 = split_featureset(df, "snapshot_date", "y", 6, SplitConfig(gap_months=0), seed=0)
    s1 = split_featureset(df, "snapshot_date", "y", 1, SplitConfig(), seed=0)
    for s in (s0, s1):
        assert len(s.train) + len(s.test) == len(df)
        dev = s.train.reset_index(drop=True)
        t, v = s.folds[-1]
        # blocks of 3 fit two folds of the three asked for: blocks of 2 fit three
        assert len(s.folds) == 3
        assert _months(dev.iloc[t])[-1] == "2023-05" and _months(dev.iloc[v]) == ["2023-06", "2023-07"]


def test_too_few_snapshots_for_the_gap_is_a_clear_error() -> None:
    df = _panel(12)  # 4 development snapshots: not even a one-snapshot block has one 6 months before it
    with pytest.raises(SplitError, match=r"no training snapshot is left .* 6-month gap"):
        split_featureset(df, "snapshot_date", "y", 6, SplitConfig(), seed=0)
    with pytest.raises(SplitError, match="split.test_snapshots"):
        split_featureset(_panel(3), "snapshot_date", "y", 1, SplitConfig(), seed=0)


def test_single_snapshot_uses_a_seeded_stratified_random_split_and_stratified_folds() -> None:
    df = _panel(1, customers=1000, seed=1)
    cfg = SplitConfig()
    s = split_featureset(df, "snapshot_date", "y", 1, cfg, seed=7)
    assert s.kind == "random"
    ids = [set(part["customer_id"]) for part in (s.train, s.test)]
    assert not (ids[0] & ids[1]) and sum(map(len, ids)) == 1000
    assert len(s.test) == 200 and len(s.train) == 800
    rate = df["y"].mean()
    for part in (s.train, s.test):
        assert part["y"].mean() == pytest.approx(rate, abs=0.01)
    # 5 stratified folds: every development row validated exactly once
    assert len(s.folds) == 5
    validated = np.concatenate([v for _, v in s.folds])
    assert sorted(validated) == list(range(800))
    y = s.train["y"].to_numpy()
    for t, v in s.folds:
        assert not set(t) & set(v) and len(t) + len(v) == 800
        assert y[v].mean() == pytest.approx(rate, abs=0.02)
    assert len(s.valid) == 800
    again = split_featureset(df, "snapshot_date", "y", 1, cfg, seed=7)
    other = split_featureset(df, "snapshot_date", "y", 1, cfg, seed=8)
    assert list(again.test["customer_id"]) == list(s.test["customer_id"])
    assert all((a[1] == b[1]).all() for a, b in zip(again.folds, s.folds, strict=True))
    assert list(other.test["customer_id"]) != list(s.test["customer_id"])


def test_too_few_rows_of_a_class_for_the_folds_names_the_count() -> None:
    df = _panel(1, customers=200)
    df["y"] = 0
    df.loc[:6, "y"] = 1  # 7 positives: a 20 % holdout and 5 folds need 8
    with pytest.raises(SplitError, match=r"fs.parquet: label y has 7 rows of class 1 .* at least 8"):
        split_featureset(df, "snapshot_date", "y", 1, SplitConfig(), seed=0, source="fs.parquet")
    assert len(split_featureset(df, "snapshot_date", "y", 1, SplitConfig(), seed=0, folds=3).folds) == 3


def test_forced_kinds() -> None:
    with pytest.raises(ConfigError, match="single snapshot"):
        split_featureset(_panel(1), "snapshot_date", "y", 1, SplitConfig(kind="out_of_time"), seed=0)
    s = split_featureset(_panel(12, customers=100), "snapshot_date", "y", 3, SplitConfig(kind="random"), seed=0)
    assert s.kind == "random" and s.describe("snapshot_date")["test"] == ["2023-01-01", "2023-12-01"]


def test_a_split_with_one_class_is_an_error_naming_it() -> None:
    df = _panel(12)
    df.loc[pd.to_datetime(df["snapshot_date"]) >= "2023-10-01", "y"] = 0
    with pytest.raises(SplitError, match="the test split has 180 rows and only label value"):
        split_featureset(df, "snapshot_date", "y", 1, SplitConfig(), seed=0)
