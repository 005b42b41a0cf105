"""Cross-validated fitting of LightGBM: folds boosted together, early stopping on their mean, out-of-fold scores,
refit, the model choice.

Reads encoded development rows and their folds (`TrainData`, made by `training.train` from
`training.split.Split`); writes nothing. Every candidate (each Optuna trial, the default-parameter
baseline, the tuned parameters) is judged the same way:

- all folds boost together, one round at a time (as `lightgbm.cv` does), each fitted on its
  training rows and scored on its validation rows; training stops when the mean validation ROC
  AUC over the folds has not improved for `early_stopping_rounds` rounds (at most
  `n_estimators`). The round with the best mean is the candidate's number of rounds, its CV
  estimate is that mean, each fold's AUC and out-of-fold raw scores are taken at that round.
  Not each fold at its own best round: on small tables the maximum of each fold's noisy AUC curve
  is biased upward and rewards jagged, overfitting candidates (measured on 6 public tables, split
  seeds 3-5 (the benchmark reports 0-2), a 25-trial search: the common round gave the higher
  test AUC in 12 of 16 runs, mean +0.005);
- the refit uses that number of rounds (`training.train.refit_rounds` scales it to more rows);
- the tuned parameters replace the defaults only when their CV mean is ahead by more than
  `margin` standard errors of the difference (`choose`): the larger of the spread of the per-fold
  differences / sqrt(k) and the paired bootstrap SE of the out-of-fold AUC difference (both
  candidates are scored on the same rows, so the comparison is paired). On a small table one
  lucky split no longer decides, and a search winner that is ahead only by noise is not taken.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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


def _dataset(X: np.ndarray, y: np.ndarray, data: TrainData, params: dict[str, Any],  # noqa: N803
             reference: Any = None) -> Any:
    """A LightGBM Dataset built with the candidate's threads. Not LightGBM's default (every core):
    with folds boosting in turn, datasets and boosters on different thread counts made each
    round ~15x slower (measured: 5 folds x 111 rounds, 4,000 rows, 10.2 s against 0.7 s)."""
    import lightgbm as lgb

    return lgb.Dataset(X, label=y, feature_name=data.feature_names, categorical_feature=data.categorical or "auto",
                       reference=reference, free_raw_data=True,
                       params={"num_threads": params.get("num_threads", 0), "verbosity": -1})


def cross_validate(params: dict[str, Any], data: TrainData,
                   after_round: Callable[[int, float], None] | None = None, report_every: int = 10) -> CVResult:
    """Boost every fold of `data` together and stop early on the folds' mean validation AUC.

    `after_round(round, mean_auc)` runs every `report_every` rounds with the mean validation AUC
    after that round (it may raise to stop the candidate: the Optuna pruner does).
    """
    passive_openmp()
    import lightgbm as lgb

    boosters = []
    for t, v in data.folds:
        train_set = _dataset(data.X[t], data.y[t], data, params)
        booster = lgb.Booster(params=params, train_set=train_set)
        booster.add_valid(_dataset(data.X[v], data.y[v], data, params, reference=train_set), VALID_NAME)
        boosters.append(booster)
    history: list[list[float]] = []  # per round, each fold's validation AUC
    best_mean, best_round = -np.inf, 0
    for rnd in range(1, data.n_estimators + 1):
        for booster in boosters:
            booster.update()
        aucs = [float(next(value for _, name, value, _ in booster.eval_valid() if name == "auc"))
                for booster in boosters]
        history.append(aucs)
        mean = float(np.mean(aucs))
        if mean > best_mean:
            best_mean, best_round = mean, rnd
        if after_round is not None and rnd % report_every == 0:
            after_round(rnd, mean)
        if rnd - best_round >= data.early_stopping_rounds:
            break
    oof = np.full(len(data.y), np.nan)
    which = np.full(len(data.y), -1, dtype=np.int64)
    for i, (booster, (_, v)) in enumerate(zip(boosters, data.folds, strict=True)):
        oof[v] = booster.predict(data.X[v], raw_score=True, num_iteration=best_round)
        which[v] = i
    return CVResult(fold_aucs=history[best_round - 1] if best_round else [],
                    best_iterations=[best_round] * len(boosters), oof_raw=oof, fold_of_row=which)


def refit(params: dict[str, Any], X: np.ndarray, y: np.ndarray, rounds: int, data: TrainData) -> Any:  # noqa: N803
    """Fit `rounds` boosting rounds on `X`, `y` (no validation set); `best_iteration` = `rounds`."""
    passive_openmp()
    import lightgbm as lgb

    booster = lgb.train(params, _dataset(X, y, data, params), num_boost_round=rounds)
    booster.best_iteration = booster.current_iteration()
    return booster


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
    """`("tuned" | "baseline", se)`: tuned only when its CV mean beats the baseline's by more
    than `margin_se` standard errors of the paired difference."""
    if tuned is None:
        return "baseline", float("nan")
    se = standard_error(tuned, y, seed, against=baseline)
    return ("tuned" if tuned.mean > baseline.mean + margin_se * se else "baseline"), se
