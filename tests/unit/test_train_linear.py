"""The linear part blended into the trees (`training.linear`, `models.artifact.LinearPart`): its fit, its
out-of-fold weight, and that scoring, explaining, saving and serving a blended model agree.

Small synthetic tables, no MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from models.artifact import Calibration, LinearPart, TenureModel
from serving.scoring import SingleRowPredictor
from training.cv import TrainData, cross_validate
from training.linear import choose_weight, fit_linear, linear_oof

FEATURES = [{"name": "income", "kind": "numeric"}, {"name": "debt", "kind": "numeric"},
            {"name": "noise", "kind": "numeric"},
            {"name": "region", "kind": "categorical", "categories": ["north", "south", "east"]}]
PARAMS = {"objective": "binary", "metric": "auc", "seed": 0, "num_threads": 1, "deterministic": True,
          "force_col_wise": True, "verbosity": -1, "feature_pre_filter": False, "num_leaves": 8,
          "learning_rate": 0.05, "min_child_samples": 20}


def _table(n: int, seed: int, linear: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Encoded rows (region as its code, some values missing) and labels: a smooth additive
    logit (`linear`), or one the trees capture and a regression cannot (an interaction)."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(50, 10, n), rng.normal(0, 1, n), rng.normal(0, 1, n),  # noqa: N806
                         rng.integers(0, 3, n).astype(np.float64)])
    X[rng.random(n) < 0.1, 1] = np.nan
    X[rng.random(n) < 0.05, 3] = np.nan
    debt = np.nan_to_num(X[:, 1], nan=1.5)  # missing debt: high risk
    if linear:
        logit = -0.08 * (X[:, 0] - 50) + 0.9 * debt + 0.7 * (X[:, 3] == 1) - 1.5
    else:
        logit = 2.5 * np.sign(X[:, 0] - 50) * np.sign(debt) - 1.0
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)


def _data(X: np.ndarray, y: np.ndarray, k: int = 5) -> TrainData:  # noqa: N803
    folds = [(np.sort(t), np.sort(v)) for t, v in StratifiedKFold(k, shuffle=True, random_state=0).split(X, y)]
    return TrainData(X, y, folds, [f["name"] for f in FEATURES], [3], 400, 30)


def test_the_regression_matches_scikit_learn_on_the_same_design() -> None:
    """Without constraints it is L2 logistic regression (C = c) on standardised, median-filled,
    flagged numerics and one-hot categories: the same scores as scikit-learn's on that design."""
    X, y = _table(1200, seed=1)  # noqa: N806
    part = fit_linear(X, y, FEATURES, {}, c=1.0)
    cols = []
    for j, f in enumerate(FEATURES):
        col = X[:, j]
        if f["kind"] == "categorical":
            codes = np.where(np.isfinite(col), col, 3).astype(int)
            cols += [(codes == k).astype(float) for k in range(4)]
        else:
            miss = ~np.isfinite(col)
            filled = np.where(miss, np.nanmedian(col), col)
            cols += [(filled - filled.mean()) / filled.std(), miss.astype(float)]
    reference = LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit(np.column_stack(cols), y)
    np.testing.assert_allclose(part.raw_score(X), reference.decision_function(np.column_stack(cols)), atol=1e-4)
    assert part.terms[0]["coef"] < 0 < part.terms[1]["coef"]  # income lowers, debt raises the risk
    assert part.terms[1]["missing_coef"] > 0  # a missing debt is read as high risk, as the data says


def test_monotone_constraints_bound_the_coefficients_sign() -> None:
    X, y = _table(1200, seed=2)  # noqa: N806
    free = fit_linear(X, y, FEATURES, {}, c=1.0)
    assert free.terms[0]["coef"] < -0.1
    bound = fit_linear(X, y, FEATURES, {"income": 1, "debt": 1}, c=1.0)  # against the data for income
    assert bound.terms[0]["coef"] == pytest.approx(0.0, abs=1e-12) and bound.terms[1]["coef"] > 0
    grid = X[:50].copy()
    for value in np.linspace(0, 120, 25):
        before = bound.raw_score(grid)
        grid[:, 0] = value
        assert np.all(bound.raw_score(grid) >= before - 1e-12)


