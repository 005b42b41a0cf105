"""Metrics against hand computations, and the calibration choice made without the test period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.metrics import METRICS, binary_metrics, expected_calibration_error, top_fraction_mask
from training.evaluate import choose_calibration, fit_calibration


def test_metrics_match_hand_computation() -> None:
    # 10 rows, 3 positives; the top decile is the single highest score (a positive)
    y = np.array([1, 0, 1, 0, 0, 0, 1, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1])
    m = binary_metrics(y, p)
    assert set(m) == set(METRICS)
    # AUC: positives at ranks 1, 3, 7 (of 10); pairs won: 7 + 6 + 3 = 16 of 21
    assert m["roc_auc"] == pytest.approx(16 / 21)
    # AP: precision at each positive: 1/1, 2/3, 3/7
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 7) / 3)
    # KS: after the 3rd row TPR 2/3, FPR 1/7
    assert m["ks"] == pytest.approx(2 / 3 - 1 / 7)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["log_loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert m["lift_top10"] == pytest.approx(1 / 0.3)
    assert m["capture_top10"] == pytest.approx(1 / 3)


def test_ece_is_the_share_weighted_gap_per_bin() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.05, 0.15, 0.12, 0.95, 0.91, 0.55])
    # bins: [0.0-0.1): p .05 y 0; [0.1-0.2): p .15,.12 y 0,1; [0.5-0.6): .55 y 0; [0.9-1.0]: .95,.91 y 1,1
    expected = (abs(0 - 0.05) * 1 + abs(0.5 - 0.135) * 2 + abs(0 - 0.55) * 1 + abs(1 - 0.93) * 2) / 6
    assert expected_calibration_error(y, p, 10) == pytest.approx(expected)
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0]), 10) == pytest.approx(0.0)


def test_top_fraction_is_deterministic_with_ties() -> None:
    p = np.array([0.5] * 20)
    mask = top_fraction_mask(p, 0.1)
    assert mask.sum() == 2 and mask[:2].all()
    assert top_fraction_mask(np.arange(5.0), 0.1).sum() == 1  # at least one row


def test_metrics_need_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        binary_metrics(np.zeros(5), np.linspace(0, 1, 5))


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores three times too steep: the true log-odds is raw / 3."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(-1.5, 1.2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    return 3 * true_logit, y


def test_platt_recovers_the_scale_of_an_overconfident_score() -> None:
    raw, y = _overconfident(20_000, 0)
    cal = fit_calibration("platt", raw, y)
    assert cal.method == "platt"
    assert cal.a == pytest.approx(1 / 3, abs=0.03)
    assert cal.b == pytest.approx(0.0, abs=0.08)
    iso = fit_calibration("isotonic", raw, y)
    p = iso(raw)
    assert np.all(np.diff(p[np.argsort(raw)]) >= -1e-12)  # monotone in the score
    assert p.min() >= 0 and p.max() <= 1


def test_choose_calibration_fixes_an_overconfident_score_on_held_out_rows() -> None:
    raw, y = _overconfident(6000, 1)
    times = pd.Series(pd.to_datetime(np.repeat(["2024-01-01", "2024-02-01", "2024-03-01"], 2000)))
    cal, scores = choose_calibration(raw, y, times, ["platt", "isotonic"], seed=0)
    assert set(scores) == {"none", "platt", "isotonic"}
    assert cal.method != "none"
    assert scores[cal.method] == min(scores.values()) < scores["none"]
    # refitted on all rows: better Brier than no calibration on fresh data from the same process
    raw2, y2 = _overconfident(6000, 2)
    assert np.mean((cal(raw2) - y2) ** 2) < np.mean((1 / (1 + np.exp(-raw2)) - y2) ** 2)


def test_choose_calibration_keeps_none_for_a_calibrated_score_when_it_ties() -> None:
    raw, y = _overconfident(4000, 3)
    cal, scores = choose_calibration(raw / 3, y, None, [], seed=0)  # only `none` is a candidate
    assert cal.method == "none" and set(scores) == {"none"}


def test_choose_calibration_splits_by_time_earlier_fits_later_judges() -> None:
    # the first snapshot is miscalibrated one way, the later ones are perfectly calibrated:
    # fitting on the first snapshot must be judged on the later ones and lose to `none`
    rng = np.random.default_rng(4)
    n = 3000
    logit = rng.normal(-1, 1, 3 * n)
    y = (rng.random(3 * n) < 1 / (1 + np.exp(-logit))).astype(int)
    raw = logit.copy()
    raw[:n] = logit[:n] + 2.0  # the earliest snapshot's scores are shifted
    times = pd.Series(pd.to_datetime(np.repeat(["2024-01-01", "2024-02-01", "2024-03-01"], n)))
    # 3 snapshots: the first two fit, the last judges
    cal, scores = choose_calibration(raw, y, times, ["platt"], seed=0)
    assert cal.method == "none" and scores["none"] < scores["platt"]
    # a single snapshot: random halves, both halves see the shift, so platt helps
    cal_random, scores_random = choose_calibration(raw[:n], y[:n], None, ["platt"], seed=0)
    assert cal_random.method == "platt" and scores_random["platt"] < scores_random["none"]


def test_choose_calibration_with_one_class_in_a_half_falls_back_to_none() -> None:
    y = np.array([0] * 50 + [1] * 2)
    raw = np.linspace(-2, 2, 52)
    times = pd.Series(pd.to_datetime(["2024-01-01"] * 50 + ["2024-02-01"] * 2))
    cal, scores = choose_calibration(raw, y, times, ["platt", "isotonic"], seed=0)
    assert cal.method == "none" and scores == {}
