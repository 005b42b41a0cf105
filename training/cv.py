"""Cross-validated fitting of LightGBM: per-fold early stopping, out-of-fold scores, refit, the model choice.

Reads encoded development rows and their folds (`TrainData`, made by `training.train` from
`training.split.Split`); writes nothing. Every candidate (each Optuna trial, the default-parameter
baseline, the tuned parameters) is judged the same way:

- each fold fits on its training rows and stops early on its validation rows' ROC AUC
  (`early_stopping_rounds`, at most `n_estimators` rounds); the fold's AUC is the one at its best
  iteration, and the validation rows get out-of-fold raw scores from that fold's booster;
- the CV estimate is the mean fold AUC; `CVResult.rounds`, the mean of the folds' best
  iterations, is where the refit's number of rounds starts (`training.train.refit_rounds` scales it
  to the refit's rows for a random split);
- several candidates (the best trials) are judged together by the CV of their mean raw score
  (`mean_cv`) and refitted into one booster whose raw score is exactly that mean
  (`average_boosters`);
- the tuned parameters replace the defaults only when their CV mean is ahead by more than
  `margin` standard errors of the difference (`choose`): the larger of the spread of the per-fold
  differences / sqrt(k) and the paired bootstrap SE of the out-of-fold AUC difference (both
  candidates are scored on the same rows, so the comparison is paired). On a small table one
  lucky split no longer decides, and a search winner that is ahead only by noise is not taken.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.split import Fold

VALID_NAME = "valid"
BOOTSTRAP_ROUNDS = 200


def passive_openmp() -> None:
    """Ask OpenMP to sleep, not spin, while it waits (unless the user chose otherwise).

    LightGBM's OpenMP threads busy-wait by default; on a shared 2-core machine that made
    `num_threads: 2` about 20x slower than one thread (measured). The setting is read when
    LightGBM's library loads, so this must run before the first `import lightgbm`; later calls
    change nothing.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclass
class TrainData:
    """Encoded development rows, their CV folds and the fixed boosting policy."""

    X: np.ndarray  # ML convention
    y: np.ndarray
    folds: list[Fold]
    feature_names: list[str]
    categorical: list[int]
    n_estimators: int
    early_stopping_rounds: int


@dataclass
class CVResult:
    """One candidate's cross-validation: per-fold AUC and best iteration, out-of-fold raw scores."""

    fold_aucs: list[float]
    best_iterations: list[int]
    oof_raw: np.ndarray  # NaN on rows no fold validates (out of time: the oldest training rows)
    fold_of_row: np.ndarray = field(repr=False)  # the fold that validated each row, -1 for none

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_aucs))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_aucs, ddof=1)) if len(self.fold_aucs) > 1 else 0.0

    @property
    def rounds(self) -> int:
        """Boosting rounds for the refit: the mean best iteration over the folds."""
        return max(1, int(round(float(np.mean(self.best_iterations)))))

    @property
    def validated(self) -> np.ndarray:
        return self.fold_of_row >= 0


def _dataset(X: np.ndarray, y: np.ndarray, data: TrainData, reference: Any = None) -> Any:  # noqa: N803
    import lightgbm as lgb

    return lgb.Dataset(X, label=y, feature_name=data.feature_names, categorical_feature=data.categorical or "auto",
                       reference=reference, free_raw_data=True)


def fit_fold(params: dict[str, Any], data: TrainData, fold: Fold,
             callbacks: Sequence[Callable[..., None]] = ()) -> tuple[Any, float]:
    """Fit on the fold's training rows, early-stopped on its validation AUC.

    Returns the booster cut at its best iteration (`best_iteration` set) and that iteration's AUC.
    """
    passive_openmp()
    import lightgbm as lgb

    t, v = fold
    train_set = _dataset(data.X[t], data.y[t], data)
    valid_set = _dataset(data.X[v], data.y[v], data, reference=train_set)
    booster = lgb.train(
        params, train_set, num_boost_round=data.n_estimators, valid_sets=[valid_set], valid_names=[VALID_NAME],
        callbacks=[lgb.early_stopping(data.early_stopping_rounds, first_metric_only=True, verbose=False), *callbacks],
    )
    best_iteration = booster.best_iteration or booster.current_iteration()
    score = float(booster.best_score[VALID_NAME]["auc"])
    trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=best_iteration))
    trimmed.best_iteration = best_iteration
    return trimmed, score


def cross_validate(params: dict[str, Any], data: TrainData,
                   after_fold: Callable[[int, list[float]], None] | None = None) -> CVResult:
    """Every fold of `data`; `after_fold(i, aucs_so_far)` runs after fold `i` (it may raise to stop:
    the Optuna pruner does)."""
    oof = np.full(len(data.y), np.nan)
    which = np.full(len(data.y), -1, dtype=np.int64)
    aucs: list[float] = []
    iterations: list[int] = []
    for i, fold in enumerate(data.folds):
        booster, auc = fit_fold(params, data, fold)
        v = fold[1]
        oof[v] = booster.predict(data.X[v], raw_score=True)
        which[v] = i
        aucs.append(auc)
        iterations.append(int(booster.best_iteration))
        if after_fold is not None:
            after_fold(i, aucs)
    return CVResult(fold_aucs=aucs, best_iterations=iterations, oof_raw=oof, fold_of_row=which)


def refit(params: dict[str, Any], X: np.ndarray, y: np.ndarray, rounds: int, data: TrainData) -> Any:  # noqa: N803
    """Fit `rounds` boosting rounds on `X`, `y` (no validation set); `best_iteration` = `rounds`."""
    passive_openmp()
    import lightgbm as lgb

    booster = lgb.train(params, _dataset(X, y, data), num_boost_round=rounds)
    booster.best_iteration = booster.current_iteration()
    return booster


