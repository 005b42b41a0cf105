"""The one fitting function, the cross-validated Optuna search around it, and behaviour of the trained booster.

Tiny synthetic data, no MLflow: monotone constraints hold (more lateness and debt never lower
the risk) where an unconstrained model breaks them; the same seed gives the same search; the
start points are the first trials; pruning works across folds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from configs.train import load_train_config
from features.definitions import FEATURES_BY_NAME
from models import load_spec
from models.artifact import TenureModel
from training.cv import TrainData, fit_fold
from training.train import lightgbm_params, monotone_violations
from training.tune import start_point, tune

SPEC = load_spec("default_risk")
MONOTONE = ("dpd_max_12m", "dpd_current", "late_payments_12m", "debt_ratio")


def _risk_frame(n: int, seed: int) -> pd.DataFrame:
    """Default-risk features with a label that is NOT monotone in lateness and debt.

    Risk rises with days past due and debt overall, but the data has a bump: customers with
    10-30 days past due or a debt ratio around 1 default less often than their neighbours, so an
    unconstrained model learns a dip that the constraints must forbid.
    """
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for name in SPEC.features:
        d = FEATURES_BY_NAME[name]
        if d.kind == "categorical":
            cols[name] = pd.Categorical(rng.choice(d.categories, n), categories=d.categories)
        else:
            cols[name] = rng.gamma(2.0, 2.0, n)
    df = pd.DataFrame(cols)
    df["dpd_max_12m"] = rng.integers(0, 120, n).astype(float)
    df["dpd_current"] = rng.integers(0, 90, n).astype(float)
    df["late_payments_12m"] = rng.integers(0, 12, n).astype(float)
    df["debt_ratio"] = rng.uniform(0, 2.5, n)
    bump = (((df["dpd_max_12m"] > 10) & (df["dpd_max_12m"] < 30)) * 2.5
            + ((df["debt_ratio"] > 0.8) & (df["debt_ratio"] < 1.2)) * 2.5
            + ((df["late_payments_12m"] >= 3) & (df["late_payments_12m"] <= 5)) * 2.0)
    logit = (-3 + 0.03 * df["dpd_max_12m"] + 0.02 * df["dpd_current"] + 0.15 * df["late_payments_12m"]
             + 1.0 * df["debt_ratio"] - bump + (df["credit_class"] == "bad") * 1.0)
    df[SPEC.label.name] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int8")
    return df


@pytest.fixture(scope="module")
def encoder() -> TenureModel:
    return TenureModel(booster=None, features=[FEATURES_BY_NAME[f].to_dict() for f in SPEC.features])


@pytest.fixture(scope="module")
def data(encoder: TenureModel) -> TrainData:
    return _train_data(encoder, _risk_frame(4000, 0), _risk_frame(1500, 1), n_estimators=300, early_stopping_rounds=30)


def _train_data(encoder: TenureModel, train: pd.DataFrame, valid: pd.DataFrame, folds: int = 1,
                **policy: int) -> TrainData:
    """Training rows then validation rows; one fold (train -> valid) or `folds` stratified folds over both."""
    from sklearn.model_selection import StratifiedKFold

    label = SPEC.label.name
    rows = pd.concat([train, valid], ignore_index=True)
    y = rows[label].to_numpy()
    if folds == 1:
        split = [(np.arange(len(train)), np.arange(len(train), len(rows)))]
    else:
        split = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(rows, y))
    return TrainData(encoder.encode_frame(rows), y, split, encoder.feature_names, encoder.categorical_indices, **policy)


def _fit(params: dict, data: TrainData) -> tuple:
    return fit_fold(params, data, data.folds[0])


def _max_drop(booster: object, encoder: TenureModel, rows: pd.DataFrame, feature: str) -> float:
    """Largest fall in predicted risk when `feature` rises along a grid, others held, over all rows."""
    lo, hi = {"dpd_max_12m": (0, 120), "dpd_current": (0, 90), "late_payments_12m": (0, 12),
              "debt_ratio": (0, 2.5)}[feature]
    grid = np.linspace(lo, hi, 25)
    X = encoder.encode_frame(rows)  # noqa: N806
    j = encoder.feature_names.index(feature)
    preds = []
    for value in grid:
        Xg = X.copy()  # noqa: N806
        Xg[:, j] = value
        preds.append(booster.predict(Xg, raw_score=True))
    steps = np.diff(np.vstack(preds), axis=0)  # (grid - 1, rows)
    return float(-steps.min())


PARAM_SETS = (
    {"num_leaves": 31, "learning_rate": 0.1, "min_child_samples": 10},
    {"num_leaves": 26, "learning_rate": 0.04, "min_child_samples": 79, "max_depth": 4, "feature_fraction": 0.65,
     "bagging_fraction": 0.68, "lambda_l1": 1e-4, "lambda_l2": 0.12, "min_split_gain": 0.2},
    {"num_leaves": 64, "learning_rate": 0.15, "min_child_samples": 20, "bagging_fraction": 1.0},
)


@pytest.mark.parametrize("extra", PARAM_SETS)
def test_monotone_constraints_hold_where_an_unconstrained_model_breaks_them(data: TrainData, encoder: TenureModel,
                                                                            extra: dict) -> None:
    cfg = load_train_config()
    params = {**lightgbm_params(cfg, SPEC), **extra}
    assert params["monotone_constraints"] == SPEC.monotone_vector()
    assert params["monotone_constraints_method"] == "intermediate"
    constrained, _ = _fit(params, data)
    free_params = {k: v for k, v in params.items() if not k.startswith("monotone")}
    free, _ = _fit(free_params, data)
    rows = _risk_frame(400, 2)
    free_drops = {f: _max_drop(free, encoder, rows, f) for f in MONOTONE}
    # the test has teeth: without constraints the model does lower the risk somewhere
    assert max(free_drops.values()) > 0.05, free_drops
    for feature in MONOTONE:
        assert _max_drop(constrained, encoder, rows, feature) <= 1e-9, feature
    # and the check training runs before registering a model sees the same
    X = encoder.encode_frame(rows)  # noqa: N806
    assert max(monotone_violations(lambda x: free.predict(x, raw_score=True), X, encoder.feature_names,
                                   SPEC.monotone).values()) > 0.05
    assert max(monotone_violations(lambda x: constrained.predict(x, raw_score=True), X, encoder.feature_names,
                                   SPEC.monotone).values()) == 0.0


def test_fit_fold_returns_the_best_iteration_and_its_validation_auc(data: TrainData) -> None:
    cfg = load_train_config()
    booster, score = _fit({**lightgbm_params(cfg, SPEC), "learning_rate": 0.2}, data)
    v = data.folds[0][1]
    assert 1 <= booster.best_iteration < data.n_estimators  # early stopping cut it
    assert booster.num_trees() == booster.best_iteration  # trimmed to the best iteration
    assert score == pytest.approx(roc_auc_score(data.y[v], booster.predict(data.X[v])), abs=1e-9)
    again, score_again = _fit({**lightgbm_params(cfg, SPEC), "learning_rate": 0.2}, data)
    assert score_again == score
    np.testing.assert_array_equal(again.predict(data.X[v]), booster.predict(data.X[v]))


@pytest.fixture(scope="module")
def small(encoder: TenureModel) -> TrainData:
    """A smaller problem for the search tests (speed), trained without monotone constraints."""
    return _train_data(encoder, _risk_frame(1500, 3), _risk_frame(600, 4), folds=3, n_estimators=80,
                       early_stopping_rounds=10)


def _tune(data: TrainData, storage: Path, seed: int, trials: int = 3, study: str = "unit",
          start_points: list | None = None, **pruning: object):
    cfg = load_train_config(trials=trials, seed=seed)
    cfg = cfg.model_copy(update={"tuning": cfg.tuning.model_copy(update={
        "sampler_startup_trials": 2, "start_points": start_points or [],
        "pruning": cfg.tuning.pruning.model_copy(update=pruning) if pruning else cfg.tuning.pruning})})
    params = lightgbm_params(cfg, load_spec("churn"))  # no monotone constraints: faster
    return tune(data, params, cfg, f"sqlite:///{storage}", study, log_trials=False)


def test_same_seed_same_search_and_a_finished_study_resumes_without_new_trials(small: TrainData,
                                                                               tmp_path: Path) -> None:
    data = small
    db = tmp_path / "optuna.db"  # one storage, independent studies
    a = _tune(data, db, seed=3, study="a")
    b = _tune(data, db, seed=3, study="b")
    c = _tune(data, db, seed=4, study="c")
    assert a.n_complete + a.n_pruned == 3 and a.new_trials == 3
    assert a.best_params == b.best_params and a.best_value == b.best_value and a.best_trial == b.best_trial
    assert c.best_params != a.best_params  # the seed matters, so the equality above means something
    resumed = _tune(data, db, seed=3, study="a")
    assert resumed.new_trials == 0 and resumed.best_params == a.best_params
    extended = _tune(data, db, seed=3, trials=4, study="a")
    assert extended.new_trials == 1 and extended.n_complete + extended.n_pruned == 4


def test_pruning_stops_weak_trials_after_a_fold(small: TrainData, tmp_path: Path) -> None:
    import optuna

    data = small
    db = tmp_path / "optuna.db"
    result = _tune(data, db, seed=5, trials=6, study="p", startup_trials=1, warmup_folds=1)
    assert result.n_pruned >= 1
    assert result.n_complete >= 1 and result.best_params is not None
    trials = optuna.load_study(study_name="p", storage=f"sqlite:///{db}").get_trials(deepcopy=False)
    for t in trials:  # a pruned trial stopped before its last fold; a complete one reported every fold
        steps = sorted(t.intermediate_values)
        if t.state == optuna.trial.TrialState.PRUNED:
            assert 1 <= steps[-1] < len(data.folds)
        else:
            assert steps == [1, 2, 3] and len(t.user_attrs["fold_roc_auc"]) == 3
            assert t.value == pytest.approx(np.mean(t.user_attrs["fold_roc_auc"]))
    off = _tune(data, db, seed=5, trials=2, study="q", enabled=False)
    assert off.n_pruned == 0


def test_the_start_points_are_the_first_trials_defaults_clipped_into_the_space(small: TrainData,
                                                                                tmp_path: Path) -> None:
    import optuna

    cfg = load_train_config()
    space = cfg.tuning.small_search_space
    defaults = start_point({}, space)
    assert defaults["num_leaves"] == 31 and defaults["learning_rate"] == 0.1 and defaults["min_child_samples"] == 20
    assert defaults["lambda_l2"] == space["lambda_l2"].low  # LightGBM's 0 clipped to the log range
    points = [{}, {"num_leaves": 8, "learning_rate": 0.05}]
    result = _tune(small, tmp_path / "o.db", seed=1, trials=3, study="s", start_points=points)
    trials = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'o.db'}").get_trials(deepcopy=False)
    assert result.new_trials == 3
    assert trials[0].params == defaults
    assert trials[1].params == start_point(points[1], space) and trials[1].params["num_leaves"] == 8
    assert trials[2].params not in (trials[0].params, trials[1].params)  # then the sampler
    # the best trial's CV comes back with its out-of-fold scores, equal to a rerun (deterministic)
    from training.cv import cross_validate

    best_cv = result.cvs[result.best_trial]
    assert best_cv.mean == pytest.approx(result.best_value)
    params = {**lightgbm_params(load_train_config(), load_spec("churn")), **result.best_params}
    np.testing.assert_allclose(cross_validate(params, small).oof_raw, best_cv.oof_raw)
    # a resumed study does not queue them again
    again = _tune(small, tmp_path / "o.db", seed=1, trials=4, study="s", start_points=points)
    assert again.new_trials == 1
