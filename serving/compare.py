"""Champion against shadow challenger on the same live rows (`tenure compare --task X`).

Reads the prediction log (`settings.prediction_log_target`, SQLite or PostgreSQL) through
`monitoring.predictions.read_log`: the answered rows (shadow = 0) and the shadow challenger's rows
(shadow = 1) of one task, paired by request, customer and position in the request, so both models
are judged on exactly the same customers. Per (champion version, challenger version):
- score agreement: Spearman rank correlation, mean and largest absolute difference of the probabilities;
- tier changes: the share of customers whose tier (so whose action) would change, and the counts
  champion tier -> challenger tier;
- once outcomes join (a dataset folder, labels joined on customer and `as_of` as the monitor does,
  `monitoring.performance.join_outcomes`): ROC AUC of both on the labelled rows.
`shadow_period` is what promotion's `min_shadow_days` / `min_shadow_rows` gate reads: how many
shadow rows a version has and over how many days. Writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PAIR_KEYS = ("request_id", "customer_ref", "task", "_n")


def _window(log_target: str | Path, task: str, since: str | None, until: str | None,
            model_name: str | None = None, model_version: str | None = None) -> pd.DataFrame:
    from monitoring.predictions import read_log

    return read_log(log_target, task=task, model_name=model_name, model_version=model_version, since=since,
                    until=until, shadow=None).frame


def paired_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per customer scored by both the champion and a shadow challenger (columns `*_champion`, `*_shadow`)."""
    cols = ["request_id", "customer_ref", "task", "as_of", "scored_at", "model_version", "probability", "tier"]
    base = frame[[*cols, "shadow"]].copy()
    for c in ("request_id", "customer_ref", "task", "model_version", "tier"):
        base[c] = base[c].astype(str)
    answered = base[base["shadow"] == 0].drop(columns="shadow")
    shadow = base[base["shadow"] == 1].drop(columns="shadow")
    answered["_n"] = answered.groupby(["request_id", "customer_ref", "task"]).cumcount()
    # several challengers may shadow one request: number each challenger version's rows on its own
    shadow["_n"] = shadow.groupby(["request_id", "customer_ref", "task", "model_version"]).cumcount()
    return answered.merge(shadow.drop(columns=["as_of"]), on=list(PAIR_KEYS), suffixes=("_champion", "_shadow"))


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return None
    return round(float(roc_auc_score(y, p)), 4)


def compare_shadow(log_target: str | Path, task: str, *, since: str | None = None, until: str | None = None,
                   labels: pd.DataFrame | None = None) -> dict[str, Any]:
    """The comparison report (a JSON-ready dict); `labels` as `monitoring.performance.outcome_labels` returns them."""
    from scipy.stats import spearmanr

    from monitoring.performance import join_outcomes

    pairs = paired_rows(_window(log_target, task, since, until))
    out: dict[str, Any] = {"task": task, "since": since, "until": until, "comparisons": []}
    if pairs.empty:
        out["note"] = (f"no shadow rows of task {task!r} in the window: add `shadow: [challenger]` to the serving "
                       "config and let the service answer some requests")
        return out
    for (champ, chall), group in pairs.groupby(["model_version_champion", "model_version_shadow"], sort=True):
        pc = group["probability_champion"].to_numpy(dtype=np.float64)
        ps = group["probability_shadow"].to_numpy(dtype=np.float64)
        diff = np.abs(pc - ps)
        rho = spearmanr(pc, ps).statistic if len(group) > 2 and np.ptp(pc) > 0 and np.ptp(ps) > 0 else None
        changed = group["tier_champion"] != group["tier_shadow"]
        moves = (group[changed].groupby(["tier_champion", "tier_shadow"]).size().sort_values(ascending=False))
        entry: dict[str, Any] = {
            "champion_version": champ, "challenger_version": chall, "rows": int(len(group)),
            "first_scored_at": str(group["scored_at_champion"].min()),
            "last_scored_at": str(group["scored_at_champion"].max()),
            "spearman": None if rho is None or not np.isfinite(rho) else round(float(rho), 4),
            "mean_abs_diff": round(float(diff.mean()), 6), "max_abs_diff": round(float(diff.max()), 6),
            "mean_champion": round(float(pc.mean()), 6), "mean_challenger": round(float(ps.mean()), 6),
            "tier_changes": int(changed.sum()), "tier_change_share": round(float(changed.mean()), 4),
            "tier_moves": [{"from": a, "to": b, "rows": int(n)} for (a, b), n in moves.items()],
        }
        if labels is not None:
            y = join_outcomes(group, labels).to_numpy()
            known = ~np.isnan(y)
            entry["labelled_rows"] = int(known.sum())
            entry["auc_champion"] = _auc(y[known].astype(int), pc[known]) if known.any() else None
            entry["auc_challenger"] = _auc(y[known].astype(int), ps[known]) if known.any() else None
        out["comparisons"].append(entry)
    return out


def shadow_period(log_target: str | Path, task: str, model_name: str, version: str) -> tuple[int, float]:
    """(rows, days between the first and the last) of `model_name` version `version`'s shadow rows."""
    from monitoring.predictions import read_log

    frame = read_log(log_target, task=task, model_name=model_name, model_version=version, shadow=True).frame
    if frame.empty:
        return 0, 0.0
    span = frame["scored_at"].max() - frame["scored_at"].min()
    return int(len(frame)), span.total_seconds() / 86_400


def format_report(report: dict[str, Any]) -> str:
    """The report as a few lines for people (the JSON goes to stdout)."""
    lines = [f"task {report['task']}: champion against shadow challenger on the same live rows"]
    if report.get("note"):
        return "\n".join([*lines, report["note"]])
    for c in report["comparisons"]:
        lines.append(f"  champion v{c['champion_version']} vs challenger v{c['challenger_version']}: {c['rows']} rows "
                     f"({c['first_scored_at']} .. {c['last_scored_at']}); Spearman {c['spearman']}, mean |diff| "
                     f"{c['mean_abs_diff']}, tier changes {c['tier_changes']} ({c['tier_change_share']:.1%})")
        if "labelled_rows" in c:
            lines.append(f"    with outcomes: {c['labelled_rows']} labelled rows, AUC champion {c['auc_champion']}"
                         f" vs challenger {c['auc_challenger']}")
    return "\n".join(lines)
