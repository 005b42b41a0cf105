"""The tuned model as the mean of the best trials (`tuning.ensemble_size`): one averaged booster,
the CV of the averaged out-of-fold scores, and the search's best trials with their CVs.

Small synthetic tables, no MLflow.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from configs.train import load_train_config
from models import load_spec
from models.artifact import TenureModel
from training.cv import CVResult, TrainData, average_boosters, cross_validate, mean_cv
from training.train import lightgbm_params
from training.tune import tune

FIXED = {"objective": "binary", "metric": "auc", "seed": 0, "num_threads": 1, "deterministic": True,
         "force_col_wise": True, "verbosity": -1, "feature_pre_filter": False}
MEMBERS = [{**FIXED, "num_leaves": 4, "learning_rate": 0.05, "lambda_l2": 10.0},
           {**FIXED, "num_leaves": 16, "learning_rate": 0.1, "bagging_fraction": 0.7, "bagging_freq": 1},
           {**FIXED, "num_leaves": 7, "learning_rate": 0.2, "feature_fraction": 0.5, "seed": 3}]


def _table(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))  # noqa: N806
    X[rng.random(X.shape) < 0.05] = np.nan  # missing values take the trees' default directions
    logit = 1.2 * np.nan_to_num(X[:, 0]) - 0.8 * np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2])
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)


def _data(X: np.ndarray, y: np.ndarray, k: int = 4) -> TrainData:  # noqa: N803
    folds = [(np.sort(t), np.sort(v)) for t, v in StratifiedKFold(k, shuffle=True, random_state=0).split(X, y)]
    return TrainData(X, y, folds, [f"x{i}" for i in range(X.shape[1])], [], 200, 20)


def test_the_averaged_booster_scores_and_explains_exactly_the_mean_of_its_members(tmp_path: Path) -> None:
    X, y = _table(1500, seed=1)  # noqa: N806
    boosters = [lgb.train(p, lgb.Dataset(X, y), num_boost_round=r) for p, r in zip(MEMBERS, (40, 25, 60), strict=True)]
    merged = average_boosters(boosters)
    X_new, _ = _table(400, seed=2)  # noqa: N806
    raw = np.mean([b.predict(X_new, raw_score=True) for b in boosters], axis=0)
    np.testing.assert_allclose(merged.predict(X_new, raw_score=True), raw, rtol=0, atol=1e-9)
    assert merged.num_trees() == 125 and merged.best_iteration == 125
    # TreeSHAP is linear in the leaf values: the contributions are the members' mean and add up
    contrib = merged.predict(X_new, pred_contrib=True)
    np.testing.assert_allclose(contrib, np.mean([b.predict(X_new, pred_contrib=True) for b in boosters], axis=0),
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(contrib.sum(axis=1), raw, rtol=0, atol=1e-9)
    # saved and loaded as one LightGBM model file (the artefact's booster.txt)
    merged.save_model(str(tmp_path / "booster.txt"))
    loaded = lgb.Booster(model_file=str(tmp_path / "booster.txt"))
    np.testing.assert_allclose(loaded.predict(X_new, raw_score=True), raw, rtol=0, atol=1e-9)
    assert average_boosters(boosters[:1]) is boosters[0]


def test_the_averaged_booster_keeps_the_tenure_artefact_and_categorical_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    features = [{"name": "rent", "kind": "numeric", "dtype": "float64"},
                {"name": "plan", "kind": "categorical", "dtype": "category", "categories": ["a", "b", "c", "d"]}]
    enc = TenureModel(booster=None, features=features)
    n = 1200
    plan = rng.choice(["a", "b", "c", "d"], n)
    rent = rng.gamma(3, 400, n)
    y = (rng.random(n) < np.where(np.isin(plan, ["b", "d"]), 0.6, 0.2)).astype(int)
    import pandas as pd

    X = enc.encode_frame(pd.DataFrame({"rent": rent, "plan": plan}))  # noqa: N806
    data = lgb.Dataset(X, y, feature_name=enc.feature_names, categorical_feature=enc.categorical_indices)
    boosters = [lgb.train({**p, "min_data_per_group": 5, "cat_smooth": 1}, data, num_boost_round=30)
                for p in MEMBERS]
    merged = average_boosters(boosters)
    raw = np.mean([b.predict(X, raw_score=True) for b in boosters], axis=0)
    model = TenureModel(booster=merged, features=features)
    model.save(tmp_path / "m")
    again = TenureModel.load(tmp_path / "m")
    np.testing.assert_allclose(again.booster.predict(X, raw_score=True), raw, rtol=0, atol=1e-9)


def test_the_ensemble_cv_is_the_auc_of_the_averaged_out_of_fold_scores_per_fold() -> None:
    X, y = _table(1200, seed=3)  # noqa: N806
    data = _data(X, y)
    cvs = [cross_validate(p, data) for p in MEMBERS]
    ens = mean_cv(cvs, y)
    oof = np.mean([c.oof_raw for c in cvs], axis=0)
    np.testing.assert_allclose(ens.oof_raw, oof)
    for i, (_, v) in enumerate(data.folds):
        assert ens.fold_aucs[i] == pytest.approx(roc_auc_score(y[v], oof[v]))
    assert ens.mean == pytest.approx(np.mean(ens.fold_aucs))
    assert mean_cv(cvs[:1], y) is cvs[0]
    other = CVResult(cvs[1].fold_aucs, cvs[1].best_iterations, cvs[1].oof_raw, np.roll(cvs[1].fold_of_row, 1))
    with pytest.raises(ValueError, match="same folds"):
        mean_cv([cvs[0], other], y)


def test_the_search_returns_its_best_trials_with_their_cross_validations(tmp_path: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    X, y = _table(1000, seed=4)  # noqa: N806
    data = _data(X, y, k=3)
    cfg = load_train_config(trials=6, seed=2)
    cfg = cfg.model_copy(update={"tuning": cfg.tuning.model_copy(update={
        "ensemble_size": 3, "ensemble_share": 0.5, "sampler_startup_trials": 2,
        "pruning": cfg.tuning.pruning.model_copy(update={"enabled": False})})})
    base = lightgbm_params(cfg, load_spec("churn"))
    result = tune(data, base, cfg, f"sqlite:///{tmp_path / 'o.db'}", "ens", log_trials=False)
    study = optuna.load_study(study_name="ens", storage=f"sqlite:///{tmp_path / 'o.db'}")
    done = sorted((t for t in study.get_trials() if t.state == TrialState.COMPLETE), key=lambda t: (-t.value, t.number))
    assert [n for n, _, _ in result.top] == [t.number for t in done[:3]]
    assert (result.best_trial, result.best_params) == (study.best_trial.number, study.best_trial.params)
    values = [v for _, _, v in result.top]
    assert values == sorted(values, reverse=True)
    # every one ran in this process: its CV (with out-of-fold scores) comes back, equal to a rerun
    assert set(result.cvs) == {n for n, _, _ in result.top}
    for number, _params, value in result.top:
        assert result.cvs[number].mean == pytest.approx(value)
    number, params, _ = result.top[2]
    np.testing.assert_allclose(cross_validate({**base, **params}, data).oof_raw, result.cvs[number].oof_raw)


@pytest.mark.parametrize(("finished", "members"), [(25, 5), (60, 5), (12, 2), (6, 1), (3, 1), (0, 1)])
def test_the_ensemble_takes_at_most_a_fifth_of_the_trials_run(finished: int, members: int) -> None:
    tuning = load_train_config().tuning
    assert (tuning.ensemble_size, tuning.ensemble_share) == (5, 0.2)
    assert tuning.ensemble_members(finished) == members


def test_a_short_search_keeps_its_best_trial_alone(tmp_path: Path) -> None:
    X, y = _table(800, seed=6)  # noqa: N806
    cfg = load_train_config(trials=4, seed=1)
    base = lightgbm_params(cfg, load_spec("churn"))
    result = tune(_data(X, y, k=3), base, cfg, f"sqlite:///{tmp_path / 'o.db'}", "short", log_trials=False)
    assert [n for n, _, _ in result.top] == [result.best_trial]
