"""The one reader of the model registry: a version's Tenure model and its promotion record.

`load_tenure_model(uri)` gives back the `TenureModel` from any MLflow model URI
(`models:/churn@champion`, `runs:/<id>/model`): how `tenure predict`, promotion, serving and
monitoring read a model. It only reads: it fetches the `artifacts/tenure_model` folder from where
the version is stored (MLflow's own download of a `models:/` URI writes a `registered_model_meta`
file into the model folder, which for a local artefact store is the registry's own copy).

`promotion_history(name, settings)` reads every recorded promotion decision back (written by
`training.promote`). Names of aliases, tags and artefacts are `models.layout`'s.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from configs import TenureError
from configs.settings import Settings
from models import artifact
from models.artifact import TenureModel
from models.layout import (
    ARTIFACT_KEY,
    FORCED,
    RECORD_DIR,
    REFUSED,
    TAG_AT,
    TAG_BY,
    TAG_REASON,
    TAG_RECORD,
    TAG_RUN_ID,
    TAG_STATUS,
)
from models.tracking import ArtifactLocationError, setup_mlflow, unreachable_artifacts


class RegistryError(TenureError):
    """A registered model or version that is not there; the message names it and the registry."""


def registry_client(settings: Settings) -> Any:
    """An MlflowClient on the settings' tracking server; the global URIs follow, as every command does."""
    from mlflow import MlflowClient

    setup_mlflow(settings)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def _registered(client: Any, name: str, settings: Settings) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        raise RegistryError(f"no registered model named {name!r} at {settings.tracking_uri}; "
                            "train it first (`tenure train`)") from exc


def _artifact_uri(model_uri: str) -> str:
    """Where the version's `artifacts/tenure_model` folder is stored (read without writing anything)."""
    uri = model_uri.rstrip("/")
    if uri.startswith("models:/"):
        from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

        uri = ModelsArtifactRepository.get_underlying_uri(uri).rstrip("/")
    return f"{uri}/artifacts/{ARTIFACT_KEY}"


def load_tenure_model(model_uri: str) -> TenureModel:
    """The TenureModel behind an MLflow model URI (downloads the artefact once)."""
    try:
        local = _download_artifacts(artifact_uri=_artifact_uri(model_uri))
    except Exception as exc:
        problem = unreachable_artifacts(model_uri)
        if problem:
            raise ArtifactLocationError(problem) from exc
        raise
    path = Path(local)
    if not (path / artifact.META_FILE).exists():
        raise FileNotFoundError(unreachable_artifacts(model_uri)
                                or f"{model_uri} is not a Tenure model (no artifacts/{ARTIFACT_KEY})")
    return TenureModel.load(path)


def _download_artifacts(artifact_uri: str) -> str:
    import mlflow

    return mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri)


def promotion_history(model_name: str, settings: Settings) -> list[dict[str, Any]]:
    """Every recorded decision on any version of `model_name`, oldest first.

    Each item is the full JSON record (model_name, challenger_version, champion_version, status,
    promoted, forced, gates, reason, actor, timestamp, metrics, config, ...). A version whose
    record artefacts cannot be read contributes its tag summary instead (`"source": "tag"`).
    """
    client = registry_client(settings)
    _registered(client, model_name, settings)
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tenure-history-") as tmp_dir:
        for mv in client.search_model_versions(f"name='{model_name}'"):
            tags = mv.tags or {}
            found = False
            run_id = tags.get(TAG_RUN_ID) or mv.run_id
            if run_id:
                try:
                    files = client.list_artifacts(run_id, RECORD_DIR)
                except Exception:  # noqa: BLE001 - a run whose artefacts are gone still has its tags
                    files = []
                for f in files:
                    if f.is_dir or not f.path.endswith(f"-v{mv.version}.json"):
                        continue
                    try:
                        local = client.download_artifacts(run_id, f.path, tmp_dir)
                        record = json.loads(Path(local).read_text())
                    except Exception:  # noqa: BLE001 - fall back to the tag below
                        continue
                    record["source"] = "artifact"
                    out.append(record)
                    found = True
            if not found and TAG_STATUS in tags:
                try:
                    summary = json.loads(tags.get(TAG_RECORD, "{}"))
                except ValueError:
                    summary = {}
                out.append({"model_name": model_name, "challenger_version": str(mv.version),
                            "champion_version": summary.get("champion"), "status": tags[TAG_STATUS],
                            "promoted": tags[TAG_STATUS] != REFUSED, "forced": tags[TAG_STATUS] == FORCED,
                            "timestamp": tags.get(TAG_AT), "actor": tags.get(TAG_BY),
                            "reason": tags.get(TAG_REASON), "summary": summary, "source": "tag"})
    return sorted(out, key=lambda r: r.get("timestamp") or "")
