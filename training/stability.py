"""Population stability index (PSI): how far a feature's distribution moved between two samples.

Reads two frames (a reference, e.g. the training rows logged with a model version, and a current
sample, e.g. the test window) and writes nothing. Used by the promotion gate (`training.promote`)
and usable by monitoring.

    PSI = sum_i (c_i - r_i) * ln(c_i / r_i)

over bins i, with r_i and c_i the shares of reference and current rows in bin i. Bins:

- numeric: `bins` quantile bins of the reference (edges deduplicated, so a feature with many
  ties gets fewer bins), right-closed, the outer bins open to -inf/+inf so current values beyond
  the reference range still count; missing values form a bin of their own;
- categorical: one bin per category seen in either sample, plus one for missing values.

Shares are smoothed, `(share + eps) / (1 + k * eps)` over the k bins, so an empty bin gives a
large but finite PSI. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.
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


def _numeric_counts(values: pd.Series, edges: np.ndarray) -> np.ndarray:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    missing = np.isnan(x)
    # side="left": bin j holds (edges[j-1], edges[j]], so a value equal to an edge stays in the
    # lower bin, which keeps a heavily tied value (e.g. 0 complaints) in one bin
    idx = np.searchsorted(edges, x[~missing], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return np.append(counts, missing.sum())


def psi_numeric(reference: pd.Series, current: pd.Series, *, bins: int = DEFAULT_BINS,
                eps: float = DEFAULT_EPSILON) -> float:
    """PSI of a numeric feature on quantile bins of the reference (plus a missing-value bin)."""
    edges = quantile_edges(reference, bins)
    return _psi_from_counts(_numeric_counts(pd.Series(reference), edges),
                            _numeric_counts(pd.Series(current), edges), eps)


def psi_categorical(reference: pd.Series, current: pd.Series, *, eps: float = DEFAULT_EPSILON) -> float:
    """PSI of a categorical feature: one bin per category seen in either sample, plus missing."""
    ref = pd.Series(reference).astype("object")
    cur = pd.Series(current).astype("object")
    ref_s = ref[ref.notna()].astype(str)
    cur_s = cur[cur.notna()].astype(str)
    cats = sorted(set(ref_s.unique()) | set(cur_s.unique()))
    ref_counts = ref_s.value_counts().reindex(cats, fill_value=0).to_numpy()
    cur_counts = cur_s.value_counts().reindex(cats, fill_value=0).to_numpy()
    ref_counts = np.append(ref_counts, ref.isna().sum())
    cur_counts = np.append(cur_counts, cur.isna().sum())
    return _psi_from_counts(ref_counts, cur_counts, eps)


def is_categorical(values: pd.Series) -> bool:
    """`category`, text and object columns are categorical; numeric and boolean ones are not."""
    return isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object or \
        pd.api.types.is_string_dtype(values.dtype)


def population_stability_index(reference: pd.Series, current: pd.Series, *, categorical: bool | None = None,
                               bins: int = DEFAULT_BINS, eps: float = DEFAULT_EPSILON) -> float:
    """PSI of one feature; `categorical=None` decides from the reference's dtype."""
    if categorical is None:
        categorical = is_categorical(pd.Series(reference))
    if categorical:
        return psi_categorical(reference, current, eps=eps)
    return psi_numeric(reference, current, bins=bins, eps=eps)


def feature_psi(reference: pd.DataFrame, current: pd.DataFrame, features: Iterable[str],
                *, kinds: Mapping[str, str] | None = None, bins: int = DEFAULT_BINS,
                eps: float = DEFAULT_EPSILON) -> pd.Series:
    """PSI of every feature present in both frames, worst first.

    `kinds` maps a feature to "numeric" or "categorical" (as in a feature definition); features
    not in it are typed from the reference's dtype. Features missing from either frame are
    skipped (the caller decides whether that is an error).
    """
    kinds = kinds or {}
    out: dict[str, float] = {}
    for name in features:
        if name not in reference.columns or name not in current.columns:
            continue
        kind = kinds.get(name)
        categorical = None if kind is None else kind == "categorical"
        out[name] = population_stability_index(reference[name], current[name], categorical=categorical,
                                               bins=bins, eps=eps)
    return pd.Series(out, dtype="float64").sort_values(ascending=False, kind="stable")
