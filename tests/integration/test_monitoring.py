"""Monitoring end to end through the real service: generated data, three champions, `bentoml serve`,
HTTP traffic, the prediction log, Evidently, MLflow.

One module-scoped world (about a minute on 2 cores; the module runs in about 70 s):

- three datasets of 3,000 customers x 36 months from 2023-01-01 (as `make demo`: the last snapshot
  is 2026-01-01, a January), seed 7: baseline, downturn, competitor (the scenario shifts the last
  6 months, from 2025-07-01);
- the baseline's feature sets of all three tasks and a quick real LightGBM model per task, logged
  and registered with the artefacts and tags `tenure train` writes (training's own split,
  calibration and metrics, without the Optuna search), each promoted to champion;
- the real service (`bentoml serve serving.service:Tenure` in a subprocess, stopped by PID) on
  the world's registry, workspace and prediction log, so its log is the one `monitor_task` reads;
- traffic over HTTP to `/score_batch` (explain false) as `tenure demo` sends it: the customers a
  decision is made for (`scoring_frame(eligible_for="default_risk")`), `as_of` the snapshot. Each
  window is [since, until) on the client's clock (UTC) around its burst, sent one after the other:
  - `now:<scenario>`: the last snapshot (2026-01-01) of each dataset (the shift is 6 months old);
  - `labelled`: baseline snapshots 2025-02-01 .. 2025-07-01, whose labels are known for all three
    tasks (the longest label horizon, default risk's 6 months, ends with the data);
  - `early:downturn`: downturn snapshots 2025-08-01 .. 2025-10-01 (the shift is 1 to 3 months old;
    churn and upsell labels known), monitored again for churn with the Evidently reports (`pages`).

Every task is monitored on every window (Evidently reports off); the acceptance checks of the
monitoring issue are the tests below, for each task. The report, Evidently, compliance and CLI
tests use churn.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from models import task_names
from serving.schemas import request_records

from helpers import serving as fx

pytestmark = pytest.mark.integration

TASK = "churn"  # the task of the report, Evidently, compliance and command-line tests
CUSTOMERS, MONTHS, SEED, SCENARIO_MONTHS = 3000, 36, 7, 6
START = dt.date(2023, 1, 1)  # configs/data.yaml and `tenure demo`
SCENARIOS = ("baseline", "downturn", "competitor")
NOW = "2026-01-01"
LABELLED = ("2025-02-01", "2025-03-01", "2025-04-01", "2025-05-01", "2025-06-01", "2025-07-01")
EARLY = ("2025-08-01", "2025-09-01", "2025-10-01")
# window -> (dataset, snapshots scored, dataset whose outcomes are joined)
WINDOWS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    **{f"now:{scenario}": (scenario, (NOW,), None) for scenario in SCENARIOS},
    "labelled": ("baseline", LABELLED, "baseline"),
    "early:downturn": ("downturn", EARLY, "downturn"),
}
BATCH = 1000  # customers per /score_batch request (configs/serve.yaml: max_batch_size)
AUTH = {"X-API-Key": fx.API_KEY}
ANSWER_COLUMNS = ["request_id", "customer_ref", "as_of", "task", "model_version", "probability"]
MIN_SHIFTED = 3  # shifted model features needed to expect the share of drifted features to warn
CHROMIUM = Path("/usr/bin/chromium")


@dataclass
class Champion:
    version: str
    run_id: str
    feature_names: list[str]


@dataclass
class Window:
    """One burst of traffic: [since, until) on the client's clock and what the service answered."""

    since: str
    until: str
    answers: pd.DataFrame  # ANSWER_COLUMNS: one row per customer and task answered

    def rows(self, task: str) -> int:
        return int((self.answers["task"] == task).sum())


@dataclass
class World:
    root: Path
    settings: Any
    cfg: Any
    datasets: dict[str, Path]
    manifests: dict[str, dict]
    champions: dict[str, Champion]
    windows: dict[str, Window] = field(default_factory=dict)
    results: dict[tuple[str, str], Any] = field(default_factory=dict)  # (task, window) -> MonitorResult

    def shifted(self, task: str, scenario: str) -> list[str]:
        """The scenario's shifted features (data manifest) that are features of the task's model."""
        names = self.champions[task].feature_names
        return [f for f in self.manifests[scenario]["scenario"]["shifted_features"] if f in names]


