"""`tenure retrain` end to end on a small generated default-risk feature set: real MLflow, Optuna,
the real scoring code writing the prediction log, the real monitor and the real gates.

- version 1 is trained on one feature set and made champion; the champion scores two windows
  through `serving.scoring.Scorer` into the prediction log: customers like its test period, and
  the same customers with a dozen features shifted;
- `--if-level alert` on the quiet window: the monitor is below alert, nothing is trained (exit 0,
  no new version, champion unchanged);
- on the shifted window: the monitor alerts, version 2 is trained on a newer feature set (the
  label now follows other features, so the old champion ranks it poorly), passes the gates and
  becomes champion (exit 0), tagged with what triggered it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from configs.settings import Settings
from features.definitions import FEATURES_BY_NAME
from features.featureset import read_featureset, write_featureset
from models.tracking import setup_mlflow

from helpers.cli import invoke
from helpers.featuresets import synthetic_featureset

pytestmark = pytest.mark.integration

TASK = "default_risk"
SHIFTED = ["debt_ratio", "dpd_max_12m", "late_payments_12m", "satisfaction_avg_12m", "tickets_6m", "complaints_6m",
           "unresolved_tickets", "utilisation_3m", "contacts_phone_6m", "faults_6m", "overdue_amount_ratio",
           "partial_payments_12m", "avg_days_to_pay_6m", "deposit_ratio", "invoices_12m"]


def _newer_featureset(path: Path, source: Path) -> Path:
    """`source` with a label that follows service and usage features instead (seeded)."""
    fs = read_featureset(source)
    df = fs.frame.copy()
    rng = np.random.default_rng(11)
    logit = (-3.0 + 0.6 * np.nan_to_num(df["complaints_6m"]) + 0.4 * np.nan_to_num(df["unresolved_tickets"])
             - 2.0 * np.nan_to_num(df["utilisation_3m"]) + 2.0 * (df["credit_class"] == "bad"))
    df[fs.label_name] = (rng.random(len(df)) < 1 / (1 + np.exp(-logit.clip(-30, 30)))).astype("int8")
    fs.frame = df
    return write_featureset(fs, path)


def _shifted(rows: pd.DataFrame) -> pd.DataFrame:
    """The same customers with `SHIFTED` pushed up within their ranges (the API would accept them)."""
    out = rows.copy()
    for name in SHIFTED:
        d = FEATURES_BY_NAME[name]
        hi = d.max if d.max is not None else float(np.nanmax(out[name])) * 3
        out[name] = np.minimum(out[name] + (hi - (d.min or 0.0)) * 0.3, hi)
    return out


def _score(settings: Settings, rows: pd.DataFrame) -> tuple[str, str]:
    """Score `rows` with the champion through the service's scoring code; the log window [since, until)."""
    from models.registry import load_tenure_model
    from serving.prediction_log import PredictionLog
    from serving.schemas import request_records
    from serving.scoring import Scorer, ServedModel

    client = mlflow.MlflowClient(settings.tracking_uri)
    version = client.get_model_version_by_alias(TASK, "champion")
    served = ServedModel.build(task=TASK, model_name=TASK, version=str(version.version), run_id=version.run_id,
                               alias="champion", model=load_tenure_model(f"models:/{TASK}@champion"))
    scorer = Scorer({TASK: served}, PredictionLog(settings.prediction_log_path))
    since = dt.datetime.now(dt.UTC).isoformat()
    records = request_records(rows)
    for i in range(0, len(records), 500):
        scorer.score_batch(records[i:i + 500], explain=False)
    scorer.close()
    return since, dt.datetime.now(dt.UTC).isoformat()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("retrain")
    first = synthetic_featureset(home / "features" / "v1" / f"{TASK}.parquet", customers=400, months=18, seed=3)
    newer = _newer_featureset(home / "features" / "v2" / f"{TASK}.parquet", first)
    res = invoke(["train", "--task", TASK, "--featureset", str(first), "--trials", "2"], home)
    assert res.exit_code == 0, res.output
    res = invoke(["promote", "--task", TASK, "--force", "--reason", "first model of the retrain test"], home)
    assert res.exit_code == 0, res.output
    (home / "monitor.yaml").write_text("reports:\n  evidently: false\n  log_to_mlflow: false\n")
    settings = Settings(home=home)
    setup_mlflow(settings)
    frame = read_featureset(first).frame
    recent = frame[frame["snapshot_date"] >= frame["snapshot_date"].max() - pd.DateOffset(months=2)]
    return {"home": home, "newer": newer, "settings": settings,
            "quiet": _score(settings, recent), "shifted": _score(settings, _shifted(recent))}


def _retrain(world: dict[str, Any], window: str) -> Any:
    since, until = world[window]
    return invoke(["retrain", "--task", TASK, "--if-level", "alert", "--featureset", str(world["newer"]),
                   "--since", since, "--until", until, "--trials", "2",
                   "--monitor-config", str(world["home"] / "monitor.yaml")], world["home"])


def test_retrain_skips_on_a_quiet_window_and_trains_and_promotes_on_a_shifted_one(world: dict[str, Any]) -> None:
    client = mlflow.MlflowClient(world["settings"].tracking_uri)
    res = _retrain(world, "quiet")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["action"] == "skipped" and out["level"] in ("ok", "warn") and out["trained_version"] is None, out
    assert "-> skipped: champion v1 stays" in res.stderr
    assert [str(v.version) for v in client.search_model_versions(f"name='{TASK}'")] == ["1"]

    res = _retrain(world, "shifted")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["level"] == "alert" and out["action"] == "promoted", out
    assert out["trained_version"] == out["champion_version"] == "2" and out["failed_gates"] == []
    assert "-> trained v2 -> promoted: champion v2" in res.stderr
    version = client.get_model_version_by_alias(TASK, "champion")
    assert str(version.version) == "2"
    assert version.tags["tenure.promotion.status"] == "promoted"
    assert version.tags["tenure.retrain.trigger"].startswith("monitor alert (")
    assert version.tags["tenure.featureset_path"] == str(world["newer"].resolve())
