"""The real service over HTTP: `bentoml serve serving.service:Tenure` on a temp MLflow registry.

One server (2 workers, API key set) serves three tiny champions registered by the fixture; the
tests score over HTTP and compare with the models themselves, try every kind of bad input (a 4xx
naming the field, never a 500), check the key, and check that a burst of concurrent requests
leaves exactly the answered rows in the prediction log. A second start, on a registry without a
champion, must refuse with a clear message and a non-zero exit.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from features.definitions import FEATURES
from features.schema import PERSONAL_DATA_COLUMNS
from models import load_spec, task_names
from serving.prediction_log import read_predictions
from serving.registry import RegistryError, download_models, load_models, resolve_champions

from helpers import serving as fx

pytestmark = pytest.mark.integration

API_KEY = fx.API_KEY
AUTH = {"X-API-Key": API_KEY}
MAX_BATCH = 40
MAX_EXPLAINED = 10
PREDICT_PATHS = {task: f"/predict_{task}" for task in task_names()}


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict[str, Any]:
    return fx.register_champions(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory) -> Iterator[fx.Server]:
    tmp = tmp_path_factory.mktemp("server")
    env = fx.server_env(registry["tracking_uri"], tmp, workers=2, max_batch_size=MAX_BATCH,
                        max_explained_batch_size=MAX_EXPLAINED, prediction_log={"busy_timeout_ms": 1000})
    with fx.running_server(env, tmp) as srv:
        yield srv


def customer(registry: dict[str, Any], i: int, cid: str | None = None) -> dict[str, Any]:
    """Row `i` of every task's synthetic rows merged into one JSON-ready customer."""
    out: dict[str, Any] = {"customer_id": cid or f"C-{i:05d}"}
    for task in task_names():
        for name, value in registry["rows"][task].iloc[i].items():
            if name != "customer_id" and name not in out:
                out[name] = None if value is None or (isinstance(value, float) and math.isnan(value)) else value
    return out


def expected(registry: dict[str, Any], task: str, record: dict[str, Any]) -> tuple[float, float, np.ndarray]:
    model = registry["models"][task]
    x = model.encode_record(record)
    return float(model.predict_proba(x)[0]), float(model.raw_score(x)[0]), model.contributions(x)[0]


# ---- scoring ------------------------------------------------------------------------------------
def test_score_one_customer(server, registry):
    record = {**customer(registry, 3), "as_of": "2025-03-01"}
    with server.client(headers=AUTH) as c:
        r = c.post("/score", json=record)
    assert r.status_code == 200, r.text
    body = r.json()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", body["request_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["scored_at"])
    assert (body["customer_id"], body["as_of"]) == ("C-00003", "2025-03-01")
    assert set(body["scores"]) == set(task_names())
    for task, score in body["scores"].items():
        probability, raw, contrib = expected(registry, task, record)
        assert score["probability"] == pytest.approx(probability, abs=1e-9)
        tier = load_spec(task).tier_for(score["probability"])
        assert (score["tier"], score["action"], score["action_en"], score["action_zh"], score["params"]) == (
            tier.name, tier.action, tier.action_en, tier.action_zh, tier.params)
        assert score["model"] == {"name": task, "version": registry["versions"][task],
                                  "run_id": registry["run_ids"][task]}
        exp = score["explanation"]
        assert exp["raw_score"] == pytest.approx(raw, abs=1e-9)
        assert exp["base_value"] + sum(x["contribution"] for x in exp["reasons"]) + exp["other_contribution"] == \
            pytest.approx(raw, abs=1e-9)
        assert len(exp["reasons"]) == 3
        names = registry["models"][task].feature_names
        for reason in exp["reasons"]:
            assert reason["contribution"] == pytest.approx(contrib[names.index(reason["feature"])], abs=1e-9)
            assert reason["value"] == record[reason["feature"]]
            assert reason["text_en"].endswith(f"{reason['direction']} {load_spec(task).positive_means[7:]}.")
            assert reason["text_zh"].endswith("。")


