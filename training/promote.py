"""Gated promotion of a registered model's `challenger` version to `champion`, with a recorded decision.

Reads, through the MLflow registry at `settings.tracking_uri`:
- the versions behind the aliases `challenger` (required) and `champion` (absent for a first model),
- the challenger's run: tags `tenure.split` (test window) and `tenure.featureset_path`, artefacts
  `reference/reference.parquet` (training rows) and, for random splits,
  `evaluation/test_predictions.parquet` (test row ids),
- the challenger's feature set (checked against the version tag `tenure.featureset_hash`).

Both models are scored on the SAME rows: the challenger's test window of the challenger's feature
set (its test snapshots for an out-of-time split; its test rows for a random split). Gates, with
thresholds from `configs/promote.yaml`:

- `min_auc`: challenger ROC AUC >= min_auc;
- `auc_vs_champion`: challenger AUC - champion AUC >= -max_auc_drop (passes when there is no
  champion yet: a first model is judged by the absolute gates only; fails when the champion
  cannot score the rows);
- `max_ece`: challenger expected calibration error (as `training.evaluate`) <= max_ece plus the
  ECE a perfectly calibrated model would show on these rows (`ece_noise_floor`: 0.002 on the
  demo's 10,000 test rows, 0.03 on a 1,300-row public table);
- `auc_gap[<group>]`, `positive_rate_gap[<group>]` per group column of the task spec: the gap
  across groups, judged by its lower confidence bound at `gap_confidence` so that noise in small
  groups does not decide (see `training.fairness`); a prediction counts as positive from tier
  `positive_tier` of the task spec's tiers on; a column absent from the data, or with fewer than
  two groups large enough, passes with a detail saying it was not judged;
- `max_feature_psi`: the worst PSI (training rows against the test window, see
  `training.stability`) among the features carrying at least `psi_min_importance` of the
  challenger's split gain, `psi_exclude` left out. Cumulative counts and 12-month windows drift
  by construction between the oldest training snapshots and the test window (PSI 0.2-1.3 on the
  demo data) while carrying 0.1-2 % of the gain; they are recorded and named, not gated.

- `shadow_period` (only with a champion and `min_shadow_days` or `min_shadow_rows` set): the
  challenger has scored live traffic as a shadow (serving's `shadow: [challenger]`) for that long
  and that many rows, read from the prediction log.

Writes, for every decision (promoted, refused or forced):
- the full record as JSON on the challenger's run: `promotion/<timestamp>-v<version>.json`,
- tags on the challenger version: `tenure.promotion.status` (promoted | refused | forced),
  `.at` (UTC, ISO 8601), `.by`, `.reason` and `.record` (a compact JSON summary),
- on promotion: alias `champion` -> the challenger version, and tag
  `tenure.promotion.superseded_by` on the previous champion version.

`promotion_history` reads every record back, over all versions, oldest first. A refusal leaves
the champion untouched; `force=True` (with a reason) promotes despite failed gates and is
recorded as `forced`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from configs import TenureError
from configs.promote import PromoteConfig
from configs.settings import Settings
from models.layout import (
    CHALLENGER,
    CHAMPION,
    FORCED,
    PROMOTED,
    RECORD_DIR,
    REFERENCE_ARTIFACT,
    REFUSED,
    TAG_AT,
    TAG_BY,
    TAG_REASON,
    TAG_RECORD,
    TAG_RUN_ID,
    TAG_STATUS,
    TAG_SUPERSEDED_AT,
    TAG_SUPERSEDED_BY,
    TEST_PREDICTIONS_ARTIFACT,
)
from models.metrics import expected_calibration_error
from models.registry import registry_client
from training.fairness import GroupFairness

EXIT_REFUSED = 3
# stay under the strictest registry's tag-value limit (5000 characters)
MAX_TAG_CHARS = 4500


class PromotionError(TenureError):
    """A promotion that cannot be evaluated or carried out; the message says what and where."""


@dataclass
class GateResult:
    """One gate: `value` against `threshold` (None when the gate had nothing to judge)."""

    name: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "value": _round(self.value),
                "threshold": self.threshold, "detail": self.detail}


@dataclass
class PromotionDecision:
    model_name: str
    challenger_version: str
    champion_version: str | None  # the champion compared with (None for a first model)
    promoted: bool
    forced: bool
    gates: list[GateResult]
    reason: str
    actor: str
    timestamp: str  # UTC, ISO 8601
    metrics: dict[str, Any] = field(default_factory=dict)
    record_artifact: str | None = None  # run-relative path of the full JSON record

    @property
    def status(self) -> str:
        if not self.promoted:
            return REFUSED
        return FORCED if self.forced else PROMOTED

    @property
    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gates"] = [g.to_dict() for g in self.gates]
        out["status"] = self.status
        return out


# ---- metrics and gates (pure: arrays and frames in, results out) ------------------------------

def roc_auc(y_true: Any, proba: Any) -> float:
    """ROC AUC; raises PromotionError when the rows hold a single class."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y_true).astype(int)
    if len(np.unique(y)) < 2:
        raise PromotionError(f"the evaluation rows hold only label {int(y[0]) if len(y) else '-'}; "
                             "ROC AUC needs both classes")
    return float(roc_auc_score(y, np.asarray(proba, dtype=np.float64)))


