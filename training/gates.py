"""Promotion gates: pure functions over the evaluation rows, the probabilities and `configs/promote.yaml`.

Reads no registry, no run and no prediction log (import-linter keeps MLflow out of this module):
`training.promote` fetches the challenger, the champion and the rows, and records the decision;
the app (`tenure.promotion`) supplies the shadow-period evidence. Gates, with thresholds from
`PromoteConfig`:

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
  and that many rows, read from the prediction log by the caller.

Also the decision's types (`GateResult`, `PromotionDecision`) and its two renderings: the gate
table for the terminal (`format_gates`) and the compact JSON for a version tag (`compact_record`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from configs import TenureError
from configs.promote import PromoteConfig
from models.layout import CHAMPION, FORCED, PROMOTED, REFUSED
from models.metrics import expected_calibration_error
from training.fairness import GroupFairness

# stay under the strictest registry's tag-value limit (5000 characters)
MAX_TAG_CHARS = 4500

ShadowEvidence = Callable[[str], tuple[int, float, str]]  # version -> (rows, days, note)


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
        return {"name": self.name, "passed": self.passed, "value": round_metric(self.value),
                "threshold": self.threshold, "detail": self.detail}


@dataclass
class PromotionDecision:
    """The verdict on one challenger: its gates, whether it was promoted, by whom and why."""

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
    importance_measure: str = "gain",
) -> tuple[list[GateResult], dict[str, Any]]:
    """Every gate of `cfg` on the evaluation rows, and the metrics behind them.

    `rows` are the evaluation rows (features and group columns, aligned with `y_true` and the
    probabilities); `reference` the challenger's training rows; `features` the challenger's
    feature definitions (name, kind); `champion_proba` None when there is no champion or it
    could not be scored (then `champion_note` says why); `importance` the challenger's share of
    total gain per feature, or of another `importance_measure` (`mean |SHAP|` for a model with a
    linear part) (None: every feature is gated on PSI); `time_column`, when both
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
        "challenger": {"roc_auc": round_metric(auc), "ece": round_metric(ece),
                       "positive_rate": round_metric(float(np.mean(p >= threshold))),
                       "mean_probability": round_metric(float(p.mean())), "observed_rate": round_metric(float(y.mean()))},
        "positive_threshold": threshold,
    }

    gates.append(GateResult("min_auc", auc >= cfg.min_auc, auc, cfg.min_auc,
                            f"challenger ROC AUC {auc:.4f} {'>=' if auc >= cfg.min_auc else '<'} {cfg.min_auc}"))
    if champion_proba is not None:
        champ = np.asarray(champion_proba, dtype=np.float64)
        champ_auc = roc_auc(y, champ)
        delta = auc - champ_auc
        ok = delta >= -cfg.max_auc_drop
        metrics["champion"] = {"roc_auc": round_metric(champ_auc),
                               "ece": round_metric(expected_calibration_error(y, champ, cfg.ece_bins))}
        metrics["auc_delta"] = round_metric(delta)
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
    metrics["challenger"]["ece_noise_floor"] = round_metric(floor)
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
    gates.append(_stability_gate(rows, reference, features, importance, cfg, metrics, time_column,
                                 importance_measure))
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
                    metrics: dict[str, Any], time_column: str | None = None,
                    measure: str = "gain") -> GateResult:
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
    metrics["psi"] = {k: round_metric(v) for k, v in psi.items()}
    small_moves = {
        n: verdict for n in gated.index[gated > cfg.max_feature_psi]
        if kinds[n] == "numeric" and (verdict := _monitor_finds_drift(reference[n], rows[n])) is not None
        and not verdict.drifted}
    if small_moves:
        gated = gated.drop(list(small_moves))
        metrics["psi_small_moves"] = {n: v.to_dict() for n, v in small_moves.items()}
    if importance is not None:
        key = "gain_share" if measure == "gain" else "importance_share"
        metrics[key] = {k: round_metric(v) for k, v in share.sort_values(ascending=False).items()}
        if key != "gain_share":
            metrics["importance_measure"] = measure
        metrics["psi_gated_features"] = list(gated.index)
    if gated.empty:
        return GateResult("max_feature_psi", True, None, cfg.max_feature_psi, "no features to check")
    top = float(gated.iloc[0])
    over = int((gated > cfg.max_feature_psi).sum())
    scope = (f"{len(gated)} features" if importance is None else
             f"{len(gated)} features with >= {cfg.psi_min_importance:g} of the {measure}")
    detail = f"{over} of {scope} above; worst: " + ", ".join(
        f"{k} {v:.3f}" for k, v in gated.head(cfg.psi_report_worst).items())
    ungated = psi.drop([*gated.index, *small_moves])
    if len(ungated):
        detail += f"; not gated (less {measure}): " + ", ".join(
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


def round_metric(value: Any, digits: int = 6) -> Any:
    """`value` rounded to `digits` for a record; None for None and NaN."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else round(value, digits)


# ---- the gate on live evidence the caller reads --------------------------------------------

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


# ---- the decision, for a version tag and for the terminal ------------------------------------

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
        "gates": {g.name: [int(g.passed), round_metric(g.value, 4)] for g in decision.gates},
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
