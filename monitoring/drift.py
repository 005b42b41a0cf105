"""Per-feature drift verdicts, computed exactly as Evidently's `DataDriftPreset` would, only faster.

Reads a reference frame (the training rows of a model version) and a current frame (the rows that
version scored); writes nothing. `ReferenceStats.from_frame` pre-computes, once per version, what
every test needs from the reference: the sorted finite values, their distinct values, the standard
deviation and the category counts. `column_drift` then compares one current column with them.

Which test, as Evidently 0.7 chooses by default (`evidently.legacy.calculations.stattests.registry.
_get_default_stattest`), after dropping missing and infinite values on both sides; `n_values` is
the number of distinct values in reference and current together:

| reference rows | numeric, n_values > 5 | numeric, n_values <= 5 | categorical |
|---|---|---|---|
| > 1000 | Wasserstein distance / reference std (>= 0.1) | Jensen-Shannon (>= 0.1) | Jensen-Shannon (>= 0.1) |
| <= 1000 | K-S p-value (<= 0.05) | chi-square (> 2 values) or z-test, p-value (< 0.05) | same as numeric <= 5 |

Why it is faster and still exact: Evidently builds plots, histograms and correlations per column
on all rows; here each test is computed from sufficient statistics: the distinct values of a
column and their counts (the reference's pre-computed, the current column's from one sort). The
Wasserstein distance is then the integral of |F_ref - F_cur| over the merged distinct values;
Jensen-Shannon, chi-square and z only need the counts. The scores equal Evidently's up to
floating-point rounding, so the verdicts agree.

Prediction drift (`prediction_drift`) is the population stability index of the probability over
bands cut at the reference's quantiles (`ScoreBands`): Evidently's `psi` test on the band labels,
which the Evidently report recomputes on the same labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

SMALL_REFERENCE_ROWS = 1000  # Evidently: above this many reference values, distances; else p-value tests
FEW_VALUES = 5  # Evidently: a numeric column with at most this many distinct values counts as discrete

# method -> (Evidently's display name, default threshold, score kind)
METHODS: dict[str, tuple[str, float, str]] = {
    "wasserstein": ("Wasserstein distance (normed)", 0.1, "distance"),
    "jensenshannon": ("Jensen-Shannon distance", 0.1, "distance"),
    "ks": ("K-S p_value", 0.05, "p_value"),
    "chisquare": ("chi-square p_value", 0.05, "p_value"),
    "z": ("Z-test p_value", 0.05, "p_value"),
    "psi": ("PSI", 0.1, "distance"),
}

Kind = Literal["numeric", "categorical"]


@dataclass
class ColumnStats:
    """What the drift tests need from one reference column (missing and infinite values dropped)."""

    name: str
    kind: Kind
    rows: int  # all rows, missing included
    missing: int  # missing or infinite
    values: np.ndarray | None = None  # numeric: sorted finite values
    uniques: np.ndarray | None = None  # numeric: sorted distinct values
    unique_counts: np.ndarray | None = None  # numeric: how often each distinct value occurs
    std: float = 0.0  # numeric: population std (ddof 0), as Evidently's normalisation uses
    counts: dict[Any, int] | None = None  # categorical: value -> count

    @property
    def n(self) -> int:
        """Values the tests see (missing and infinite dropped)."""
        return self.rows - self.missing

    def value_counts(self) -> dict[Any, int]:
        """value -> count, for categorical columns and discrete numeric ones."""
        if self.counts is not None:
            return self.counts
        assert self.uniques is not None and self.unique_counts is not None
        return {float(u): int(c) for u, c in zip(self.uniques, self.unique_counts, strict=True)}


@dataclass
class ReferenceStats:
    """Pre-computed statistics of every monitored reference column."""

    columns: dict[str, ColumnStats]
    rows: int

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, kinds: Mapping[str, Kind]) -> ReferenceStats:
        """Statistics of the columns named in `kinds` (name -> numeric | categorical)."""
        return cls(columns={name: column_stats(frame[name], name, kind) for name, kind in kinds.items()},
                   rows=len(frame))


def _finite(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        arr = values
    elif isinstance(values, pd.Series) and values.dtype == np.float64:
        arr = values.to_numpy()
    else:
        arr = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    return arr[np.isfinite(arr)]


def _distinct(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their counts of a sorted array (linear)."""
    if not len(sorted_values):
        return sorted_values, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    return sorted_values[starts], np.diff(np.append(starts, len(sorted_values)))


