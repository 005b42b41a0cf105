"""Monitoring end to end: generated data, a registered churn model, a prediction log, Evidently, MLflow.

One module-scoped world (about a minute on 2 cores): three datasets of 3,000 customers x 30
months from the generator (baseline, downturn, competitor; the scenario shifts the last 6 months),
the churn feature set of the baseline, a quick real LightGBM model logged and registered with
the artefacts and tags `tenure train` writes (built here with training's own split, calibration
and metrics, without the Optuna search), promoted to champion, and a prediction log written with
sqlite3 in the serving schema:

- `now:<scenario>`: every customer with an active lease at the last snapshot (2025-07-01) of each
  dataset, scored by the champion (the scenario's shift is then 6 months old);
- `labelled`: the baseline's snapshots 2024-11-01 .. 2025-04-01, whose churn labels are known;
- `early:downturn`: the downturn's snapshots 2025-02-01 .. 2025-04-01 (labelled; the shift is 1 to
  3 months old), monitored with the Evidently reports on all rows.

The acceptance checks of the monitoring issue are the tests below.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

TASK = "churn"
CUSTOMERS, MONTHS, SEED, SCENARIO_MONTHS = 3000, 30, 7, 6
NOW = "2025-07-01"
LABELLED = ("2024-11-01", "2024-12-01", "2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01")
EARLY = ("2025-02-01", "2025-03-01", "2025-04-01")
CHROMIUM = Path("/usr/bin/chromium")
SCHEMA = """CREATE TABLE IF NOT EXISTS predictions (row_id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT,
scored_at TEXT, task TEXT, model_name TEXT, model_version TEXT, run_id TEXT, customer_ref TEXT, as_of TEXT NULL,
features TEXT, probability REAL, tier TEXT, action TEXT)"""



@dataclass
class World:
    root: Path
    settings: Any
    cfg: Any
    datasets: dict[str, Path]
    manifests: dict[str, dict]
    version: str
    run_id: str
    feature_names: list[str]
    windows: dict[str, tuple[str, str]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)


# ---- building the world ---------------------------------------------------------------------

def _quick_model(fs_path: Path, settings: Any) -> tuple[str, str]:
    """Train, calibrate, evaluate, log and register a churn model the way `tenure train` does."""
    import lightgbm as lgb
    import mlflow

    from configs.train import SplitConfig
    from features.featureset import read_featureset
    from models import load_spec
    from training.artifact import TenureModel
    from training.evaluate import binary_metrics, choose_calibration
    from training.pyfunc import log_tenure_model
    from training.split import split_featureset
    from training.tracking import setup_mlflow

    fs = read_featureset(fs_path)
    spec = load_spec(TASK)
    split = split_featureset(fs.frame, fs.time_column, fs.label_name, spec.label.horizon_months, SplitConfig(), 0)
    encoder = TenureModel(booster=None, features=fs.features)
    names = encoder.feature_names

    def xy(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return encoder.encode_frame(rows[names]), rows[fs.label_name].to_numpy().astype(int)

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = xy(split.train), xy(split.valid), xy(split.test)
    params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 40,
              "seed": 0, "num_threads": 1, "deterministic": True, "force_col_wise": True, "verbosity": -1}
    booster = lgb.train(params, lgb.Dataset(x_tr, y_tr, categorical_feature=encoder.categorical_indices),
                        num_boost_round=150)
    calibration, _ = choose_calibration(booster.predict(x_va, raw_score=True), y_va,
                                        split.valid[fs.time_column].reset_index(drop=True), ["platt", "isotonic"], 0)
    cols = {"id": fs.id_column, "time": fs.time_column, "label": fs.label_name,
            "groups": list(fs.group_columns), "probability": "probability"}
    model = TenureModel(booster=booster, features=fs.features, calibration=calibration,
                        task_spec=spec.model_dump(mode="json"),
                        meta={"task": TASK, "id_column": fs.id_column, "time_column": fs.time_column,
                              "label": fs.label, "group_columns": list(fs.group_columns)})
    split_desc = split.describe(fs.time_column)
    metrics = {part: binary_metrics(y, model.predict_proba(x)) for part, (x, y) in
               {"valid": (x_va, y_va), "test": (x_te, y_te)}.items()}

    def frame(rows: pd.DataFrame, with_features: bool) -> pd.DataFrame:
        keep = [fs.id_column, fs.time_column, *(names if with_features else []),
                *[g for g in fs.group_columns if not with_features or g not in names], fs.label_name]
        out = rows[keep].reset_index(drop=True).copy()
        out["probability"] = model.predict_proba(encoder.encode_frame(rows[names]))
        return out

    setup_mlflow(settings, TASK)
    with mlflow.start_run(run_name=f"{TASK}-quick") as run:
        mlflow.set_tags({"tenure.task": TASK, "tenure.featureset_path": str(fs_path),
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
            (tmp / "evaluation" / "metrics.json").write_text(json.dumps({**metrics, "split": split_desc}))
            (tmp / "config" / "train_config.json").write_text(json.dumps({"params": params, "task_spec": spec.name}))
            mlflow.log_artifacts(str(tmp))
        info = log_tenure_model(model, split.train[names].head(5), registered_model_name=TASK)
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        client.set_registered_model_alias(TASK, "challenger", version)
        for key, value in {"tenure.task": TASK, "tenure.run_id": run.info.run_id,
                           "tenure.featureset_hash": fs.content_hash, "tenure.featureset_path": str(fs_path)}.items():
            client.set_model_version_tag(TASK, version, key, value)
    return version, run.info.run_id


def _scored_frames(dataset_dir: Path, snapshots: tuple[str, ...]) -> pd.DataFrame:
    """Like `features.build.scoring_frame`, for several snapshots in one pass over the dataset."""
    from features.build import compute_panel, panel_frame
    from features.definitions import FEATURES
    from features.validate import read_dataset

    dataset = read_dataset(dataset_dir)
    panel = compute_panel(dataset)
    ks = np.array([int(np.flatnonzero(panel.snapshots == pd.Timestamp(s))[0]) for s in snapshots])
    mask = panel["active_leases"][:, ks] > 0
    return panel_frame(panel, dataset["customers"], [f.name for f in FEATURES], ks, mask)


def _log(world: World, name: str, frame: pd.DataFrame, day: int) -> None:
    """Score `frame` with the champion and append it to the log, stamped on one day of 2030."""
    from training.pyfunc import load_tenure_model

    model = load_tenure_model(f"models:/{TASK}/{world.version}")
    p = model.predict_proba(model.encode_frame(frame[model.feature_names]))
    start = dt.datetime(2030, 1, day, tzinfo=dt.UTC)
    feats = frame[model.feature_names].astype({f["name"]: "object" for f in model.features if f["kind"] == "categorical"})
    texts = feats.to_json(orient="records", lines=True).splitlines()
    rows = [(uuid.uuid4().hex, (start + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), TASK, TASK,
             world.version, world.run_id, str(frame["customer_id"].iat[i]),
             pd.Timestamp(frame["snapshot_date"].iat[i]).strftime("%Y-%m-%d"), texts[i], float(p[i]), "tier", "action")
            for i in range(len(frame))]
    con = sqlite3.connect(world.settings.prediction_log_path)
    con.execute(SCHEMA)
    con.executemany("INSERT INTO predictions (request_id, scored_at, task, model_name, model_version, run_id, "
                    "customer_ref, as_of, features, probability, tier, action) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()
    world.windows[name] = (start.strftime("%Y-%m-%d"), (start + dt.timedelta(days=1)).strftime("%Y-%m-%d"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from configs import load_config
    from configs.data import DataConfig
    from configs.features import FeaturesConfig
    from configs.monitor import load_monitor_config
    from configs.promote import load_promote_config
    from configs.settings import Settings
    from features.build import build_featuresets
    from features.generate import generate_dataset
    from monitoring.monitor import monitor_task
    from training.promote import promote

    root = tmp_path_factory.mktemp("monitoring")
    settings = Settings(home=root / "home")
    datasets, manifests = {}, {}
    for scenario in ("baseline", "downturn", "competitor"):
        out = settings.dataset_dir(scenario)
        manifests[scenario] = generate_dataset(DataConfig(name=scenario, customers=CUSTOMERS, months=MONTHS, seed=SEED,
                                                          scenario=scenario, scenario_months=SCENARIO_MONTHS),
                                               out, progress=False)
        datasets[scenario] = out
    fs_path = build_featuresets(datasets["baseline"], [TASK], settings.features_dir / "baseline",
                                load_config(FeaturesConfig, "features"), progress=False)[TASK]
    version, run_id = _quick_model(fs_path, settings)
    decision = promote(TASK, settings, load_promote_config(), force=True, reason="integration test of monitoring",
                       actor="tester")
    assert decision.promoted
    cfg = load_monitor_config()
    cfg = cfg.model_copy(update={"reports": cfg.reports.model_copy(update={"evidently": False})})
    from training.pyfunc import load_tenure_model

    names = load_tenure_model(f"models:/{TASK}/{version}").feature_names
    w = World(root=root, settings=settings, cfg=cfg, datasets=datasets, manifests=manifests, version=version,
              run_id=run_id, feature_names=names)
    for day, scenario in enumerate(("baseline", "downturn", "competitor"), start=1):
        _log(w, f"now:{scenario}", _scored_frames(datasets[scenario], (NOW,)), day)
    _log(w, "labelled", _scored_frames(datasets["baseline"], LABELLED), 10)
    _log(w, "early:downturn", _scored_frames(datasets["downturn"], EARLY), 20)
    for name, (since, until) in w.windows.items():
        if name == "early:downturn":
            continue  # monitored with the Evidently reports, in `pages`
        outcomes = datasets["baseline"] if name == "labelled" else None
        w.results[name] = monitor_task(TASK, settings, cfg, since=since, until=until, outcomes=outcomes,
                                       now=dt.datetime(2030, 2, 1, tzinfo=dt.UTC))
    return w


# ---- acceptance checks ------------------------------------------------------------------------

def test_baseline_reports_ok(world: World) -> None:
    result = world.results["now:baseline"]
    assert result.reference["kind"] == "test", result.reference
    assert result.rows > 1000
    assert len(result.flagged_features) <= 1, result.flagged_features
    assert result.level == "ok", [c.to_dict() for c in result.checks]


@pytest.mark.parametrize("scenario", ["downturn", "competitor"])
def test_shifted_scenarios_warn_and_flag_their_shifted_features(world: World, scenario: str) -> None:
    result = world.results[f"now:{scenario}"]
    shifted = [f for f in world.manifests[scenario]["scenario"]["shifted_features"] if f in world.feature_names]
    flagged = set(result.flagged_features)
    assert result.level in ("warn", "alert")
    assert result.check("data_drift").level in ("warn", "alert")
    assert len(shifted) >= 5
    assert set(shifted) <= flagged, f"not flagged: {sorted(set(shifted) - flagged)}"
    not_shifted = flagged - set(shifted)
    assert len(not_shifted) <= 1, f"flagged but not shifted: {sorted(not_shifted)}"
    for name in flagged:  # every verdict records its test and threshold
        col = result.stats.drift.columns[name]
        assert col.method in ("wasserstein", "jensenshannon") and col.threshold == 0.1 and col.score >= 0.1


def test_estimated_auc_is_within_003_of_the_measured_one_on_baseline(world: World) -> None:
    result = world.results["labelled"]
    perf = result.performance
    assert perf["labelled_rows"] == result.rows > 6000
    assert perf["measured"] is not None
    estimate = perf["estimate"]["roc_auc"]
    measured = perf["measured"]["roc_auc"]
    assert abs(estimate - measured) < 0.03, (estimate, measured)
    assert perf["estimate"]["calibrated_on"].startswith("reference period")
    assert not result.check("performance").estimated
    assert result.level == "ok"
    now = world.results["now:baseline"].check("performance")
    assert now.estimated and "ESTIMATED" in now.detail


def test_reports_are_written_logged_to_mlflow_and_kept_as_history(world: World) -> None:
    from mlflow import MlflowClient

    from monitoring.commands import drift_history

    result = world.results["now:downturn"]
    folder = result.report_dir
    assert folder == world.settings.reports_dir / TASK / f"v{world.version}" / result.window["name"]
    payload = json.loads((folder / "monitor.json").read_text())
    assert payload["level"] == result.level and payload["artifact_path"] == f"monitoring/{result.window['name']}"
    assert payload["drift"]["columns"]["utilisation_3m"]["method_name"] == "Wasserstein distance (normed)"
    client = MlflowClient(world.settings.tracking_uri)
    files = {Path(f.path).name for f in client.list_artifacts(world.run_id, result.artifact_path)}
    assert {"monitor.json", "summary.json", "index.html"} <= files
    run = client.get_run(world.run_id)
    last = max(world.results.values(), key=lambda r: r.window["name"])
    assert run.data.tags["tenure.monitoring.last_window"] in {r.window["name"] for r in world.results.values()}
    assert run.data.tags["tenure.monitoring.last_level"] in ("ok", "warn", "alert")
    history = drift_history(TASK, world.version, world.settings)
    assert {h["window"] for h in history} >= {r.window["name"] for r in world.results.values()}
    levels = {h["window"]: h["level"] for h in history}
    assert levels[result.window["name"]] == result.level and levels[last.window["name"]] == last.level


def test_evidently_computes_the_same_verdicts_on_all_rows(world: World, pages: dict[str, Path]) -> None:
    """The window's Evidently report ran on all rows with Evidently's own choice of tests (no sample,
    no methods passed): every feature's test, score and verdict must equal Tenure's."""
    folder = pages["data_drift_html"].parent
    ours = json.loads((folder / "monitor.json").read_text())
    assert ours["rows"] <= 10_000 and ours["reference"]["rows"] <= 10_000  # no sample: Evidently chose
    report = json.loads((folder / "data_drift.json").read_text())
    scores = {m["config"]["column"]: (m["config"]["method"], m["value"]) for m in report["metrics"]
              if m["config"]["type"].endswith("ValueDrift")}
    verdicts = {t["metric_config"]["params"]["column"]: t["status"] == "FAIL" for t in report["tests"]
                if t["metric_config"]["params"]["type"].endswith("ValueDrift")}
    columns = ours["drift"]["columns"]
    assert set(columns) | {"probability"} == set(verdicts) == set(scores)
    assert {c["method"] for c in columns.values()} == {"wasserstein", "jensenshannon"}
    for name, col in columns.items():
        method_name, score = scores[name]
        assert col["method_name"] == method_name, name
        assert col["score"] == pytest.approx(score, rel=1e-9, abs=1e-12), name
        assert col["drifted"] == verdicts[name], name
    pred = ours["prediction_drift"]
    assert pred["score"] == pytest.approx(scores["probability"][1], rel=1e-9)
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
    since, until = world.windows["early:downturn"]
    result = monitor_task(TASK, world.settings, cfg, since=since, until=until, outcomes=world.datasets["downturn"],
                          now=dt.datetime(2030, 2, 2, tzinfo=dt.UTC))
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
    assert pages["compliance"] == world.settings.reports_dir / TASK / f"v{world.version}" / "compliance.html"
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

    meta = read_metadata(world.settings.features_dir / "baseline" / "churn.parquet")
    assert meta["content_hash"] in html and "0123abc" in html
    for group in ("age_band", "city_tier", "industry"):
        assert f"<h3>{group}</h3>" in html
    assert "which raised the churn risk" in html or "which lowered the churn risk" in html
    assert "integration test of monitoring" in html and re.search(r"<td>(promoted|forced)</td>", html)
    for r in world.results.values():
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

    from configs.cli import app

    for var in ("MLFLOW_TRACKING_URI", "TENURE_ARTIFACT_ROOT", "TENURE_PREDICTION_LOG", "TENURE_OPTUNA_STORAGE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TENURE_HOME", str(world.settings.home))
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("reports:\n  evidently: false\n  log_to_mlflow: false\n")
    runner = CliRunner()

    def run(window: str, *extra: str) -> Any:
        since, until = world.windows[window]
        return runner.invoke(app, ["monitor", "--task", TASK, "--since", since, "--until", until,
                                   "--config", str(cfg), *extra])

    shifted = run("now:downturn", "--fail-on", "warn")
    level = world.results["now:downturn"].level
    assert shifted.exit_code == {"warn": 10, "alert": 20}[level], shifted.output
    summary = json.loads(shifted.stdout.strip().splitlines()[-1])
    assert summary["level"] == level and summary["version"] == world.version
    assert run("now:downturn", "--fail-on", "alert").exit_code == (20 if level == "alert" else 0)
    assert run("now:downturn").exit_code == 0
    assert run("now:baseline", "--fail-on", "warn").exit_code == 0
    empty = runner.invoke(app, ["monitor", "--task", TASK, "--since", "2031-01-01", "--config", str(cfg)])
    assert empty.exit_code == 2 and "no predictions of churn version" in empty.output
    missing = runner.invoke(app, ["monitor", "--task", TASK, "--version", "99", "--config", str(cfg)])
    assert missing.exit_code == 2 and "has no version 99" in missing.output
    bad = runner.invoke(app, ["monitor", "--task", TASK, "--fail-on", "sometimes", "--config", str(cfg)])
    assert bad.exit_code == 2 and "--fail-on must be warn or alert" in bad.output
