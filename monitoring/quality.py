"""Data quality of logged features against the feature definitions and the training reference.

Reads the window's feature frame, the reference frame and the feature definitions (kind, min,
max, categories); writes nothing. Per feature:

- missing share in the window, in the reference, and the increase;
- invalid values: for a categorical feature, values that are not a category of the definition
  (new categories, listed); for a numeric one, values below `min` or above `max` of the
  definition, and values that were not numbers in the log.

The checks `missing_values` and `invalid_values` take the worst feature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MAX_LISTED = 10  # new categories listed per feature


@dataclass
class FeatureQuality:
    feature: str
    kind: str
    rows: int
    missing_share: float
    reference_missing_share: float
    below_min: int = 0
    above_max: int = 0
    non_numeric: int = 0
    new_categories: dict[str, int] = field(default_factory=dict)  # value -> count (first MAX_LISTED)
    new_category_rows: int = 0

    @property
    def missing_increase(self) -> float:
        return self.missing_share - self.reference_missing_share

    @property
    def invalid(self) -> int:
        return self.below_min + self.above_max + self.non_numeric + self.new_category_rows

    @property
    def invalid_share(self) -> float:
        return self.invalid / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "missing_increase": round(self.missing_increase, 6),
                "invalid": self.invalid, "invalid_share": round(self.invalid_share, 6)}


def _missing_share(col: pd.Series) -> float:
    if not len(col):
        return 0.0
    if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object:
        return float(col.isna().mean())
    vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    return float((~np.isfinite(vals)).mean())


def feature_quality(current: pd.DataFrame, reference: pd.DataFrame, definitions: Sequence[Mapping[str, Any]],
                    non_numeric: Mapping[str, int] | None = None) -> dict[str, FeatureQuality]:
    """Quality of every defined feature in `current` (absent columns count as all missing)."""
    non_numeric = non_numeric or {}
    out: dict[str, FeatureQuality] = {}
    n = len(current)
    for d in definitions:
        name = d["name"]
        col = current[name] if name in current.columns else pd.Series(np.full(n, np.nan))
        ref_share = _missing_share(reference[name]) if name in reference.columns else 0.0
        q = FeatureQuality(feature=name, kind=d["kind"], rows=n, missing_share=_missing_share(col),
                           reference_missing_share=ref_share)
        if d["kind"] == "categorical":
            known = {str(c) for c in (d.get("categories") or [])}
            counts = col.astype("object").dropna().map(str).value_counts()
            new = counts[[v not in known for v in counts.index]]
            q.new_category_rows = int(new.sum())
            q.new_categories = {str(k): int(v) for k, v in new.head(MAX_LISTED).items()}
        else:
            vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
            if d.get("min") is not None:
                q.below_min = int((vals < float(d["min"])).sum())
            if d.get("max") is not None:
                q.above_max = int((vals > float(d["max"])).sum())
            q.non_numeric = int(non_numeric.get(name, 0))
        out[name] = q
    return out


def worst_missing(quality: Mapping[str, FeatureQuality]) -> FeatureQuality | None:
    return max(quality.values(), key=lambda q: q.missing_increase, default=None)


def worst_invalid(quality: Mapping[str, FeatureQuality]) -> FeatureQuality | None:
    return max(quality.values(), key=lambda q: q.invalid_share, default=None)
