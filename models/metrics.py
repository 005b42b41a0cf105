"""The metrics training, promotion, monitoring and compliance share, defined once.

Reads labels, probabilities and a task's tiers; writes nothing. The names in `METRICS` are the
ones logged to MLflow as `valid_<name>`, `test_<name>` and `baseline_test_<name>`:

- `roc_auc`, `pr_auc` (average precision), `ks` (max TPR - FPR),
- `brier`, `log_loss`, `ece` (expected calibration error over equal-width probability bins),
- `lift_top10` (positive rate in the top decile of scores / overall positive rate) and
  `capture_top10` (share of all positives found in the top decile).

`positive_threshold` is where a task's tiers start to act: the probability from which a
prediction counts as positive for the fairness gates and the compliance pack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from configs import TenureError


class FairnessError(TenureError, ValueError):
    """Inputs that cannot be audited (lengths differ, a tier that does not exist)."""


METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "ks", "brier", "log_loss", "ece", "lift_top10", "capture_top10")


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Sum over equal-width bins of |observed rate - mean probability|, weighted by bin share."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if len(y) == 0:
        return float("nan")
    which = np.clip((p * bins).astype(np.int64), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    sum_y = np.bincount(which, weights=y, minlength=bins)
    sum_p = np.bincount(which, weights=p, minlength=bins)
    used = counts > 0
    gaps = np.abs(sum_y[used] - sum_p[used])  # = count * |mean_y - mean_p|
    return float(gaps.sum() / len(y))


def top_fraction_mask(p: np.ndarray, fraction: float) -> np.ndarray:
    """The ceil(fraction * n) highest scores (ties broken by row order, so it is deterministic)."""
    n = len(p)
    k = max(1, int(np.ceil(fraction * n)))
    order = np.argsort(-np.asarray(p, dtype=np.float64), kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[order[:k]] = True
    return mask


def binary_metrics(y: np.ndarray, p: np.ndarray, *, ece_bins: int = 10, top_fraction: float = 0.1) -> dict[str, float]:
    """Every metric in `METRICS` for labels `y` (0/1) and probabilities `p`."""
    from sklearn.metrics import (
        average_precision_score,
        brier_score_loss,
        log_loss,
        roc_auc_score,
        roc_curve,
    )

    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise ValueError("metrics need both classes in the labels")
    fpr, tpr, _ = roc_curve(y, p)
    top = top_fraction_mask(p, top_fraction)
    base_rate = y.mean()
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "ks": float(np.max(tpr - fpr)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "ece": expected_calibration_error(y, p, ece_bins),
        "lift_top10": float(y[top].mean() / base_rate),
        "capture_top10": float(y[top].sum() / y.sum()),
    }


def positive_threshold(tiers: Sequence[Mapping[str, Any]], positive_tier: int) -> float:
    """The probability from which a prediction is in tier `positive_tier` (0-based) or above."""
    if not 1 <= positive_tier < len(tiers):
        names = [t.get("name") for t in tiers]
        raise FairnessError(
            f"positive_tier {positive_tier} does not name a tier above the lowest one; the task's "
            f"tiers are {names} (use 1..{len(tiers) - 1})"
        )
    return float(tiers[positive_tier - 1]["max_probability"])
