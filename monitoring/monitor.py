"""`tenure monitor`: compare what a model version scored with the data it was built on.

Reads, for one registered model version (default: the task's champion): the rows it scored in the
prediction log within [since, until) on `scored_at`; its reference rows (`drift.reference`): by
default the feature-set rows it was not trained on (its run's artefact
`reference/unseen_rows.parquet`, read through the tracking server, so any machine gets the same
reference; for versions trained before that artefact existed, its feature set at the version tag
`tenure.featureset_path`, unchanged since training) from the same calendar months as the window's
snapshots (`as_of`), after its training period and before the window, scored by the version
(`season`); or its test period (`evaluation/test_predictions.parquet` joined with those rows:
`test`, also the fallback of `season`); or its training rows (`reference/reference.parquet`:
`training`, also the fallback when neither is available); its feature definitions and task spec (the model artefact); its test ROC AUC (run metric
`test_roc_auc`). With `outcomes`, a dataset folder whose task labels are joined to the logged
rows. Writes the reports of `monitoring.reports` under `<reports_dir>/<task>/v<version>/<window>/`
and logs them to the version's MLflow run.

Why the same season by default: payments, usage and risk follow the calendar (the lunar new year
season, summer lease ends, a 31-day month adding a day past due to every late invoice), so a
January window compared with a May-July test period shows drift that is only season. Why not the
training rows: with an out-of-time split they are a year or more older than live traffic and the
model has seen them. The test period (the fallback) is the version's last known-good state, the
one its metrics describe.

Checks and their levels (thresholds in `configs/monitor.yaml`):

- `volume`: fewer than `min_rows` logged rows -> warn (too few to judge);
- `data_drift`: share of model features (minus `drift.exclude`) whose drift test fires, with the
  test Evidently's DataDriftPreset would pick (see `monitoring.drift`), on all rows;
- `prediction_drift`: population stability index of `probability` over bands at the reference's
  deciles (`prediction_drift.method: psi`; or Evidently's normed Wasserstein distance) against the
  reference's probabilities; a `test` or `training` reference is re-scored with the calendar
  features (`prediction_drift.match_calendar`) set to the window's values, so the model's own
  seasonality is not read as drift;
- `missing_values`, `invalid_values`: the worst feature (see `monitoring.quality`);
- `performance`: drop of ROC AUC below the version's test ROC AUC: measured when outcomes label
  at least `performance.min_labelled_rows` rows (both classes), otherwise estimated (CBPE, see
  `monitoring.performance`) and marked as an estimate.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from configs.monitor import MonitorConfig
from configs.settings import Settings
from models.layout import REFERENCE_ARTIFACT, TEST_PREDICTIONS_ARTIFACT, VALID_PREDICTIONS_ARTIFACT
from monitoring.alerts import Check, make_check, worst
from monitoring.drift import (
    ColumnDrift,
    DriftResult,
    ReferenceStats,
    column_stats,
    feature_drift,
    prediction_drift,
)
from monitoring.performance import AucEstimate, Recalibration, estimate_roc_auc
from monitoring.quality import FeatureQuality, feature_quality, worst_invalid, worst_missing
from monitoring.registry import MonitoringError

PROBABILITY = "probability"


@dataclass
class WindowStats:
    """Everything computed from the reference and the window's rows (no I/O)."""

    drift: DriftResult
    prediction: ColumnDrift
    quality: dict[str, FeatureQuality]
    estimate: AucEstimate


@dataclass
class MonitorResult:
    """One monitoring run of one model version over one window."""

    task: str
    model_name: str
    version: str
    run_id: str
    window: dict[str, Any]
    created_at: str
    rows: int
    level: str
    checks: list[Check]
    stats: WindowStats
    performance: dict[str, Any]
    reference: dict[str, Any] = field(default_factory=dict)  # kind (test | training), rows, snapshots, note
    report_dir: Path | None = None
    files: dict[str, str] = field(default_factory=dict)
    artifact_path: str | None = None

    @property
    def flagged_features(self) -> list[str]:
        """Model features whose drift test fired (excluded features left out)."""
        return self.stats.drift.drifted_features

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model_name": self.model_name,
            "version": self.version,
            "run_id": self.run_id,
            "window": self.window,
            "created_at": self.created_at,
            "rows": self.rows,
            "reference": self.reference,
            "level": self.level,
            "checks": [c.to_dict() for c in self.checks],
            "drift": self.stats.drift.to_dict(),
            "prediction_drift": self.stats.prediction.to_dict(),
            "quality": {name: q.to_dict() for name, q in self.stats.quality.items()},
            "performance": self.performance,
            "report_dir": str(self.report_dir) if self.report_dir else None,
            "files": self.files,
            "artifact_path": self.artifact_path,
        }