def category_counts(values: Any) -> tuple[dict[Any, int], int]:
    """(value -> count of the present values, number of missing values) of a categorical column."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        missing = int((codes < 0).sum())
        counts = np.bincount(codes[codes >= 0], minlength=len(s.cat.categories))
        return {c: int(k) for c, k in zip(s.cat.categories, counts, strict=True) if k > 0}, missing
    vc = s.value_counts(dropna=True, sort=False)
    return {k: int(v) for k, v in vc.items()}, int(len(s) - int(vc.sum()))


def column_stats(values: Any, name: str, kind: Kind) -> ColumnStats:
    """Statistics of one reference column."""
    rows = len(values)
    if kind == "categorical":
        counts, missing = category_counts(values)
        return ColumnStats(name=name, kind=kind, rows=rows, missing=missing, counts=counts)
    finite = np.sort(_finite(values))
    uniques, counts = _distinct(finite)
    std = float(np.std(finite)) if len(finite) else 0.0
    return ColumnStats(name=name, kind=kind, rows=rows, missing=rows - len(finite), values=finite,
                       uniques=uniques, unique_counts=counts, std=std)


def current_distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct finite values of a current column and their counts (one sort)."""
    return _distinct(np.sort(values))


@dataclass
class ColumnDrift:
    """One column's verdict: the test used, its threshold, the score and whether it drifted."""

    column: str
    kind: Kind
    method: str | None  # key of METHODS; None when the column could not be tested
    method_name: str | None  # Evidently's display name of the test
    threshold: float | None
    score: float | None  # distance, or p-value (see score_kind)
    score_kind: str | None
    drifted: bool
    reference_values: int
    current_values: int
    excluded: bool = False
    note: str = ""
    bands: list[float] | None = None  # PSI of a score: the cut points of its bands

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["score"] is not None and not np.isfinite(d["score"]):
            d["score"] = None
        return d


def choose_method(kind: Kind, reference_values: int, n_values: int) -> str:
    """The test Evidently 0.7 picks by default (see the module docstring)."""
    if reference_values <= SMALL_REFERENCE_ROWS:
        if kind == "numeric" and n_values > FEW_VALUES:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "numeric" and n_values > FEW_VALUES:
        return "wasserstein"
    return "jensenshannon"


def is_drift(method: str, score: float, threshold: float) -> bool:
    """Evidently's verdict rule: distances drift at or above the threshold; p-values below it
    (K-S at or below)."""
    if not np.isfinite(score):
        return False
    if method in ("wasserstein", "jensenshannon", "psi"):
        return bool(score >= threshold)
    if method == "ks":
        return bool(score <= threshold)
    return bool(score < threshold)


# ---- the tests on sufficient statistics -------------------------------------------------------

def wasserstein_normed(ref: ColumnStats, cur_values: np.ndarray, cur_counts: np.ndarray) -> float:
    """W1(reference, current) / max(std(reference), 0.001), exact.

    W1 is the integral of |F_ref(x) - F_cur(x)|: merge the distinct values of both sides (a stable
    sort of two sorted runs is a linear merge), take both empirical CDFs right after each merged
    value and sum |difference| times the gap to the next value.
    """
    assert ref.uniques is not None and ref.unique_counts is not None
    k = len(ref.uniques)
    merged = np.concatenate([ref.uniques, cur_values])
    order = np.argsort(merged, kind="stable")
    w_ref = np.concatenate([ref.unique_counts, np.zeros(len(cur_values), dtype=np.int64)])[order]
    w_cur = np.concatenate([np.zeros(k, dtype=np.int64), cur_counts])[order]
    f_ref = np.cumsum(w_ref)[:-1] / ref.n
    f_cur = np.cumsum(w_cur)[:-1] / int(cur_counts.sum())
    gaps = np.diff(merged[order])
    distance = float(np.abs(f_ref - f_cur) @ gaps)
    return distance / max(ref.std, 0.001)


def _aligned_counts(ref_counts: Mapping[Any, int], cur_counts: Mapping[Any, int]) -> tuple[np.ndarray, np.ndarray]:
    keys = list(set(ref_counts) | set(cur_counts))
    r = np.array([ref_counts.get(k, 0) for k in keys], dtype=np.float64)
    c = np.array([cur_counts.get(k, 0) for k in keys], dtype=np.float64)
    return r, c


