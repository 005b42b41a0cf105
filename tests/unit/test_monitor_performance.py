"""Performance before and after outcomes (`monitoring.performance`): CBPE estimate, joins, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from monitoring.performance import (
    Recalibration,
    estimate_roc_auc,
    expected_roc_auc,
    join_outcomes,
    measured_metrics,
)


def _brute_expected_auc(s: np.ndarray, p: np.ndarray) -> float:
    num = den = 0.0
    for i in range(len(s)):
        for j in range(len(s)):
            if i == j:
                continue
            w = p[i] * (1 - p[j])
            den += w
            num += w * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
    return num / den


def test_closed_form_equals_the_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    p = np.round(rng.beta(2, 5, 60), 1)  # many ties
    assert expected_roc_auc(p) == pytest.approx(_brute_expected_auc(p, p), rel=1e-12)
    s = rng.normal(size=60)
    assert expected_roc_auc(s, p) == pytest.approx(_brute_expected_auc(s, p), rel=1e-12)


def test_estimate_matches_the_auc_of_labels_drawn_from_the_probabilities() -> None:
    rng = np.random.default_rng(1)
    p = rng.beta(1, 8, 4000)
    ranks = rankdata(p)

    def auc(y: np.ndarray) -> float:  # Mann-Whitney form of the ROC AUC
        pos = y.sum()
        return (ranks[y].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos))

    assert auc(p > 0.2) == pytest.approx(roc_auc_score(p > 0.2, p))
    draws = [auc(rng.random(len(p)) < p) for _ in range(300)]
    est = estimate_roc_auc(p, draws=200, seed=3)
    assert est.roc_auc == pytest.approx(np.mean(draws), abs=0.004)
    assert est.low < np.quantile(draws, 0.25) and est.high > np.quantile(draws, 0.75)
    assert est.low > np.quantile(draws, 0.0) - 0.02 and est.high < np.quantile(draws, 1.0) + 0.02
    assert est.expected_positive_rate == pytest.approx(p.mean())
    assert est.calibrated_on is None


def test_recalibration_on_the_reference_corrects_overconfident_scores() -> None:
    rng = np.random.default_rng(2)
    true_p = rng.beta(1, 6, 20000)
    overconfident = np.clip(true_p * 1.8, 0, 1) ** 1.3  # same ranking, miscalibrated
    y_ref = rng.random(len(true_p)) < true_p
    y_now = rng.random(len(true_p)) < true_p
    actual = roc_auc_score(y_now, overconfident)
    naive = estimate_roc_auc(overconfident, draws=0).roc_auc
    recal = Recalibration.fit(overconfident, y_ref)
    assert recal is not None
    corrected = estimate_roc_auc(overconfident, recalibration=recal, draws=50, seed=0)
    assert abs(corrected.roc_auc - actual) < 0.01 < abs(naive - actual)
    assert "isotonic" in corrected.calibrated_on
    assert Recalibration.fit(overconfident[:10], np.zeros(10)) is None


def test_large_windows_use_a_sample_and_rescale_the_band() -> None:
    rng = np.random.default_rng(4)
    p = rng.beta(1, 8, 50000)
    small = estimate_roc_auc(p, draws=60, max_rows=2000, seed=0)
    full = estimate_roc_auc(p, draws=60, max_rows=50000, seed=0)
    assert small.rows == full.rows == 50000
    assert (small.high - small.low) == pytest.approx(full.high - full.low, rel=0.35)


def test_outcomes_join_on_customer_and_snapshot() -> None:
    log = pd.DataFrame({"customer_ref": ["1", "2", "3", "4"],
                        "as_of": ["2024-05-01", "2024-05-01", None, "2024-06-01"]}, index=[10, 11, 12, 13])
    labels = pd.DataFrame({"customer_ref": ["1", "2", "4", "4"], "as_of": ["2024-05-01", "2024-06-01", "2024-06-01",
                                                                          "2024-06-01"], "label": [1, 0, 0, 0]})
    joined = join_outcomes(log, labels)
    assert joined.index.tolist() == [10, 11, 12, 13]
    np.testing.assert_array_equal(joined.to_numpy(), [1.0, np.nan, np.nan, 0.0])


def test_measured_metrics_need_both_classes() -> None:
    assert measured_metrics(np.zeros(5), np.linspace(0, 1, 5)) is None
    m = measured_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert m is not None and m["roc_auc"] == pytest.approx(0.75)


def test_recalibration_pools_the_labelled_periods_the_version_has() -> None:
    from monitoring.monitor import recalibration_for

    rng = np.random.default_rng(5)

    def period(n: int) -> pd.DataFrame:
        p = rng.uniform(0, 1, n)
        return pd.DataFrame({"probability": p, "y": (rng.random(n) < p).astype(int)})

    valid, test = period(300), period(500)
    both = recalibration_for(["valid", "test"], "y", {"valid": valid, "test": test})
    assert both is not None and both.rows == 800 and both.period == "validation and test periods"
    only_test = recalibration_for(["valid", "test"], "y", {"valid": None, "test": test})
    assert only_test is not None and only_test.rows == 500 and only_test.period == "test period"
    assert recalibration_for([], "y", {"valid": valid, "test": test}) is None
    assert recalibration_for(["test"], "label", {"test": test}) is None  # no such label column
    est = estimate_roc_auc(test["probability"].to_numpy(), recalibration=both, draws=0)
    assert est.calibrated_on == "validation and test periods (isotonic, 800 rows)"
