"""Scoring, decisions and reasons without a server: the fast path equals the batch path, SHAP is exact."""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
import warnings
from math import factorial
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.definitions import FEATURES, FEATURES_BY_NAME
from models import load_spec, task_names
from models.artifact import TenureModel
from serving.prediction_log import PredictionLog, PredictionLogError, read_predictions
from serving.reasons import ReasonWriter, format_number, format_value_en
from serving.schemas import build_batch_model, build_customer_model
from serving.scoring import Scorer, ScoringError, ServedModel, SingleRowPredictor

from helpers import serving as fx

CustomerRecord = build_customer_model(FEATURES)


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[TenureModel, pd.DataFrame]]:
    return {task: fx.train_tiny_model(task, n=500, seed=10 + i, n_estimators=30) for i, task in enumerate(task_names())}


@pytest.fixture(scope="module")
def served(trained) -> dict[str, ServedModel]:
    return {task: ServedModel.build(task=task, model_name=task, version=str(i + 1), run_id=f"run-{task}",
                                    alias="champion", model=model)
            for i, (task, (model, _)) in enumerate(trained.items())}


@pytest.fixture()
def scorer(served, tmp_path) -> Scorer:
    s = Scorer(served, PredictionLog(tmp_path / "log.db"), top_reasons=3, max_batch_size=50,
               max_explained_batch_size=10)
    yield s
    s.log.close()


def _records(task: str, n: int, seed: int) -> list[dict[str, Any]]:
    """Rows as the service sees them: validated by the generated request model."""
    rows = fx.synthetic_rows(task, n, seed=seed)
    out = []
    for row in rows.to_dict("records"):
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        out.append(CustomerRecord.model_validate(clean).__dict__)
    return out


def _frame(records: list[dict[str, Any]], model: TenureModel) -> pd.DataFrame:
    return pd.DataFrame([{n: r.get(n) for n in model.feature_names} for r in records])


# ---- exactness ------------------------------------------------------------------------------
@pytest.mark.parametrize("task", task_names())
def test_fast_path_equals_batch_path(task, trained, served):
    model, _ = trained[task]
    records = _records(task, 120, seed=99)
    batch = model.predict_proba(model.encode_frame(_frame(records, model)))  # what `tenure predict` does
    fast = np.array([served[task].probability_of(served[task].predictor.raw_score(model.encode_record(r)))
                     for r in records])
    assert served[task].predictor.fast, "the LightGBM single-row C API should be available"
    np.testing.assert_allclose(fast, batch, rtol=0, atol=1e-9)
    assert fast.std() > 0.01  # the model really discriminates, so equality is not trivial