# ---- building the world ---------------------------------------------------------------------

def _quick_model(task: str, fs_path: Path, settings: Any) -> Champion:
    """Train, calibrate, evaluate, log and register a model of `task` the way `tenure train` does."""
    import lightgbm as lgb
    import mlflow

    from configs.train import SplitConfig
    from features.featureset import read_featureset
    from models import load_spec
    from models.artifact import TenureModel
    from models.metrics import binary_metrics
    from models.tracking import setup_mlflow
    from training.evaluate import choose_calibration
    from training.pyfunc import log_tenure_model
    from training.split import Split, split_featureset

    fs = read_featureset(fs_path)
    spec = load_spec(task)
    split = split_featureset(fs.frame, fs.time_column, fs.label_name, spec.label.horizon_months, SplitConfig(), 0)
    # this quick stand-in run fits on the last fold's training rows and calibrates on its validation
    # block (not on every development row, as `tenure train` refits), so its training period ends
    # before the months the same-season reference uses
    fit_pos, valid_pos = split.folds[-1]
    split = Split(train=split.train.iloc[fit_pos], test=split.test, kind=split.kind, gap_months=split.gap_months,
                  folds=[])
    valid_rows = split_featureset(fs.frame, fs.time_column, fs.label_name, spec.label.horizon_months, SplitConfig(),
                                  0).train.iloc[valid_pos]
    encoder = TenureModel(booster=None, features=fs.features)
    names = encoder.feature_names

    def xy(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return encoder.encode_frame(rows[names]), rows[fs.label_name].to_numpy().astype(int)

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = xy(split.train), xy(valid_rows), xy(split.test)
    params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 40,
              "seed": 0, "num_threads": 1, "deterministic": True, "force_col_wise": True, "verbosity": -1}
    booster = lgb.train(params, lgb.Dataset(x_tr, y_tr, categorical_feature=encoder.categorical_indices),
                        num_boost_round=150)
    calibration, _ = choose_calibration(booster.predict(x_va, raw_score=True), y_va,
                                        valid_rows[fs.time_column].reset_index(drop=True), ["platt", "isotonic"], 0)
    cols = {"id": fs.id_column, "time": fs.time_column, "label": fs.label_name,
            "groups": list(fs.group_columns), "probability": "probability"}
    model = TenureModel(booster=booster, features=fs.features, calibration=calibration,
                        task_spec=spec.model_dump(mode="json"),
                        meta={"task": task, "model_name": task, "id_column": fs.id_column,
                              "time_column": fs.time_column, "label": fs.label,
                              "group_columns": list(fs.group_columns)})
    split_desc = {**split.describe(fs.time_column), "valid": [str(pd.Timestamp(valid_rows[fs.time_column].min()).date()),
                                                             str(pd.Timestamp(valid_rows[fs.time_column].max()).date())]}
    metrics = {part: binary_metrics(y, model.predict_proba(x)) for part, (x, y) in
               {"valid": (x_va, y_va), "test": (x_te, y_te)}.items()}

    def frame(rows: pd.DataFrame, with_features: bool) -> pd.DataFrame:
        keep = [fs.id_column, fs.time_column, *(names if with_features else []),
                *[g for g in fs.group_columns if not with_features or g not in names], fs.label_name]
        out = rows[keep].reset_index(drop=True).copy()
        out["probability"] = model.predict_proba(encoder.encode_frame(rows[names]))
        return out

    setup_mlflow(settings, task)
    with mlflow.start_run(run_name=f"{task}-quick") as run:
        mlflow.set_tags({"tenure.task": task, "tenure.model_name": task, "tenure.featureset_path": str(fs_path),
                         "tenure.featureset_hash": fs.content_hash, "tenure.split": json.dumps(split_desc),
                         "tenure.git_commit": "0123abc", "tenure.calibration": calibration.method,
                         "tenure.chosen": "baseline", "tenure.seed": "0", "tenure.columns": json.dumps(cols)})
        mlflow.log_metrics({f"{part}_{m}": v for part, ms in metrics.items() for m, v in ms.items()})
        with tempfile.TemporaryDirectory() as tmp_dir:
            tmp = Path(tmp_dir)
            for sub in ("reference", "evaluation", "config"):
                (tmp / sub).mkdir()
            frame(split.train, True).to_parquet(tmp / "reference" / "reference.parquet", index=False)
            frame(split.test, False).to_parquet(tmp / "evaluation" / "test_predictions.parquet", index=False)
            frame(valid_rows, False).to_parquet(tmp / "evaluation" / "valid_predictions.parquet", index=False)
            (tmp / "evaluation" / "metrics.json").write_text(json.dumps({**metrics, "split": split_desc,
                                                                         "columns": cols}))
            (tmp / "config" / "train_config.json").write_text(json.dumps({"params": params, "task_spec": spec.name}))
            mlflow.log_artifacts(str(tmp))
        info = log_tenure_model(model, split.train[names].head(5), registered_model_name=task)
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        client.set_registered_model_alias(task, "challenger", version)
        for key, value in {"tenure.task": task, "tenure.run_id": run.info.run_id,
                           "tenure.featureset_hash": fs.content_hash, "tenure.featureset_path": str(fs_path),
                           "tenure.chosen": "baseline", "tenure.calibration": calibration.method}.items():
            client.set_model_version_tag(task, version, key, value)
        mlflow.set_tag("tenure.registered_version", version)
    return Champion(version=version, run_id=run.info.run_id, feature_names=names)