def test_score_a_batch(server, registry):
    records = [customer(registry, i) for i in range(25)]
    with server.client(headers=AUTH) as c:
        plain = c.post("/score_batch", json={"customers": records})
        explained = c.post("/score_batch", json={"customers": records[:5], "explain": True})
    assert plain.status_code == 200 and explained.status_code == 200, (plain.text, explained.text)
    body = plain.json()
    assert body["count"] == 25 and [r["customer_id"] for r in body["results"]] == [r["customer_id"] for r in records]
    for task in task_names():
        model = registry["models"][task]
        frame = pd.DataFrame([{n: r.get(n) for n in model.feature_names} for r in records])
        batch_path = model.predict_proba(model.encode_frame(frame))
        np.testing.assert_allclose([r["scores"][task]["probability"] for r in body["results"]], batch_path,
                                   rtol=0, atol=1e-9)
        assert all(r["scores"][task]["explanation"] is None for r in body["results"])
        for r, record in zip(explained.json()["results"], records[:5], strict=True):
            _, raw, _ = expected(registry, task, record)
            assert r["scores"][task]["explanation"]["raw_score"] == pytest.approx(raw, abs=1e-9)


@pytest.mark.parametrize("task", task_names())
def test_per_task_fast_path(server, registry, task):
    record = customer(registry, 7, cid="777")
    with server.client(headers=AUTH) as c:
        r = c.post(PREDICT_PATHS[task], json={**record, "customer_id": 777})
    assert r.status_code == 200, r.text
    body = r.json()
    probability, _, _ = expected(registry, task, record)
    assert body["probability"] == pytest.approx(probability, abs=1e-9)
    assert (body["task"], body["customer_id"], body["tier"]) == (task, "777", load_spec(task).tier_for(probability).name)
    assert body["model"]["version"] == registry["versions"][task]
    assert "explanation" not in body


def test_model_info_and_openapi(server, registry):
    with server.client(headers=AUTH) as c:
        got, posted = c.get("/model_info"), c.post("/model_info")
    assert got.status_code == 200 and posted.status_code == 200
    assert got.json() == posted.json()
    info = got.json()
    assert {m["task"]: (m["version"], m["run_id"]) for m in info["models"]} == {
        t: (registry["versions"][t], registry["run_ids"][t]) for t in task_names()}
    assert [m["features"] for m in info["models"]] == [registry["models"][t].feature_names for t in task_names()]
    assert {f["name"] for f in info["features"]} == {f.name for f in FEATURES}
    assert (info["api_key_required"], info["max_batch_size"], info["max_explained_batch_size"]) == (
        True, MAX_BATCH, MAX_EXPLAINED)
    spec = httpx.get(f"{server.url}/docs.json", timeout=30).json()  # docs stay open
    for path in ("/score", "/score_batch", "/model_info", *PREDICT_PATHS.values()):
        assert spec["paths"][path]["post"]["description"], path
    customer_schema = spec["components"]["schemas"]["CustomerRecord"]
    credit_score = customer_schema["properties"]["credit_score"]  # OpenAPI 3.0: nullable, not anyOf with null
    assert credit_score["minimum"] == 300 and credit_score["nullable"] is True and "anyOf" not in credit_score
    assert "ScoreResponse" in spec["components"]["schemas"]