def feature_kinds(definitions: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {d["name"]: ("categorical" if d["kind"] == "categorical" else "numeric") for d in definitions}


def reference_stats(reference: pd.DataFrame, definitions: Sequence[Mapping[str, Any]]) -> ReferenceStats:
    """Pre-computed reference statistics of the features and the probability."""
    kinds: dict[str, Any] = {**feature_kinds(definitions), PROBABILITY: "numeric"}
    missing = [c for c in kinds if c not in reference.columns]
    if missing:
        raise MonitoringError(f"the reference lacks columns {missing}; it must hold the model's features "
                              f"and `{PROBABILITY}` (artefact reference/reference.parquet)")
    return ReferenceStats.from_frame(reference, kinds)


def compute_window(reference: pd.DataFrame, current: pd.DataFrame, definitions: Sequence[Mapping[str, Any]],
                   cfg: MonitorConfig, *, non_numeric: Mapping[str, int] | None = None,
                   stats: ReferenceStats | None = None, recalibration: Recalibration | None = None,
                   reference_probability: np.ndarray | None = None) -> WindowStats:
    """Drift, prediction drift, data quality and the performance estimate of one window.

    `recalibration`: the isotonic map fitted on the reference period's labels (CBPE); None uses
    the model's probabilities as they are. `reference_probability`: the reference's
    probabilities to compare with (default: its `probability` column).
    """
    stats = stats or reference_stats(reference, definitions)
    if reference_probability is not None:
        stats.columns[PROBABILITY] = column_stats(reference_probability, PROBABILITY, "numeric")
    names = [d["name"] for d in definitions]
    drift = feature_drift(stats, current, names, num_threshold=cfg.drift.num_threshold,
                          cat_threshold=cfg.drift.cat_threshold, exclude=cfg.drift.exclude)
    prediction = prediction_drift(stats.columns[PROBABILITY], current[PROBABILITY],
                                  method=cfg.prediction_drift.method, bins=cfg.prediction_drift.bins,
                                  threshold=cfg.prediction_drift.warn)
    quality = feature_quality(current, reference, definitions, non_numeric)
    estimate = estimate_roc_auc(current[PROBABILITY].to_numpy(dtype=np.float64), recalibration=recalibration,
                                draws=cfg.performance.estimate_draws,
                                max_rows=cfg.performance.estimate_max_rows, seed=cfg.reports.seed)
    return WindowStats(drift=drift, prediction=prediction, quality=quality, estimate=estimate)


def build_checks(rows: int, stats: WindowStats, performance: Mapping[str, Any], cfg: MonitorConfig) -> list[Check]:
    """The checks of one window and their levels."""
    checks = [Check(name="volume", level="warn" if rows < cfg.min_rows else "ok", value=float(rows),
                    warn=float(cfg.min_rows), alert=None,
                    detail=f"{rows:,} logged rows" + (f", fewer than {cfg.min_rows:,}: too few to judge drift"
                                                      if rows < cfg.min_rows else ""))]
    d = stats.drift
    drifted = d.drifted_features
    checks.append(make_check(
        "data_drift", d.share, cfg.drift.share_warn, cfg.drift.share_alert,
        f"{len(drifted)} of {len(d.judged)} features drifted" + (f": {', '.join(drifted)}" if drifted else "")))
    p = stats.prediction
    checks.append(make_check(
        "prediction_drift", p.score, cfg.prediction_drift.warn, cfg.prediction_drift.alert,
        f"probability: {p.method_name} {p.score:.4f}" if p.score is not None else f"probability: {p.note}"))
    wm, wi = worst_missing(stats.quality), worst_invalid(stats.quality)
    checks.append(make_check(
        "missing_values", wm.missing_increase if wm else None, cfg.quality.missing_increase_warn,
        cfg.quality.missing_increase_alert,
        f"worst: {wm.feature} missing {wm.missing_share:.2%} (reference {wm.reference_missing_share:.2%})"
        if wm else "no features"))
    checks.append(make_check(
        "invalid_values", wi.invalid_share if wi else None, cfg.quality.invalid_share_warn,
        cfg.quality.invalid_share_alert,
        f"worst: {wi.feature} {wi.invalid:,} invalid values ({wi.invalid_share:.2%})" if wi else "no features"))
    ref_auc = performance.get("reference_roc_auc")
    measured = performance.get("measured")
    estimate = performance["estimate"]
    if measured is not None:
        auc, estimated = measured["roc_auc"], False
        what = f"measured ROC AUC {auc:.4f} on {performance['labelled_rows']:,} labelled rows"
    else:
        auc, estimated = estimate["roc_auc"], True
        what = f"ESTIMATED ROC AUC {auc:.4f} (CBPE, before outcomes)"
    drop = None if ref_auc is None or auc is None or auc != auc else float(ref_auc - auc)
    checks.append(make_check(
        "performance", drop, cfg.performance.auc_drop_warn, cfg.performance.auc_drop_alert,
        what + (f" vs {ref_auc:.4f} on the version's test period" if ref_auc is not None
                else "; the version has no test_roc_auc to compare with"), estimated=estimated))
    return checks


def performance_section(stats: WindowStats, log: pd.DataFrame, ref_auc: float | None, cfg: MonitorConfig,
                        labels: pd.Series | None, label_name: str | None,
                        recalibration: Recalibration | None = None) -> dict[str, Any]:
    """Estimate always; measured metrics when enough labelled rows (both classes) are joined."""
    from monitoring.performance import measured_metrics

    out: dict[str, Any] = {"reference_roc_auc": ref_auc, "estimate": stats.estimate.to_dict(),
                           "measured": None, "labelled_rows": 0, "label": label_name}
    if labels is None:
        return out
    known = labels.notna().to_numpy()
    out["labelled_rows"] = int(known.sum())
    out["unlabelled_rows"] = int((~known).sum())
    if known.sum() >= cfg.performance.min_labelled_rows:
        y = labels.to_numpy()[known].astype(np.int64)
        p = log[PROBABILITY].to_numpy(dtype=np.float64)[known]
        metrics = measured_metrics(y, p)
        if metrics is not None:
            out["measured"] = metrics
            out["estimate_on_labelled"] = estimate_roc_auc(
                p, recalibration=recalibration, draws=0, seed=cfg.reports.seed).roc_auc
            out["observed_positive_rate"] = float(y.mean())
    return out


def monitor_task(task: str, settings: Settings, cfg: MonitorConfig, *, version: str | int | None = None,
                 since: str | None = None, until: str | None = None, outcomes: Path | None = None,
                 model_name: str | None = None, now: dt.datetime | None = None,
                 echo: Any = None) -> MonitorResult:
    """Monitor one model version over one window; see the module docstring."""
    from models.layout import UNSEEN_ROWS_ARTIFACT
    from monitoring.predictions import read_log
    from monitoring.registry import download, load_model, mlflow_client, resolve_version
    from serving.prediction_log import utc_bound

    say = echo or (lambda _msg: None)
    now = now or dt.datetime.now(dt.UTC)
    client = mlflow_client(settings)
    ref = resolve_version(client, model_name or task, version, settings)
    model = load_model(ref)
    definitions = list(model.features)
    cols = ref.columns(model.meta)
    log_path = settings.prediction_log_target
    window = read_log(log_path, model_name=ref.name, model_version=ref.version, since=since, until=until,
                      features=definitions)
    if not len(window):
        span = f"from {since or 'the start'} until {until or 'now'}"
        raise MonitoringError(f"no predictions of {ref.name} version {ref.version} in the log {log_path} "
                              f"{span} (scored_at); score with that version first, or widen --since/--until")
    log = window.frame
    with tempfile.TemporaryDirectory(prefix="tenure-monitor-") as tmp:
        training_rows = pd.read_parquet(download(client, ref, REFERENCE_ARTIFACT, Path(tmp)))
        unseen_path = download(client, ref, UNSEEN_ROWS_ARTIFACT, Path(tmp), required=False)
        unseen = pd.read_parquet(unseen_path) if unseen_path is not None else None
        test_path = download(client, ref, TEST_PREDICTIONS_ARTIFACT, Path(tmp), required=False)
        test_predictions = pd.read_parquet(test_path) if test_path is not None else None
        valid_path = (download(client, ref, VALID_PREDICTIONS_ARTIFACT, Path(tmp), required=False)
                      if "valid" in cfg.performance.recalibrate_on else None)
        valid_predictions = pd.read_parquet(valid_path) if valid_path is not None else None
    reference, reference_info = choose_reference(ref, cfg, training_rows, test_predictions, cols, model,
                                                 log.get("as_of"), unseen)
    if reference_info.get("note"):
        say(f"reference: {reference_info['note']}")
    say(f"{ref.name} v{ref.version}: {len(log):,} logged rows against {len(reference):,} rows of the "
        f"{reference_info['kind']} reference")
    recalibration = recalibration_for(cfg.performance.recalibrate_on, cols.get("label"),
                                      {"valid": valid_predictions, "test": test_predictions})
    matched = None if reference_info["kind"] == "season" else calendar_matched(
        model, reference, log, cfg.prediction_drift.match_calendar, cfg.reports.seed)
    if matched is not None:
        reference = reference.assign(**{PROBABILITY: matched})
        reference_info["probability"] = ("re-scored with " + ", ".join(
            f for f in cfg.prediction_drift.match_calendar if f in model.feature_names) + " as in the window")
    stats = compute_window(reference, log, definitions, cfg, non_numeric=window.non_numeric,
                           recalibration=recalibration)

    labels = label_name = None
    if outcomes is not None:
        from monitoring.performance import join_outcomes, outcome_labels

        table, label_name = outcome_labels(Path(outcomes), model.task_spec.get("name", task))
        labels = join_outcomes(log, table)
        say(f"outcomes: {int(labels.notna().sum()):,} of {len(log):,} logged rows labelled from {outcomes}")
    ref_auc = ref.run_metrics.get("test_roc_auc")
    performance = performance_section(stats, log, ref_auc, cfg, labels, label_name, recalibration)
    checks = build_checks(len(log), stats, performance, cfg)
    name = _window_name(since, until, now)
    result = MonitorResult(
        task=task, model_name=ref.name, version=ref.version, run_id=ref.run_id,
        window={"name": name, "since": utc_bound(since, "--since"), "until": utc_bound(until, "--until"),
                "first_scored_at": _iso(log["scored_at"].min()), "last_scored_at": _iso(log["scored_at"].max()),
                "as_of": sorted({str(v) for v in log["as_of"].dropna().unique()})[:24]},
        created_at=now.isoformat(timespec="seconds"), rows=len(log), level=worst(c.level for c in checks),
        checks=checks, stats=stats, performance=performance, reference=reference_info)
    _write(result, settings, cfg, client, reference, log, definitions, labels, test_predictions, cols, say)
    return result


def recalibration_for(periods: Sequence[str], label: str | None,
                      predictions: Mapping[str, pd.DataFrame | None]) -> Recalibration | None:
    """The CBPE recalibration fitted on the labelled predictions of `periods` (those the version
    has, with the label column); None when there are none or `periods` is empty."""
    names = {"valid": "validation", "test": "test"}
    used = [p for p in periods if predictions.get(p) is not None and label in predictions[p].columns]
    if not used:
        return None
    rows = pd.concat([predictions[p][[PROBABILITY, label]] for p in used], ignore_index=True)
    period = " and ".join(names[p] for p in used) + (" periods" if len(used) > 1 else " period")
    return Recalibration.fit(rows[PROBABILITY].to_numpy(), rows[label].to_numpy(), period=period)


def calendar_matched(model: Any, reference: pd.DataFrame, log: pd.DataFrame, calendar: Sequence[str],
                     seed: int) -> np.ndarray | None:
    """The reference rows' probabilities with the calendar features taken from the window.

    Each reference row gets the calendar values of a window row drawn at random (seeded), so the
    reference carries the window's calendar mix; the model re-scores it. None when the model has
    none of the `calendar` features.
    """
    names = [f for f in calendar if f in model.feature_names and f in log.columns]
    if not names or not len(log) or not len(reference):
        return None
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(log), size=len(reference))
    rows = reference[model.feature_names].copy()
    for f in names:
        rows[f] = log[f].to_numpy()[pick]
    return model.predict_proba(model.encode_frame(rows, strict=False))