def _send(client: httpx.Client, frames: Sequence[pd.DataFrame]) -> Window:
    """Score `frames` in batches over HTTP; the window is the client's clock around the burst."""
    since = dt.datetime.now(dt.UTC)
    answers = []
    for frame in frames:
        records = request_records(frame)  # as `tenure demo` sends them
        for i in range(0, len(records), BATCH):
            chunk = records[i:i + BATCH]
            r = client.post("/score_batch", json={"customers": chunk, "explain": False})
            assert r.status_code == 200, r.text[:500]
            body = r.json()
            assert body["count"] == len(chunk) == len(body["results"])
            answers += [(body["request_id"], res["customer_id"], res["as_of"], task, s["model"]["version"],
                         s["probability"]) for res in body["results"] for task, s in res["scores"].items()]
    until = dt.datetime.now(dt.UTC)
    return Window(since.isoformat(), until.isoformat(), pd.DataFrame(answers, columns=ANSWER_COLUMNS))


def _check_calendar(manifests: dict[str, dict]) -> None:
    """The snapshots named above are what the module docstring says they are."""
    from models import load_spec

    months = pd.DateOffset(months=1)
    assert manifests["baseline"]["end_date"] == str(pd.Timestamp(NOW) - pd.Timedelta(days=1))[:10]
    assert pd.Timestamp(NOW).month == 1
    horizon = max(load_spec(t).label.horizon_months for t in task_names())
    assert pd.Timestamp(LABELLED[-1]) + horizon * months == pd.Timestamp(NOW)  # labels known for every task
    shift = pd.Timestamp(manifests["downturn"]["scenario"]["start_date"])
    assert [pd.Timestamp(s) for s in EARLY] == [shift + k * months for k in (1, 2, 3)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from configs import load_config
    from configs.data import DataConfig
    from configs.features import FeaturesConfig
    from configs.monitor import load_monitor_config
    from configs.promote import load_promote_config
    from configs.settings import Settings
    from features.build import build_featuresets, scoring_frame
    from features.synthetic import generate_dataset
    from monitoring.monitor import monitor_task
    from training.promote import promote

    root = tmp_path_factory.mktemp("monitoring")
    settings = Settings(home=root / "home")
    datasets, manifests = {}, {}
    for scenario in SCENARIOS:
        datasets[scenario] = settings.dataset_dir(scenario)
        manifests[scenario] = generate_dataset(
            DataConfig(name=scenario, customers=CUSTOMERS, months=MONTHS, seed=SEED, start_date=START,
                       scenario=scenario, scenario_months=SCENARIO_MONTHS), datasets[scenario], progress=False)
    _check_calendar(manifests)

    paths = build_featuresets(datasets["baseline"], list(task_names()), settings.features_dir / "baseline",
                              load_config(FeaturesConfig, "features"), progress=False)
    champions = {task: _quick_model(task, paths[task], settings) for task in task_names()}
    for task in task_names():
        decision = promote(task, settings, load_promote_config(), force=True,
                           reason="integration test of monitoring", actor="tester")
        assert decision.promoted, task
    cfg = load_monitor_config()
    cfg = cfg.model_copy(update={"reports": cfg.reports.model_copy(update={"evidently": False})})
    w = World(root=root, settings=settings, cfg=cfg, datasets=datasets, manifests=manifests, champions=champions)

    frames = {name: [scoring_frame(datasets[scenario], snapshot=s, eligible_for="default_risk") for s in snapshots]
              for name, (scenario, snapshots, _) in WINDOWS.items()}
    server_dir = root / "server"
    server_dir.mkdir()
    env = fx.server_env(settings.tracking_uri, server_dir, workspace=settings.home,
                        log_path=settings.prediction_log_path, workers=1, max_batch_size=BATCH)
    with fx.running_server(env, server_dir) as server, server.client(headers=AUTH) as client:
        for name in WINDOWS:  # one after the other: the windows are apart on scored_at
            w.windows[name] = _send(client, frames[name])

    for task in task_names():
        for name, window in w.windows.items():
            outcomes = WINDOWS[name][2]
            w.results[(task, name)] = monitor_task(task, settings, cfg, since=window.since, until=window.until,
                                                   outcomes=datasets[outcomes] if outcomes else None)
    print(_summary(w))  # shown with the failures of the tests below
    return w


def _summary(world: World) -> str:
    """Per task and window: rows, level, flagged and shifted features, prediction drift, AUCs."""
    lines = []
    for (task, name), r in world.results.items():
        scenario = WINDOWS[name][0]
        shifted = world.shifted(task, scenario) if scenario != "baseline" else []
        perf = r.performance
        measured = (perf.get("measured") or {}).get("roc_auc")
        lines.append(f"{task:<12} {name:<15} rows {r.rows:>6} {r.level:<5} reference {r.reference.get('kind')} "
                     f"prediction {r.stats.prediction.method} {r.stats.prediction.score:.4f} "
                     f"AUC estimated {perf['estimate']['roc_auc']:.4f} measured "
                     f"{'-' if measured is None else f'{measured:.4f}'} on the labelled rows "
                     f"{perf.get('estimate_on_labelled') or float('nan'):.4f}\n"
                     f"    flagged {sorted(r.flagged_features)}\n    shifted {sorted(shifted)}")
    return "\n".join(lines)


# ---- the log is the service's ------------------------------------------------------------------

def test_the_log_holds_exactly_what_the_service_answered(world: World) -> None:
    from serving.prediction_log import read_predictions

    log = read_predictions(world.settings.prediction_log_path)
    assert len(log) == sum(len(w.answers) for w in world.windows.values())
    keys = ANSWER_COLUMNS[:-1]
    for name, window in world.windows.items():
        rows = log[(log["scored_at"] >= pd.Timestamp(window.since)) & (log["scored_at"] < pd.Timestamp(window.until))]
        got = rows[ANSWER_COLUMNS].sort_values(keys).reset_index(drop=True)
        answered = window.answers.sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, answered, check_exact=True, obj=name)  # probabilities as answered
        snapshots = WINDOWS[name][1]
        assert sorted(set(got["as_of"])) == list(snapshots), name
        for task in task_names():
            assert set(got.loc[got["task"] == task, "model_version"]) == {world.champions[task].version}
            assert world.results[(task, name)].rows == window.rows(task) > 1000, (task, name)


