"""Adding a task is data: one YAML spec in a folder named by TENURE_TASK_DIRS, no code anywhere.

A throwaway fifth task, `asset_return` (will a customer with an active lease end one early within
3 months), goes through the user's path with the real commands in subprocesses: generate data,
`tenure features build`, `tenure train`, `tenure promote` (the real gates), then the real service
started with the same environment answers on the route generated from the spec,
`/predict_asset_return`, with the spec's tiers and actions and the promoted version, lists it in
/model_info, documents it in its OpenAPI, and scores it in /score with reasons worded from the spec.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

from configs.tasks import TASK_DIRS_ENV
from features.featureset import read_featureset
from models import load_spec, load_spec_file

from helpers import serving as fx

pytestmark = pytest.mark.integration

TASK = "asset_return"
TENURE = str(Path(sys.executable).with_name("tenure"))


def _spec(folder: Path) -> Path:
    raw = load_spec("churn").model_dump(mode="json")
    raw.update(name=TASK, title="Asset return", positive_means="raised the asset-return risk", outcome_zh="退租风险",
               question="Will this customer end a lease early (return an asset) in the next 3 months?")
    raw["label"].update(name="returned_3m", event="early_termination", horizon_months=3, eligibility="active_lease",
                        definition="1 when a lease of the customer closes as terminated_early within 3 months")
    raw["tiers"][-1].update(action="return_inspection", action_en="Book the asset's return inspection now.",
                            action_zh="立即预约设备退租检查。")
    path = folder / f"{TASK}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False))
    return path


def _run(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    done = subprocess.run([TENURE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"tenure {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def added(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("add_task")
    (root / "specs").mkdir()
    spec_path = _spec(root / "specs")
    home = root / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENURE_", "MLFLOW_"))}
    env.update({"TENURE_HOME": str(home), TASK_DIRS_ENV: str(root / "specs"), "TENURE_ACTOR": "test-add-task"})
    _run(env, "data", "generate", "--customers", "2000", "--months", "30", "--seed", "23", "--name", "small",
         "--no-progress")
    _run(env, "features", "build", "--task", TASK, "--dataset", str(home / "data" / "small"), "--no-progress")
    [trained] = [json.loads(line) for line in _run(env, "train", "--task", TASK, "--dataset", "small",
                                                     "--trials", "4").splitlines() if line.startswith("{")]
    promoted = _run(env, "promote", "--task", TASK)
    featureset = read_featureset(next((home / "features" / "small").glob(f"{TASK}*")))
    return {"root": root, "home": home, "env": env, "spec": load_spec_file(spec_path), "trained": trained,
            "promoted": promoted, "featureset": featureset}


def test_the_spec_alone_builds_trains_and_promotes_the_task(added: dict[str, Any]) -> None:
    trained, fs = added["trained"], added["featureset"]
    assert (trained["task"], trained["model_name"]) == (TASK, TASK)
    assert fs.label_name == "returned_3m" and 0 < fs.frame["returned_3m"].mean() < 0.5
    assert trained["test_metrics"]["roc_auc"] > 0.6  # it learned the label, not noise
    decision = json.loads(added["promoted"].strip().splitlines()[-1])  # passed the real gates, not forced
    assert (decision["model_name"], decision["version"], decision["promoted"], decision["forced"]) == (
        TASK, trained["version"], True, False), added["promoted"]


def _record(frame: pd.DataFrame, features: list[str], i: int) -> dict[str, Any]:
    out: dict[str, Any] = {"customer_id": f"AR-{i}"}
    for name in features:
        value = frame[name].iloc[i]
        out[name] = None if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA \
            else (value.item() if hasattr(value, "item") else str(value))
    return out


@pytest.fixture(scope="module")
def server(added: dict[str, Any]) -> Iterator[fx.Server]:
    tmp = added["root"] / "server"
    tmp.mkdir()
    tracking = f"sqlite:///{(added['home'] / 'mlflow.db').resolve()}"
    env = fx.server_env(tracking, tmp, workspace=added["home"], workers=1, tasks=[TASK]) | {
        TASK_DIRS_ENV: added["env"][TASK_DIRS_ENV]}
    with fx.running_server(env, tmp) as srv:
        yield srv


def test_the_service_serves_the_new_task_from_its_spec(added: dict[str, Any], server: fx.Server) -> None:
    spec, fs = added["spec"], added["featureset"]
    records = [_record(fs.frame, list(spec.features), i) for i in range(20)]
    auth = {"X-API-Key": fx.API_KEY}
    with server.client(headers=auth) as c:
        fast = [c.post(f"/predict_{TASK}", json=r) for r in records]
        scored = c.post("/score", json=records[0])  # /score explains
        info = c.get("/model_info").json()
    for r in fast:
        assert r.status_code == 200, r.text
        body = r.json()
        tier = spec.tier_for(body["probability"])
        assert (body["task"], body["tier"], body["action"]) == (TASK, tier.name, tier.action)
        assert body["model"]["version"] == added["trained"]["version"]
    assert len({r.json()["probability"] for r in fast}) > 5  # a real model, not a constant
    assert scored.status_code == 200, scored.text
    reasons = scored.json()["scores"][TASK]["explanation"]["reasons"]
    assert reasons and all("退租风险" in x["text_zh"] for x in reasons)
    assert all(x["text_en"].endswith("asset-return risk.") for x in reasons)
    assert [m["task"] for m in info["models"]] == [TASK]
    doc = httpx.get(f"{server.url}/docs.json", timeout=30).json()  # documented from the spec
    description = doc["paths"][f"/predict_{TASK}"]["post"]["description"]
    assert description.startswith("Asset return only:") and spec.question in description


def test_without_its_folder_the_task_is_refused_in_one_line(added: dict[str, Any]) -> None:
    env = {k: v for k, v in added["env"].items() if k != TASK_DIRS_ENV}
    done = subprocess.run([TENURE, "train", "--task", TASK, "--dataset", "small", "--trials", "1"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.strip()]
    assert TASK in line and TASK_DIRS_ENV in line