def mean_cv(cvs: Sequence[CVResult], y: np.ndarray) -> CVResult:
    """The CV of the mean raw score of several candidates judged on the same folds.

    Each fold's AUC is recomputed on that fold's validation rows from the averaged out-of-fold
    scores (members early-stopped on the fold as in their own CV); `best_iterations` are the
    members' mean per fold (shown, not used: each member is refitted with its own rounds)."""
    if len(cvs) == 1:
        return cvs[0]
    which = cvs[0].fold_of_row
    if any(not np.array_equal(c.fold_of_row, which) for c in cvs):
        raise ValueError("the candidates were not cross-validated on the same folds")
    oof = np.mean([c.oof_raw for c in cvs], axis=0)
    folds = range(len(cvs[0].fold_aucs))
    aucs = fold_aucs(y, oof, which, len(folds))
    iterations = [int(round(float(np.mean([c.best_iterations[i] for c in cvs])))) for i in folds]
    return CVResult(fold_aucs=aucs, best_iterations=iterations, oof_raw=oof, fold_of_row=which)


def fold_aucs(y: np.ndarray, score: np.ndarray, fold_of_row: np.ndarray, k: int) -> list[float]:
    """The ROC AUC of `score` on each of folds 0..k-1's validation rows (`fold_of_row`, as in `CVResult`)."""
    from sklearn.metrics import roc_auc_score

    return [float(roc_auc_score(y[fold_of_row == i], score[fold_of_row == i])) for i in range(k)]


def average_boosters(boosters: Sequence[Any]) -> Any:
    """One LightGBM booster whose raw score is exactly the mean of `boosters`' raw scores.

    Binary models on the same features: every tree of every booster is kept, its leaf values and
    internal node values divided by the number of boosters (the first tree of each holds its
    starting score, so that is averaged too). One booster keeps everything downstream unchanged:
    the saved artefact, LightGBM's fast single-row path in serving, and TreeSHAP contributions
    (`pred_contrib`), which are linear in the leaf values and so the mean of the members'.
    """
    import re

    import lightgbm as lgb

    if len(boosters) == 1:
        return boosters[0]
    k = len(boosters)
    texts = [b.model_to_string() for b in boosters]
    head = texts[0].partition("\nTree=0\n")[0]
    # tree_sizes (byte lengths for parallel loading) no longer hold; LightGBM parses without them
    head = "\n".join(line for line in head.split("\n") if not line.startswith("tree_sizes="))
    tail = texts[0].partition("end of trees")[2]
    trees: list[str] = []
    for text in texts:
        if "num_tree_per_iteration=1\n" not in text:
            raise ValueError("only single-output (binary) boosters can be averaged")
        body = "Tree=0\n" + text.partition("\nTree=0\n")[2].partition("end of trees")[0]
        for block in re.split(r"(?m)^Tree=\d+\n", body)[1:]:
            lines = []
            for line in block.strip().split("\n"):
                key, eq, values = line.partition("=")
                if eq and key in ("leaf_value", "internal_value"):
                    line = f"{key}=" + " ".join(repr(float(v) / k) for v in values.split())
                lines.append(line)
            trees.append("\n".join(lines))
    body = "".join(f"Tree={i}\n{tree}\n\n\n" for i, tree in enumerate(trees))
    merged = lgb.Booster(model_str=f"{head}\n\n{body}end of trees{tail}")
    merged.best_iteration = merged.current_iteration()
    return merged


def bootstrap_auc_se(y: np.ndarray, score: np.ndarray, seed: int, rounds: int = BOOTSTRAP_ROUNDS,
                     other: np.ndarray | None = None) -> float:
    """Standard error of the ROC AUC of `score` (of AUC(score) - AUC(other) when `other` is given,
    resampling the same rows for both) by a stratified bootstrap of the rows."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=np.int64)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) < 2 or len(neg) < 2:
        return float("nan")
    values = []
    for _ in range(rounds):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        value = roc_auc_score(y[idx], score[idx])
        if other is not None:
            value -= roc_auc_score(y[idx], other[idx])
        values.append(value)
    return float(np.std(values, ddof=1))


def standard_error(cv: CVResult, y: np.ndarray, seed: int, against: CVResult | None = None) -> float:
    """The SE of a CV mean AUC, or of its difference from `against` (same folds): the larger of
    the fold spread / sqrt(k) and the bootstrap SE on the out-of-fold rows."""
    k = len(cv.fold_aucs)
    folds = np.asarray(cv.fold_aucs) - (np.asarray(against.fold_aucs) if against is not None else 0.0)
    spread = float(np.std(folds, ddof=1) / np.sqrt(k)) if k > 1 else 0.0
    mask = cv.validated
    boot = bootstrap_auc_se(y[mask], cv.oof_raw[mask], seed,
                            other=against.oof_raw[mask] if against is not None else None)
    return float(np.nanmax([spread, boot]))


def choose(tuned: CVResult | None, baseline: CVResult, y: np.ndarray, margin_se: float,
           seed: int) -> tuple[str, float]:
    """`("tuned" | "baseline", se)`: tuned when its CV mean exceeds the baseline's plus `margin_se`
    standard errors of the paired difference. A negative margin keeps the tuned model unless the
    baseline is ahead by more than that many standard errors (the defaults are one of the search's
    start points, so this asks the search to have gone wrong beyond noise before overruling it)."""
    if tuned is None:
        return "baseline", float("nan")
    se = standard_error(tuned, y, seed, against=baseline)
    return ("tuned" if tuned.mean > baseline.mean + margin_se * se else "baseline"), se