def ece_noise_floor(proba: Any, bins: int = 10) -> float:
    """The expected ECE of a perfectly calibrated model with these probabilities (y ~ Bernoulli(p)).

    Per bin, |sum(y) - sum(p)| is then about |N(0, sum p(1-p))|, whose mean is sqrt(2 V / pi); the
    floor is the row-weighted sum. On 1,300 rows at a 28 % base rate it is 0.03, on 10,000 rows
    at 2 % 0.002: the max_ece gate adds it so the bound means the same on any sample size.
    """
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    if len(p) == 0:
        return 0.0
    idx = np.minimum((p * bins).astype(int), bins - 1)
    var = np.bincount(idx, weights=p * (1 - p), minlength=bins)
    return float(np.sum(np.sqrt(2 * var / np.pi)) / len(p))


def evaluate_gates(
    *,
    y_true: Any,
    challenger_proba: Any,
    champion_proba: Any | None,
    rows: pd.DataFrame,
    reference: pd.DataFrame,
    features: Sequence[dict[str, Any]],
    group_columns: Sequence[str],
    tiers: Sequence[dict[str, Any]],
    cfg: PromoteConfig,
    champion_note: str = "",
    importance: Mapping[str, float] | None = None,
    clusters: Any | None = None,
    model_name: str = "",
    time_column: str | None = None,
) -> tuple[list[GateResult], dict[str, Any]]:
    """Every gate of `cfg` on the evaluation rows, and the metrics behind them.

    `rows` are the evaluation rows (features and group columns, aligned with `y_true` and the
    probabilities); `reference` the challenger's training rows; `features` the challenger's
    feature definitions (name, kind); `champion_proba` None when there is no champion or it
    could not be scored (then `champion_note` says why); `importance` the challenger's share of
    total gain per feature (None: every feature is gated on PSI); `time_column`, when both
    frames have it, makes the stability gate compare like calendar months.
    """
    from models.metrics import positive_threshold
    from training.fairness import fairness_report

    y = np.asarray(y_true).astype(int)
    p = np.asarray(challenger_proba, dtype=np.float64)
    gates: list[GateResult] = []
    auc = roc_auc(y, p)
    ece = expected_calibration_error(y, p, cfg.ece_bins)
    threshold = positive_threshold(tiers, cfg.positive_tier)
    metrics: dict[str, Any] = {
        "rows": len(y),
        "positives": int(y.sum()),
        "challenger": {"roc_auc": _round(auc), "ece": _round(ece),
                       "positive_rate": _round(float(np.mean(p >= threshold))),
                       "mean_probability": _round(float(p.mean())), "observed_rate": _round(float(y.mean()))},
        "positive_threshold": threshold,
    }

    gates.append(GateResult("min_auc", auc >= cfg.min_auc, auc, cfg.min_auc,
                            f"challenger ROC AUC {auc:.4f} {'>=' if auc >= cfg.min_auc else '<'} {cfg.min_auc}"))
    if champion_proba is not None:
        champ = np.asarray(champion_proba, dtype=np.float64)
        champ_auc = roc_auc(y, champ)
        delta = auc - champ_auc
        ok = delta >= -cfg.max_auc_drop
        metrics["champion"] = {"roc_auc": _round(champ_auc),
                               "ece": _round(expected_calibration_error(y, champ, cfg.ece_bins))}
        metrics["auc_delta"] = _round(delta)
        detail = (f"challenger {auc:.4f} vs champion {champ_auc:.4f} on the same {len(y)} rows "
                  f"(delta {delta:+.4f}, allowed drop {cfg.max_auc_drop})")
        gates.append(GateResult("auc_vs_champion", ok, delta, -cfg.max_auc_drop,
                                detail + (f"; {champion_note}" if champion_note else "")))
    elif champion_note:
        metrics["champion"] = None
        gates.append(GateResult("auc_vs_champion", False, None, -cfg.max_auc_drop, champion_note))
    else:
        metrics["champion"] = None
        gates.append(GateResult("auc_vs_champion", True, None, -cfg.max_auc_drop,
                                "no champion yet: judged by the absolute gates only"))
    floor = ece_noise_floor(p, cfg.ece_bins)
    allowed = cfg.max_ece + floor
    metrics["challenger"]["ece_noise_floor"] = _round(floor)
    gates.append(GateResult("max_ece", ece <= allowed, ece, round(allowed, 6),
                            f"expected calibration error {ece:.4f} ({cfg.ece_bins} bins; mean probability "
                            f"{p.mean():.4f}, observed rate {y.mean():.4f}); allowed {cfg.max_ece} + "
                            f"{floor:.4f} that a perfectly calibrated model shows on {len(y)} rows"))

    # fairness
    report = fairness_report(rows.reset_index(drop=True), y, p, group_columns, threshold=threshold,
                             min_group_size=cfg.min_group_size, min_group_class_count=cfg.min_group_class_count,
                             confidence=cfg.gap_confidence, clusters=clusters)
    metrics["fairness"] = {col: r.to_dict() for col, r in report.items()}
    absent = [c for c in group_columns if c not in report]
    if absent:
        metrics["fairness_absent_columns"] = absent
    for col in group_columns:
        exempt = col in cfg.positive_rate_gap_exempt.get(model_name, [])
        gates.extend(_fairness_gates(col, report.get(col), threshold, cfg, rate_exempt=exempt))

    # stability
    gates.append(_stability_gate(rows, reference, features, importance, cfg, metrics, time_column))
    return gates, metrics


