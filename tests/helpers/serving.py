"""Test helpers for serving: small real LightGBM models on synthetic rows, an MLflow registry
holding them, and the real service started in a subprocess.

Rows are drawn from the feature definitions (ranges, categories, some values missing); the label
is caused by a few features so the models learn something real. `register_champions` logs one
model per task with `training.pyfunc.log_tenure_model` on a temp SQLite MLflow and sets the
alias `champion`, which is what `tenure train` + `tenure promote` produce. `running_server`
starts `bentoml serve serving.service:Tenure` on 127.0.0.1 and a free port with the environment
of `server_env` (registry, workspace, prediction log, API key, serve-config overrides), waits until
it is ready, and stops it and its workers by PID when the block ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from configs.serve import SERVE_CONFIG_ENV, SERVE_OVERRIDES_ENV
from features.definitions import FEATURES_BY_NAME
from models import load_spec, task_names
from models.artifact import Calibration, TenureModel

CALIBRATIONS = {
    "default_risk": Calibration(),
    "churn": Calibration(method="platt", a=1.2, b=-0.3),
    "upsell": Calibration(method="isotonic", x=[0.0, 0.2, 0.5, 0.8, 1.0], y=[0.0, 0.1, 0.45, 0.9, 1.0]),
}


def feature_defs(task: str) -> list[dict[str, Any]]:
    return [FEATURES_BY_NAME[name].to_dict() for name in load_spec(task).features]


def _high(defn: dict[str, Any]) -> float:
    lo = defn["min"] if defn["min"] is not None else 0.0
    hi = defn["max"] if defn["max"] is not None else lo + 50.0
    return min(hi, lo + 400.0)


def synthetic_rows(task: str, n: int, seed: int = 0, missing: float = 0.08) -> pd.DataFrame:
    """`n` rows of the task's features (values in range, categories from the definitions, some missing)."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {"customer_id": [f"C-{seed}-{i:05d}" for i in range(n)]}
    for defn in feature_defs(task):
        if defn["kind"] == "categorical":
            values = rng.choice(np.array(defn["categories"], dtype=object), size=n)
        else:
            lo = defn["min"] if defn["min"] is not None else 0.0
            values = rng.uniform(lo, _high(defn), size=n).round(2).astype(object)
            if defn["max"] is not None and defn["max"] - lo <= 1 and defn["name"] == "blacklisted":
                values = rng.integers(0, 2, size=n).astype(float).astype(object)
        values[rng.random(n) < missing] = None
        cols[defn["name"]] = values
    return pd.DataFrame(cols)


def _label(task: str, rows: pd.DataFrame, seed: int) -> np.ndarray:
    """A label caused by the first three numeric features and the first categorical one."""
    rng = np.random.default_rng(seed + 1)
    defs = feature_defs(task)
    numeric = [d for d in defs if d["kind"] == "numeric"][:3]
    categorical = next(d for d in defs if d["kind"] == "categorical")
    z = np.zeros(len(rows))
    for sign, d in zip((1.0, -1.0, 1.0), numeric, strict=False):
        col = pd.to_numeric(rows[d["name"]], errors="coerce").to_numpy(dtype=float)
        lo = d["min"] if d["min"] is not None else 0.0
        scaled = (col - lo) / (_high(d) - lo + 1e-9)
        z += sign * 3.0 * np.nan_to_num(scaled - 0.5, nan=0.2)
    z += np.where(rows[categorical["name"]] == categorical["categories"][0], 1.0, 0.0)
    return (rng.random(len(rows)) < 1.0 / (1.0 + np.exp(-(z - 1.0)))).astype(int)


def train_tiny_model(task: str, n: int = 800, seed: int = 0, n_estimators: int = 40) -> tuple[TenureModel, pd.DataFrame]:
    """A real LightGBM on synthetic rows, wrapped as the TenureModel training would log; and its rows."""
    import lightgbm as lgb

    spec = load_spec(task)
    rows = synthetic_rows(task, n, seed)
    y = _label(task, rows, seed)
    encoder = TenureModel(booster=None, features=feature_defs(task))
    X = encoder.encode_frame(rows[encoder.feature_names])  # noqa: N806
    params = {"objective": "binary", "num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 10,
              "num_threads": 1, "seed": seed, "verbose": -1, "deterministic": True}
    data = lgb.Dataset(X, y, feature_name=encoder.feature_names, categorical_feature=encoder.categorical_indices,
                       free_raw_data=False)
    booster = lgb.train(params, data, num_boost_round=n_estimators)
    model = TenureModel(booster=booster, features=feature_defs(task), calibration=CALIBRATIONS.get(task, Calibration()),
                        task_spec=spec.model_dump(mode="json"),
                        meta={"task": task, "model_name": task, "trained_at": "test"})
    return model, rows


@contextlib.contextmanager
def tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at `uri` for the block, then back."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    before = tracking_utils._tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri = before
        with contextlib.suppress(Exception):
            from mlflow.tracking._model_registry import utils as registry_utils

            registry_utils._registry_uri = None


