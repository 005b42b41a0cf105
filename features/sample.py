"""A customer-level sample of a feature set, stratified by label: training on data beyond one machine.

`read_featureset(path, max_customers=N)` (setting `train_max_customers`, TENURE_TRAIN_MAX_CUSTOMERS)
keeps at most about N customers with all their snapshots, chosen before the trainer sees any
row. Why customers and not rows: the out-of-time split and the monitoring reference stay whole
customer histories, and no customer's months end up on both sides of a split. Why stratified: the
customers with at least one positive label (a default, a churn, an upsell) keep their share, so a
rare outcome is not thinned out by chance. The choice is the order of a fixed hash of the
customer id within each stratum: the same feature set gives the same sample on any machine, and
a larger cap keeps every customer a smaller one kept.

It reads two columns (id, label) of each part to choose, then only the chosen customers' rows,
so memory is that of the sample, not of the feature set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SAMPLE_METHOD = "customers stratified by any positive label; hash order of the id within each stratum"


def sample_customers(parts: list[Path], meta: dict[str, Any], max_customers: int) -> dict[str, Any] | None:
    """`{"kept_ids": Arrow array, "summary": dict}`, or None when the set has at most `max_customers`."""
    id_col, label = meta["id_column"], meta["label"]["name"]
    ever = pd.concat([pq.read_table(p, columns=[id_col, label]).to_pandas().groupby(id_col, sort=False)[label].max()
                      for p in parts])
    ever = ever.groupby(level=0, sort=False).max()  # own data in one file: a customer may span row groups
    n = len(ever)
    if n <= max_customers:
        return None
    ids = ever.index.to_numpy()
    order_key = pd.util.hash_array(ids)
    kept: list[np.ndarray] = []
    strata = {}
    for value in (0, 1):
        members = np.flatnonzero(ever.to_numpy() == value)
        k = int(round(len(members) * max_customers / n))
        kept.append(ids[members[np.argsort(order_key[members], kind="stable")[:k]]])
        strata[str(value)] = {"customers": int(len(members)), "kept": k}
    chosen = np.concatenate(kept)
    return {
        "kept_ids": pa.array(chosen),
        "summary": {"max_customers": int(max_customers), "customers": int(n), "kept_customers": int(len(chosen)),
                    "by_any_positive_label": strata, "method": SAMPLE_METHOD},
    }