def test_unseen_values_are_clipped_missing_and_unknown_categories_get_their_coefficient() -> None:
    X, y = _table(800, seed=3)  # noqa: N806
    part = fit_linear(X, y, FEATURES, {}, c=1.0)
    top = float(np.nanmax(X[:, 0]))
    row = X[:1].copy()
    row[0, 0] = top
    far = row.copy()
    far[0, 0] = 1e12  # out of the training range: scored as its edge, no extreme score
    assert part.raw_score(far)[0] == pytest.approx(part.raw_score(row)[0])
    unknown, missing = row.copy(), row.copy()
    unknown[0, 3], missing[0, 3] = 7.0, np.nan
    assert part.raw_score(unknown)[0] == pytest.approx(part.raw_score(missing)[0])
    assert np.isfinite(part.raw_score(np.full((1, 4), np.nan))).all()


def test_a_blended_model_scores_explains_and_saves_as_one(tmp_path: Path) -> None:
    X, y = _table(1500, seed=4)  # noqa: N806
    booster = lgb.train(PARAMS, lgb.Dataset(X, y, categorical_feature=[3]), num_boost_round=60)
    linear = fit_linear(X, y, FEATURES, {}, c=1.0, weight=0.4)
    model = TenureModel(booster=booster, features=FEATURES, calibration=Calibration("platt", 0.9, -0.1),
                        linear=linear)
    X_new, _ = _table(300, seed=5)  # noqa: N806
    raw = 0.6 * booster.predict(X_new, raw_score=True) + 0.4 * linear.raw_score(X_new)
    np.testing.assert_allclose(model.raw_score(X_new), raw, atol=1e-12)
    contrib = model.contributions(X_new)
    np.testing.assert_allclose(contrib.sum(axis=1), raw, atol=1e-9)  # SHAP values add up to the blend
    # the linear part's SHAP values average to zero over its training rows (its base value is their mean score)
    np.testing.assert_allclose(linear.contributions(X)[:, :-1].mean(axis=0), 0.0, atol=1e-9)
    model.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "tenure_model.json").read_text())["artifact_version"] == 2
    loaded = TenureModel.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(X_new), model.predict_proba(X_new), atol=1e-12)
    np.testing.assert_allclose(loaded.contributions(X_new), contrib, atol=1e-12)
    # serving's single-row path gives the same numbers
    predictor = SingleRowPredictor(loaded.booster, 4, loaded.linear)
    for i in range(20):
        assert predictor.raw_score(X_new[i]) == pytest.approx(raw[i], abs=1e-9)
        np.testing.assert_allclose(predictor.contributions(X_new[i]), contrib[i], atol=1e-9)
    predictor.close()
    # a model without a linear part is written as version 1, which older Tenure reads
    TenureModel(booster=booster, features=FEATURES).save(tmp_path / "v1")
    assert json.loads((tmp_path / "v1" / "tenure_model.json").read_text())["artifact_version"] == 1
    assert TenureModel.load(tmp_path / "v1").linear is None


def test_the_weight_is_chosen_out_of_fold_and_helps_only_where_the_effect_is_linear() -> None:
    """A smooth additive effect on few rows: the blend is chosen and beats the trees on new rows.
    An interaction the regression cannot express: weight 0, the trees alone."""
    for linear, seed in ((True, 6), (False, 7)):
        X, y = _table(700, seed=seed, linear=linear)  # noqa: N806
        data = _data(X, y)
        trees = cross_validate(PARAMS, data)
        blend = choose_weight(trees, linear_oof(data, FEATURES, {}, 1.0), y, 0.1)
        assert blend.trees_cv_mean == pytest.approx(trees.mean)
        X_new, y_new = _table(20000, seed=seed + 100, linear=linear)  # noqa: N806
        booster = lgb.train(PARAMS, lgb.Dataset(X, y, categorical_feature=[3]), num_boost_round=trees.rounds)
        part = fit_linear(X, y, FEATURES, {}, c=1.0, weight=blend.weight)
        auc_trees = roc_auc_score(y_new, booster.predict(X_new, raw_score=True))
        auc_blend = roc_auc_score(y_new, part.blend(booster.predict(X_new, raw_score=True), X_new))
        if linear:
            assert blend.weight >= 0.3 and blend.cv.mean > trees.mean
            assert auc_blend > auc_trees + 0.005
        else:
            assert blend.weight == 0.0 and blend.cv.mean == pytest.approx(trees.mean)
            assert auc_blend == auc_trees
    # the blend's out-of-fold scores are those of each fold's own fits: no row scored by a fit that saw it
    X, y = _table(500, seed=8)  # noqa: N806
    data = _data(X, y)
    oof = linear_oof(data, FEATURES, {}, 1.0)
    t, v = data.folds[0]
    np.testing.assert_allclose(oof[v], fit_linear(X[t], y[t], FEATURES, {}, 1.0).raw_score(X[v]))


