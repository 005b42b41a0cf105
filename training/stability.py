"""Population stability index (PSI): how far a feature's distribution moved between two samples.

Reads two frames (a reference, e.g. the training rows logged with a model version, and a current
sample, e.g. the test window) and writes nothing. Used by the promotion gate (`training.gates`)
and usable by monitoring.

    PSI = sum_i (c_i - r_i) * ln(c_i / r_i)

over bins i, with r_i and c_i the shares of reference and current rows in bin i. Bins:

- numeric: `bins` quantile bins of the reference (edges deduplicated, so a feature with many
  ties gets fewer bins), right-closed, the outer bins open to -inf/+inf so current values beyond
  the reference range still count; missing values form a bin of their own;
- categorical: one bin per category seen in either sample, plus one for missing values.

Shares are smoothed, `(share + eps) / (1 + k * eps)` over the k bins, so an empty bin gives a
large but finite PSI. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.

Like months (`like_month_weights`): payments and usage follow the calendar (a 31-day month adds a
day past due to every late invoice), so a training period of many months compared with a test
window of two or three shows a shift in day counts that is only the calendar. Given the
snapshot dates of both samples, the reference rows are weighted so that each calendar month
carries the share it has in the current sample (the monitor compares like months the same way,
`monitoring.monitor.season_rows`); bins stay those of the unweighted reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

DEFAULT_BINS = 10
DEFAULT_EPSILON = 1e-4


def _smoothed(counts: np.ndarray, eps: float) -> np.ndarray:
    total = counts.sum()
    shares = counts / total if total > 0 else np.zeros_like(counts, dtype=np.float64)
    return (shares + eps) / (1.0 + len(counts) * eps)


def _psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray, eps: float) -> float:
    r = _smoothed(ref_counts.astype(np.float64), eps)
    c = _smoothed(cur_counts.astype(np.float64), eps)
    return float(np.sum((c - r) * np.log(c / r)))


def quantile_edges(reference: pd.Series | np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Interior bin edges: the reference's quantiles at 1/bins, ..., (bins-1)/bins, deduplicated."""
    values = pd.to_numeric(pd.Series(reference), errors="coerce").to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def _weights(values: pd.Series, weights: np.ndarray | None) -> np.ndarray:
    return np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64)


def _numeric_counts(values: pd.Series, edges: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    w = _weights(values, weights)
    missing = np.isnan(x)
    # side="left": bin j holds (edges[j-1], edges[j]], so a value equal to an edge stays in the
    # lower bin, which keeps a heavily tied value (e.g. 0 complaints) in one bin
    idx = np.searchsorted(edges, x[~missing], side="left")
    counts = np.bincount(idx, weights=w[~missing], minlength=len(edges) + 1)
    return np.append(counts, w[missing].sum())


def psi_numeric(reference: pd.Series, current: pd.Series, *, bins: int = DEFAULT_BINS,
                eps: float = DEFAULT_EPSILON, reference_weights: np.ndarray | None = None) -> float:
    """PSI of a numeric feature on quantile bins of the reference (plus a missing-value bin)."""
    edges = quantile_edges(reference, bins)
    return _psi_from_counts(_numeric_counts(pd.Series(reference), edges, reference_weights),
                            _numeric_counts(pd.Series(current), edges), eps)


def _category_counts(values: pd.Series, cats: list[str], weights: np.ndarray | None) -> np.ndarray:
    w = pd.Series(_weights(values, weights), index=values.index)
    present = values.notna()
    counts = w[present].groupby(values[present].astype(str)).sum().reindex(cats, fill_value=0.0)
    return np.append(counts.to_numpy(dtype=np.float64), w[~present].sum())


def psi_categorical(reference: pd.Series, current: pd.Series, *, eps: float = DEFAULT_EPSILON,
                    reference_weights: np.ndarray | None = None) -> float:
    """PSI of a categorical feature: one bin per category seen in either sample, plus missing."""
    ref = pd.Series(reference).astype("object").reset_index(drop=True)
    cur = pd.Series(current).astype("object").reset_index(drop=True)
    cats = sorted(set(ref[ref.notna()].astype(str).unique()) | set(cur[cur.notna()].astype(str).unique()))
    return _psi_from_counts(_category_counts(ref, cats, reference_weights), _category_counts(cur, cats, None), eps)


def like_month_weights(reference_times: pd.Series, current_times: pd.Series) -> tuple[np.ndarray | None, str]:
    """Weights of the reference rows that give each calendar month its share in the current sample.

    Returns (weights, note); weights None (compare as they are) when a month of the current
    sample has no reference rows, and the note says why.
    """
    ref_month = pd.to_datetime(pd.Series(reference_times)).dt.month.to_numpy()
    cur_share = pd.to_datetime(pd.Series(current_times)).dt.month.value_counts(normalize=True)
    ref_count = pd.Series(ref_month).value_counts()
    lacking = sorted(int(m) for m in cur_share.index if m not in ref_count.index)
    if lacking:
        names = ", ".join(pd.Timestamp(2000, m, 1).strftime("%B") for m in lacking)
        return None, f"all training months compared (the training rows have no {names})"
    per_row = (cur_share / ref_count).fillna(0.0).reindex(range(1, 13), fill_value=0.0).to_numpy()
    months = ", ".join(pd.Timestamp(2000, int(m), 1).strftime("%b") for m in sorted(cur_share.index))
    return per_row[ref_month - 1] * len(ref_month), f"training rows weighted to the test months ({months})"


def is_categorical(values: pd.Series) -> bool:
    """`category`, text and object columns are categorical; numeric and boolean ones are not."""
    return isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object or \
        pd.api.types.is_string_dtype(values.dtype)


def population_stability_index(reference: pd.Series, current: pd.Series, *, categorical: bool | None = None,
                               bins: int = DEFAULT_BINS, eps: float = DEFAULT_EPSILON,
                               reference_weights: np.ndarray | None = None) -> float:
    """PSI of one feature; `categorical=None` decides from the reference's dtype."""
    if categorical is None:
        categorical = is_categorical(pd.Series(reference))
    if categorical:
        return psi_categorical(reference, current, eps=eps, reference_weights=reference_weights)
    return psi_numeric(reference, current, bins=bins, eps=eps, reference_weights=reference_weights)


def feature_psi(reference: pd.DataFrame, current: pd.DataFrame, features: Iterable[str],
                *, kinds: Mapping[str, str] | None = None, bins: int = DEFAULT_BINS,
                eps: float = DEFAULT_EPSILON, reference_weights: np.ndarray | None = None) -> pd.Series:
    """PSI of every feature present in both frames, worst first.

    `kinds` maps a feature to "numeric" or "categorical" (as in a feature definition); features
    not in it are typed from the reference's dtype. Features missing from either frame are
    skipped (the caller decides whether that is an error). `reference_weights` (one per
    reference row, e.g. `like_month_weights`) weight the reference's counts.
    """
    kinds = kinds or {}
    out: dict[str, float] = {}
    for name in features:
        if name not in reference.columns or name not in current.columns:
            continue
        kind = kinds.get(name)
        categorical = None if kind is None else kind == "categorical"
        out[name] = population_stability_index(reference[name], current[name], categorical=categorical,
                                               bins=bins, eps=eps, reference_weights=reference_weights)
    return pd.Series(out, dtype="float64").sort_values(ascending=False, kind="stable")
