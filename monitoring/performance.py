"""Model performance in production: estimated before outcomes arrive, measured once they do.

Reads the window's probabilities (and, with outcomes, a dataset folder); writes nothing.

Before outcomes: confidence-based performance estimation (CBPE). If the calibrated probability
`p` is right, a row's unknown label is Bernoulli(p); the estimate is the ROC AUC expected under
that assumption, in closed form (pairs i != j weighted by p_i (1 - p_j), ties counted half):

    E[AUC] ~= sum_{i != j} p_i (1 - p_j) [s_i > s_j] / sum_{i != j} p_i (1 - p_j)

plus a band from seeded Monte-Carlo draws of the labels (the spread of the AUC one would measure
on this window). As in NannyML's CBPE, the probabilities are first recalibrated on the reference
period with known labels (the version's validation and test predictions, `performance.
recalibrate_on`; isotonic, monotone so the ranking is kept): a model whose probabilities are slightly too sharp or too flat would otherwise over- or
under-state the AUC. It is an estimate and is labelled as one everywhere it is shown; it assumes
the relation between score and outcome has not changed since the reference period.

With outcomes: the labels of the task's feature set built on the dataset (`features.build`),
joined on customer_ref == customer_id and as_of == snapshot_date; rows whose label window is not
over yet (or that are not eligible for a label) stay unlabelled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from configs import TenureError


@dataclass
class AucEstimate:
    """The expected ROC AUC under labels ~ Bernoulli(p), with a Monte-Carlo band."""

    roc_auc: float
    low: float | None  # 2.5% of the draws (rescaled to the window's rows)
    high: float | None  # 97.5%
    draws: int
    rows: int
    expected_positive_rate: float
    calibrated_on: str | None = None  # "reference period (isotonic, N rows)" or None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "method": "CBPE: expected ROC AUC under labels ~ Bernoulli(probability)"}


@dataclass
class Recalibration:
    """Isotonic map from the model's probability to the outcome rate seen on the reference period."""

    x: np.ndarray
    y: np.ndarray
    rows: int
    period: str = "reference period"  # where the labels came from, as shown with the estimate

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(p, dtype=np.float64), self.x, self.y)

    @classmethod
    def fit(cls, p: np.ndarray, y: np.ndarray, period: str = "reference period") -> Recalibration | None:
        """Fitted on reference probabilities and labels; None without both classes."""
        from sklearn.isotonic import IsotonicRegression

        p = np.asarray(p, dtype=np.float64)
        y = np.asarray(y).astype(np.float64)
        keep = np.isfinite(p) & np.isfinite(y)
        p, y = p[keep], y[keep]
        if len(np.unique(y)) < 2:
            return None
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True).fit(p, y)
        return cls(x=np.asarray(iso.X_thresholds_), y=np.asarray(iso.y_thresholds_), rows=len(p), period=period)


def expected_roc_auc(scores: np.ndarray, p: np.ndarray | None = None) -> float:
    """Closed-form expected ROC AUC of `scores` when row i is positive with probability p_i
    (independently); `p` defaults to the scores themselves."""
    scores = np.asarray(scores, dtype=np.float64)
    p = scores if p is None else np.asarray(p, dtype=np.float64)
    keep = np.isfinite(scores) & np.isfinite(p)
    scores, p = scores[keep], p[keep]
    if len(p) < 2:
        return float("nan")
    values, inverse = np.unique(scores, return_inverse=True)  # sorted distinct scores, ties grouped
    q = 1.0 - p
    sum_p = np.bincount(inverse, weights=p, minlength=len(values))
    sum_q = np.bincount(inverse, weights=q, minlength=len(values))
    sum_pq = np.bincount(inverse, weights=p * q, minlength=len(values))
    q_below = np.cumsum(sum_q) - sum_q  # negative weight of strictly lower scores
    numerator = float(sum_p @ q_below + 0.5 * (sum_p @ sum_q - sum_pq.sum()))
    denominator = float(p.sum() * q.sum() - (p * q).sum())
    return numerator / denominator if denominator > 0 else float("nan")


