"""Per-feature drift verdicts (`monitoring.drift`) against independent reference computations.

The tests Evidently picks are re-implemented here from their definitions with scipy on the raw
values (no Evidently import: the agreement with Evidently itself is checked in
tests/integration/test_monitoring.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from monitoring.drift import (
    ReferenceStats,
    choose_method,
    column_drift,
    column_stats,
    feature_drift,
    is_drift,
)


def _clean(values: pd.Series) -> pd.Series:
    return values.replace([np.inf, -np.inf], np.nan).dropna()


def _js(ref: pd.Series, cur: pd.Series) -> float:
    keys = sorted(set(ref.unique()) | set(cur.unique()), key=str)
    r = np.array([(ref == k).sum() for k in keys]) / len(ref)
    c = np.array([(cur == k).sum() for k in keys]) / len(cur)
    return float(distance.jensenshannon(r, c))


@pytest.mark.parametrize(("kind", "ref_rows", "n_values", "expected"), [
    ("numeric", 5000, 40, "wasserstein"),
    ("numeric", 5000, 5, "jensenshannon"),
    ("numeric", 5000, 6, "wasserstein"),
    ("categorical", 5000, 9, "jensenshannon"),
    ("numeric", 1000, 40, "ks"),
    ("numeric", 1001, 40, "wasserstein"),
    ("numeric", 800, 4, "chisquare"),
    ("numeric", 800, 2, "z"),
    ("categorical", 800, 3, "chisquare"),
    ("categorical", 800, 2, "z"),
])
def test_method_choice_follows_evidentlys_defaults(kind: str, ref_rows: int, n_values: int, expected: str) -> None:
    assert choose_method(kind, ref_rows, n_values) == expected  # type: ignore[arg-type]


def test_verdict_rules_by_kind_of_score() -> None:
    assert is_drift("wasserstein", 0.1, 0.1) and not is_drift("wasserstein", 0.0999, 0.1)
    assert is_drift("ks", 0.05, 0.05) and not is_drift("ks", 0.0501, 0.05)
    assert not is_drift("chisquare", 0.05, 0.05) and is_drift("chisquare", 0.0499, 0.05)
    assert not is_drift("z", float("nan"), 0.05)


def test_wasserstein_equals_scipy_on_raw_values_with_missing_and_infinite() -> None:
    rng = np.random.default_rng(0)
    ref = pd.Series(np.round(rng.lognormal(2, 1, 4000), 1))
    ref[::9] = np.nan
    cur = pd.Series(np.round(rng.lognormal(2.1, 1, 2500), 1))
    cur[::7] = np.inf
    got = column_drift(column_stats(ref, "x", "numeric"), cur)
    r, c = _clean(ref), _clean(cur)
    expected = stats.wasserstein_distance(r, c) / max(float(np.std(r)), 0.001)
    assert got.method == "wasserstein" and got.threshold == 0.1
    assert got.score == pytest.approx(expected, rel=1e-10)
    assert got.drifted == (expected >= 0.1)
    assert got.reference_values == len(r) and got.current_values == len(c)


def test_wasserstein_detects_a_shift_and_not_noise() -> None:
    rng = np.random.default_rng(1)
    ref = column_stats(rng.normal(0, 1, 20000), "x", "numeric")
    assert not column_drift(ref, rng.normal(0, 1, 20000)).drifted
    shifted = column_drift(ref, rng.normal(0.3, 1, 20000))
    assert shifted.drifted and shifted.score == pytest.approx(0.3, abs=0.03)


def test_jensen_shannon_on_categories_counts_new_categories() -> None:
    rng = np.random.default_rng(2)
    ref = pd.Series(pd.Categorical(rng.choice(["a", "b", "c"], 3000), categories=["a", "b", "c"]))
    cur = pd.Series(rng.choice(["a", "b", "c", "zz"], 2000, p=[0.3, 0.3, 0.2, 0.2]), dtype="object")
    got = column_drift(column_stats(ref, "x", "categorical"), cur)
    assert got.method == "jensenshannon"
    assert got.score == pytest.approx(_js(ref.astype(str), cur), rel=1e-10)
    assert got.drifted


def test_discrete_numeric_uses_jensen_shannon_on_values() -> None:
    rng = np.random.default_rng(3)
    ref = pd.Series(rng.integers(0, 3, 5000).astype(float))
    cur = pd.Series(rng.choice([0.0, 1.0, 2.0], 3000, p=[0.2, 0.3, 0.5]))
    got = column_drift(column_stats(ref, "x", "numeric"), cur)
    assert got.method == "jensenshannon"
    assert got.score == pytest.approx(_js(ref, cur), rel=1e-10)


def test_a_new_value_can_push_a_discrete_column_past_five_values() -> None:
    ref = pd.Series(np.tile([0.0, 1.0, 2.0, 3.0, 4.0], 400))
    cur = pd.Series(np.tile([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 100))
    assert column_drift(column_stats(ref, "x", "numeric"), cur).method == "wasserstein"


def test_small_reference_uses_p_value_tests() -> None:
    rng = np.random.default_rng(4)
    ref_num = pd.Series(rng.normal(0, 1, 600))
    cur_num = pd.Series(rng.normal(0.2, 1, 900))
    ks = column_drift(column_stats(ref_num, "x", "numeric"), cur_num)
    assert ks.method == "ks" and ks.threshold == 0.05
    assert ks.score == pytest.approx(stats.ks_2samp(ref_num, cur_num)[1], rel=1e-10)

    ref_cat = pd.Series(rng.choice(list("xyz"), 600))
    cur_cat = pd.Series(rng.choice(list("xyz"), 900, p=[0.5, 0.3, 0.2]))
    chi = column_drift(column_stats(ref_cat, "c", "categorical"), cur_cat)
    keys = ["x", "y", "z"]
    r = np.array([(ref_cat == k).sum() for k in keys], dtype=float)
    c = np.array([(cur_cat == k).sum() for k in keys], dtype=float)
    assert chi.method == "chisquare"
    assert chi.score == pytest.approx(stats.chisquare(c, r * len(cur_cat) / len(ref_cat))[1], rel=1e-10)

    ref_bin = pd.Series(rng.choice(["no", "yes"], 600, p=[0.7, 0.3]))
    cur_bin = pd.Series(rng.choice(["no", "yes"], 900, p=[0.6, 0.4]))
    z = column_drift(column_stats(ref_bin, "b", "categorical"), cur_bin)
    p1, p2 = (ref_bin != "no").mean(), (cur_bin != "no").mean()
    pooled = (p1 * 600 + p2 * 900) / 1500
    zval = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / 600 + 1 / 900))
    assert z.method == "z"
    assert z.score == pytest.approx(2 * (1 - stats.norm.cdf(abs(zval))), rel=1e-10)
    assert z.drifted == (z.score < 0.05)


def test_thresholds_and_forced_methods() -> None:
    rng = np.random.default_rng(5)
    ref = column_stats(rng.normal(0, 1, 5000), "x", "numeric")
    cur = rng.normal(0.15, 1, 5000)
    assert column_drift(ref, cur).drifted
    loose = column_drift(ref, cur, threshold=0.3)
    assert loose.threshold == 0.3 and not loose.drifted
    forced = column_drift(column_stats(rng.normal(0, 1, 500), "x", "numeric"), cur, method="wasserstein")
    assert forced.method == "wasserstein"


def test_columns_without_values_get_no_verdict() -> None:
    ref = column_stats(np.full(2000, np.nan), "x", "numeric")
    out = column_drift(ref, np.ones(10))
    assert out.method is None and not out.drifted and "reference" in out.note
    ref = column_stats(np.arange(2000.0), "x", "numeric")
    out = column_drift(ref, np.full(10, np.nan))
    assert out.method is None and "current" in out.note


def test_feature_drift_share_leaves_excluded_features_out() -> None:
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 3000), "b": rng.normal(0, 1, 3000), "month": rng.integers(1, 7, 3000) * 1.0,
                        "c": rng.choice(list("pq"), 3000)})
    cur = pd.DataFrame({"a": rng.normal(0.5, 1, 3000), "b": rng.normal(0, 1, 3000), "month": np.full(3000, 12.0),
                        "c": rng.choice(list("pq"), 3000)})
    kinds = {"a": "numeric", "b": "numeric", "month": "numeric", "c": "categorical"}
    result = feature_drift(ReferenceStats.from_frame(ref, kinds), cur, list(kinds), exclude=["month"])
    assert result.columns["month"].drifted and result.columns["month"].excluded
    assert result.drifted_features == ["a"]
    assert result.share == pytest.approx(1 / 3)
    assert result.to_dict()["excluded"] == ["month"]


# ---- prediction drift: PSI over bands at the reference's quantiles ---------------------------------

def _psi_by_definition(ref: np.ndarray, cur: np.ndarray, bins: int) -> float:
    """PSI from its definition: decile cut points of the reference, shares per band, sum (r-c) ln(r/c)."""
    cuts = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    cuts = cuts[cuts > ref.min()]
    r = np.bincount(np.searchsorted(cuts, ref, side="right"), minlength=len(cuts) + 1) / len(ref)
    c = np.bincount(np.searchsorted(cuts, cur, side="right"), minlength=len(cuts) + 1) / len(cur)
    return float(((r - c) * np.log(r / c)).sum())


def test_score_bands_cut_the_reference_into_equal_shares_and_merge_ties() -> None:
    from monitoring.drift import ScoreBands

    rng = np.random.default_rng(3)
    ref = rng.beta(1.2, 30, 10_000)
    bands = ScoreBands.from_reference(ref, 10)
    labels = bands.labels(ref)
    shares = pd.Series(labels).value_counts(normalize=True).sort_index()
    assert list(shares.index) == [f"b{i:02d}" for i in range(1, 11)]
    assert shares.between(0.099, 0.101).all()
    # a calibrated score with few distinct values: tied cut points merge, no empty band
    steps = rng.choice([0.01, 0.02, 0.05, 0.3], p=[0.6, 0.25, 0.1, 0.05], size=5000)
    tied = ScoreBands.from_reference(steps, 10)
    assert list(tied.edges) == [0.02, 0.05] and set(tied.labels(steps)) == {"b01", "b02", "b03"}
    assert list(bands.labels([np.nan, 0.0, 1.0])) == [None, "b01", "b10"]


def test_psi_agrees_with_its_definition_and_separates_noise_from_a_shift() -> None:
    from monitoring.drift import prediction_drift

    rng = np.random.default_rng(4)
    ref = rng.beta(1.2, 30, 8000)
    stats_ref = column_stats(ref, "probability", "numeric")
    same = rng.beta(1.2, 30, 3000)
    shifted = rng.beta(1.2, 20, 3000)  # mean 0.038 -> 0.057: a riskier population
    quiet = prediction_drift(stats_ref, same, method="psi", bins=10, threshold=0.1)
    moved = prediction_drift(stats_ref, shifted, method="psi", bins=10, threshold=0.1)
    assert quiet.method == "psi" and quiet.kind == "numeric" and len(quiet.bands) == 9
    assert quiet.score == pytest.approx(_psi_by_definition(ref, same, 10), rel=1e-12)
    assert moved.score == pytest.approx(_psi_by_definition(ref, shifted, 10), rel=1e-12)
    assert quiet.score < 0.02 and not quiet.drifted
    assert moved.score > 0.1 and moved.drifted
    # the Wasserstein option is Evidently's default test for a numeric column
    w = prediction_drift(stats_ref, shifted, method="wasserstein", bins=10, threshold=0.1)
    assert w.method == "wasserstein" and w.score == pytest.approx(
        stats.wasserstein_distance(ref, shifted) / np.std(ref), rel=1e-9)
    with pytest.raises(ValueError, match="psi or wasserstein"):
        prediction_drift(stats_ref, same, method="ks", bins=10, threshold=0.1)


def test_psi_fills_empty_bands_as_evidently_does() -> None:
    """Evidently's `psi` test on a categorical column: an empty share becomes 0.0001 (or the
    smallest share / 10**6 when that is smaller), so a band the window never reaches counts."""
    from monitoring.drift import psi_value

    ref = {"b01": 500, "b02": 300, "b03": 200}
    cur = {"b01": 900, "b02": 100}
    r = np.array([0.5, 0.3, 0.2])
    c = np.array([0.9, 0.1, 0.0001])
    assert psi_value(ref, cur) == pytest.approx(float(((r - c) * np.log(r / c)).sum()), rel=1e-12)
    assert psi_value(ref, ref) == 0.0
    assert is_drift("psi", 0.1, 0.1) and not is_drift("psi", 0.099, 0.1)