# ---- acceptance checks ------------------------------------------------------------------------

@pytest.mark.parametrize("task", task_names())
def test_baseline_reports_ok(world: World, task: str) -> None:
    result = world.results[(task, "now:baseline")]
    assert result.rows == world.windows["now:baseline"].rows(task) > 1000
    assert len(result.flagged_features) <= 1, result.flagged_features
    assert result.level == "ok", [c.to_dict() for c in result.checks]


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("task", task_names())
def test_live_windows_are_compared_with_the_same_months_after_training(world: World, task: str,
                                                                       scenario: str) -> None:
    result = world.results[(task, f"now:{scenario}")]
    assert result.reference["kind"] == "season", result.reference
    assert {str(m)[:7] for m in result.reference["months"]} == {"2025-01"}, result.reference
    assert result.stats.prediction.method == "psi"
    prediction = result.check("prediction_drift")
    assert (prediction.value, prediction.warn, prediction.alert) == (result.stats.prediction.score, 0.1, 0.25)


@pytest.mark.parametrize("scenario", ["downturn", "competitor"])
@pytest.mark.parametrize("task", task_names())
def test_shifted_scenarios_warn_and_flag_their_shifted_features(world: World, task: str, scenario: str) -> None:
    result = world.results[(task, f"now:{scenario}")]
    shifted = world.shifted(task, scenario)
    flagged = set(result.flagged_features)
    assert shifted
    assert set(shifted) <= flagged, f"not flagged: {sorted(set(shifted) - flagged)}"
    not_shifted = flagged - set(shifted)
    assert len(not_shifted) <= 1, f"flagged but not shifted: {sorted(not_shifted)}"
    for name in flagged:  # every verdict records its test and threshold
        col = result.stats.drift.columns[name]
        assert col.method in ("wasserstein", "jensenshannon") and col.threshold == 0.1 and col.score >= 0.1
    assert result.level in ("warn", "alert"), [c.to_dict() for c in result.checks]
    if len(shifted) < MIN_SHIFTED:  # too few features shifted to expect the drifted share to reach warn
        pytest.skip(f"{scenario} shifts {len(shifted)} features of {task} ({shifted}), fewer than {MIN_SHIFTED}: "
                    "the data_drift level is not asserted")
    assert result.check("data_drift").level in ("warn", "alert")