def _fairness_gates(col: str, r: GroupFairness | None, threshold: float, cfg: PromoteConfig,
                    rate_exempt: bool = False) -> list[GateResult]:
    """`auc_gap[col]` and `positive_rate_gap[col]`: the gap's confidence bound against the limit."""
    specs = (("auc_gap", cfg.max_group_auc_gap, "roc_auc", "ROC AUC", "in_auc_gap",
              f"with >= {cfg.min_group_size} rows and >= {cfg.min_group_class_count} of each class"),
             ("positive_rate_gap", cfg.max_group_positive_rate_gap, "positive_rate",
              f"positive rate (p >= {threshold:g})", "in_rate_gap", f"with >= {cfg.min_group_size} rows"))
    out = []
    for kind, limit, column, label, flag, rule in specs:
        name = f"{kind}[{col}]"
        if r is None:
            out.append(GateResult(name, True, None, limit, f"column {col} is not in the evaluation rows: not judged"))
            continue
        gap = r.auc if kind == "auc_gap" else r.positive_rate
        if gap is None:
            out.append(GateResult(name, True, None, limit, f"fewer than 2 groups {rule}: not judged"))
            continue
        t = r.table
        lo, hi = gap.low_group, gap.high_group
        exempt = rate_exempt and kind == "positive_rate_gap"
        out.append(GateResult(
            name, exempt or gap.bound <= limit, gap.bound, limit,
            ("recorded, not gated (positive_rate_gap_exempt): " if exempt else "") +
            f"{label} {t.loc[lo, column]:.3f} ({lo}, n={t.loc[lo, 'n']}) vs {t.loc[hi, column]:.3f} ({hi}, "
            f"n={t.loc[hi, 'n']}): gap {gap.raw:.3f} over {int(t[flag].sum())} groups, "
            f"{gap.bound:.3f} beyond noise at {cfg.gap_confidence:g} confidence"))
    return out