def test_a_linear_part_alone_round_trips_through_json() -> None:
    X, y = _table(400, seed=9)  # noqa: N806
    part = fit_linear(X, y, FEATURES, {}, c=0.5, weight=0.3)
    again = LinearPart(**json.loads(json.dumps(part.to_dict())))
    np.testing.assert_allclose(again.contributions(X), part.contributions(X), atol=0)


def test_a_feature_of_many_categories_fits_through_the_sparse_design(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above `DENSE_MAX_COLUMNS` design columns the one-hot matrix stays sparse (a 20,000-row table
    with a 2,000-value category would need 320 MB dense); the fit is the same."""
    from training import linear

    rng = np.random.default_rng(10)
    n, k = 3000, 300
    features = [{"name": "x", "kind": "numeric"},
                {"name": "shop", "kind": "categorical", "categories": [f"s{i}" for i in range(k)]}]
    X = np.column_stack([rng.normal(size=n), rng.integers(0, k, n).astype(np.float64)])  # noqa: N806
    effect = rng.normal(0, 0.7, k)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] + effect[X[:, 1].astype(int)])))).astype(np.int64)
    Z, _, _ = linear._design(X, features)  # noqa: N806
    assert Z.shape[1] == 2 + k + 1 > linear.DENSE_MAX_COLUMNS and hasattr(Z, "tocsc")  # scipy sparse
    wide = fit_linear(X, y, features, {}, c=1.0)
    monkeypatch.setattr(linear, "DENSE_MAX_COLUMNS", 10_000)
    assert isinstance(linear._design(X, features)[0], np.ndarray)
    np.testing.assert_allclose(wide.raw_score(X), fit_linear(X, y, features, {}, c=1.0).raw_score(X), atol=1e-3)
    assert np.corrcoef(wide.terms[1]["coefs"], effect)[0, 1] > 0.5  # the categories' effects are learned


def test_promotion_weighs_a_blended_models_features_by_mean_abs_shap_not_the_trees_gain() -> None:
    """The stability gate checks the features carrying at least 5 % of the model's importance; the
    trees' gain does not see a feature only the regression uses, so a blended model is weighed by
    its SHAP values (which cover both parts)."""
    from training.promote import feature_importance

    X, y = _table(1500, seed=11)  # noqa: N806
    flat = X.copy()
    flat[:, 0] = 50.0  # the trees never split on income
    booster = lgb.train(PARAMS, lgb.Dataset(flat, y, categorical_feature=[3]), num_boost_round=40)
    trees_only, measure = feature_importance(TenureModel(booster=booster, features=FEATURES), X)
    assert measure == "gain" and trees_only["income"] == 0.0
    blended = TenureModel(booster=booster, features=FEATURES, linear=fit_linear(X, y, FEATURES, {}, 1.0, weight=0.5))
    share, measure = feature_importance(blended, X)
    assert measure == "mean |SHAP|" and sum(share.values()) == pytest.approx(1.0)
    assert share["income"] > 0.05  # gated on PSI like the features the trees use


def test_a_malformed_linear_part_is_refused_on_load_in_one_line(tmp_path: Path) -> None:
    from configs import TenureError

    X, y = _table(400, seed=12)  # noqa: N806
    booster = lgb.train(PARAMS, lgb.Dataset(X, y, categorical_feature=[3]), num_boost_round=5)
    TenureModel(booster=booster, features=FEATURES, linear=fit_linear(X, y, FEATURES, {}, 1.0, weight=0.2)).save(
        tmp_path / "m")
    meta = tmp_path / "m" / "tenure_model.json"
    payload = json.loads(meta.read_text())
    for broken, match in ((lambda p: p["linear"]["terms"].pop(), "terms"),
                          (lambda p: p["linear"]["terms"][3]["coefs"].pop(), "'region', which has 3 categories"),
                          (lambda p: p["linear"]["terms"][0].pop("scale"), "linear part is malformed")):
        copy = json.loads(json.dumps(payload))
        broken(copy)
        meta.write_text(json.dumps(copy))
        with pytest.raises(TenureError, match=match):
            TenureModel.load(tmp_path / "m")
