"""Cross-validated choice, refit and calibration (`training.cv`, `training.evaluate`), and the time-series folds.

Small synthetic tables, no MLflow: a tiny validation split picks the worse model where CV does
not; the refit learns from rows the folds never had; calibration on out-of-fold scores never
flattens the ranking; an expanding-window fold never trains on a label window that reaches into
its validation block.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from training.cv import TrainData, bootstrap_auc_se, choose, cross_validate, fit_fold, refit
from training.evaluate import choose_oof_calibration, fit_calibration
from training.split import split_featureset, time_series_folds

FIXED = {"objective": "binary", "metric": "auc", "seed": 0, "num_threads": 1, "deterministic": True,
         "force_col_wise": True, "verbosity": -1, "feature_pre_filter": False}
SIMPLE = {**FIXED, "num_leaves": 4, "learning_rate": 0.05, "min_child_samples": 20, "lambda_l2": 10.0}
OVERFIT = {**FIXED, "num_leaves": 64, "learning_rate": 0.3, "min_child_samples": 2}


def _table(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth signal in two of eight columns, plus noise columns an overfitting model chases."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))  # noqa: N806
    logit = 1.2 * X[:, 0] - 0.8 * X[:, 1]
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)


def _data(X: np.ndarray, y: np.ndarray, folds: list, n_estimators: int = 300) -> TrainData:  # noqa: N803
    return TrainData(X, y, folds, [f"x{i}" for i in range(X.shape[1])], [], n_estimators, 30)


def test_a_tiny_validation_split_picks_the_worse_model_where_cross_validation_does_not() -> None:
    X, y = _table(400, seed=1)  # noqa: N806
    X_big, y_big = _table(20_000, seed=2)  # noqa: N806  what each model is really worth
    full = _data(X, y, [(np.arange(len(y)), np.arange(len(y)))])
    simple_true = roc_auc_score(y_big, refit(SIMPLE, X, y, 150, full).predict(X_big))
    overfit_true = roc_auc_score(y_big, refit(OVERFIT, X, y, 20, full).predict(X_big))
    assert simple_true > overfit_true + 0.02  # the simple model is the better one

    # one small validation split (40 rows), as the old single-split design had on small tables:
    # for some split seeds it prefers the overfitting model
    fooled = []
    for seed in range(25):
        t, v = train_test_split(np.arange(len(y)), test_size=40, stratify=y, random_state=seed)
        one = _data(X, y, [(t, v)])
        if fit_fold(OVERFIT, one, (t, v))[1] > fit_fold(SIMPLE, one, (t, v))[1]:
            fooled.append(seed)
            break
    assert fooled, "no 40-row split preferred the overfitting model; the test would prove nothing"

    # 5-fold CV on the same rows ranks them right, and the choice keeps the simple model
    folds = list(StratifiedKFold(5, shuffle=True, random_state=fooled[0]).split(X, y))
    data = _data(X, y, folds)
    simple, overfit = cross_validate(SIMPLE, data), cross_validate(OVERFIT, data)
    assert simple.mean > overfit.mean
    chosen, se = choose(overfit, simple, y, margin_se=1.0, seed=0)
    assert chosen == "baseline" and se > 0
    chosen, _ = choose(simple, overfit, y, margin_se=0.0, seed=0)
    assert chosen == "tuned"
    # a negative margin: the tuned model stays unless the baseline leads by more than |margin| SE
    behind = (overfit.mean - simple.mean) / se  # the "tuned" overfit model trails by this many SE
    assert choose(overfit, simple, y, margin_se=behind - 0.05, seed=0)[0] == "tuned"
    assert choose(overfit, simple, y, margin_se=behind + 0.05, seed=0)[0] == "baseline"


def test_cross_validation_scores_every_row_out_of_fold_and_the_refit_rounds_are_the_mean() -> None:
    X, y = _table(500, seed=3)  # noqa: N806
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    cv = cross_validate(SIMPLE, _data(X, y, folds))
    assert cv.validated.all() and not np.isnan(cv.oof_raw).any()
    assert sorted(np.unique(cv.fold_of_row)) == [0, 1, 2, 3, 4]
    assert cv.rounds == round(np.mean(cv.best_iterations)) and len(cv.fold_aucs) == 5
    # each fold's out-of-fold scores come from a model that never saw the fold
    for i, (t, v) in enumerate(folds):
        booster, auc = fit_fold(SIMPLE, _data(X, y, folds), (t, v))
        np.testing.assert_allclose(booster.predict(X[v], raw_score=True), cv.oof_raw[v])
        assert auc == pytest.approx(cv.fold_aucs[i])


def test_the_refit_learns_from_rows_the_folds_never_had() -> None:
    """Extra rows (the test rows under `refit: all`) hold a region the development rows lack:
    x0 in [3, 4] is always positive there. Only a refit that really uses them learns it."""
    rng = np.random.default_rng(4)
    X, y = _table(600, seed=4)  # noqa: N806
    X[:, 0] = np.clip(X[:, 0], -2.5, 2.5)
    extra = rng.normal(size=(200, 8))
    extra[:, 0] = rng.uniform(3, 4, 200)
    X_all, y_all = np.vstack([X, extra]), np.concatenate([y, np.ones(200, dtype=np.int64)])  # noqa: N806
    probe = extra[:50]
    data = _data(X, y, [])
    dev_only = refit(SIMPLE, X, y, 150, data)
    with_extra = refit(SIMPLE, X_all, y_all, 150, data)
    assert dev_only.current_iteration() == with_extra.current_iteration() == 150
    assert with_extra.predict(probe).mean() > dev_only.predict(probe).mean() + 0.1
    assert with_extra.predict(probe).mean() > 0.9


def test_calibration_never_flattens_the_ranking() -> None:
    """On few out-of-fold rows isotonic steps tie many scores; it is not a candidate below the row
    threshold, and when forced in it is dropped for losing more than 0.002 of AUC."""
    X, y = _table(300, seed=5)  # noqa: N806
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    cv = cross_validate(SIMPLE, _data(X, y, folds))
    raw, fold = cv.oof_raw, cv.fold_of_row
    base_auc = roc_auc_score(y, raw)
    iso = fit_calibration("isotonic", raw, y)
    assert roc_auc_score(y, iso(raw)) < base_auc - 0.002 or len(np.unique(iso(raw))) < len(raw) / 5  # it flattens

    cal, scores = choose_oof_calibration(raw, y, fold, ["platt", "isotonic"], isotonic_min_rows=10_000,
                                         max_auc_loss=0.002)
    assert "isotonic" not in scores and "isotonic_roc_auc" not in scores
    assert cal.method in ("none", "platt")
    assert roc_auc_score(y, cal(raw)) >= base_auc - 0.002

    cal, scores = choose_oof_calibration(raw, y, fold, ["platt", "isotonic"], isotonic_min_rows=0, max_auc_loss=0.002)
    assert scores["isotonic_auc_loss"] > 0.002 and "isotonic" not in scores  # judged, then dropped
    assert cal.method != "isotonic" and roc_auc_score(y, cal(raw)) >= base_auc - 0.002

    # with many rows isotonic is allowed, and still only when it keeps the AUC
    Xl, yl = _table(12_000, seed=6)  # noqa: N806
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(Xl, yl))
    big = cross_validate(SIMPLE, _data(Xl, yl, folds, n_estimators=100))
    cal, scores = choose_oof_calibration(big.oof_raw, yl, big.fold_of_row, ["platt", "isotonic"],
                                         isotonic_min_rows=10_000, max_auc_loss=0.002)
    assert "isotonic_roc_auc" in scores
    assert roc_auc_score(yl, cal(big.oof_raw)) >= roc_auc_score(yl, big.oof_raw) - 0.002


def test_platt_is_not_dropped_because_two_folds_score_on_different_scales() -> None:
    """Two time-series folds: the earlier fold model scores on a squeezed, low scale, the later one
    on a wide scale. Cross-fitting each fold's Platt map on the other fold moves the pooled AUC,
    but a monotone map loses no ranking inside a fold, and these raw scores (far below the observed
    rate) need calibrating."""
    rng = np.random.default_rng(3)
    n = 3000
    z = rng.normal(size=2 * n)
    y = (rng.random(2 * n) < 1 / (1 + np.exp(-(1.5 * z - 2.5)))).astype(np.int64)
    fold = np.repeat([0, 1], n)
    raw = np.where(fold == 0, 0.8 * z - 4.0, 1.4 * z - 4.5)
    cal, scores = choose_oof_calibration(raw, y, fold, ["platt"], isotonic_min_rows=10_000, max_auc_loss=0.002)
    assert scores["none_roc_auc"] - scores["platt_roc_auc"] > 0.002  # the pooled AUC moves ...
    assert abs(scores["platt_auc_loss"]) < 1e-9  # ... but no fold loses ranking
    assert cal.method == "platt" and scores["platt"] < scores["none"]
    p = cal(raw)
    assert abs(p.mean() - y.mean()) < 0.01 < abs(1 / (1 + np.exp(-raw)).mean() - y.mean())
    assert roc_auc_score(y[fold == 1], p[fold == 1]) == pytest.approx(roc_auc_score(y[fold == 1], raw[fold == 1]))


def test_saturated_raw_scores_keep_a_calibration_choice() -> None:
    """An overfitted fold model's raw scores beyond +-37 saturate the sigmoid (ties at 0 and 1);
    `none` is the reference, never dropped, so the choice always has a candidate (it crashed with
    "min() arg is an empty sequence" in `tenure retrain`)."""
    rng = np.random.default_rng(5)
    y = (rng.random(1200) < 0.3).astype(np.int64)
    raw = np.where(y == 1, rng.normal(30, 15, 1200), rng.normal(-5, 15, 1200))
    fold = np.repeat([0, 1, 2], 400)
    cal, scores = choose_oof_calibration(raw, y, fold, ["platt"], isotonic_min_rows=10_000, max_auc_loss=0.002)
    assert scores["none_auc_loss"] == 0.0 and "none" in scores
    assert cal.method in ("none", "platt")


def test_refit_rounds_scale_with_the_rows_for_a_random_split_and_stay_the_mean_out_of_time() -> None:
    from configs.train import load_train_config
    from training.cv import CVResult
    from training.train import refit_rounds

    X, y = _table(1000, seed=4)  # noqa: N806
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))  # 800 training rows each
    data = _data(X, y, folds)
    cv = CVResult(fold_aucs=[0.8] * 5, best_iterations=[90, 100, 110, 100, 100], oof_raw=np.zeros(1000),
                  fold_of_row=np.zeros(1000, dtype=np.int64))
    cfg = load_train_config()
    assert cfg.lightgbm.refit_rounds == "auto"
    assert refit_rounds(cv, data, 1000, cfg, "random") == 125  # 100 rounds x 1000 / 800 rows
    assert refit_rounds(cv, data, 1400, cfg, "random") == 175  # with the test rows too
    assert refit_rounds(cv, data, 1000, cfg, "out_of_time") == 100
    mean = cfg.model_copy(update={"lightgbm": cfg.lightgbm.model_copy(update={"refit_rounds": "mean"})})
    assert refit_rounds(cv, data, 1000, mean, "random") == 100


def test_bootstrap_se_shrinks_with_more_rows() -> None:
    rng = np.random.default_rng(7)
    small = rng.integers(0, 2, 200)
    large = rng.integers(0, 2, 2000)
    se_small = bootstrap_auc_se(small, small + rng.normal(size=200), seed=0, rounds=50)
    se_large = bootstrap_auc_se(large, large + rng.normal(size=2000), seed=0, rounds=50)
    assert 0 < se_large < se_small
    # paired: the SE of a difference between two close scorers is far below either one's SE
    a = large + rng.normal(size=2000)
    b = a + 0.05 * rng.normal(size=2000)
    assert bootstrap_auc_se(large, a, seed=0, rounds=50, other=b) < 0.3 * bootstrap_auc_se(large, a, seed=0, rounds=50)


def _panel(months: int, customers: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    snaps = pd.date_range("2022-01-01", periods=months, freq="MS")
    return pd.DataFrame({"customer_id": np.tile(np.arange(customers), months),
                         "snapshot_date": np.repeat(snaps.values, customers),
                         "x": rng.normal(size=months * customers),
                         "y": (rng.random(months * customers) < 0.3).astype("int8")})


@pytest.mark.parametrize(("gap", "block", "n_folds"), [(6, 3, 3), (3, 2, 4), (1, 3, 3), (12, 1, 3)])
def test_a_time_series_fold_never_trains_on_a_label_window_that_overlaps_its_validation_block(
        gap: int, block: int, n_folds: int) -> None:
    from configs.train import SplitConfig

    df = _panel(36)
    split = split_featureset(df, "snapshot_date", "y", gap, SplitConfig(valid_snapshots=block), seed=0,
                             time_folds=n_folds)
    assert split.kind == "out_of_time" and len(split.folds) == n_folds
    times = pd.to_datetime(split.train["snapshot_date"]).to_numpy()
    previous_end = None
    for t, v in split.folds:
        train_snaps, valid_snaps = np.unique(times[t]), np.unique(times[v])
        assert len(valid_snaps) == block
        # the label window [s, s + gap) of every training snapshot closes by the block's first snapshot
        assert all(pd.Timestamp(s) + pd.DateOffset(months=gap) <= pd.Timestamp(valid_snaps[0]) for s in train_snaps)
        # and the snapshot just after the last training one would have overlapped (the embargo is exact)
        after = pd.Timestamp(train_snaps[-1]) + pd.DateOffset(months=1)
        assert after + pd.DateOffset(months=gap) > pd.Timestamp(valid_snaps[0])
        assert not set(t) & set(v)
        if previous_end is not None:  # expanding window, blocks in time order
            assert pd.Timestamp(valid_snaps[0]) > previous_end
        previous_end = pd.Timestamp(valid_snaps[-1])
    # the development rows' labels close by the test period
    test_start = pd.to_datetime(split.test["snapshot_date"]).min()
    assert pd.Timestamp(times.max()) + pd.DateOffset(months=gap) <= test_start


def test_time_series_folds_drop_the_oldest_blocks_that_would_have_no_training_rows() -> None:
    times = pd.Series(np.repeat(pd.date_range("2022-01-01", periods=10, freq="MS").values, 5))
    folds = time_series_folds(times, block=3, n_folds=5, gap_months=2)
    # blocks 8-10, 5-7 train on snapshots up to 6 and 3; block 2-4 would train on nothing before month 0
    assert len(folds) == 2
    assert time_series_folds(times, block=3, n_folds=5, gap_months=12) == []
