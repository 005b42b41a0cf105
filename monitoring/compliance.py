"""`tenure compliance`: one self-contained HTML page per model version for a compliance review.

Reads, through the MLflow registry (see `monitoring.registry`): the version, its run (tags,
metrics), the model (feature definitions, task spec, booster), the artefacts
`reference/reference.parquet`, `evaluation/test_predictions.parquet`, `evaluation/metrics.json`,
`config/train_config.json` and `plots/shap_summary.png`; the drift history
(`monitoring.reports.drift_history`); and the promotion record (`models.registry.
promotion_history`, falling back per version to its tags `tenure.promotion.*`). Writes
`<reports_dir>/<task>/v<version>/compliance.html` and logs it to the version's run under
`compliance/`.

Sections: lineage (feature-set hash and path, snapshot ranges of the split, git commit, training
config, feature definitions); metrics with a calibration plot; global SHAP importance on a
seeded sample of the training reference and example decisions with their reasons (the serving
sentences, built from the feature definitions); fairness by age band, city tier and industry on
the test predictions (fairlearn MetricFrame: positive rate, ROC AUC, calibration per group, and
the gaps, with the promotion gates' group-size rules); drift history; promotion record.

No personal data: only the model's features, group columns and scores of the reference and test
rows are read; customer ids are never shown (examples are numbered), and the customers table is
never opened. Everything is inline (CSS, base64 PNG), with no scripts and no external resources.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from configs.monitor import MonitorConfig
from configs.settings import Settings
from features.io import atomic_path
from models.layout import (
    METRICS_ARTIFACT,
    REFERENCE_ARTIFACT,
    TEST_PREDICTIONS_ARTIFACT,
    TRAIN_CONFIG_ARTIFACT,
)
from monitoring import html as h
from monitoring.registry import VersionRef

ARTIFACT_DIR = "compliance"
FILE_NAME = "compliance.html"


@dataclass
class CompliancePack:
    path: Path
    model_name: str
    version: str
    run_id: str
    artifact_path: str | None


# ---- pieces ---------------------------------------------------------------------------------

def global_importance(model: Any, rows: pd.DataFrame) -> pd.Series:
    """Mean |SHAP contribution| (log-odds) per feature over `rows`, largest first."""
    X = model.encode_frame(rows[model.feature_names], strict=False)  # noqa: N806
    contrib = model.contributions(X)[:, : len(model.feature_names)]
    return pd.Series(np.abs(contrib).mean(axis=0), index=model.feature_names).sort_values(ascending=False)


def example_decisions(model: Any, rows: pd.DataFrame, n: int, reasons: int) -> list[dict[str, Any]]:
    """`n` rows spread over the upper half of the scores (where actions are taken: the highest,
    then evenly down to the median), each with probability, tier, action and its top reasons."""
    from features.definitions import FEATURES_BY_NAME
    from models import TaskSpec
    from serving.reasons import ReasonWriter

    if n <= 0 or not len(rows):
        return []
    spec = TaskSpec.model_validate(model.task_spec)
    writer = ReasonWriter.build(model.features, spec.positive_means, None, FEATURES_BY_NAME)
    X = model.encode_frame(rows[model.feature_names], strict=False)  # noqa: N806
    p = model.predict_proba(X)
    order = np.argsort(p, kind="stable")
    picks = sorted({int(order[min(len(order) - 1, int(q * (len(order) - 1)))])
                    for q in np.linspace(1.0, 0.5, n)}, key=lambda i: -p[i])
    contrib = model.contributions(X[picks])
    out = []
    for k, i in enumerate(picks):
        record = {}
        for f in model.features:
            v = rows[f["name"]].iloc[i]
            record[f["name"]] = None if pd.isna(v) else (str(v) if f["kind"] == "categorical" else float(v))
        raw = float(model.raw_score(X[i:i + 1])[0])
        expl = writer.explain(contrib[k], raw, record, reasons)
        tier = spec.tier_for(float(p[i]))
        out.append({"example": k + 1, "probability": float(p[i]), "tier": tier.name, "action": tier.action_en,
                    "reasons": [r.text_en for r in expl.reasons]})
    return out


def _auc(y: Any, p: Any) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def group_table(y: np.ndarray, p: np.ndarray, groups: pd.Series, *, threshold: float, bins: int,
                min_group_size: int, min_group_class_count: int) -> tuple[pd.DataFrame, dict[str, float | None]]:
    """Per group (fairlearn MetricFrame): n, positives, positive rate, ROC AUC, mean probability,
    observed rate, calibration gap (mean probability - observed rate) and ECE; and the gaps
    (max - min over the groups that qualify, as in the promotion gates)."""
    from fairlearn.metrics import MetricFrame

    from models.metrics import expected_calibration_error

    g = groups.astype("object").reset_index(drop=True)
    present = g.notna().to_numpy()
    y, p, g = np.asarray(y)[present].astype(int), np.asarray(p, dtype=np.float64)[present], g[present].astype(str)
    frame = MetricFrame(
        metrics={
            "n": lambda yt, yp: len(yt),
            "positives": lambda yt, yp: int(np.sum(yt)),
            "positive_rate": lambda yt, yp: float(np.mean(np.asarray(yp) >= threshold)),
            "roc_auc": _auc,
            "mean_probability": lambda yt, yp: float(np.mean(yp)),
            "observed_rate": lambda yt, yp: float(np.mean(yt)),
            "ece": lambda yt, yp: expected_calibration_error(np.asarray(yt), np.asarray(yp), bins),
        },
        y_true=y, y_pred=p, sensitive_features=pd.Series(g.to_numpy(), name=groups.name or "group"),
    )
    table = frame.by_group.copy()
    table.index = table.index.astype(str)
    table["n"] = table["n"].astype(int)
    table["positives"] = table["positives"].astype(int)
    table["calibration_gap"] = table["mean_probability"] - table["observed_rate"]
    big = table["n"] >= min_group_size
    both = big & (table["positives"] >= min_group_class_count) & \
        ((table["n"] - table["positives"]) >= min_group_class_count) & table["roc_auc"].notna()
    table["in_gaps"] = big

    def gap(col: str, mask: pd.Series) -> float | None:
        vals = table.loc[mask, col].dropna()
        return float(vals.max() - vals.min()) if len(vals) >= 2 else None

    gaps = {"positive_rate_gap": gap("positive_rate", big), "roc_auc_gap": gap("roc_auc", both),
            "calibration_gap_spread": gap("calibration_gap", big), "missing_group_rows": int((~present).sum())}
    return table.sort_index(), gaps


def _png(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None and path.exists() else None


def _calibration_figure(y: np.ndarray, p: np.ndarray, bins: int, title: str) -> str:
    plt = h.pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    xs, ys, ns = [], [], []
    for b in range(bins):
        sel = which == b
        if sel.any():
            xs.append(float(p[sel].mean()))
            ys.append(float(y[sel].mean()))
            ns.append(int(sel.sum()))
    top = min(1.0, max(0.05, float(np.quantile(p, 0.995)) * 1.15, float(np.mean(y)) * 2))
    ax.plot([0, top], [0, top], ls="--", c="grey", lw=1, label="perfect calibration")
    ax.plot(xs, ys, marker="o", c="#4c6ef5", label="model (test period)")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="mean predicted probability", ylabel="observed rate",
           title=f"Calibration: {title}")
    ax.legend(loc="upper left")
    ax2.hist(p, bins=40, color="#868e96")
    ax2.set(xlabel="predicted probability", ylabel="rows", title="Score distribution (test period)")
    return h.figure_img(fig, "calibration plot")


def _importance_figure(importance: pd.Series, top: int) -> str:
    plt = h.pyplot()
    shown = importance.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(shown) + 1.2))
    ax.barh(range(len(shown)), shown.to_numpy(), color="#4c6ef5")
    ax.set_yticks(range(len(shown)), list(shown.index))
    ax.set(xlabel="mean |SHAP value| (log-odds)", title="Global feature importance (training reference sample)")
    return h.figure_img(fig, "global SHAP importance")


def _promotion_records(ref: VersionRef, settings: Settings) -> tuple[list[dict[str, Any]], str]:
    """Records about this version (as challenger or as the champion it replaced), and their source.

    A registry that cannot be read fails the pack (it is not an empty history); a version whose
    record artefact is unreadable contributes its tag summary (`models.registry.promotion_history`).
    """
    from models.registry import promotion_history

    records = promotion_history(ref.name, settings)
    mine = [r for r in records if str(r.get("challenger_version")) == ref.version
            or str(r.get("champion_version")) == ref.version]
    sources = sorted({"record artefacts" if r.get("source") == "artifact" else "version tags" for r in mine})
    return mine, "promotion records in the registry (" + (", ".join(sources) or "none for this version") + ")"


# ---- the page -------------------------------------------------------------------------------

def compliance_pack(task: str, settings: Settings, cfg: MonitorConfig, *, version: str | int | None = None,
                    model_name: str | None = None, now: dt.datetime | None = None,
                    log_to_mlflow: bool | None = None) -> CompliancePack:
    """Write (and log) the compliance page of one model version (default: the champion)."""
    from configs.promote import load_promote_config
    from monitoring import reports
    from monitoring.registry import download, load_model, mlflow_client, resolve_version

    now = now or dt.datetime.now(dt.UTC)
    client = mlflow_client(settings)
    ref = resolve_version(client, model_name or task, version, settings)
    model = load_model(ref)
    cols = ref.columns(model.meta)
    with tempfile.TemporaryDirectory(prefix="tenure-compliance-") as tmp_dir:
        tmp = Path(tmp_dir)
        reference = pd.read_parquet(download(client, ref, REFERENCE_ARTIFACT, tmp))
        test_path = download(client, ref, TEST_PREDICTIONS_ARTIFACT, tmp, required=False)
        test = pd.read_parquet(test_path) if test_path is not None else None
        metrics_path = download(client, ref, METRICS_ARTIFACT, tmp, required=False)
        metrics_json = json.loads(metrics_path.read_text()) if metrics_path is not None else {}
        config_path = download(client, ref, TRAIN_CONFIG_ARTIFACT, tmp, required=False)
        train_config = json.loads(config_path.read_text()) if config_path is not None else None
        shap_png = _png(download(client, ref, "plots/shap_summary.png", tmp, required=False))
    promote_cfg = load_promote_config()
    history = reports.drift_history(ref.name, ref.version, settings)
    promotions, promotion_source = _promotion_records(ref, settings)

    body = _render(ref, model, cols, reference, test, metrics_json, train_config, shap_png, history,
                   promotions, promotion_source, cfg, promote_cfg, now)
    out = reports.version_dir(settings, task, ref.version) / FILE_NAME
    with atomic_path(out) as tmp_file:
        tmp_file.write_text(h.page(f"Compliance pack: {ref.name} v{ref.version}", body))
    out.chmod(0o644)  # a report to share, not a secret (the temporary file was private)
    artifact_path = None
    if cfg.reports.log_to_mlflow if log_to_mlflow is None else log_to_mlflow:
        client.log_artifact(ref.run_id, str(out), artifact_path=ARTIFACT_DIR)
        artifact_path = f"{ARTIFACT_DIR}/{FILE_NAME}"
    return CompliancePack(path=out, model_name=ref.name, version=ref.version, run_id=ref.run_id,
                          artifact_path=artifact_path)


def _split(ref: VersionRef, model: Any) -> dict[str, Any]:
    try:
        return json.loads(ref.run_tags.get("tenure.split", ""))
    except ValueError:
        return dict(model.meta.get("split") or {})


def _render(ref: VersionRef, model: Any, cols: Mapping[str, Any], reference: pd.DataFrame,
            test: pd.DataFrame | None, metrics_json: Mapping[str, Any], train_config: Any,
            shap_png: bytes | None, history: Sequence[Mapping[str, Any]], promotions: Sequence[Mapping[str, Any]],
            promotion_source: str, cfg: MonitorConfig, promote_cfg: Any, now: dt.datetime) -> str:
    from models.metrics import positive_threshold

    spec = model.task_spec or {}
    split = _split(ref, model)
    tags = ref.run_tags
    fs_hash = ref.tags.get("tenure.featureset_hash") or tags.get("tenure.featureset_hash")
    fs_path = ref.tags.get("tenure.featureset_path") or tags.get("tenure.featureset_path")
    parts = [
        f"<h1>Compliance pack: {h.esc(ref.name)} version {h.esc(ref.version)}</h1>",
        f'<p class="muted">{h.esc(spec.get("question", ""))} Generated {h.esc(now.isoformat(timespec="seconds"))}; '
        f"aliases: {h.esc(', '.join(ref.aliases) or 'none')}; MLflow run {h.esc(ref.run_id)}.</p>",
        "<p>This page holds no personal data: no names, phone numbers, national ids or addresses, and no "
        "customer ids. Examples are numbered rows of the training reference.</p>",
    ]

    # lineage
    parts.append("<h2>1. Data lineage</h2>")
    lineage_rows = [
        ("feature-set content hash", fs_hash), ("feature-set file", fs_path),
        ("git commit", tags.get("tenure.git_commit")), ("uncommitted changes", tags.get("tenure.git_dirty")),
        ("split", split.get("kind")),
        ("training snapshots", " to ".join(split.get("train", [])) or None),
        ("validation snapshots", " to ".join(split.get("valid", [])) or None),
        ("test snapshots", " to ".join(split.get("test", [])) or None),
        ("rows (train / valid / test)", " / ".join(str(v) for v in (split.get("rows") or {}).values()) or None),
        ("label", f"{cols.get('label')}: {(spec.get('label') or {}).get('definition', '')}"),
        ("calibration", tags.get("tenure.calibration")), ("parameters chosen", tags.get("tenure.chosen")),
        ("logistic regression blended in at weight", tags.get("tenure.blend_weight", "0 (trained before blending)")),
        ("seed", tags.get("tenure.seed")),
        ("registered", dt.datetime.fromtimestamp(ref.created_at / 1000, dt.UTC).isoformat(timespec="seconds")
         if ref.created_at else None),
    ]
    parts.append(h.table(["item", "value"], lineage_rows))
    parts.append("<h3>Feature definitions</h3>")
    parts.append(h.table(
        ["feature", "kind", "source", "description", "unit", "allowed values"],
        [(f["name"], f["kind"], f.get("source", ""), f.get("description", ""), f.get("unit", ""),
          ", ".join(f.get("categories") or []) if f["kind"] == "categorical"
          else f"{h.fmt(f.get('min'))} to {h.fmt(f.get('max'))}") for f in model.features]))
    if train_config is not None:
        parts.append("<h3>Training configuration</h3>")
        parts.append(h.pre_json(train_config, "config/train_config.json of the run (click to open)"))

    # metrics
    parts.append("<h2>2. Metrics and calibration</h2>")
    metric_names = ("roc_auc", "pr_auc", "ks", "brier", "log_loss", "ece", "lift_top10", "capture_top10")
    rows = [(m, ref.run_metrics.get(f"valid_{m}"), ref.run_metrics.get(f"test_{m}"),
             ref.run_metrics.get(f"baseline_test_{m}")) for m in metric_names]
    parts.append(h.table(["metric", "validation", "test", "test, default parameters"], rows))
    label = cols.get("label")
    if test is not None and label in test.columns and len(test):
        y = test[label].to_numpy().astype(int)
        p = test["probability"].to_numpy(dtype=np.float64)
        parts.append(_calibration_figure(y, p, promote_cfg.ece_bins, ref.name))

    # explanations
    parts.append("<h2>3. Explanations</h2>")
    sample = reference
    if len(sample) > cfg.compliance.shap_rows:
        sample = reference.sample(n=cfg.compliance.shap_rows, random_state=cfg.reports.seed)
    importance = global_importance(model, sample)
    linear = model.linear
    how = ("TreeSHAP" if linear is None else
           f"TreeSHAP of the trees blended with the exact SHAP values of the logistic regression blended into "
           f"the score at weight {linear.weight:g}")
    parts.append(f"<p>Mean absolute SHAP contribution ({how}, log-odds) over {len(sample):,} rows of the "
                 "training reference, drawn with the seed.</p>")
    parts.append(_importance_figure(importance, cfg.compliance.top_features))
    total = float(importance.sum()) or 1.0
    parts.append(h.table(["feature", "mean |SHAP|", "share"],
                         [(k, float(v), float(v) / total) for k, v in importance.head(cfg.compliance.top_features).items()]))
    if shap_png is not None:
        parts.append("<h3>SHAP summary logged at training (test period)</h3>")
        parts.append(h.png_img(shap_png, "SHAP summary"))
    examples = example_decisions(model, sample, cfg.compliance.examples, cfg.compliance.reasons)
    if examples:
        parts.append("<h3>Example decisions</h3>")
        parts.append(h.table(
            ["example", "probability", "tier", "action", "reasons"],
            [(f"Example {e['example']}", e["probability"], e["tier"], e["action"],
              "<ul>" + "".join(f"<li>{h.esc(r)}</li>" for r in e["reasons"]) + "</ul>") for e in examples],
            raw=(4,)))

    # fairness
    parts.append("<h2>4. Fairness by group</h2>")
    tiers = spec.get("tiers") or []
    try:
        threshold = positive_threshold(tiers, promote_cfg.positive_tier)
    except Exception:  # noqa: BLE001 - a spec without tiers: half
        threshold = 0.5
    groups = [g for g in (spec.get("groups") or cols.get("groups") or []) if test is not None and g in test.columns]
    if test is None or label not in (test.columns if test is not None else []):
        parts.append("<p>The version has no test predictions (evaluation/test_predictions.parquet).</p>")
    else:
        parts.append(f"<p>On the {len(test):,} rows of the test period. A prediction is positive from probability "
                     f"{threshold:g} (tier {promote_cfg.positive_tier} of the task's tiers: it triggers an action). "
                     f"Gaps are max minus min over groups of at least {promote_cfg.min_group_size} rows (ROC AUC: "
                     f"also at least {promote_cfg.min_group_class_count} positives and negatives); promotion gates: "
                     f"ROC AUC gap at most {promote_cfg.max_group_auc_gap}, positive-rate gap at most "
                     f"{promote_cfg.max_group_positive_rate_gap}. Calibration gap = mean probability minus observed "
                     "rate (positive: the group's risk is overstated).</p>")
        y = test[label].to_numpy().astype(int)
        p = test["probability"].to_numpy(dtype=np.float64)
        for g in groups:
            table, gaps = group_table(y, p, test[g].rename(g), threshold=threshold, bins=promote_cfg.ece_bins,
                                      min_group_size=promote_cfg.min_group_size,
                                      min_group_class_count=promote_cfg.min_group_class_count)
            parts.append(f"<h3>{h.esc(g)}</h3>")
            parts.append(h.table(
                ["group", "rows", "positives", "positive rate", "ROC AUC", "mean probability", "observed rate",
                 "calibration gap", "ECE", "in gaps"],
                [(idx, int(r["n"]), int(r["positives"]), float(r["positive_rate"]), float(r["roc_auc"]),
                  float(r["mean_probability"]), float(r["observed_rate"]), float(r["calibration_gap"]),
                  float(r["ece"]), bool(r["in_gaps"])) for idx, r in table.iterrows()]))
            parts.append(h.table(["gap", "value"], [
                ("positive rate (max - min)", gaps["positive_rate_gap"]),
                ("ROC AUC (max - min)", gaps["roc_auc_gap"]),
                ("calibration gap (max - min)", gaps["calibration_gap_spread"]),
                ("rows without a group value", gaps["missing_group_rows"])]))

    # drift history
    parts.append("<h2>5. Drift history</h2>")
    if history:
        parts.append(h.table(
            ["window", "monitored at", "rows", "compared with", "level", "features drifted", "prediction drift",
             "ESTIMATED ROC AUC", "measured ROC AUC"],
            [(r.get("window"), r.get("created_at"), r.get("rows"), r.get("reference") or "-", h.badge(r.get("level")),
              ", ".join(r.get("drifted_features") or []) or "-",
              f"{r['prediction_drift']:.4f} ({r.get('prediction_drift_method') or 'n/a'})"
              if isinstance(r.get("prediction_drift"), int | float) else "-",
              r.get("estimated_roc_auc"), r.get("measured_roc_auc")) for r in history],
            raw=(4,)))
    else:
        parts.append("<p>No monitoring run recorded for this version yet (`tenure monitor`).</p>")

    # promotion record
    parts.append("<h2>6. Promotion record</h2>")
    if promotions:
        parts.append(f'<p class="muted">Source: {h.esc(promotion_source)}.</p>')
        parts.append(h.table(
            ["when", "decision", "by", "challenger", "champion before", "reason", "failed gates"],
            [(r.get("timestamp"), r.get("status"), r.get("actor"), r.get("challenger_version"),
              r.get("champion_version"), r.get("reason"),
              ", ".join(g.get("name", "") for g in (r.get("gates") or []) if not g.get("passed", True)) or "-")
             for r in promotions]))
        gates = next((r.get("gates") for r in reversed(promotions) if r.get("gates")), None)
        if gates:
            parts.append("<h3>Gates of the latest decision</h3>")
            parts.append(h.table(["gate", "passed", "value", "threshold", "detail"],
                                 [(g.get("name"), g.get("passed"), g.get("value"), g.get("threshold"),
                                   g.get("detail")) for g in gates]))
    else:
        parts.append("<p>No promotion decision recorded for this version.</p>")
    return "".join(parts)
