"""Monitoring reports: Evidently HTML and JSON, the window's summary page, MLflow logging, history.

Writes, per model version and window, under `<settings.reports_dir>/<task>/v<version>/<window>/`:

- `data_drift.html|json`: Evidently `DataDriftPreset` over the model's features (the thresholds
  of Tenure's verdicts; on all rows Evidently picks the tests itself, on a sample it is given
  Tenure's) and `ValueDrift` of the prediction: PSI of `probability_band` (the probability's band
  at the reference's deciles, as Tenure's PSI uses) or the Wasserstein distance of `probability`,
- `data_quality.html|json`: Evidently `DataSummaryPreset` (missing values, ranges, categories),
- `performance.html|json` (with outcomes): Evidently `ClassificationPreset`, the window's
  labelled rows against the version's test predictions,
- `monitor.json`: Tenure's full result (checks, levels, per-feature verdicts, quality, performance),
- `summary.json`: the short record kept in the history,
- `index.html`: one self-contained page with the levels and links to the reports above.

The Evidently reports run on a seeded sample of at most `reports.evidently_max_rows` rows per side
(Evidently renders every column on every row, which is slow on a large window: 30-45 s for 100k
rows and 4-5.5 min for 1M rows of 43 features on 2 cores, see benchmarks/bench_monitoring.py);
the verdicts of record are Tenure's, computed on all rows. With `reports.log_to_mlflow`, the folder is logged to
the version's run under `monitoring/<window>/` and the run gets the tags
`tenure.monitoring.last_level`, `.last_window`, `.last_at` (tags hold one value, so the history
is the set of `summary.json` files, read back by `drift_history`).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from configs.settings import Settings
from features.io import atomic_path
from monitoring.drift import DriftResult, ScoreBands

ARTIFACT_DIR = "monitoring"
PROBABILITY_BAND = "probability_band"  # the probability's PSI band, as the Evidently report sees it
TAG_LEVEL = "tenure.monitoring.last_level"
TAG_WINDOW = "tenure.monitoring.last_window"
TAG_AT = "tenure.monitoring.last_at"


def _stamp(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y%m%dT%H%M%SZ")


def window_name(since: str | None, until: str | None, now: dt.datetime) -> str:
    """A folder and artefact-path safe name: `<since>_<until>` in UTC (`start`: no lower bound;
    no upper bound: the time of the run)."""
    def utc(value: str | dt.datetime) -> pd.Timestamp:
        ts = pd.Timestamp(value)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")

    lo = "start" if since is None else _stamp(utc(since))
    hi = _stamp(utc(until if until is not None else now))
    return f"{lo}_{hi}"


def version_dir(settings: Settings, task: str, version: str) -> Path:
    return settings.reports_dir / task / f"v{version}"


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=max_rows, random_state=seed).sort_index().reset_index(drop=True)


def _definition(numeric: Sequence[str], categorical: Sequence[str], **kwargs: Any) -> Any:
    from evidently import DataDefinition

    return DataDefinition(numerical_columns=list(numeric), categorical_columns=list(categorical), **kwargs)


def write_text(path: Path, text: str) -> Path:
    """Atomically, readable by all (reports are shared; the temporary file was private)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    path.chmod(0o644)
    return path


def _save(snapshot: Any, out_dir: Path, stem: str) -> dict[str, str]:
    html_path, json_path = out_dir / f"{stem}.html", out_dir / f"{stem}.json"
    with atomic_path(html_path) as tmp:
        snapshot.save_html(str(tmp))
    html_path.chmod(0o644)
    write_text(json_path, snapshot.json())
    return {"html": html_path.name, "json": json_path.name}


def evidently_drift(reference: pd.DataFrame, current: pd.DataFrame, drift: DriftResult,
                    prediction: DriftResult | None, *, prediction_threshold: float, max_rows: int,
                    seed: int, out_dir: Path) -> dict[str, str]:
    """Evidently's data drift report, with the threshold Tenure used per feature.

    On all rows (neither side above `max_rows`) Evidently picks each test itself, as its
    DataDriftPreset does by default, so the report is an independent computation of the same
    verdicts; on a sample, it is given the tests Tenure picked on all rows (a sample can have a
    different number of distinct values, which changes Evidently's pick).
    """
    from evidently import Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    tested = [c for c in drift.columns.values() if c.method is not None]
    numeric = [c.column for c in tested if c.kind == "numeric"]
    categorical = [c.column for c in tested if c.kind == "categorical"]
    metrics: list[Any] = []
    sampled = len(current) > max_rows or len(reference) > max_rows
    if tested:
        metrics.append(DataDriftPreset(
            columns=[c.column for c in tested],
            per_column_method={c.column: c.method for c in tested} if sampled else None,
            per_column_threshold={c.column: c.threshold for c in tested},
        ))
    scored = prediction.columns["probability"] if prediction is not None else None
    if scored is not None and scored.method == "psi" and scored.bands is not None:
        # Evidently bins a numeric column by equal widths; the PSI of record uses bands at the
        # reference's quantiles, so Evidently gets the band labels as a categorical column
        bands = ScoreBands(edges=np.asarray(scored.bands, dtype=np.float64))
        current = current.assign(**{PROBABILITY_BAND: bands.labels(current["probability"])})
        reference = reference.assign(**{PROBABILITY_BAND: bands.labels(reference["probability"])})
        categorical.append(PROBABILITY_BAND)
        metrics.append(ValueDrift(column=PROBABILITY_BAND, method="psi", threshold=prediction_threshold))
    elif scored is not None and scored.method is not None:
        numeric.append("probability")
        metrics.append(ValueDrift(column="probability", method=scored.method, threshold=prediction_threshold))
    if not metrics:
        return {}
    cols = [*numeric, *categorical]
    definition = _definition(numeric, categorical)
    cur = Dataset.from_pandas(_sample(current[cols], max_rows, seed), data_definition=definition)
    ref = Dataset.from_pandas(_sample(reference[cols], max_rows, seed), data_definition=definition)
    snapshot = Report(metrics, include_tests=True).run(cur, ref)
    return _save(snapshot, out_dir, "data_drift")