@pytest.mark.parametrize("task", task_names())
def test_estimated_auc_is_within_003_of_the_measured_one_on_baseline(world: World, task: str) -> None:
    result = world.results[(task, "labelled")]
    perf = result.performance
    assert perf["labelled_rows"] == result.rows == world.windows["labelled"].rows(task) > 6000
    assert perf["measured"] is not None
    estimate = perf["estimate"]["roc_auc"]
    measured = perf["measured"]["roc_auc"]
    assert abs(estimate - measured) < 0.03, (estimate, measured)
    assert perf["estimate"]["calibrated_on"].startswith("validation and test periods (isotonic")
    assert not result.check("performance").estimated
    assert result.level == "ok", [c.to_dict() for c in result.checks]
    now = world.results[(task, "now:baseline")].check("performance")
    assert now.estimated and "ESTIMATED" in now.detail


def test_reports_are_written_logged_to_mlflow_and_kept_as_history(world: World) -> None:
    from mlflow import MlflowClient

    from monitoring.reports import drift_history

    champion = world.champions[TASK]
    results = [r for (task, _), r in world.results.items() if task == TASK]
    result = world.results[(TASK, "now:downturn")]
    folder = result.report_dir
    assert folder == world.settings.reports_dir / TASK / f"v{champion.version}" / result.window["name"]
    payload = json.loads((folder / "monitor.json").read_text())
    assert payload["level"] == result.level and payload["artifact_path"] == f"monitoring/{result.window['name']}"
    assert payload["drift"]["columns"]["utilisation_3m"]["method_name"] == "Wasserstein distance (normed)"
    client = MlflowClient(world.settings.tracking_uri)
    files = {Path(f.path).name for f in client.list_artifacts(champion.run_id, result.artifact_path)}
    assert {"monitor.json", "summary.json", "index.html"} <= files
    run = client.get_run(champion.run_id)
    last = max(results, key=lambda r: r.window["name"])
    assert run.data.tags["tenure.monitoring.last_window"] in {r.window["name"] for r in results}
    assert run.data.tags["tenure.monitoring.last_level"] in ("ok", "warn", "alert")
    history = drift_history(TASK, champion.version, world.settings)
    assert {h["window"] for h in history} >= {r.window["name"] for r in results}
    levels = {h["window"]: h["level"] for h in history}
    assert levels[result.window["name"]] == result.level and levels[last.window["name"]] == last.level