def _stability_gate(rows: pd.DataFrame, reference: pd.DataFrame, features: Sequence[dict[str, Any]],
                    importance: Mapping[str, float] | None, cfg: PromoteConfig,
                    metrics: dict[str, Any], time_column: str | None = None) -> GateResult:
    """`max_feature_psi`: the worst PSI among the features the model relies on; fills metrics["psi"].

    With `time_column` in both frames, the training rows are weighted to the calendar months of
    the evaluation rows (`training.stability.like_month_weights`), so calendar effects (day
    counts of 30- and 31-day months) are not read as a shift. And, like months or not (a new
    install's short history has none), an integer-valued feature (day counts, event counts)
    above the PSI limit is gated only when the monitor's drift test finds drift too
    (`_monitor_finds_drift`): its spikes moving by one day cross a quantile edge and make a
    large PSI out of a small move.
    """
    from training.stability import feature_psi, like_month_weights

    kinds = {f["name"]: f["kind"] for f in features}
    checked = [n for n in kinds if n not in set(cfg.psi_exclude)]
    missing = [n for n in checked if n not in reference.columns or n not in rows.columns]
    if missing:
        raise PromotionError(f"features {missing} are missing from the training reference or the "
                             "evaluation rows; cannot check stability")
    weights, months_note = None, ""
    if time_column and time_column in reference.columns and time_column in rows.columns:
        weights, months_note = like_month_weights(reference[time_column], rows[time_column])
        metrics["psi_months"] = months_note
    psi = feature_psi(reference, rows, checked, kinds=kinds, bins=cfg.psi_bins, eps=cfg.psi_epsilon,
                      reference_weights=weights)
    share = pd.Series({n: float((importance or {}).get(n, 0.0)) for n in psi.index}, dtype="float64")
    gated = psi if importance is None else psi[share >= cfg.psi_min_importance]
    metrics["psi"] = {k: _round(v) for k, v in psi.items()}
    small_moves = {
        n: verdict for n in gated.index[gated > cfg.max_feature_psi]
        if kinds[n] == "numeric" and (verdict := _monitor_finds_drift(reference[n], rows[n])) is not None
        and not verdict.drifted}
    if small_moves:
        gated = gated.drop(list(small_moves))
        metrics["psi_small_moves"] = {n: v.to_dict() for n, v in small_moves.items()}
    if importance is not None:
        metrics["gain_share"] = {k: _round(v) for k, v in share.sort_values(ascending=False).items()}
        metrics["psi_gated_features"] = list(gated.index)
    if gated.empty:
        return GateResult("max_feature_psi", True, None, cfg.max_feature_psi, "no features to check")
    top = float(gated.iloc[0])
    over = int((gated > cfg.max_feature_psi).sum())
    scope = (f"{len(gated)} features" if importance is None else
             f"{len(gated)} features with >= {cfg.psi_min_importance:g} of the gain")
    detail = f"{over} of {scope} above; worst: " + ", ".join(
        f"{k} {v:.3f}" for k, v in gated.head(cfg.psi_report_worst).items())
    ungated = psi.drop([*gated.index, *small_moves])
    if len(ungated):
        detail += "; not gated (less gain): " + ", ".join(
            f"{k} {v:.3f}" for k, v in ungated.head(cfg.psi_report_worst).items())
    if cfg.psi_exclude:
        detail += f"; excluded: {', '.join(cfg.psi_exclude)}"
    if months_note:
        detail += f"; {months_note}"
    if small_moves:
        detail += "; not gated (integer values moved a little, no drift by the monitor's test): " + ", ".join(
            f"{n} PSI {psi[n]:.3f}, {v.method_name} {v.score:.3f}" for n, v in small_moves.items())
    return GateResult("max_feature_psi", top <= cfg.max_feature_psi, top, cfg.max_feature_psi, detail)


