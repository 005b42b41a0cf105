"""A model version and its training artefacts, found through the MLflow registry.

Reads, at `settings.tracking_uri`: the registered model named after the task, the version (by
number, or the one behind the alias `champion`), its run (tags, metrics) and the run's
artefacts (`reference/reference.parquet`, `reference/unseen_rows.parquet`,
`evaluation/test_predictions.parquet`, `evaluation/metrics.json`, `config/train_config.json`,
`plots/*.png`), for versions without `reference/unseen_rows.parquet` the feature set it was
trained on (when unchanged and on this machine) and the model itself
(`models.registry.load_tenure_model`). Writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from configs import TenureError
from configs.settings import Settings
from models.layout import CHAMPION, TAG_RUN_ID


class MonitoringError(TenureError):
    """A model version, artefact or log window that monitoring cannot use; names what and where."""


@dataclass
class VersionRef:
    """One registered model version and what its run recorded."""

    name: str
    version: str
    run_id: str
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # version tags
    run_tags: dict[str, str] = field(default_factory=dict)
    run_metrics: dict[str, float] = field(default_factory=dict)
    created_at: int | None = None  # ms since the epoch

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def columns(self, model_meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """Id, time, label, group and probability column names of the run's artefacts.

        From the run tag `tenure.columns` (written by training), else the model's metadata.
        """
        try:
            cols = json.loads(self.run_tags.get("tenure.columns", ""))
            if isinstance(cols, dict) and {"id", "time", "label"} <= set(cols):
                return {"groups": [], "probability": "probability", **cols}
        except ValueError:
            pass
        meta = model_meta or {}
        label = meta.get("label") or {}
        return {"id": meta.get("id_column", "customer_id"), "time": meta.get("time_column", "snapshot_date"),
                "label": label.get("name") if isinstance(label, dict) else label,
                "groups": list(meta.get("group_columns") or []), "probability": "probability"}


def mlflow_client(settings: Settings) -> Any:
    """An MlflowClient on the settings' tracking server (the global URIs follow, for model loading)."""
    from mlflow import MlflowClient

    from models.tracking import setup_mlflow

    setup_mlflow(settings)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def resolve_version(client: Any, name: str, version: str | int | None, settings: Settings) -> VersionRef:
    """Version `version` of model `name`, or its champion when `version` is None."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        raise MonitoringError(f"no registered model named {name!r} at {settings.tracking_uri}; "
                              "train it first (`tenure train`)") from exc
    try:
        if version is None:
            mv = client.get_model_version_by_alias(name, CHAMPION)
        else:
            mv = client.get_model_version(name, str(version))
    except MlflowException as exc:
        if version is None:
            raise MonitoringError(f"model {name!r} has no {CHAMPION} version; pass --version N or promote "
                                  "one (`tenure promote`)") from exc
        raise MonitoringError(f"model {name!r} has no version {version} at {settings.tracking_uri}") from exc
    tags = dict(mv.tags or {})
    run_id = tags.get(TAG_RUN_ID) or mv.run_id
    if not run_id:
        raise MonitoringError(f"model {name} version {mv.version} has no run (tag tenure.run_id); "
                              "it was not logged by Tenure")
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise MonitoringError(f"run {run_id} of model {name} version {mv.version} cannot be read: {exc}") from exc
    return VersionRef(name=name, version=str(mv.version), run_id=run_id, aliases=list(mv.aliases or []),
                      tags=tags, run_tags=dict(run.data.tags), run_metrics=dict(run.data.metrics),
                      created_at=mv.creation_timestamp)


def download(client: Any, ref: VersionRef, path: str, dst: Path, *, required: bool = True) -> Path | None:
    """Artefact `path` of the version's run, downloaded under `dst` (None if absent and optional)."""
    from mlflow.exceptions import MlflowException

    try:
        local = Path(client.download_artifacts(ref.run_id, path, str(dst)))
    except (MlflowException, OSError) as exc:
        if not required:
            return None
        raise MonitoringError(f"model {ref.name} version {ref.version}: run {ref.run_id} has no artefact "
                              f"{path} ({exc}); was it trained by `tenure train`?") from exc
    if not local.exists():
        if required:
            raise MonitoringError(f"model {ref.name} version {ref.version}: artefact {path} of run "
                                  f"{ref.run_id} is missing")
        return None
    return local


def featureset_rows(ref: VersionRef, cols: dict[str, Any], feature_names: list[str]) -> tuple[Any, str | None]:
    """The version's feature set (version tag `tenure.featureset_path`) as it was at training:
    (frame, None), or (None, why) when it is gone, changed since training (content hash differs
    from `tenure.featureset_hash`) or lacks the model's features or the id and time columns."""
    from features.featureset import FeatureSetError, read_featureset

    path = ref.tags.get("tenure.featureset_path") or ref.run_tags.get("tenure.featureset_path")
    logged_hash = ref.tags.get("tenure.featureset_hash") or ref.run_tags.get("tenure.featureset_hash")
    if not path:
        return None, "the version has no tag tenure.featureset_path"
    try:
        fs = read_featureset(Path(path))
    except (FeatureSetError, OSError) as exc:
        return None, f"feature set {path} cannot be read ({exc})"
    if logged_hash and fs.content_hash != logged_hash:
        return None, f"feature set {path} changed since training (content hash differs)"
    missing = [n for n in (cols["id"], cols["time"], *feature_names) if n not in fs.frame.columns]
    if missing:
        return None, f"feature set {path} lacks columns {missing}"
    return fs.frame, None


def unseen_frame(unseen: Any, cols: dict[str, Any], feature_names: list[str]) -> tuple[Any, str | None]:
    """The run's rows it was not trained on (`reference/unseen_rows.parquet`) as `featureset_rows`
    gives a feature set: (frame, None), or (None, why) when it lacks the id, time or a feature."""
    missing = [n for n in (cols["id"], cols["time"], *feature_names) if n not in unseen.columns]
    if missing:
        return None, f"the run's reference/unseen_rows.parquet lacks columns {missing}"
    return unseen, None


def test_period_rows(frame: Any, test_predictions: Any, cols: dict[str, Any],
                     feature_names: list[str]) -> tuple[Any, str | None]:
    """The version's test rows with their features: `test_predictions` joined on (id, time) with
    the feature set `frame` (from `featureset_rows`).

    Returns (rows, None), or (None, why) when the feature set does not cover the test rows.
    """
    import pandas as pd

    id_col, time_col = cols["id"], cols["time"]
    if id_col not in test_predictions or time_col not in test_predictions:
        return None, f"the test predictions lack columns {[id_col, time_col]}"
    keys = test_predictions[[id_col, time_col, "probability"]].copy()
    keys[time_col] = pd.to_datetime(keys[time_col])
    rows = frame[[id_col, time_col, *feature_names]].copy()
    rows[time_col] = pd.to_datetime(rows[time_col])
    merged = keys.merge(rows, on=[id_col, time_col], how="inner", validate="one_to_one")
    if len(merged) < len(keys):
        return None, f"the feature set holds {len(merged)} of the {len(keys)} test rows"
    return merged, None


def load_model(ref: VersionRef) -> Any:
    """The version's `TenureModel`."""
    from models.registry import load_tenure_model

    try:
        return load_tenure_model(ref.uri)
    except TenureError as exc:  # says what to do already
        raise MonitoringError(str(exc)) from exc
    except Exception as exc:  # any loading failure is the user's to act on
        raise MonitoringError(f"cannot load {ref.uri}: {type(exc).__name__}: {exc}") from exc