def choose_reference(ref: Any, cfg: MonitorConfig, training_rows: pd.DataFrame,
                     test_predictions: pd.DataFrame | None, cols: Mapping[str, Any], model: Any,
                     as_of: pd.Series | None = None,
                     unseen: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows the window is compared with (`drift.reference`) and a description of them.

    `unseen`: the run's artefact of feature-set rows it was not trained on (None: read the feature
    set at its recorded path instead). `season` falls back to `test` and `test` to `training`,
    each with a note saying why.
    """
    from monitoring.registry import featureset_rows, test_period_rows, unseen_frame

    names = list(model.feature_names)
    notes: list[str] = []
    if cfg.drift.reference in ("season", "test"):
        frame, why = unseen_frame(unseen, dict(cols), names) if unseen is not None else \
            featureset_rows(ref, dict(cols), names)
        if frame is None:
            notes.append(f"compared with the training rows: {why}")
            return training_rows, _describe("training", training_rows, cols, "; ".join(notes))
        if cfg.drift.reference == "season":
            rows, why = season_rows(frame, cols, ref, as_of, cfg.drift.season_min_rows, cfg.reports.seed)
            if rows is not None:
                rows = rows.assign(**{PROBABILITY: model.predict_proba(
                    model.encode_frame(rows[model.feature_names], strict=False))})
                info = _describe("season", rows, cols, None)
                info["months"] = sorted({str(pd.Timestamp(t).date()) for t in rows[cols["time"]].unique()})
                info["probability"] = "scored by the version (rows it was not trained on)"
                return rows, info
            notes.append(f"no same-season reference ({why}); compared with the test period")
        if test_predictions is None:
            notes.append("compared with the training rows: the version has no evaluation/test_predictions.parquet")
        else:
            rows, why = test_period_rows(frame, test_predictions, dict(cols), names)
            if rows is not None:
                return rows, _describe("test", rows, cols, "; ".join(notes) or None)
            notes.append(f"compared with the training rows: {why}")
    return training_rows, _describe("training", training_rows, cols, "; ".join(notes) or None)


def season_rows(frame: pd.DataFrame, cols: Mapping[str, Any], ref: Any, as_of: pd.Series | None,
                min_rows: int, seed: int) -> tuple[pd.DataFrame | None, str | None]:
    """Rows of the feature set `frame` after the version's training period and before the window's
    first snapshot, from the calendar months of the window's snapshots (`as_of`), in the window's
    mix of months.

    Returns (rows, None) or (None, why): the window has no `as_of`, the version's split is unknown,
    a month of the window has no such rows, or fewer than `min_rows` rows remain.
    """
    import json

    time_col = cols["time"]
    # the log reader gives as_of as a categorical column: dates as plain values first
    months = (pd.to_datetime(pd.Series(np.asarray(as_of, dtype=object)), errors="coerce").dropna()
              if as_of is not None else pd.Series([], dtype="M8[ns]"))
    if not len(months):
        return None, "the logged rows carry no as_of (snapshot date)"
    try:
        train_end = pd.Timestamp(json.loads(ref.run_tags.get("tenure.split", ""))["train"][1])
    except (ValueError, KeyError, IndexError, TypeError):
        return None, "the version's run has no tenure.split tag naming its training period"
    times = pd.to_datetime(frame[time_col])
    # unseen by the model, and the past of the window (a window is never its own reference)
    keep = ((times > train_end) & (times < months.min())).to_numpy()
    unseen = frame[keep]
    unseen_month = times[keep].dt.month.to_numpy()
    share = months.dt.month.value_counts(normalize=True)
    available = {m: int((unseen_month == m).sum()) for m in share.index}
    lacking = [m for m, n in available.items() if n == 0]
    if lacking:
        names = ", ".join(pd.Timestamp(2000, m, 1).strftime("%B") for m in sorted(lacking))
        return None, (f"the feature set has no rows of {names} after the training period (to {train_end.date()}) "
                      f"and before the window ({months.min().date()})")
    # the most rows that keep the window's mix: each month's share of the total, within what it has
    total = min(available[m] / share[m] for m in share.index)
    rng = np.random.default_rng(seed)
    picks = []
    for m in sorted(share.index):
        pool = np.flatnonzero(unseen_month == m)
        k = min(len(pool), int(round(total * share[m])))
        picks.append(pool if k == len(pool) else np.sort(rng.choice(pool, size=k, replace=False)))
    rows = unseen.iloc[np.concatenate(picks)].reset_index(drop=True)
    if len(rows) < min_rows:
        return None, f"{len(rows):,} rows of the window's months after the training period, fewer than {min_rows:,}"
    return rows, None


def _describe(kind: str, rows: pd.DataFrame, cols: Mapping[str, Any], note: str | None) -> dict[str, Any]:
    times = pd.to_datetime(rows[cols["time"]]) if cols.get("time") in rows else None
    span = [str(times.min().date()), str(times.max().date())] if times is not None and len(times) else None
    return {"kind": kind, "rows": len(rows), "snapshots": span, "note": note}


def _iso(ts: Any) -> str | None:
    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).isoformat()


def _window_name(since: str | None, until: str | None, now: dt.datetime) -> str:
    from monitoring.reports import window_name

    return window_name(since, until, now)


def _write(result: MonitorResult, settings: Settings, cfg: MonitorConfig, client: Any, reference: pd.DataFrame,
           log: pd.DataFrame, definitions: Sequence[Mapping[str, Any]], labels: pd.Series | None,
           test_predictions: pd.DataFrame | None, cols: Mapping[str, Any], say: Any) -> None:
    """Reports into the window folder, then (optionally) MLflow."""
    from monitoring import reports
    from monitoring.summary import render_summary

    out_dir = reports.version_dir(settings, result.task, result.version) / result.window["name"]
    out_dir.mkdir(parents=True, exist_ok=True)
    result.report_dir = out_dir
    files: dict[str, str] = {}
    if cfg.reports.evidently:
        kinds = feature_kinds(definitions)
        say("writing Evidently reports (data drift, data quality"
            + (", performance)" if labels is not None else ")"))
        kw = {"max_rows": cfg.reports.evidently_max_rows, "seed": cfg.reports.seed, "out_dir": out_dir}
        prediction = DriftResult(columns={PROBABILITY: result.stats.prediction})
        for key, value in reports.evidently_drift(reference, log, result.stats.drift, prediction,
                                                  prediction_threshold=cfg.prediction_drift.warn, **kw).items():
            files[f"data_drift_{key}"] = value
        numeric = [n for n, k in kinds.items() if k == "numeric"] + [PROBABILITY]
        categorical = [n for n, k in kinds.items() if k == "categorical"]
        for key, value in reports.evidently_quality(reference, log, numeric, categorical, **kw).items():
            files[f"data_quality_{key}"] = value
        measured = result.performance.get("measured") is not None
        label_col = cols.get("label")
        if measured and labels is not None and test_predictions is not None and label_col in test_predictions:
            current = pd.DataFrame({"label": labels, PROBABILITY: log[PROBABILITY]}).dropna()
            reference_perf = pd.DataFrame({"label": test_predictions[label_col],
                                           PROBABILITY: test_predictions[PROBABILITY]})
            for key, value in reports.evidently_performance(reference_perf, current, **kw).items():
                files[f"performance_{key}"] = value
    files["monitor_json"] = "monitor.json"
    files["summary_json"] = "summary.json"
    files["index_html"] = "index.html"
    result.files = files
    if cfg.reports.log_to_mlflow:
        result.artifact_path = f"{reports.ARTIFACT_DIR}/{result.window['name']}"
    payload = result.to_dict()
    reports.write_json(out_dir / "monitor.json", payload)
    reports.write_json(out_dir / "summary.json", reports.summary_record(payload))
    reports.write_text(out_dir / "index.html", render_summary(payload))
    if cfg.reports.log_to_mlflow:
        reports.log_window(client, result.run_id, out_dir, result.window["name"], result.level, result.created_at)