def test_evidently_computes_the_same_verdicts_on_all_rows(world: World, pages: dict[str, Path]) -> None:
    """The window's Evidently report ran on all rows with Evidently's own choice of tests (no sample,
    no methods passed): every feature's test, score and verdict must equal Tenure's, and the PSI of
    the probability bands Tenure's prediction drift."""
    folder = pages["data_drift_html"].parent
    ours = json.loads((folder / "monitor.json").read_text())
    assert ours["rows"] <= 10_000 and ours["reference"]["rows"] <= 10_000  # no sample: Evidently chose
    report = json.loads((folder / "data_drift.json").read_text())
    scores = {m["config"]["column"]: (m["config"]["method"], m["value"]) for m in report["metrics"]
              if m["config"]["type"].endswith("ValueDrift")}
    verdicts = {t["metric_config"]["params"]["column"]: t["status"] == "FAIL" for t in report["tests"]
                if t["metric_config"]["params"]["type"].endswith("ValueDrift")}
    columns = ours["drift"]["columns"]
    assert set(columns) | {"probability_band"} == set(verdicts) == set(scores)
    assert {c["method"] for c in columns.values()} == {"wasserstein", "jensenshannon"}
    for name, col in columns.items():
        method_name, score = scores[name]
        assert col["method_name"] == method_name, name
        assert col["score"] == pytest.approx(score, rel=1e-9, abs=1e-12), name
        assert col["drifted"] == verdicts[name], name
    pred = ours["prediction_drift"]
    assert pred["score"] == pytest.approx(scores["probability_band"][1], rel=1e-9)
    assert sum(col["drifted"] for col in columns.values()) >= 2


# ---- HTML and the compliance pack -----------------------------------------------------------------

def _screenshot(html: Path, tmp: Path) -> Path:
    png = tmp / f"{html.parent.name}-{html.stem}.png"
    profile = tmp / f"profile-{html.stem}-{uuid.uuid4().hex[:6]}"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1280,2000",
                    html.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    return png