def _monitor_finds_drift(reference: pd.Series, current: pd.Series) -> Any:
    """The monitor's drift verdict (`monitoring.drift.column_drift`, Evidently's choice of test)
    for an integer-valued numeric feature; None for other features.

    A day count such as `dpd_current` sits on a few spikes (0, 16, 47 days); a one-day calendar
    move of a spike crosses a quantile edge and gives a PSI above 0.25, while the monitor's
    distance (Wasserstein over the standard deviation) sees the one day it is.
    """
    from monitoring.drift import column_drift, column_stats

    values = pd.to_numeric(reference, errors="coerce").to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values) or not np.all(values == np.round(values)):
        return None
    return column_drift(column_stats(reference, str(reference.name), "numeric"), current)


def _round(value: Any, digits: int = 6) -> Any:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else round(value, digits)


# ---- the registry ---------------------------------------------------------------------------

def resolve_actor(actor: str | None = None) -> str:
    """Who decides: `actor`, else env TENURE_ACTOR, else the OS user."""
    if actor and actor.strip():
        return actor.strip()
    env = os.environ.get("TENURE_ACTOR", "").strip()
    if env:
        return env
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


ShadowEvidence = Callable[[str], tuple[int, float, str]]  # version -> (rows, days, note)


def shadow_period_gate(evidence: tuple[int, float, str], cfg: PromoteConfig) -> GateResult:
    """`shadow_period`: the challenger scored live traffic as a shadow for `min_shadow_days` and
    `min_shadow_rows`. The evidence (rows and days in the prediction log) is the caller's: the app
    layer reads it from the log (`tenure.promotion.shadow_evidence`); promotion reads no log.
    `evidence`: (shadow rows, days, a note appended to the detail)."""
    rows, days, note = evidence
    ok = rows >= cfg.min_shadow_rows and days >= cfg.min_shadow_days
    return GateResult("shadow_period", ok, round(days, 3), cfg.min_shadow_days,
                      f"{rows} shadow rows over {days:.2f} days (needs {cfg.min_shadow_rows} rows over "
                      f"{cfg.min_shadow_days} days; serve it with `shadow: [challenger]`){note}")