def register_champions(root: Path, tasks: Sequence[str] | None = None,
                       alias: str | None = "champion", seed: int = 0) -> dict[str, Any]:
    """Train, log and register one tiny model per task (default: every task spec) under `root`; returns uri,
    versions, run ids, models."""
    import mlflow

    from training.pyfunc import log_tenure_model

    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(root / 'mlflow.db').resolve()}"
    out: dict[str, Any] = {"tracking_uri": uri, "versions": {}, "run_ids": {}, "models": {}, "rows": {}}
    with tracking_uri(uri):
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        exp = client.create_experiment("tenure-serving-test", artifact_location=(root / "artifacts").resolve().as_uri())
        for i, task in enumerate(task_names() if tasks is None else tasks):
            model, rows = train_tiny_model(task, seed=seed + i)
            with mlflow.start_run(experiment_id=exp) as run:
                info = log_tenure_model(model, rows[model.feature_names].head(5), registered_model_name=task)
            version = str(info.registered_model_version)
            if alias:
                client.set_registered_model_alias(task, alias, version)
            out["versions"][task] = version
            out["run_ids"][task] = run.info.run_id
            out["models"][task] = model
            out["rows"][task] = rows
    return out


def register_version(tracking: str, task: str, *, seed: int, alias: str | None = None,
                     task_spec: dict[str, Any] | None = None) -> tuple[str, TenureModel]:
    """Train and register one more version of `task` in the registry of `register_champions` (and
    point `alias` at it): what `tenure train` + `tenure promote` do while a service runs. A
    `task_spec` replaces the model's (an invalid one makes a version the service must refuse)."""
    import mlflow

    from training.pyfunc import log_tenure_model

    model, rows = train_tiny_model(task, seed=seed)
    if task_spec is not None:
        model = TenureModel(booster=model.booster, features=model.features, calibration=model.calibration,
                            task_spec=task_spec, meta=model.meta)
    with tracking_uri(tracking):
        client = mlflow.MlflowClient(tracking_uri=tracking, registry_uri=tracking)
        exp = client.get_experiment_by_name("tenure-serving-test").experiment_id
        with mlflow.start_run(experiment_id=exp):
            info = log_tenure_model(model, rows[model.feature_names].head(5), registered_model_name=task)
        version = str(info.registered_model_version)
        if alias:
            client.set_registered_model_alias(task, alias, version)
    return version, model


def set_alias(tracking: str, task: str, alias: str, version: str) -> None:
    import mlflow

    mlflow.MlflowClient(tracking_uri=tracking, registry_uri=tracking).set_registered_model_alias(task, alias, version)


# ---- the real service in a subprocess --------------------------------------------------------

API_KEY = "integration-test-key"
READY_TIMEOUT = 240.0  # a shared 2-core machine under load starts two workers in 30-90 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """Stop the server (its process group) and its workers (circus gives each its own group), by PID."""
    import psutil

    if proc.poll() is not None:
        return
    children: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        children = psutil.Process(proc.pid).children(recursive=True)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # the arbiter stops its workers gracefully
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    output: Path
    prediction_log: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)


def server_env(tracking_uri: str, tmp: Path, *, workspace: Path | None = None, log_path: Path | None = None,
               **overrides: Any) -> dict[str, str]:
    """The service's environment: the registry at `tracking_uri`, the `workspace` (TENURE_HOME) and
    the prediction log at `log_path` (defaults under `tmp`), the API key, and `overrides` of the keys
    of configs/serve.yaml (`prediction_log={...}` is the log's config there, not its path)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENURE_", "MLFLOW_", "BENTOML_"))}
    env.update({"MLFLOW_TRACKING_URI": tracking_uri, "TENURE_HOME": str(workspace or tmp / "workspace"),
                "TENURE_PREDICTION_LOG": str(log_path or tmp / "predictions.db"), "TENURE_API_KEY": API_KEY,
                "BENTOML_HOME": str(tmp / "bentoml"), "BENTOML_DO_NOT_TRACK": "True",
                SERVE_OVERRIDES_ENV: json.dumps(overrides)})
    env.pop(SERVE_CONFIG_ENV, None)
    return env


@contextlib.contextmanager
def running_server(env: dict[str, str], tmp: Path, timeout: float = READY_TIMEOUT,
                   host: str | None = "127.0.0.1") -> Iterator[Server]:
    """`bentoml serve serving.service:Tenure` with `env`, ready to answer; stopped by PID afterwards.

    `host=None` leaves `--host` out (the service's own default must then be 127.0.0.1). Its output
    goes to `tmp/server.log`, quoted when it exits early or is not ready in `timeout` s.
    """
    port = free_port()
    output = tmp / "server.log"
    command = [sys.executable, "-m", "bentoml", "serve", "serving.service:Tenure", "--port", str(port)]
    if host is not None:
        command += ["--host", host]
    with output.open("wb") as sink:
        proc = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=tmp)
    srv = Server(f"http://127.0.0.1:{port}", proc, output, Path(env["TENURE_PREDICTION_LOG"]))
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{output.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{srv.url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"the server was not ready after {timeout:.0f} s:\n{output.read_text()[-3000:]}")
            time.sleep(0.5)
        yield srv
    finally:
        stop(proc)