def jensenshannon_distance(ref_counts: Mapping[Any, int], cur_counts: Mapping[Any, int]) -> float:
    """Jensen-Shannon distance (natural log) between the two value distributions."""
    from scipy.spatial import distance

    r, c = _aligned_counts(ref_counts, cur_counts)
    return float(distance.jensenshannon(r / r.sum(), c / c.sum()))


def chisquare_pvalue(ref_counts: Mapping[Any, int], cur_counts: Mapping[Any, int]) -> float:
    """Chi-square goodness of fit of the current counts to the reference shares."""
    from scipy.stats import chisquare

    r, c = _aligned_counts(ref_counts, cur_counts)
    with np.errstate(divide="ignore", invalid="ignore"):  # a value absent from the reference: p = 0
        return float(chisquare(c, r * (c.sum() / r.sum()))[1])


def z_pvalue(ref_counts: Mapping[Any, int], cur_counts: Mapping[Any, int]) -> float:
    """Two-sided z-test of the share of the first value (sorted) between the two samples."""
    from scipy.stats import norm

    if len(ref_counts) == 1 and len(cur_counts) == 1 and set(ref_counts) == set(cur_counts):
        return 1.0
    first = sorted(set(ref_counts) | set(cur_counts))[0]
    n1, n2 = sum(ref_counts.values()), sum(cur_counts.values())
    p1 = (n1 - ref_counts.get(first, 0)) / n1
    p2 = (n2 - cur_counts.get(first, 0)) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - norm.cdf(np.abs(z))))


def _filled(shares: np.ndarray) -> np.ndarray:
    """Evidently's fill of empty shares (so the log stays finite): the smallest share / 10**6
    when that is at most 0.0001, else 0.0001."""
    nonzero = shares[shares != 0]
    if not len(nonzero):
        return shares
    low = float(nonzero.min())
    return np.where(shares == 0, low / 10**6 if low <= 0.0001 else 0.0001, shares)


def psi_value(ref_counts: Mapping[Any, int], cur_counts: Mapping[Any, int]) -> float:
    """Population stability index sum((r - c) * ln(r / c)) over the values' shares, as Evidently's
    `psi` test computes it on a categorical column (empty shares filled, see `_filled`)."""
    r, c = _aligned_counts(ref_counts, cur_counts)
    rp, cp = _filled(r / r.sum()), _filled(c / c.sum())
    return float(((rp - cp) * np.log(rp / cp)).sum())


def ks_pvalue(ref: ColumnStats, cur_values: np.ndarray, cur_counts: np.ndarray) -> float:
    from scipy.stats import ks_2samp

    return float(ks_2samp(ref.values, np.repeat(cur_values, cur_counts))[1])


# ---- one column ---------------------------------------------------------------------------------

def column_drift(ref: ColumnStats, current: Any, *, threshold: float | None = None,
                 method: str | None = None, excluded: bool = False) -> ColumnDrift:
    """The drift verdict of one current column against its reference statistics.

    `method` forces a test (as `ValueDrift(method=...)` does); by default Evidently's choice.
    `threshold` None means the test's default.
    """
    cur_values = cur_weights = None  # numeric: distinct current values and their counts
    if ref.kind == "categorical":
        cur_counts, _ = category_counts(current)
        n_c = sum(cur_counts.values())
    else:
        cur_counts = None
        finite = _finite(current)
        n_c = len(finite)
        if n_c and ref.n:
            cur_values, cur_weights = current_distinct(finite)

    def untested(note: str) -> ColumnDrift:
        return ColumnDrift(ref.name, ref.kind, None, None, None, None, None, False, ref.n, n_c,
                           excluded, note)

    if ref.n == 0:
        return untested("no values in the reference")
    if n_c == 0:
        return untested("no values in the current window")

    if method is None:
        if ref.kind == "categorical":
            assert cur_counts is not None and ref.counts is not None
            n_values = len(set(ref.counts) | set(cur_counts))
        else:
            assert ref.uniques is not None and cur_values is not None
            n_values = len(ref.uniques)
            if n_values <= FEW_VALUES:  # only then can the union stay small
                n_values = len(np.union1d(ref.uniques, cur_values))
        method = choose_method(ref.kind, ref.n, n_values)
    if method not in METHODS:
        raise ValueError(f"unknown drift method {method!r}; choose one of {sorted(METHODS)}")
    name, default_threshold, score_kind = METHODS[method]
    thr = default_threshold if threshold is None else float(threshold)

    if method in ("wasserstein", "ks"):
        if ref.kind != "numeric" or cur_values is None or cur_weights is None:
            raise ValueError(f"column {ref.name}: the {METHODS[method][0]} needs a numeric column")
        score = (wasserstein_normed(ref, cur_values, cur_weights) if method == "wasserstein"
                 else ks_pvalue(ref, cur_values, cur_weights))
    else:
        if cur_counts is None:
            assert cur_values is not None and cur_weights is not None
            cur_counts = {float(v): int(c) for v, c in zip(cur_values, cur_weights, strict=True)}
        ref_counts = ref.value_counts()
        score = {"jensenshannon": jensenshannon_distance, "chisquare": chisquare_pvalue,
                 "z": z_pvalue, "psi": psi_value}[method](ref_counts, cur_counts)
    return ColumnDrift(ref.name, ref.kind, method, name, thr, score, score_kind,
                       is_drift(method, score, thr), ref.n, n_c, excluded)