def _alias_version(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _registered(client: Any, name: str, settings: Settings) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        raise PromotionError(f"no registered model named {name!r} at {settings.tracking_uri}; "
                             "train it first (`tenure train`)") from exc


def _run_of(client: Any, version: Any) -> Any:
    run_id = (version.tags or {}).get(TAG_RUN_ID) or version.run_id
    if not run_id:
        raise PromotionError(f"model {version.name} version {version.version} has no run "
                             "(tag tenure.run_id); it was not logged by Tenure")
    return client.get_run(run_id)


def _download(client: Any, run_id: str, path: str, dst: Path) -> Path:
    from mlflow.exceptions import MlflowException

    try:
        return Path(client.download_artifacts(run_id, path, str(dst)))
    except (MlflowException, OSError) as exc:
        raise PromotionError(f"run {run_id} has no artefact {path}: {exc}") from exc


def _split(run: Any, label: str) -> dict[str, Any]:
    raw = run.data.tags.get("tenure.split")
    if not raw:
        raise PromotionError(f"{label}: run {run.info.run_id} has no tag tenure.split; "
                             "it was not trained by `tenure train`")
    try:
        split = json.loads(raw)
        kind, window = split["kind"], split["test"]
        if kind not in ("out_of_time", "random") or len(window) != 2:
            raise ValueError(kind)
    except (ValueError, KeyError, TypeError) as exc:
        raise PromotionError(f"{label}: run {run.info.run_id} tag tenure.split is not "
                             f'{{"kind": "out_of_time"|"random", "test": [first, last], ...}}: {raw[:200]}') from exc
    return split


def _evaluation_rows(client: Any, run: Any, version: Any, split: dict[str, Any], tmp: Path
                     ) -> tuple[Any, pd.DataFrame, str]:
    """The challenger's feature set, its test rows (window or logged test ids) and its path."""
    from features.featureset import read_featureset

    path = run.data.tags.get("tenure.featureset_path") or (version.tags or {}).get("tenure.featureset_path")
    if not path:
        raise PromotionError(f"model {version.name} version {version.version}: run {run.info.run_id} "
                             "has no tag tenure.featureset_path")
    if not Path(path).exists():
        raise PromotionError(f"model {version.name} version {version.version} was trained on {path}, "
                             "which no longer exists; rebuild it (`tenure features build`) or retrain")
    fs = read_featureset(Path(path))
    logged_hash = (version.tags or {}).get("tenure.featureset_hash")
    if logged_hash and logged_hash != fs.content_hash:
        raise PromotionError(
            f"feature set {path} changed since model {version.name} version {version.version} was "
            f"trained (hash {fs.content_hash[:12]} now, {logged_hash[:12]} then): its test window "
            "cannot be reproduced; retrain on the current feature set")
    frame, t = fs.frame, fs.time_column
    if split["kind"] == "out_of_time":
        start, end = (pd.Timestamp(d) for d in split["test"])
        rows = frame[(frame[t] >= start) & (frame[t] <= end)]
    else:
        ids = pd.read_parquet(_download(client, run.info.run_id, TEST_PREDICTIONS_ARTIFACT, tmp))
        keys = [c for c in (fs.id_column, t) if c in ids.columns]
        if fs.id_column not in keys:
            raise PromotionError(f"{TEST_PREDICTIONS_ARTIFACT} of run {run.info.run_id} lacks the id "
                                 f"column {fs.id_column}")
        ids = ids[keys].drop_duplicates()
        if t in ids.columns:
            ids[t] = pd.to_datetime(ids[t])
        rows = frame.merge(ids, on=keys, how="inner")
    rows = rows.reset_index(drop=True)
    if rows.empty:
        raise PromotionError(f"no rows of {path} fall in the test window {split['test']} "
                             f"({split['kind']} split)")
    return fs, rows, str(path)


def _score(name: str, version: str, rows: pd.DataFrame) -> tuple[Any, np.ndarray]:
    from models.registry import load_tenure_model

    model = load_tenure_model(f"models:/{name}/{version}")
    return model, model.predict_proba(model.encode_frame(rows))


def _champion_overlap(client: Any, champion: Any, split: dict[str, Any]) -> str:
    """A note when the champion was trained or validated on the challenger's test snapshots."""
    if split["kind"] != "out_of_time":
        return ""
    try:
        cs = _split(_run_of(client, champion), "champion")
    except PromotionError:
        return ""
    if cs.get("kind") != "out_of_time":
        return ""
    test_start = pd.Timestamp(split["test"][0])
    seen = [k for k in ("train", "valid") if k in cs and pd.Timestamp(cs[k][1]) >= test_start]
    if not seen:
        return ""
    return (f"note: the champion's {'/'.join(seen)} window reaches into this test window, "
            "so its AUC here is optimistic")


def promote(model_name: str, settings: Settings, cfg: PromoteConfig, *, force: bool = False,
            reason: str | None = None, actor: str | None = None,
            shadow: ShadowEvidence | None = None) -> PromotionDecision:
    """Evaluate the `challenger` of `model_name` against the gates and the `champion`; record it.

    Returns the decision (also when refused); raises PromotionError when the decision cannot be
    made (no challenger, missing artefacts, `force` without a reason, ...).
    """
    if force and not (reason and reason.strip()):
        raise PromotionError("--force needs --reason: say why the failed gates are overridden "
                             "(it is recorded on the model version)")
    from mlflow.exceptions import MlflowException

    reason = reason.strip() if reason else None
    actor = resolve_actor(actor)
    client = registry_client(settings)
    _registered(client, model_name, settings)
    challenger = _alias_version(client, model_name, CHALLENGER)
    if challenger is None:
        raise PromotionError(f"model {model_name!r} has no version with alias {CHALLENGER!r}; "
                             "train one first (`tenure train`)")
    champion = _alias_version(client, model_name, CHAMPION)
    if champion is not None and champion.version == challenger.version:
        raise PromotionError(f"model {model_name!r} version {challenger.version} is already the "
                             f"{CHAMPION}; train a new challenger first")
    run = _run_of(client, challenger)
    split = _split(run, f"model {model_name} version {challenger.version}")

    with tempfile.TemporaryDirectory(prefix="tenure-promote-") as tmp_dir:
        tmp = Path(tmp_dir)
        fs, rows, fs_path = _evaluation_rows(client, run, challenger, split, tmp)
        y = rows[fs.label_name].to_numpy().astype(int)
        model, proba = _score(model_name, challenger.version, rows)
        champion_proba, note = None, ""
        if champion is not None:
            try:
                _, champion_proba = _score(model_name, champion.version, rows)
                note = _champion_overlap(client, champion, split)
            except (TenureError, OSError, MlflowException) as exc:
                note = f"champion version {champion.version} cannot score these rows: {exc}"
        reference = pd.read_parquet(_download(client, run.info.run_id, REFERENCE_ARTIFACT, tmp))

    spec = model.task_spec or {}
    tiers = spec.get("tiers")
    if not tiers:
        raise PromotionError(f"model {model_name} version {challenger.version} carries no task spec "
                             "tiers; cannot tell which predictions count as positive")
    groups = list(spec.get("groups") or fs.group_columns)
    gain = np.asarray(model.booster.feature_importance("gain"), dtype=np.float64)
    importance = dict(zip(model.feature_names, gain / gain.sum() if gain.sum() > 0 else gain, strict=True))
    gates, metrics = evaluate_gates(
        y_true=y, challenger_proba=proba, champion_proba=champion_proba, rows=rows, reference=reference,
        features=model.features, group_columns=groups, tiers=tiers, cfg=cfg, champion_note=note,
        importance=importance, clusters=rows[fs.id_column].to_numpy(), model_name=model_name,
        time_column=fs.time_column)
    times = rows[fs.time_column]
    metrics["window"] = {"kind": split["kind"], "test": list(split["test"]),
                         "first_snapshot": str(times.min().date()), "last_snapshot": str(times.max().date())}
    metrics["featureset"] = {"path": fs_path, "content_hash": fs.content_hash}
    metrics["challenger"].update(version=str(challenger.version),
                                 logged_test_roc_auc=_round(run.data.metrics.get("test_roc_auc")),
                                 logged_test_ece=_round(run.data.metrics.get("test_ece")))
    if metrics.get("champion"):
        metrics["champion"]["version"] = str(champion.version)

    if champion is not None and (cfg.min_shadow_days > 0 or cfg.min_shadow_rows > 0):
        if shadow is None:  # a shadow period is required but nobody can show one: the gate fails
            gates.append(shadow_period_gate((0, 0.0, "; no prediction-log reader was given to promote() "
                                                          "(promote with `tenure promote`)"), cfg))
        else:
            gates.append(shadow_period_gate(shadow(str(challenger.version)), cfg))
    failed = [g for g in gates if not g.passed]
    promoted = not failed or force
    if reason is None:
        reason = ("all gates passed" if not failed else
                  "failed gates: " + "; ".join(f"{g.name} ({g.detail})" for g in failed))
    now = dt.datetime.now(dt.UTC)
    decision = PromotionDecision(
        model_name=model_name,
        challenger_version=str(challenger.version),
        champion_version=None if champion is None else str(champion.version),
        promoted=promoted,
        forced=bool(failed) and force,
        gates=gates,
        reason=reason,
        actor=actor,
        timestamp=now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        metrics=metrics,
        record_artifact=f"{RECORD_DIR}/{now.strftime('%Y%m%dT%H%M%S%fZ')}-v{challenger.version}.json",
    )
    _record(client, decision, run.info.run_id, cfg, force_requested=force)
    return decision


def _record(client: Any, decision: PromotionDecision, run_id: str, cfg: PromoteConfig,
            *, force_requested: bool) -> None:
    """Write the record (artefact, alias, tags), in an order that never shows a promotion not made."""
    name, version = decision.model_name, decision.challenger_version
    full = {**decision.to_dict(), "force_requested": force_requested, "run_id": run_id,
            "config": cfg.model_dump()}
    client.log_text(run_id, json.dumps(full, indent=2, default=str), decision.record_artifact)
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
        if decision.champion_version is not None:
            client.set_model_version_tag(name, decision.champion_version, TAG_SUPERSEDED_BY, version)
            client.set_model_version_tag(name, decision.champion_version, TAG_SUPERSEDED_AT, decision.timestamp)
    tags = {
        TAG_STATUS: decision.status,
        TAG_AT: decision.timestamp,
        TAG_BY: decision.actor[:250],
        TAG_REASON: decision.reason[:MAX_TAG_CHARS],
        TAG_RECORD: compact_record(decision),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def compact_record(decision: PromotionDecision) -> str:
    """The decision in a few hundred characters of JSON, for the version tag (full record: artefact)."""
    m = decision.metrics
    out: dict[str, Any] = {
        "status": decision.status,
        "at": decision.timestamp,
        "by": decision.actor,
        "champion": decision.champion_version,
        "auc": (m.get("challenger") or {}).get("roc_auc"),
        "champion_auc": (m.get("champion") or {}).get("roc_auc"),
        "ece": (m.get("challenger") or {}).get("ece"),
        "rows": m.get("rows"),
        "window": (m.get("window") or {}).get("test"),
        "gates": {g.name: [int(g.passed), _round(g.value, 4)] for g in decision.gates},
        "artifact": decision.record_artifact,
    }
    text = json.dumps(out, separators=(",", ":"))
    if len(text) > MAX_TAG_CHARS:
        out["gates"] = {g.name: 0 for g in decision.failed_gates}
        text = json.dumps(out, separators=(",", ":"))[:MAX_TAG_CHARS]
    return text


def format_gates(decision: PromotionDecision) -> str:
    """The decision as a plain-text table of gates, for the terminal."""
    rows = [("gate", "result", "value", "threshold", "detail")]
    for g in decision.gates:
        rows.append((g.name, "pass" if g.passed else "FAIL",
                     "-" if g.value is None else f"{g.value:.4f}",
                     "-" if g.threshold is None else f"{g.threshold:g}", g.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
    champ = decision.champion_version or "none"
    head = (f"{decision.model_name}: challenger v{decision.challenger_version} against champion {champ} "
            f"on {decision.metrics.get('rows')} rows of {decision.metrics.get('window', {}).get('test')}")
    verdict = {PROMOTED: f"PROMOTED: v{decision.challenger_version} is now {CHAMPION}",
               FORCED: f"FORCED: v{decision.challenger_version} is now {CHAMPION} despite failed gates",
               REFUSED: f"REFUSED: {CHAMPION} stays {champ}"}[decision.status]
    return "\n".join([head, *lines, f"{verdict} (by {decision.actor}: {decision.reason})"])