def _distinct_colours(png: Path) -> tuple[int, float]:
    """(distinct RGB colours, share of pure-white pixels) of a PNG."""
    try:
        from PIL import Image

        pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    except ImportError:
        import matplotlib.image as mpimg

        pixels = (np.asarray(mpimg.imread(png))[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    rgb = pixels.astype(np.int64)
    colours = len(np.unique(rgb[:, 0] * 65536 + rgb[:, 1] * 256 + rgb[:, 2]))
    white = float(np.all(pixels == 255, axis=1).mean())
    return colours, white


@pytest.fixture(scope="module")
def pages(world: World) -> dict[str, Path]:
    """One window with the Evidently reports (and outcomes), and the compliance pack."""
    from monitoring.compliance import compliance_pack
    from monitoring.monitor import monitor_task

    cfg = world.cfg.model_copy(update={"reports": world.cfg.reports.model_copy(
        update={"evidently": True, "evidently_max_rows": 10_000})})
    window = world.windows["early:downturn"]
    result = monitor_task(TASK, world.settings, cfg, since=window.since, until=window.until,
                          outcomes=world.datasets["downturn"])
    assert result.performance["measured"] is not None
    out = {name: result.report_dir / file for name, file in result.files.items() if file.endswith(".html")}
    pack = compliance_pack(TASK, world.settings, world.cfg)
    out["compliance"] = pack.path
    return out


def test_every_html_page_renders_to_a_non_blank_screenshot(pages: dict[str, Path], tmp_path: Path) -> None:
    assert {"data_drift_html", "data_quality_html", "performance_html", "index_html", "compliance"} <= set(pages)
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is missing on CI; install it with `apt-get install -y chromium`")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium); outside CI this check is skipped")
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        shots = dict(zip(pages, pool.map(lambda html: _screenshot(html, tmp_path), pages.values()), strict=True))
    for name, png in shots.items():
        colours, white = _distinct_colours(png)
        assert colours > 50 and white < 0.97, (name, colours, white)


def test_compliance_pack_is_self_contained_complete_and_free_of_personal_data(world: World,
                                                                               pages: dict[str, Path]) -> None:
    html = pages["compliance"].read_text()
    assert pages["compliance"] == (world.settings.reports_dir / TASK / f"v{world.champions[TASK].version}"
                                   / "compliance.html")
    # self-contained: no scripts, stylesheets, fonts or images fetched from anywhere
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert html.count('src="data:image/png;base64,') >= 2
    # the sections and what they must hold
    for needle in ("Data lineage", "Metrics and calibration", "Explanations", "Example decisions",
                   "Fairness by group", "Drift history", "Promotion record"):
        assert needle in html
    from features.featureset import read_metadata

    meta = read_metadata(world.settings.features_dir / "baseline" / f"{TASK}.parquet")
    assert meta["content_hash"] in html and "0123abc" in html
    for group in ("age_band", "city_tier", "industry"):
        assert f"<h3>{group}</h3>" in html
    assert "which raised the churn risk" in html or "which lowered the churn risk" in html
    assert "integration test of monitoring" in html and re.search(r"<td>(promoted|forced)</td>", html)
    for (task, _), r in world.results.items():
        if task == TASK:
            assert r.window["name"] in html
    # no personal data: no value of the customers' personal columns, no such column as a header
    customers = pd.read_parquet(world.datasets["baseline"] / "customers.parquet",
                                columns=["name", "phone", "national_id"])
    text = html.lower()
    for column in ("name", "phone", "national_id"):
        values = customers[column].dropna().astype(str)
        values = values[values.str.len() >= 5]
        assert len(values) > 100
        leaked = [v for v in values if v.lower() in text]
        assert not leaked, (column, leaked[:3])
    for column in ("name", "phone", "national_id", "address"):
        assert f"<th>{column}</th>" not in text
    assert "national_id" not in text


# ---- the command line -----------------------------------------------------------------------

def test_cli_exit_statuses_follow_the_level(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from tenure.cli import app

    for var in ("MLFLOW_TRACKING_URI", "TENURE_ARTIFACT_ROOT", "TENURE_PREDICTION_LOG", "TENURE_OPTUNA_STORAGE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TENURE_HOME", str(world.settings.home))
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("reports:\n  evidently: false\n  log_to_mlflow: false\n")
    runner = CliRunner()

    def run(window: str, *extra: str) -> Any:
        w = world.windows[window]
        return runner.invoke(app, ["monitor", "--task", TASK, "--since", w.since, "--until", w.until,
                                   "--config", str(cfg), *extra])

    shifted = run("now:downturn", "--fail-on", "warn")
    level = world.results[(TASK, "now:downturn")].level
    assert shifted.exit_code == {"warn": 10, "alert": 20}[level], shifted.output
    summary = json.loads(shifted.stdout.strip().splitlines()[-1])
    assert summary["level"] == level and summary["version"] == world.champions[TASK].version
    assert run("now:downturn", "--fail-on", "alert").exit_code == (20 if level == "alert" else 0)
    assert run("now:downturn").exit_code == 0
    assert run("now:baseline", "--fail-on", "warn").exit_code == 0
    empty = runner.invoke(app, ["monitor", "--task", TASK, "--since", "2099-01-01", "--config", str(cfg)])
    assert empty.exit_code == 2 and "no predictions of churn version" in empty.output
    missing = runner.invoke(app, ["monitor", "--task", TASK, "--version", "99", "--config", str(cfg)])
    assert missing.exit_code == 2 and "has no version 99" in missing.output
    bad = runner.invoke(app, ["monitor", "--task", TASK, "--fail-on", "sometimes", "--config", str(cfg)])
    assert bad.exit_code == 2 and "--fail-on must be warn or alert" in bad.output