def estimate_roc_auc(scores: np.ndarray, *, recalibration: Recalibration | None = None, draws: int = 200,
                     max_rows: int = 100_000, seed: int = 0) -> AucEstimate:
    """`expected_roc_auc` of the scores (probabilities recalibrated on the reference period when
    given) plus a 95% band from `draws` seeded label draws.

    Draws use at most `max_rows` rows (a seeded sample); the band's half-widths are rescaled by
    sqrt(sample / rows), since the spread of an AUC shrinks with the square root of the rows.
    """
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    p = recalibration(scores) if recalibration is not None else scores
    est = expected_roc_auc(scores, p)
    low = high = None
    if draws > 0 and len(p) >= 2:
        rng = np.random.default_rng(seed)
        idx = np.arange(len(p)) if len(p) <= max_rows else rng.choice(len(p), size=max_rows, replace=False)
        sample = p[idx]
        ranks = rankdata(scores[idx])
        n = len(sample)
        aucs = []
        for _ in range(draws):
            y = rng.random(n) < sample
            pos = int(y.sum())
            if 0 < pos < n:
                aucs.append((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * (n - pos)))
        if len(aucs) >= 2:
            arr = np.asarray(aucs)
            scale = np.sqrt(n / len(p))
            centre = float(arr.mean())
            low = float(est - (centre - float(np.quantile(arr, 0.025))) * scale)
            high = float(est + (float(np.quantile(arr, 0.975)) - centre) * scale)
    return AucEstimate(roc_auc=est, low=low, high=high, draws=draws, rows=len(p),
                       expected_positive_rate=float(p.mean()) if len(p) else float("nan"),
                       calibrated_on=(f"{recalibration.period} (isotonic, {recalibration.rows:,} rows)"
                                      if recalibration is not None else None))


def outcome_labels(dataset_dir: Path, task: str) -> tuple[pd.DataFrame, str]:
    """(customer_ref, as_of, label) of every labelled (customer, snapshot) of `task` in the dataset.

    Built with the feature builder on the dataset (all snapshots whose label window is over);
    returns the frame and the label's name.
    """
    from configs.features import FeaturesConfig
    from features.build import build_task_featureset, compute_panel
    from features.validate import read_dataset
    from models import load_spec, task_names

    if task not in task_names():
        raise TenureError(f"--outcomes needs a task with a spec ({', '.join(task_names())}); {task!r} is not one")
    spec = load_spec(task)
    dataset = read_dataset(Path(dataset_dir))
    panel = compute_panel(dataset)
    fs = build_task_featureset(panel, dataset, spec, FeaturesConfig(min_history_months=1))
    frame = fs.frame
    labels = pd.DataFrame({
        "customer_ref": frame[fs.id_column].astype(str).to_numpy(),
        "as_of": pd.to_datetime(frame[fs.time_column]).dt.strftime("%Y-%m-%d").to_numpy(),
        "label": frame[fs.label_name].astype(np.int8).to_numpy(),
    })
    return labels, fs.label_name


def join_outcomes(log: pd.DataFrame, labels: pd.DataFrame) -> pd.Series:
    """The label of every log row (NaN where unknown), aligned with `log`'s index."""
    keys = pd.DataFrame({"customer_ref": log["customer_ref"].astype(str).to_numpy(),
                         "as_of": log["as_of"].astype("object").where(log["as_of"].notna(), None)})
    keys["as_of"] = keys["as_of"].map(lambda v: None if v is None else str(v)[:10])
    merged = keys.merge(labels.drop_duplicates(["customer_ref", "as_of"]), on=["customer_ref", "as_of"], how="left")
    return pd.Series(merged["label"].to_numpy(dtype=np.float64), index=log.index, name="label")


def measured_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float] | None:
    """Every metric of `models.metrics.binary_metrics`, or None when a class is missing."""
    from models.metrics import binary_metrics

    y = np.asarray(y).astype(np.int64)
    if len(np.unique(y)) < 2:
        return None
    return binary_metrics(y, np.asarray(p, dtype=np.float64))
