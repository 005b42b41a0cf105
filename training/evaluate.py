"""Metrics of a binary scorer and the choice of its calibration.

Reads labels, probabilities and raw scores as arrays; writes nothing. The metric names here are
the ones logged to MLflow as `valid_<name>`, `test_<name>` and `baseline_test_<name>`, and read
by promotion and monitoring:

- `roc_auc`, `pr_auc` (average precision), `ks` (max TPR - FPR),
- `brier`, `log_loss`, `ece` (expected calibration error over equal-width probability bins),
- `lift_top10` (positive rate in the top decile of scores / overall positive rate) and
  `capture_top10` (share of all positives found in the top decile).

Calibration is chosen without looking at the test rows, on the out-of-fold raw scores of the
development rows (`choose_oof_calibration`): each candidate (`none`, Platt, isotonic) is cross-
fitted over the folds (fitted on the other folds' out-of-fold scores, applied to this fold's) and
judged by the Brier score; isotonic is a candidate only with at least `isotonic_min_rows` rows,
and a candidate that lowers the out-of-fold ROC AUC by more than `max_auc_loss` is dropped
(isotonic steps on few rows make plateaus of equal probability). That loss is measured within
each fold (the row-weighted mean over folds of raw AUC minus calibrated AUC): each fold's scores
come from one fold model and go through one cross-fitted map, so a within-fold loss is ranking the
map threw away, while the AUC of the pooled folds also moves when two folds' maps differ in scale
(seen: a cross-fitted Platt on two time-series folds "lost" 0.03 pooled AUC, and dropping it left
a churn model predicting 2.4 % against 6.9 % observed). The winner (ties go to `none`) is refitted
on every out-of-fold row. `choose_calibration` is the
older held-out-half choice on one validation period.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.artifact import Calibration

# ---- calibration --------------------------------------------------------------------------

def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def fit_calibration(method: str, raw: np.ndarray, y: np.ndarray) -> Calibration:
    """Fit `none`, `platt` (logistic on the raw score) or `isotonic` (on sigmoid(raw))."""
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if method == "none":
        return Calibration()
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6, max_iter=1000)
        lr.fit(raw.reshape(-1, 1), y)
        return Calibration(method="platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
        iso.fit(_sigmoid(raw), y)
        return Calibration(method="isotonic", x=[float(v) for v in iso.X_thresholds_],
                           y=[float(v) for v in iso.y_thresholds_])
    raise ValueError(f"unknown calibration method {method!r}")


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def choose_oof_calibration(raw: np.ndarray, y: np.ndarray, fold: np.ndarray, methods: Sequence[str], *,
                           isotonic_min_rows: int, max_auc_loss: float) -> tuple[Calibration, dict[str, float]]:
    """The calibration chosen on out-of-fold raw scores (see the module docstring).

    `fold`: the fold that scored each row. Returns the chosen calibration refitted on every row,
    and per candidate its cross-fitted Brier score (`<method>`), pooled ROC AUC (`<method>_roc_auc`)
    and within-fold AUC loss (`<method>_auc_loss`, the one judged against `max_auc_loss`).
    """
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    fold = np.asarray(fold)
    base_auc = _auc(y, Calibration()(raw))
    folds = np.unique(fold)
    # folds whose rows hold both classes: the within-fold AUC is defined there
    judged = [(fold == f, float((fold == f).sum())) for f in folds if len(np.unique(y[fold == f])) == 2]
    # against the uncalibrated probabilities (`none`): what the model outputs without a calibration
    # (a sigmoid that saturates on extreme raw scores already ties some of them)
    uncalibrated = Calibration()(raw)
    base_within = {i: _auc(y[m], uncalibrated[m]) for i, (m, _) in enumerate(judged)}
    scores: dict[str, float] = {}
    candidates = [m for m in methods if m != "isotonic" or len(y) >= isotonic_min_rows]
    for method in ["none", *candidates]:
        p = np.empty(len(y))
        usable = True
        for f in folds:
            fit, apply = fold != f, fold == f
            if method != "none" and len(np.unique(y[fit])) < 2:
                usable = False
                break
            cal = fit_calibration(method, raw[fit], y[fit])
            if cal.method == "platt" and cal.a <= 0:
                usable = False  # a falling map would reverse the ranking (and the monotone constraints)
                break
            p[apply] = cal(raw[apply])
        if not usable:
            continue
        scores[f"{method}_roc_auc"] = _auc(y, p)
        loss = (sum(w * (base_within[i] - _auc(y[m], p[m])) for i, (m, w) in enumerate(judged))
                / sum(w for _, w in judged)) if judged else 0.0
        scores[f"{method}_auc_loss"] = float(loss)
        if loss > max_auc_loss and method != "none":
            continue
        scores[method] = float(np.mean((p - y) ** 2))
    best = min((m for m in ["none", *candidates] if m in scores), key=lambda m: (scores[m], m != "none"))
    final = fit_calibration(best, raw, y)
    if final.method != "none" and (
            (final.method == "platt" and final.a <= 0) or base_auc - _auc(y, final(raw)) > max_auc_loss):
        return Calibration(), scores
    return final, scores


def choose_calibration(raw: np.ndarray, y: np.ndarray, times: pd.Series | None, methods: Sequence[str],
                       seed: int) -> tuple[Calibration, dict[str, float]]:
    """The calibration with the best Brier score on a held-out half of the validation rows.

    Returns the chosen method refitted on all rows, and the held-out Brier score of each
    candidate (for the log). Falls back to `none` when a half lacks one class.
    """
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    fit_idx, judge_idx = _halves(y, times, seed)
    scores: dict[str, float] = {}
    if len(np.unique(y[fit_idx])) < 2 or len(np.unique(y[judge_idx])) < 2:
        return Calibration(), scores
    for method in ["none", *methods]:
        cal = fit_calibration(method, raw[fit_idx], y[fit_idx])
        if cal.method == "platt" and cal.a <= 0:
            continue  # a falling map would reverse the ranking (and the monotone constraints)
        p = cal(raw[judge_idx])
        scores[method] = float(np.mean((p - y[judge_idx]) ** 2))
    best = min(scores, key=lambda m: (scores[m], m != "none"))
    final = fit_calibration(best, raw, y)
    if final.method == "platt" and final.a <= 0:
        return Calibration(), scores
    return final, scores


def _halves(y: np.ndarray, times: pd.Series | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Earlier / later snapshots when there are several, else a seeded stratified half split."""
    n = len(y)
    if times is not None:
        t = pd.to_datetime(pd.Series(times)).to_numpy()
        snaps = np.unique(t)
        if len(snaps) >= 2:
            cut = snaps[(len(snaps) + 1) // 2]  # the earlier half fits (the larger one if odd)
            return np.flatnonzero(t < cut), np.flatnonzero(t >= cut)
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    if np.bincount(y, minlength=2).min() < 2:
        return idx, idx[:0]
    a, b = train_test_split(idx, test_size=0.5, stratify=y, random_state=seed)
    return np.sort(a), np.sort(b)