@dataclass
class DriftResult:
    """Every feature's verdict, and the share of (not excluded) features that drifted."""

    columns: dict[str, ColumnDrift]
    excluded: list[str] = field(default_factory=list)

    @property
    def judged(self) -> list[ColumnDrift]:
        return [c for c in self.columns.values() if not c.excluded and c.method is not None]

    @property
    def drifted_features(self) -> list[str]:
        return [c.column for c in self.judged if c.drifted]

    @property
    def share(self) -> float:
        judged = self.judged
        return len(self.drifted_features) / len(judged) if judged else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "share_drifted": round(self.share, 6),
            "drifted_features": self.drifted_features,
            "judged_features": len(self.judged),
            "excluded": self.excluded,
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
        }


def feature_drift(reference: ReferenceStats, current: pd.DataFrame, columns: Iterable[str], *,
                  num_threshold: float | None = None, cat_threshold: float | None = None,
                  exclude: Iterable[str] = ()) -> DriftResult:
    """Verdicts for `columns` of `current` against `reference` (Evidently's default tests).

    A column absent from `current` is tested as all-missing (no verdict, noted).
    """
    excluded = set(exclude)
    out: dict[str, ColumnDrift] = {}
    for name in columns:
        ref = reference.columns[name]
        values = current[name] if name in current.columns else pd.Series(np.full(len(current), np.nan))
        thr = num_threshold if ref.kind == "numeric" else cat_threshold
        out[name] = column_drift(ref, values, threshold=thr, excluded=name in excluded)
    return DriftResult(columns=out, excluded=sorted(excluded & set(out)))


# ---- prediction drift ---------------------------------------------------------------------------

@dataclass
class ScoreBands:
    """Bands of a score cut at the reference's quantiles: band i holds edges[i-1] <= p < edges[i]."""

    edges: np.ndarray  # sorted distinct interior cut points

    @classmethod
    def from_reference(cls, values: Any, bins: int) -> ScoreBands:
        """`bins` bands at the quantiles of the reference's finite values (ties merge bands)."""
        finite = _finite(values)
        if not len(finite):
            return cls(edges=np.zeros(0))
        cuts = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
        return cls(edges=cuts[cuts > finite.min()])  # a cut at the minimum would leave band 1 empty

    def labels(self, values: Any) -> np.ndarray:
        """Each value's band as a sortable label (`b01` lowest); missing values get None."""
        arr = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
        index = np.searchsorted(self.edges, arr, side="right")
        out = np.array([f"b{i + 1:02d}" for i in index], dtype=object)
        out[~np.isfinite(arr)] = None
        return out


def prediction_drift(reference: ColumnStats, current: Any, *, method: str, bins: int,
                     threshold: float) -> ColumnDrift:
    """Drift of the predicted probability: `psi` over `bins` bands at the reference's quantiles,
    or `wasserstein` (Evidently's default for a numeric column) on the values."""
    if method == "wasserstein":
        return column_drift(reference, current, method="wasserstein", threshold=threshold)
    if method != "psi":
        raise ValueError(f"unknown prediction drift method {method!r}; choose psi or wasserstein")
    if reference.kind != "numeric" or reference.values is None:
        raise ValueError(f"column {reference.name}: PSI bands need the numeric reference values")
    bands = ScoreBands.from_reference(reference.values, bins)
    ref_bands = column_stats(bands.labels(reference.values), reference.name, "categorical")
    got = column_drift(ref_bands, bands.labels(current), method="psi", threshold=threshold)
    return replace(got, kind="numeric", bands=[float(e) for e in bands.edges],
                   note=got.note or f"{len(bands.edges) + 1} bands cut at the reference's quantiles")
