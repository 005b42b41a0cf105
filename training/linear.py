"""The linear part of a model: a logistic regression blended into the boosted trees when it helps out of fold.

Reads encoded development rows and their folds (`training.cv.TrainData`) and the feature
definitions; writes nothing. On small tables a plain logistic regression often ranks as well as
the trees on smooth, nearly linear effects, and the two err differently; their blend,
`(1 - w) * trees + w * linear` on the raw (log-odds) score, is what `models.artifact.LinearPart`
scores and explains (exact SHAP values, added to the trees').

The regression (`fit_linear`) works on the model's own encoded row, so serving needs nothing but
the artefact: numeric features clipped to their training range, a missing value filled with the
training median and flagged by its own coefficient, standardised; categorical features one-hot
on their codes plus one column for missing or unknown. L2 penalty `1 / c` on the coefficients
(scikit-learn's `C`, intercept free). A task's monotone constraints bound the sign of the
feature's coefficient, so the blend keeps them.

The weight (`choose_weight`) is the one of `0, step, ..., 1` with the highest CV mean AUC of the
blended out-of-fold scores, each fold's regression fitted on that fold's training rows only; 0
(the trees alone) unless a blend is ahead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.artifact import LinearPart
from training.cv import CVResult, TrainData, fold_aucs

DENSE_MAX_COLUMNS = 256


def _design(X: np.ndarray,  # noqa: N803
            features: Sequence[Mapping[str, Any]]) -> tuple[Any, list[dict[str, Any]], list[list[int]]]:
    """The regression's design matrix of encoded rows `X` (sparse above `DENSE_MAX_COLUMNS`
    columns: a feature of many categories adds one column per category), the per-feature
    statistics computed on `X` that it used, and each feature's columns in it."""
    from scipy import sparse

    stats: list[dict[str, Any]] = []
    blocks: list[Any] = []
    columns: list[list[int]] = []
    width = 0
    for j, f in enumerate(features):
        col = X[:, j]
        missing = ~np.isfinite(col)
        if f["kind"] == "categorical":
            n = len(f["categories"])
            known = ~missing & (col >= 0) & (col < n)
            codes = np.where(known, col, n).astype(np.int64)
            block = sparse.csr_matrix((np.ones(len(col)), (np.arange(len(col)), codes)), shape=(len(col), n + 1))
            stats.append({"kind": "categorical", "n": n})
        else:
            seen = col[~missing]
            low, high = (float(seen.min()), float(seen.max())) if len(seen) else (0.0, 0.0)
            fill = float(np.median(seen)) if len(seen) else 0.0
            filled = np.clip(np.where(missing, fill, col), low, high)
            std = float(filled.std())
            s = {"kind": "numeric", "low": low, "high": high, "fill": fill, "mean": float(filled.mean()),
                 "scale": std if std > 0 else 1.0}
            stats.append(s)
            block = sparse.csr_matrix(np.column_stack([(filled - s["mean"]) / s["scale"], missing.astype(np.float64)]))
        blocks.append(block)
        columns.append(list(range(width, width + block.shape[1])))
        width += block.shape[1]
    if not blocks:
        return np.empty((len(X), 0)), stats, columns
    Z = sparse.hstack(blocks, format="csr")  # noqa: N806
    # dense unless wide (narrow designs are fitted exactly as in c06250f, which the benchmark ran)
    return (Z.toarray() if Z.shape[1] <= DENSE_MAX_COLUMNS else Z), stats, columns


def _fit_logistic(Z: Any, y: np.ndarray, c: float,  # noqa: N803
                  bounds: Sequence[tuple[float | None, float | None]]) -> tuple[float, np.ndarray]:
    """Intercept and coefficients minimising the log loss + ||beta||^2 / (2c), within `bounds`."""
    from scipy.optimize import minimize

    y = y.astype(np.float64)
    rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b, beta = theta[0], theta[1:]
        s = Z @ beta + b
        p = 1.0 / (1.0 + np.exp(-s))
        value = float(np.sum(np.logaddexp(0.0, s) - y * s) + 0.5 * beta @ beta / c)
        r = p - y
        return value, np.concatenate([[r.sum()], Z.T @ r + beta / c])

    start = np.zeros(Z.shape[1] + 1)
    start[0] = np.log(rate / (1 - rate))
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(None, None), *bounds],
                      options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-8})
    return float(result.x[0]), np.asarray(result.x[1:])