# ---- security ---------------------------------------------------------------------------------
def test_api_key_guards_scoring_and_health_stays_open(server, registry):
    record = customer(registry, 1)
    with server.client() as c:
        for path in ("/score", *PREDICT_PATHS.values()):
            assert c.post(path, json=record).status_code == 401
            assert c.post(path, json=record, headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.post("/score_batch", json={"customers": [record]}).status_code == 401
        assert c.get("/model_info").status_code == 401
        assert c.post("/score", json=record, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
        for path in ("/healthz", "/livez", "/readyz", "/docs.json"):
            assert c.get(path).status_code == 200
        assert c.get("/docs").headers["location"] == "/"


BAD_INPUTS = [
    ("unknown field", "/score", {"json": {"customer_id": "C", "favourite_colour": "red"}}, 400, "favourite_colour"),
    *[(f"personal data {p}", "/score", {"json": {"customer_id": "C", p: "x"}}, 400, p)
      for p in sorted(PERSONAL_DATA_COLUMNS)],
    ("wrong type", "/score", {"json": {"customer_id": "C", "credit_score": "high"}}, 400, "credit_score"),
    ("string for a number", "/predict_churn", {"json": {"customer_id": "C", "tickets_6m": "3"}}, 400, "tickets_6m"),
    ("out of range", "/score", {"json": {"customer_id": "C", "credit_score": 100}}, 400, "credit_score"),
    ("NaN", "/score", {"content": b'{"customer_id": "C", "dpd_current": NaN}'}, 400, "dpd_current"),
    ("Infinity", "/predict_default_risk", {"content": b'{"customer_id": "C", "dpd_max_12m": Infinity}'}, 400,
     "dpd_max_12m"),
    ("huge float", "/score", {"content": b'{"customer_id": "C", "loyalty_points": 1e400}'}, 400, "loyalty_points"),
    ("huge integer", "/score", {"content": b'{"customer_id": "C", "loyalty_points": 1' + b"0" * 400 + b"}"}, 400,
     "loyalty_points"),
    ("integer too long to parse", "/score", {"content": b'{"customer_id": "C", "loyalty_points": 1' + b"0" * 5000 + b"}"},
     400, "number out of range"),
    ("nested object", "/score", {"json": {"customer_id": "C", "debt_ratio": {"value": 1}}}, 400, "debt_ratio"),
    ("unknown category", "/predict_upsell", {"json": {"customer_id": "C", "industry": "mining"}}, 400, "industry"),
    ("missing customer id", "/score", {"json": {"dpd_current": 3}}, 400, "customer_id"),
    ("customer id with a name in it", "/score", {"json": {"customer_id": "Li Lei"}}, 400, "customer_id"),
    ("wrong JSON", "/score", {"content": b'{"customer_id": "C",'}, 400, "Invalid JSON"),
    ("missing body", "/score", {"content": b""}, 400, "customer_id"),
    ("array body", "/score", {"json": [{"customer_id": "C"}]}, 400, "object"),
    ("not UTF-8", "/score", {"content": b'{"customer_id": "\xff\xfe"}'}, 400, "Invalid JSON"),
    ("deeply nested body", "/score", {"content": b"[" * 100_000 + b"]" * 100_000}, 400, "JSON"),
    ("empty batch", "/score_batch", {"json": {"customers": []}}, 400, "customers"),
    ("oversize batch", "/score_batch", {"json": {"customers": [{"customer_id": i} for i in range(MAX_BATCH + 1)]}},
     400, "customers"),
    ("oversize explained batch", "/score_batch",
     {"json": {"customers": [{"customer_id": i} for i in range(MAX_EXPLAINED + 1)], "explain": True}}, 400,
     "explain=true"),
    ("bad batch item", "/score_batch", {"json": {"customers": [{"customer_id": 1}, {"customer_id": 2, "debt_ratio": 9}]}},
     400, "debt_ratio"),
    ("10 MB body", "/score", {"content": b'{"customer_id": "' + b"x" * 10_000_000 + b'"}'}, 413, "body"),
    ("form body", "/score", {"data": {"customer_id": "C"}}, 415, "Content-Type"),
    ("multipart body", "/score", {"files": {"f": b"x"}}, 415, "Content-Type"),
]


@pytest.mark.parametrize(("path", "kwargs", "status", "fragment"), [b[1:] for b in BAD_INPUTS],
                         ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_a_4xx_naming_the_problem(server, path, kwargs, status, fragment):
    headers = dict(AUTH)
    if "content" in kwargs:
        headers["Content-Type"] = "application/json"
    with server.client(headers=headers) as c:
        r = c.post(path, **kwargs)
    assert r.status_code == status, r.text[:500]
    assert fragment in r.text
    assert "error" in r.json()


def test_wrong_method_is_not_a_server_error(server):
    with server.client(headers=AUTH) as c:
        assert c.get("/score").status_code == 405
        assert c.put("/score_batch", json={}).status_code == 405


# ---- the prediction log under load -------------------------------------------------------------
def test_concurrent_burst_logs_exactly_the_answered_rows(server, registry):
    pool = [customer(registry, i) for i in range(30)]
    before = len(read_predictions(server.prediction_log))

    def one(i: int, client: httpx.Client) -> tuple[int, str, int]:
        record = pool[i % len(pool)]
        kind = i % 4
        if kind == 0:
            r = client.post("/score", json=record)
            rows = len(task_names())
        elif kind == 3:
            batch = [pool[(i + j) % len(pool)] for j in range(1 + i % 5)]
            r = client.post("/score_batch", json={"customers": batch})
            rows = len(batch) * len(task_names())
        else:
            r = client.post(PREDICT_PATHS[task_names()[i % len(task_names())]], json=record)
            rows = 1
        return r.status_code, r.json().get("request_id", ""), rows

    with server.client(headers=AUTH) as client, concurrent.futures.ThreadPoolExecutor(16) as ex:
        results = list(ex.map(lambda i: one(i, client), range(200)))
    assert [s for s, _, _ in results] == [200] * 200
    log = read_predictions(server.prediction_log)
    counts = log.groupby("request_id").size().to_dict()
    answered = {rid: rows for _, rid, rows in results}
    assert len(answered) == 200
    assert {rid: counts.get(rid, 0) for rid in answered} == answered
    assert len(log) == before + sum(answered.values())
    assert not log["row_id"].duplicated().any()
    assert not set(PERSONAL_DATA_COLUMNS) & set(log.columns)


def test_a_log_that_cannot_be_written_gets_503_and_nothing_is_claimed(server, registry):
    record = customer(registry, 5, cid="LOCKED-1")
    blocker = sqlite3.connect(server.prediction_log, isolation_level=None, timeout=30)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the log longer than the busy timeout
    try:
        with server.client(headers=AUTH) as c:
            refused = [c.post("/score", json=record), c.post("/predict_churn", json=record),
                       c.post("/score_batch", json={"customers": [record]})]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    for r in refused:
        assert r.status_code == 503, r.text
        assert "prediction log" in r.json()["error"] and "request_id" not in r.json()
    assert "LOCKED-1" not in set(read_predictions(server.prediction_log)["customer_ref"])
    with server.client(headers=AUTH) as c:
        assert c.post("/score", json=record).status_code == 200  # and it recovers
    assert (read_predictions(server.prediction_log)["customer_ref"] == "LOCKED-1").sum() == len(task_names())


# ---- start-up --------------------------------------------------------------------------------
def test_refuses_to_start_without_a_champion(registry, tmp_path):
    """`tenure serve` on a registry where churn has no champion: exit 2 naming it, no half-started server."""
    db = tmp_path / "mlflow.db"
    shutil.copy(Path(registry["tracking_uri"].removeprefix("sqlite:///")), db)
    uri = f"sqlite:///{db}"
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=uri, registry_uri=uri).delete_registered_model_alias("churn", "champion")
    env = fx.server_env(uri, tmp_path)
    tenure = Path(sys.executable).with_name("tenure")
    proc = subprocess.Popen([str(tenure), "serve", "--port", str(fx.free_port())], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, cwd=tmp_path)
    try:
        out, err = proc.communicate(timeout=fx.READY_TIMEOUT)
    finally:
        fx.stop(proc)
    text = err.decode()
    assert proc.returncode == 2, text[-2000:]
    assert "model 'churn' has no version with alias 'champion'" in text
    assert "tenure promote --task churn" in text
    assert "Traceback" not in text
    assert not (tmp_path / "predictions.db").exists()


def test_registry_problems_are_clear_errors(registry, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(RegistryError, match="does not exist"):
        resolve_champions(f"sqlite:///{missing}", ["churn"])
    assert not missing.exists() and not missing.parent.exists()  # never creates an empty registry
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"cannot reach the MLflow registry http://user:\*\*\*@127\.0\.0\.1") as err:
        resolve_champions(f"http://user:pw@127.0.0.1:{fx.free_port()}", ["churn"])
    assert ":pw@" not in str(err.value)  # the password never reaches a message
    assert time.monotonic() - started < 30
    with pytest.raises(RegistryError, match="no registered model 'churn_v9'"):
        resolve_champions(registry["tracking_uri"], ["churn"], model_names={"churn": "churn_v9"})
    refs = resolve_champions(registry["tracking_uri"], ["churn"])
    assert (refs["churn"].version, refs["churn"].run_id) == (registry["versions"]["churn"], registry["run_ids"]["churn"])
    local = download_models(registry["tracking_uri"], refs, tmp_path / "copies")
    assert Path(local["churn"].path).is_relative_to(tmp_path / "copies")
    accepted = {f.name: f.to_dict() for f in FEATURES if f.name != "complaints_6m"}
    with pytest.raises(RegistryError, match="'complaints_6m' is not a feature the service accepts"):
        load_models(local, accepted)
    numeric_industry = {**accepted, "complaints_6m": {"kind": "numeric"}, "industry": {"kind": "numeric"}}
    with pytest.raises(RegistryError, match="'industry' is categorical in the model but numeric"):
        load_models(local, numeric_industry)
    assert load_models(local, {f.name: f.to_dict() for f in FEATURES})["churn"].version == registry["versions"]["churn"]


@pytest.mark.slow
def test_bentoml_build_packs_the_service(tmp_path):
    """`bentoml build` (bentofile.yaml) makes a Bento holding the code and config the service imports."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENURE_", "BENTOML_"))}
    env.update({"BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"})
    done = subprocess.run([sys.executable, "-m", "bentoml", "build", ".", "--output", "tag"], env=env,
                          cwd=root, capture_output=True, text=True, timeout=180)  # bentoml reads only below cwd
    assert done.returncode == 0, done.stderr[-3000:]
    bentos = list((tmp_path / "bentoml" / "bentos" / "tenure").glob("*/bento.yaml"))
    assert len(bentos) == 1
    src = bentos[0].parent / "src"
    for needed in ("serving/service.py", "serving/scoring.py", "configs/serve.yaml", "configs/settings.yaml",
                   "models/churn.yaml", "features/definitions.py", "models/artifact.py", "models/layout.py",
                   "models/tracking.py"):
        assert (src / needed).is_file(), needed
    # the service reads models through models/ (the import-linter contract): the trainer stays out,
    # and so do monitoring and the feature builders (only the definitions and the schema are served)
    assert not (src / "training").exists() and not (src / "monitoring").exists()
    # and it never imports the synthetic simulator (another contract): it stays out too
    assert (src / "features").is_dir() and not (src / "features" / "synthetic").exists()
    assert not (src / "features" / "build.py").exists()
    # the service's own requirements, not the development lock
    installed = (bentos[0].parent / "env" / "python" / "requirements.txt").read_text()
    assert "lightgbm==" in installed and "mlflow==" in installed
    assert "pytest" not in installed and "ruff" not in installed and "optuna" not in installed
    assert not list(src.rglob("test_*.py")) and not list(src.rglob("__pycache__"))
    info = bentos[0].read_text()
    assert "service: serving.service:Tenure" in info and "/score_batch" in info
