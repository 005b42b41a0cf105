"""A synthetic default-risk feature set, written as `tenure features build` writes one.

Plausible values from the feature definitions and a label driven by lateness, debt and
satisfaction, so training on it finds something real without generating source data first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features import schema
from features.definitions import FEATURES_BY_NAME, GROUP_COLUMNS
from features.featureset import FeatureSet, write_featureset
from models import load_spec


def synthetic_featureset(path: Path, customers: int = 500, months: int = 20, seed: int = 0) -> Path:
    """A default-risk feature set: plausible values, a label driven by lateness, debt and satisfaction."""
    spec = load_spec("default_risk")
    rng = np.random.default_rng(seed)
    snaps = pd.date_range("2023-01-01", periods=months, freq="MS")
    n = customers * months
    df = pd.DataFrame({"customer_id": np.tile([f"C{i:05d}" for i in range(customers)], months),
                       "snapshot_date": np.repeat(snaps.values, customers)})
    for name in spec.features:
        d = FEATURES_BY_NAME[name]
        if d.kind == "categorical":
            df[name] = pd.Categorical(rng.choice(d.categories, n), categories=d.categories)
        else:
            lo = d.min if d.min is not None else 0.0
            hi = d.max if d.max is not None and d.max < 1000 else lo + 100
            values = np.minimum(rng.gamma(1.5, (hi - lo) / 6, n) + lo, hi)
            values[rng.random(n) < 0.03] = np.nan
            df[name] = values
    df["snapshot_month"] = pd.DatetimeIndex(df["snapshot_date"]).month.astype(float)
    df["dpd_max_12m"] = rng.integers(0, 120, n).astype(float)
    df["late_payments_12m"] = rng.integers(0, 12, n).astype(float)
    logit = (-3.2 + 0.025 * df["dpd_max_12m"] + 0.12 * df["late_payments_12m"]
             + 0.9 * np.nan_to_num(df["debt_ratio"]) - 0.4 * np.nan_to_num(df["satisfaction_avg_12m"] - 3)
             + 1.0 * (df["credit_class"] == "bad"))
    df[spec.label.name] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int8")
    df["age_band"] = rng.choice(schema.AGE_BANDS, n)
    df["city_tier"] = rng.choice(schema.CITY_TIERS, n)
    fs = FeatureSet(frame=df, task="default_risk", features=[FEATURES_BY_NAME[f].to_dict() for f in spec.features],
                    label={"name": spec.label.name, "definition": spec.label.definition,
                           "horizon_months": spec.label.horizon_months},
                    group_columns=list(GROUP_COLUMNS), lineage={"kind": "synthetic-test"})
    return write_featureset(fs, path)