def fit_linear(X: np.ndarray, y: np.ndarray, features: Sequence[Mapping[str, Any]],  # noqa: N803
               monotone: Mapping[str, int], c: float, weight: float = 1.0) -> LinearPart:
    """The regression fitted on encoded rows `X`, labels `y`, as a `LinearPart` of `weight`."""
    Z, stats, columns = _design(X, features)  # noqa: N806
    bounds: list[tuple[float | None, float | None]] = [(None, None)] * Z.shape[1]
    for f, cols in zip(features, columns, strict=True):
        sign = monotone.get(f["name"], 0) if f["kind"] == "numeric" else 0
        if sign:  # the value's column (the second is the missing flag, off the constraint's grid)
            bounds[cols[0]] = (0.0, None) if sign > 0 else (None, 0.0)
    intercept, beta = _fit_logistic(Z, y, c, bounds)
    terms: list[dict[str, Any]] = []
    for s, cols in zip(stats, columns, strict=True):
        if s["kind"] == "categorical":
            terms.append({"kind": "categorical", "coefs": [float(v) for v in beta[cols[:-1]]],
                          "missing_coef": float(beta[cols[-1]]), "centre": 0.0})
        else:
            terms.append({"kind": "numeric", **{k: s[k] for k in ("low", "high", "fill", "mean", "scale")},
                          "coef": float(beta[cols[0]]), "missing_coef": float(beta[cols[1]]), "centre": 0.0})
    centres = LinearPart(weight, intercept, terms).terms_of(X).mean(axis=0) if len(X) else np.zeros(len(terms))
    for term, centre in zip(terms, centres, strict=True):
        term["centre"] = float(centre)
    return LinearPart(weight, intercept, terms)


def linear_oof(data: TrainData, features: Sequence[Mapping[str, Any]], monotone: Mapping[str, int],
               c: float) -> np.ndarray:
    """Out-of-fold raw scores of the regression on `data`'s folds (NaN on rows no fold validates)."""
    oof = np.full(len(data.y), np.nan)
    for t, v in data.folds:
        oof[v] = fit_linear(data.X[t], data.y[t], features, monotone, c).raw_score(data.X[v])
    return oof


@dataclass
class Blend:
    """The chosen weight, the blended CV and the CV mean AUC of each part alone."""

    weight: float
    cv: CVResult  # of the blended out-of-fold scores (the trees' folds, rounds and validated rows)
    trees_cv_mean: float
    linear_cv_mean: float


def choose_weight(trees: CVResult, linear: np.ndarray, y: np.ndarray, step: float) -> Blend:
    """The blend weight of `0, step, ..., 1` with the highest CV mean AUC (the smallest on a tie)."""
    which, k = trees.fold_of_row, len(trees.fold_aucs)
    weights = np.unique(np.clip(np.round(np.append(np.arange(0.0, 1.0, step), 1.0), 6), 0.0, 1.0))
    best_w, best_aucs = 0.0, fold_aucs(y, trees.oof_raw, which, k)
    trees_mean = float(np.mean(best_aucs))
    for w in weights[1:]:
        aucs = fold_aucs(y, (1 - w) * trees.oof_raw + w * linear, which, k)
        if np.mean(aucs) > np.mean(best_aucs):
            best_w, best_aucs = float(w), aucs
    oof = (1 - best_w) * trees.oof_raw + best_w * linear
    cv = CVResult(fold_aucs=best_aucs if best_w else list(trees.fold_aucs), best_iterations=trees.best_iterations,
                  oof_raw=oof, fold_of_row=which)
    return Blend(best_w, cv, trees_mean, float(np.mean(fold_aucs(y, linear, which, k))))