def evidently_quality(reference: pd.DataFrame, current: pd.DataFrame, numeric: Sequence[str],
                      categorical: Sequence[str], *, max_rows: int, seed: int, out_dir: Path) -> dict[str, str]:
    """Evidently's data summary (missing values, ranges, categories) of the window and the reference."""
    from evidently import Dataset, Report
    from evidently.presets import DataSummaryPreset

    cols = [*numeric, *categorical]
    definition = _definition(numeric, categorical)
    cur = Dataset.from_pandas(_sample(current[cols], max_rows, seed), data_definition=definition)
    ref = Dataset.from_pandas(_sample(reference[cols], max_rows, seed), data_definition=definition)
    snapshot = Report([DataSummaryPreset(columns=cols)], include_tests=False).run(cur, ref)
    return _save(snapshot, out_dir, "data_quality")


def evidently_performance(reference: pd.DataFrame, current: pd.DataFrame, *, max_rows: int, seed: int,
                          out_dir: Path) -> dict[str, str]:
    """Evidently's classification report: labelled window rows against the test predictions.

    Both frames have `label` (0/1) and `probability`.
    """
    from evidently import BinaryClassification, Dataset, Report
    from evidently.presets import ClassificationPreset

    definition = _definition(["probability"], ["label"], classification=[
        BinaryClassification(target="label", prediction_probas="probability", pos_label=1)])
    cols = ["label", "probability"]

    def prepared(frame: pd.DataFrame) -> pd.DataFrame:
        out = _sample(frame[cols], max_rows, seed)
        return out.assign(label=out["label"].astype(int))

    snapshot = Report([ClassificationPreset()], include_tests=False).run(
        Dataset.from_pandas(prepared(current), data_definition=definition),
        Dataset.from_pandas(prepared(reference), data_definition=definition))
    return _save(snapshot, out_dir, "performance")


# ---- MLflow and history ---------------------------------------------------------------------

def log_window(client: Any, run_id: str, window_dir: Path, window: str, level: str, at: str) -> str:
    """Log the window folder to the run under `monitoring/<window>/` and tag the run; returns the path."""
    artifact_path = f"{ARTIFACT_DIR}/{window}"
    client.log_artifacts(run_id, str(window_dir), artifact_path=artifact_path)
    client.set_tag(run_id, TAG_LEVEL, level)
    client.set_tag(run_id, TAG_WINDOW, window)
    client.set_tag(run_id, TAG_AT, at)
    return artifact_path


def drift_history(model_name: str, version: str | int, settings: Settings) -> list[dict[str, Any]]:
    """Every monitored window of a model version, oldest run first: the `summary.json` records
    logged to the version's run (falls back to the local reports folder when MLflow has none)."""
    from monitoring.registry import mlflow_client, resolve_version

    client = mlflow_client(settings)
    ref = resolve_version(client, model_name, version, settings)
    out: list[dict[str, Any]] = []
    try:
        folders = [f for f in client.list_artifacts(ref.run_id, ARTIFACT_DIR) if f.is_dir]
    except Exception:  # noqa: BLE001 - no monitoring folder yet
        folders = []
    with tempfile.TemporaryDirectory(prefix="tenure-history-") as tmp:
        for folder in folders:
            try:
                local = client.download_artifacts(ref.run_id, f"{folder.path}/summary.json", tmp)
                out.append(json.loads(Path(local).read_text()))
            except Exception:  # noqa: BLE001 - a window without a readable summary is skipped
                continue
    if not out:
        local_dir = version_dir(settings, model_name, ref.version)
        for path in sorted(local_dir.glob("*/summary.json")) if local_dir.exists() else []:
            try:
                out.append(json.loads(path.read_text()))
            except ValueError:
                continue
    return sorted(out, key=lambda r: (r.get("created_at") or "", r.get("window") or ""))


def summary_record(result: Mapping[str, Any]) -> dict[str, Any]:
    """The short record of one monitoring run (what the history and the compliance pack show)."""
    perf = result.get("performance") or {}
    return {
        "model_name": result["model_name"],
        "version": result["version"],
        "window": result["window"]["name"],
        "since": result["window"].get("since"),
        "until": result["window"].get("until"),
        "first_scored_at": result["window"].get("first_scored_at"),
        "last_scored_at": result["window"].get("last_scored_at"),
        "created_at": result["created_at"],
        "rows": result["rows"],
        "reference": (result.get("reference") or {}).get("kind"),
        "level": result["level"],
        "checks": {c["name"]: {"level": c["level"], "value": c["value"]} for c in result["checks"]},
        "drifted_features": result["drift"]["drifted_features"],
        "share_drifted": result["drift"]["share_drifted"],
        "prediction_drift": (result.get("prediction_drift") or {}).get("score"),
        "prediction_drift_method": (result.get("prediction_drift") or {}).get("method_name"),
        "estimated_roc_auc": (perf.get("estimate") or {}).get("roc_auc"),
        "measured_roc_auc": (perf.get("measured") or {}).get("roc_auc"),
        "reference_roc_auc": perf.get("reference_roc_auc"),
    }


def write_json(path: Path, payload: Any) -> None:
    write_text(path, json.dumps(payload, indent=2, default=str) + "\n")
