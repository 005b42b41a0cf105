"""Which rows a window is compared with: the same calendar months after the training period
(`monitoring.monitor.season_rows`), and why it falls back when there are none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring.monitor import season_rows
from monitoring.registry import VersionRef

COLS = {"id": "customer_id", "time": "snapshot_date", "label": "churned_3m"}


def _featureset(per_month: int = 400) -> pd.DataFrame:
    """Monthly snapshots 2024-01 .. 2025-10, `per_month` customers each; x = the month's index."""
    snaps = pd.date_range("2024-01-01", "2025-10-01", freq="MS")
    return pd.DataFrame({
        "customer_id": np.tile(np.arange(per_month), len(snaps)),
        "snapshot_date": np.repeat(snaps, per_month),
        "x": np.repeat(np.arange(len(snaps)), per_month).astype(float),
    })


def _ref(train_end: str = "2024-06-01") -> VersionRef:
    split = {"kind": "out_of_time", "train": ["2024-01-01", train_end], "valid": ["2024-09-01", "2024-11-01"],
             "test": ["2025-05-01", "2025-07-01"]}
    return VersionRef(name="churn", version="1", run_id="r", run_tags={"tenure.split": json.dumps(split)})


def _as_of(*months: tuple[str, int]) -> pd.Series:
    return pd.Series([m for m, n in months for _ in range(n)])


@pytest.mark.parametrize("categorical", [False, True])  # the log reader gives as_of as a category
def test_same_months_after_training_only(categorical: bool) -> None:
    as_of = _as_of(("2026-01-01", 900))
    rows, why = season_rows(_featureset(), COLS, _ref(), as_of.astype("category") if categorical else as_of,
                            100, seed=0)
    assert why is None
    # January 2024 is a training month: only January 2025 is taken, all of it
    assert set(rows["snapshot_date"]) == {pd.Timestamp("2025-01-01")} and len(rows) == 400


def test_months_of_several_years_and_the_windows_mix() -> None:
    frame = _featureset()
    # training ends in 2023: January and February of 2024 and 2025 are unseen; the window is 3:1
    rows, why = season_rows(frame, COLS, _ref("2023-12-01"),
                            _as_of(("2026-01-01", 750), ("2026-02-01", 250)), 100, seed=0)
    assert why is None
    months = rows["snapshot_date"].dt.month.value_counts()
    assert months[1] == 800 and months[2] == pytest.approx(800 / 3, abs=1)
    assert set(rows["snapshot_date"].dt.year) == {2024, 2025}
    again, _ = season_rows(frame, COLS, _ref("2023-12-01"),
                           _as_of(("2026-01-01", 750), ("2026-02-01", 250)), 100, seed=0)
    pd.testing.assert_frame_equal(rows, again)  # seeded


@pytest.mark.parametrize(("as_of", "ref", "min_rows", "reason"), [
    (pd.Series([None, None]), _ref(), 100, "carry no as_of"),
    (_as_of(("2026-01-01", 10)), VersionRef(name="churn", version="1", run_id="r"), 100, "tenure.split"),
    (_as_of(("2025-11-01", 10)), _ref("2024-12-01"), 100, "no rows of November after the training period"),
    # the window's own snapshots are in the feature set, but a window is not its own reference
    (_as_of(("2025-03-01", 10)), _ref("2024-12-01"), 100, "no rows of March after the training period"),
    (_as_of(("2026-01-01", 10)), _ref(), 1000, "400 rows of the window's months"),
])
def test_falls_back_with_a_reason(as_of: pd.Series, ref: VersionRef, min_rows: int, reason: str) -> None:
    rows, why = season_rows(_featureset(), COLS, ref, as_of, min_rows, seed=0)
    assert rows is None and reason in why


def test_the_runs_unseen_rows_give_the_reference_where_the_feature_set_is_not(tmp_path: Path) -> None:
    """On a machine without the training feature set (another machine of a team), the run's
    `reference/unseen_rows.parquet` gives the same season reference; without it, only training rows."""
    import lightgbm as lgb

    from configs.monitor import load_monitor_config
    from models.artifact import TenureModel
    from monitoring.monitor import choose_reference
    from training.tracking import unseen_rows

    frame = _featureset(50)
    frame["churned_3m"] = (frame["x"] % 3 == 0).astype(int)
    train = frame[frame["snapshot_date"] <= "2024-06-01"]
    booster = lgb.train({"objective": "binary", "verbosity": -1, "min_data_in_leaf": 5},
                        lgb.Dataset(train[["x"]].to_numpy(), label=train["churned_3m"]), num_boost_round=3)
    model = TenureModel(booster=booster, features=[{"name": "x", "kind": "numeric"}])
    ref = _ref()
    ref.tags["tenure.featureset_path"] = str(tmp_path / "on-the-training-machine.parquet")
    cfg = load_monitor_config()
    cfg = cfg.model_copy(update={"drift": cfg.drift.model_copy(update={"season_min_rows": 10})})
    as_of = _as_of(("2026-01-01", 40))
    unseen = unseen_rows(frame, train, ["customer_id", "snapshot_date", "x"])
    assert unseen["snapshot_date"].min() > pd.Timestamp("2024-06-01") and len(unseen) == len(frame) - len(train)

    rows, info = choose_reference(ref, cfg, train, None, COLS, model, as_of, unseen)
    assert info["kind"] == "season" and set(rows["snapshot_date"]) == {pd.Timestamp("2025-01-01")}
    _, info = choose_reference(ref, cfg, train, None, COLS, model, as_of, None)
    assert info["kind"] == "training" and "cannot be read" in info["note"]
