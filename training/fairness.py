"""Per-group metrics for fairness gates and compliance: ROC AUC and positive-prediction rate.

Reads labels, predicted probabilities and group columns (age_band, city_tier, industry) of one
sample and writes nothing. Per-group metrics come from `fairlearn.metrics.MetricFrame`.

Two gaps per group column, across the groups that qualify:

- ROC AUC gap: does the model rank risk equally well in every group? A group qualifies with at
  least `min_group_size` rows and at least `min_group_class_count` positives and as many
  negatives (the AUC of a group with a handful of positives is mostly noise).
- positive-rate gap: does the model flag groups at very different rates? A prediction is
  positive when its probability reaches `threshold` (the promotion gate takes the lower bound of
  a tier of the task spec, so "positive" means "gets an action"). A group qualifies with at least
  `min_group_size` rows.

Each gap comes as the raw max minus min and as a `bound`: the largest pairwise gap the data
support at `confidence`, i.e. max over pairs of (v_i - v_j - z * sqrt(se_i^2 + se_j^2)), at least
0, with z the one-sided normal quantile of `confidence` (se: Hanley-McNeil for AUC, binomial for
rates). Small groups have wide errors, so a bound rather than the raw gap keeps a gate from
refusing a model because eleven defaulters in one industry happened to be ranked badly; with
`confidence` 0.5 (z = 0) the bound is the raw gap.

Rows without a group value (e.g. age band of a business customer) are left out of that column's
gaps and counted in `missing`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from models.metrics import FairnessError


def _auc(y_true: Any, y_score: Any) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y_true)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, y_score))


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982) standard error of a ROC AUC from its class counts."""
    if positives < 1 or negatives < 1 or np.isnan(auc):
        return float("nan")
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives)
    return float(np.sqrt(max(var, 0.0)))


@dataclass
class Gap:
    """A gap across groups: raw max - min, its confidence bound, and the pair that gives the bound."""

    raw: float
    bound: float
    low_group: str
    high_group: str

    def to_dict(self) -> dict[str, Any]:
        return {"raw": round(self.raw, 4), "bound": round(self.bound, 4), "low_group": self.low_group,
                "high_group": self.high_group}


def confidence_gap(values: pd.Series, errors: pd.Series, confidence: float) -> Gap | None:
    """The raw gap of `values` and its one-sided lower confidence bound (None for < 2 values)."""
    if len(values) < 2:
        return None
    z = NormalDist().inv_cdf(confidence) if confidence > 0.5 else 0.0
    v = values.to_numpy(dtype=np.float64)
    se = np.nan_to_num(errors.to_numpy(dtype=np.float64))
    diff = v[:, None] - v[None, :] - z * np.sqrt(se[:, None] ** 2 + se[None, :] ** 2)
    np.fill_diagonal(diff, -np.inf)
    hi, lo = np.unravel_index(np.argmax(diff), diff.shape)
    bound = float(diff[hi, lo])
    if bound <= 0:  # no gap beyond noise: name the extreme groups (distinct even when all tie)
        order = np.argsort(v, kind="stable")
        lo, hi, bound = int(order[0]), int(order[-1]), 0.0
    return Gap(raw=float(v.max() - v.min()), bound=bound,
               low_group=str(values.index[lo]), high_group=str(values.index[hi]))


@dataclass
class GroupFairness:
    """One group column's per-group table and its two gaps (None when < 2 groups qualify)."""

    column: str
    # index: group; n, positives, roc_auc, auc_se, positive_rate, rate_se, in_auc_gap, in_rate_gap
    table: pd.DataFrame
    auc: Gap | None
    positive_rate: Gap | None
    missing: int

    def to_dict(self) -> dict[str, Any]:
        def num(v: Any) -> float | None:
            return None if pd.isna(v) else round(float(v), 4)

        groups = {
            str(g): {"n": int(r["n"]), "positives": int(r["positives"]), "roc_auc": num(r["roc_auc"]),
                     "auc_se": num(r["auc_se"]), "positive_rate": num(r["positive_rate"]),
                     "in_auc_gap": bool(r["in_auc_gap"]), "in_rate_gap": bool(r["in_rate_gap"])}
            for g, r in self.table.iterrows()
        }
        return {
            "auc_gap": None if self.auc is None else self.auc.to_dict(),
            "positive_rate_gap": None if self.positive_rate is None else self.positive_rate.to_dict(),
            "missing": self.missing,
            "groups": groups,
        }