@pytest.mark.parametrize("task", task_names())
def test_contributions_equal_shap_and_sum_to_raw_score(task, trained, served):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's own deprecation notices on import
        import shap

    model, _ = trained[task]
    records = _records(task, 40, seed=7)
    X = model.encode_frame(_frame(records, model))  # noqa: N806
    fast = np.vstack([served[task].predictor.contributions(X[i]) for i in range(len(X))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's note that LightGBM binary output changed shape
        expected = np.asarray(shap.TreeExplainer(model.booster).shap_values(X))
    np.testing.assert_allclose(fast[:, :-1], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.sum(axis=1), model.raw_score(X), rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast, model.contributions(X), rtol=0, atol=1e-12)


def _goes_left(node: dict[str, Any], value: float) -> bool:
    """LightGBM's routing of one value at one split (numeric with missing types, categorical sets)."""
    if node["decision_type"] == "==":
        if math.isnan(value) or value < 0:
            return False
        return str(int(value)) in node["threshold"].split("||")
    missing = node["missing_type"]
    if math.isnan(value) and missing != "NaN":
        value = 0.0
    if (missing == "NaN" and math.isnan(value)) or (missing == "Zero" and value == 0.0):
        return bool(node["default_left"])
    return value <= node["threshold"]


def _count(node: dict[str, Any]) -> float:
    return node["leaf_count"] if "leaf_index" in node else node["internal_count"]


def _expect(node: dict[str, Any], x: np.ndarray, known: frozenset[int]) -> float:
    """E[tree(x) | x_known], unknown features averaged by training counts (path-dependent TreeSHAP)."""
    if "leaf_index" in node:
        return node["leaf_value"]
    left, right = node["left_child"], node["right_child"]
    if node["split_feature"] in known:
        return _expect(left if _goes_left(node, x[node["split_feature"]]) else right, x, known)
    return (_count(left) * _expect(left, x, known) + _count(right) * _expect(right, x, known)) / _count(node)


def test_contributions_are_exact_shapley_values_by_brute_force():
    """Independent of LightGBM and shap: enumerate every coalition of a 5-feature model."""
    import lightgbm as lgb

    names = ["dpd_current", "credit_score", "debt_ratio", "industry", "credit_class"]
    defs = [FEATURES_BY_NAME[n].to_dict() for n in names]
    rng = np.random.default_rng(5)
    n = 600
    frame = pd.DataFrame({
        "dpd_current": np.where(rng.random(n) < 0.15, np.nan, rng.uniform(0, 120, n)),
        "credit_score": rng.uniform(300, 850, n),
        "debt_ratio": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 3, n)),
        "industry": rng.choice(np.array(FEATURES_BY_NAME["industry"].categories, dtype=object), n),
        "credit_class": rng.choice(np.array(["good", "average", "bad", None], dtype=object), n),
    })
    model = TenureModel(booster=None, features=defs)
    X = model.encode_frame(frame)  # noqa: N806
    logit = 0.03 * np.nan_to_num(X[:, 0], nan=60) - 0.006 * (X[:, 1] - 575) + (X[:, 3] == 4) - (X[:, 4] == 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = lgb.train({"objective": "binary", "num_leaves": 8, "min_data_in_leaf": 15, "verbose": -1,
                         "num_threads": 1, "seed": 1, "deterministic": True},
                        lgb.Dataset(X, y, categorical_feature=model.categorical_indices), num_boost_round=12)
    predictor = SingleRowPredictor(booster, len(names))
    trees = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
    m = len(names)
    for row in X[:8]:
        def value(coalition: frozenset[int], row: np.ndarray = row) -> float:
            return sum(_expect(t, row, coalition) for t in trees)

        phi = np.zeros(m)
        for i in range(m):
            others = [j for j in range(m) if j != i]
            for size in range(m):
                weight = factorial(size) * factorial(m - size - 1) / factorial(m)
                for subset in itertools.combinations(others, size):
                    s = frozenset(subset)
                    phi[i] += weight * (value(s | {i}) - value(s))
        got = predictor.contributions(row)
        np.testing.assert_allclose(got[:-1], phi, rtol=0, atol=1e-9)
        assert got[-1] == pytest.approx(value(frozenset()), abs=1e-9)
        assert got.sum() == pytest.approx(predictor.raw_score(row), abs=1e-9)
    predictor.close()


# ---- decisions --------------------------------------------------------------------------------
@pytest.mark.parametrize("task", task_names())
def test_tiers_follow_the_spec_thresholds(task, served):
    spec = load_spec(task)
    bounds = [t.max_probability for t in spec.tiers]
    grid = sorted({0.0, 1.0, *bounds, *(b - 1e-12 for b in bounds), *np.linspace(0, 1, 101).tolist()})
    for p in grid:
        tier = spec.tier_for(p)
        decision = served[task].decision(p)
        assert (decision["tier"], decision["action"], decision["params"]) == (tier.name, tier.action, tier.params)
    first = spec.tiers[0]
    assert served[task].decision(first.max_probability)["tier"] == spec.tiers[1].name  # upper bound exclusive


# ---- reasons ----------------------------------------------------------------------------------
def test_reason_sentences_read_well_in_english_and_chinese():
    features = [FEATURES_BY_NAME[n].to_dict() for n in ("dpd_current", "industry", "satisfaction_avg_12m",
                                                         "active_leases")]
    spec = load_spec("default_risk")
    writer = ReasonWriter.build(features, spec.positive_means, "违约风险")
    assert writer.sentence_en(0, 45.0, True) == (
        "Days past due on the oldest unpaid invoice today is 45 days, which raised the default risk.")
    assert writer.sentence_zh(0, 45.0, True) == "当前最久未付账单的逾期天数为 45 天，推高了违约风险。"
    assert writer.sentence_en(1, "construction", False) == "Industry is construction, which lowered the default risk."
    assert writer.sentence_zh(1, None, False) == "所属行业缺失，降低了违约风险。"
    assert writer.sentence_en(2, 4.25, False) == (
        "Average satisfaction over the last 12 months is 4.25 of 5, which lowered the default risk.")
    assert writer.sentence_en(3, 1.0, True) == "Number of active leases is 1 lease, which raised the default risk."
    assert [format_number(v) for v in (45.0, 12500.0, 3.5, 0.035, 1234.56, -2.0)] == [
        "45", "12,500", "3.5", "0.035", "1,235", "-2"]
    assert format_value_en(12.5, "%") == "12.5%"


@pytest.mark.parametrize("task", task_names())
def test_explanations_are_top_k_exact_and_sum_to_raw_score(task, scorer, trained):
    model, _ = trained[task]
    spec = load_spec(task)
    for record in _records(task, 15, seed=3):
        score = scorer.score(record).scores[task]
        exp = score.explanation
        x = model.encode_record(record)
        raw = float(model.raw_score(x)[0])
        contrib = model.contributions(x)[0]
        assert exp.raw_score == pytest.approx(raw, abs=1e-9)
        assert exp.base_value == pytest.approx(contrib[-1], abs=1e-9)
        total = exp.base_value + sum(r.contribution for r in exp.reasons) + exp.other_contribution
        assert total == pytest.approx(raw, abs=1e-9)
        assert 1 <= len(exp.reasons) <= 3
        magnitudes = [abs(r.contribution) for r in exp.reasons]
        assert magnitudes == sorted(magnitudes, reverse=True)
        threshold = np.sort(np.abs(contrib[:-1]))[-len(exp.reasons)]
        assert min(magnitudes) == pytest.approx(threshold, abs=1e-12)  # nothing larger was left out
        for r in exp.reasons:
            i = model.feature_names.index(r.feature)
            assert r.contribution == pytest.approx(contrib[i], abs=1e-12)
            assert r.direction == ("raised" if r.contribution > 0 else "lowered")
            assert r.value == record.get(r.feature)
            defn = FEATURES_BY_NAME[r.feature]
            assert r.text_en.lower().startswith(defn.description.lower())
            assert r.text_en.endswith(f"{r.direction} {spec.positive_means.removeprefix('raised ')}.")
            assert r.text_zh.startswith(defn.description_zh)
            assert load_spec(task).outcome_zh in r.text_zh
        assert score.tier == spec.tier_for(score.probability).name


# ---- the scorer: requests and the log -----------------------------------------------------------
def test_score_logs_one_row_per_task_with_only_model_features(scorer, trained):
    record = _records("default_risk", 1, seed=11)[0]
    record = {**record, "as_of": pd.Timestamp("2025-03-01").date()}
    response = scorer.score(record)
    frame = read_predictions(scorer.log.path)
    assert sorted(frame["task"]) == sorted(task_names())
    assert set(frame["request_id"]) == {response.request_id}
    assert set(frame["customer_ref"]) == {record["customer_id"]}
    assert set(frame["as_of"]) == {"2025-03-01"}
    con = sqlite3.connect(scorer.log.path)
    for task, text in con.execute("SELECT task, features FROM predictions"):
        model = trained[task][0]
        logged = json.loads(text)
        assert list(logged) == model.feature_names
        assert logged == {n: record.get(n) for n in model.feature_names}
        assert not {"name", "phone", "national_id", "address", "customer_id"} & set(logged)
    con.close()
    for task in task_names():
        row = frame[frame["task"] == task].iloc[0]
        assert row["probability"] == pytest.approx(response.scores[task].probability, abs=0)
        assert row["tier"] == response.scores[task].tier
        assert (row["model_name"], row["model_version"], row["run_id"]) == (
            task, response.scores[task].model.version, f"run-{task}")


def test_predict_and_batch_agree_with_the_batch_path(scorer, trained):
    records = _records("churn", 30, seed=21)
    model = trained["churn"][0]
    expected = model.predict_proba(model.encode_frame(_frame(records, model)))
    single = [scorer.predict("churn", r).probability for r in records]
    batch = scorer.score_batch(records, explain=False)
    np.testing.assert_allclose(single, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose([r.scores["churn"].probability for r in batch.results], expected, rtol=0, atol=1e-9)
    assert [r.customer_id for r in batch.results] == [r["customer_id"] for r in records]
    assert all(r.scores["churn"].explanation is None for r in batch.results)
    explained = scorer.score_batch(records[:10], explain=True)
    for one, many in zip(records[:10], explained.results, strict=True):
        assert many.scores["churn"].explanation == scorer.score(one).scores["churn"].explanation
    counts = read_predictions(scorer.log.path).groupby("request_id").size()
    assert counts[batch.request_id] == 30 * len(task_names())
    assert counts[explained.request_id] == 10 * len(task_names())


def test_requests_the_scorer_refuses(scorer):
    records = _records("upsell", 11, seed=1)
    with pytest.raises(ScoringError, match="explain=true, at most 10"):
        scorer.score_batch(records, explain=True)
    with pytest.raises(ScoringError, match="empty"):
        scorer.score_batch([], explain=False)
    with pytest.raises(ScoringError, match="not served"):
        scorer.predict("fraud", records[0])
    assert read_predictions(scorer.log.path).empty


def test_a_failed_log_write_returns_nothing_and_logs_nothing(served, tmp_path):
    log = PredictionLog(tmp_path / "busy.db", busy_timeout_ms=50)
    scorer = Scorer(served, log)
    blocker = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    record = _records("churn", 1, seed=2)[0]
    with pytest.raises(PredictionLogError, match="locked"):
        scorer.score(record)
    with pytest.raises(PredictionLogError):
        scorer.score_batch([record, record])
    blocker.execute("ROLLBACK")
    blocker.close()
    assert read_predictions(tmp_path / "busy.db").empty
    scorer.score(record)
    assert len(read_predictions(tmp_path / "busy.db")) == len(task_names())
    log.close()


def test_batch_request_model_bounds_and_validates_items():
    batch = build_batch_model(CustomerRecord, 3)
    from pydantic import ValidationError

    assert len(batch.model_validate({"customers": [{"customer_id": 1}] * 3}).customers) == 3
    for body, loc in (({"customers": []}, ("customers",)), ({"customers": [{"customer_id": 1}] * 4}, ("customers",)),
                      ({"customers": [{"customer_id": 1}, {"customer_id": 2, "dpd_current": -1}]},
                       ("customers", 1, "dpd_current")),
                      ({"customers": [{"customer_id": 1}], "explain": "yes please"}, ("explain",)),
                      ({"customers": [{"customer_id": 1}], "extra": 1}, ("extra",))):
        with pytest.raises(ValidationError) as err:
            batch.model_validate(body)
        assert err.value.errors()[0]["loc"] == loc
