"""Gated promotion of a registered model's `challenger` version to `champion`, with a recorded decision.

Reads, through the MLflow registry at `settings.tracking_uri`:
- the versions behind the aliases `challenger` (required) and `champion` (absent for a first model),
- the challenger's run: tags `tenure.split` (test window) and `tenure.featureset_path`, artefacts
  `reference/reference.parquet` (training rows) and, for random splits,
  `evaluation/test_predictions.parquet` (test row ids),
- the challenger's feature set (checked against the version tag `tenure.featureset_hash`).

Both models are scored on the SAME rows: the challenger's test window of the challenger's feature
set (its test snapshots for an out-of-time split; its test rows for a random split). The gates
themselves (`min_auc`, `auc_vs_champion`, `max_ece`, fairness gaps, `max_feature_psi`,
`shadow_period`; thresholds from `configs/promote.yaml`) are pure functions in `training.gates`;
this module fetches their inputs from the registry and records their verdict.

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
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from configs import TenureError
from configs.promote import PromoteConfig
from configs.settings import Settings
from models.artifact import TenureModel
from models.layout import (
    CHALLENGER,
    CHAMPION,
    RECORD_DIR,
    REFERENCE_ARTIFACT,
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
from models.registry import registry_client
from training.gates import (
    MAX_TAG_CHARS,
    PromotionDecision,
    PromotionError,
    ShadowEvidence,
    compact_record,
    evaluate_gates,
    round_metric,
    shadow_period_gate,
)

EXIT_REFUSED = 3


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
    from features.featureset import read_featureset, read_metadata

    path = run.data.tags.get("tenure.featureset_path") or (version.tags or {}).get("tenure.featureset_path")
    if not path:
        raise PromotionError(f"model {version.name} version {version.version}: run {run.info.run_id} "
                             "has no tag tenure.featureset_path")
    if not Path(path).exists():
        raise PromotionError(f"model {version.name} version {version.version} was trained on {path}, "
                             "which no longer exists; rebuild it (`tenure features build`) or retrain")
    meta = read_metadata(Path(path))
    logged_hash = (version.tags or {}).get("tenure.featureset_hash")
    if logged_hash and logged_hash != meta["content_hash"]:
        raise PromotionError(
            f"feature set {path} changed since model {version.name} version {version.version} was "
            f"trained (hash {meta['content_hash'][:12]} now, {logged_hash[:12]} then): its test window "
            "cannot be reproduced; retrain on the current feature set")
    id_column, t = meta["id_column"], meta["time_column"]
    # only the test rows are read (Parquet filters), not the whole feature set
    if split["kind"] == "out_of_time":
        start, end = (pd.Timestamp(d) for d in split["test"])
        fs = read_featureset(Path(path), time_between=(start, end))
        frame = fs.frame
        rows = frame[(frame[t] >= start) & (frame[t] <= end)]
    else:
        ids = pd.read_parquet(_download(client, run.info.run_id, TEST_PREDICTIONS_ARTIFACT, tmp))
        keys = [c for c in (id_column, t) if c in ids.columns]
        if id_column not in keys:
            raise PromotionError(f"{TEST_PREDICTIONS_ARTIFACT} of run {run.info.run_id} lacks the id "
                                 f"column {id_column}")
        ids = ids[keys].drop_duplicates()
        if t in ids.columns:
            ids[t] = pd.to_datetime(ids[t])
        fs = read_featureset(Path(path), ids=ids[id_column])
        rows = fs.frame.merge(ids, on=keys, how="inner")
    rows = rows.reset_index(drop=True)
    if rows.empty:
        raise PromotionError(f"no rows of {path} fall in the test window {split['test']} "
                             f"({split['kind']} split)")
    return fs, rows, str(path)


def _score(name: str, version: str, rows: pd.DataFrame) -> tuple[Any, np.ndarray, np.ndarray]:
    """The registered model, its encoding of `rows` and its probabilities for them."""
    from models.registry import load_tenure_model

    model = load_tenure_model(f"models:/{name}/{version}")
    X = model.encode_frame(rows)  # noqa: N806
    return model, X, model.predict_proba(X)


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


def feature_importance(model: TenureModel, X: np.ndarray) -> tuple[dict[str, float], str]:  # noqa: N803
    """Each feature's share of what the model relies on, and the measure: the booster's split gain,
    or for a model with a linear part (which the gain does not see) the mean |SHAP value| over the
    encoded rows `X`."""
    if model.linear is None:
        value, measure = np.asarray(model.booster.feature_importance("gain"), dtype=np.float64), "gain"
    else:
        value, measure = np.abs(model.contributions(X)[:, :-1]).mean(axis=0), "mean |SHAP|"
    total = float(value.sum())
    return dict(zip(model.feature_names, value / total if total > 0 else value, strict=True)), measure


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
        model, X, proba = _score(model_name, challenger.version, rows)  # noqa: N806
        champion_proba, note = None, ""
        if champion is not None:
            try:
                _, _, champion_proba = _score(model_name, champion.version, rows)
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
    importance, measure = feature_importance(model, X)
    gates, metrics = evaluate_gates(
        y_true=y, challenger_proba=proba, champion_proba=champion_proba, rows=rows, reference=reference,
        features=model.features, group_columns=groups, tiers=tiers, cfg=cfg, champion_note=note,
        importance=importance, clusters=rows[fs.id_column].to_numpy(), model_name=model_name,
        time_column=fs.time_column, importance_measure=measure)
    times = rows[fs.time_column]
    metrics["window"] = {"kind": split["kind"], "test": list(split["test"]),
                         "first_snapshot": str(times.min().date()), "last_snapshot": str(times.max().date())}
    metrics["featureset"] = {"path": fs_path, "content_hash": fs.content_hash}
    metrics["challenger"].update(version=str(challenger.version),
                                 logged_test_roc_auc=round_metric(run.data.metrics.get("test_roc_auc")),
                                 logged_test_ece=round_metric(run.data.metrics.get("test_ece")))
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