def group_fairness(y_true: Any, proba: Any, groups: Any, *, column: str, threshold: float,
                   min_group_size: int, min_group_class_count: int, confidence: float = 0.5,
                   clusters: Any | None = None) -> GroupFairness:
    """Per-group n, positives, ROC AUC and positive rate, and the gaps across qualifying groups.

    `clusters` (e.g. customer ids): rows of one entity are not independent (a customer appears in
    several snapshots of the window), so the AUC standard error and the class-count eligibility
    use the number of distinct entities among a group's positives and negatives.
    """
    from fairlearn.metrics import MetricFrame

    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=np.float64)
    g = pd.Series(groups).reset_index(drop=True).astype("object")
    if not len(y) == len(p) == len(g):
        raise FairnessError(f"group column {column}: {len(y)} labels, {len(p)} probabilities, {len(g)} groups")
    present = g.notna().to_numpy()
    missing = int((~present).sum())
    ids = None if clusters is None else pd.Series(clusters).reset_index(drop=True).to_numpy()[present]
    y, p, g = y[present], p[present], g[present].astype(str).to_numpy()
    columns = ["n", "positives", "roc_auc", "auc_se", "positive_rate", "rate_se", "in_auc_gap", "in_rate_gap"]
    if len(y) == 0:
        return GroupFairness(column, pd.DataFrame(columns=columns), None, None, missing)

    frame = MetricFrame(
        metrics={
            "n": lambda yt, yp: len(yt),
            "positives": lambda yt, yp: int(np.sum(yt)),
            "roc_auc": _auc,
            "positive_rate": lambda yt, yp: float(np.mean(np.asarray(yp) >= threshold)),
        },
        y_true=y,
        y_pred=p,
        sensitive_features=pd.Series(g, name=column),
    )
    table = frame.by_group.copy()
    table.index = table.index.astype(str)
    table["n"] = table["n"].astype(int)
    table["positives"] = table["positives"].astype(int)
    negatives = table["n"] - table["positives"]
    positives = table["positives"]
    if ids is not None:  # distinct entities per group and class
        counts = pd.DataFrame({"g": g, "y": y, "id": ids}).groupby(["g", "y"])["id"].nunique().unstack(fill_value=0)
        counts = counts.reindex(index=table.index, columns=[0, 1], fill_value=0)
        positives, negatives = counts[1], counts[0]
    table["auc_se"] = [auc_standard_error(a, p_, n_) for a, p_, n_ in
                       zip(table["roc_auc"], positives, negatives, strict=True)]
    table["rate_se"] = np.sqrt(table["positive_rate"] * (1 - table["positive_rate"]) / table["n"])
    big = table["n"] >= min_group_size
    table["in_rate_gap"] = big
    table["in_auc_gap"] = big & (positives >= min_group_class_count) & \
        (negatives >= min_group_class_count) & table["roc_auc"].notna()
    table = table[columns].sort_index()
    a, r = table[table["in_auc_gap"]], table[table["in_rate_gap"]]
    return GroupFairness(
        column=column,
        table=table,
        auc=confidence_gap(a["roc_auc"], a["auc_se"], confidence),
        positive_rate=confidence_gap(r["positive_rate"], r["rate_se"], confidence),
        missing=missing,
    )


def fairness_report(frame: pd.DataFrame, y_true: Any, proba: Any, group_columns: Iterable[str], *,
                    threshold: float, min_group_size: int, min_group_class_count: int,
                    confidence: float = 0.5, clusters: Any | None = None) -> dict[str, GroupFairness]:
    """`group_fairness` for every group column present in `frame` (absent ones are skipped)."""
    return {
        col: group_fairness(y_true, proba, frame[col], column=col, threshold=threshold,
                            min_group_size=min_group_size, min_group_class_count=min_group_class_count,
                            confidence=confidence, clusters=clusters)
        for col in group_columns
        if col in frame.columns
    }
