"""MLflow set-up shared by training, promotion, serving and monitoring: URIs, experiments, artefact reach.

Reads `Settings` (tracking URI, artefact root, experiment prefix); writes nothing itself except,
when an experiment does not exist yet, creating it in the tracking store: with its artefacts under
`<artifact_root>/<experiment name>` when an artefact root is set (the embedded default:
`<home>/mlartifacts`), or where the tracking server puts them (a server run with
`--serve-artifacts` proxies them, so every machine reads them over HTTP). Several processes may
create the same experiment at once (workers on several machines): the loser reads the winner's.
Called by the command that runs, never on import.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from configs import TenureError
from configs.settings import Settings, is_remote_tracking


def experiment_name(settings: Settings, task: str) -> str:
    """`tenure-<task>` (the prefix comes from settings)."""
    return f"{settings.experiment_prefix}-{task}"


def setup_mlflow(settings: Settings, task: str | None = None) -> str | None:
    """Point MLflow (tracking and registry) at `settings`; with `task`, make its experiment active.

    Returns the experiment id when `task` is given. A new experiment stores its artefacts under
    `settings.artifact_root` (None: where the tracking server decides); an existing one keeps its
    location (a warning when a tracking server's experiment keeps artefacts in a local folder).
    """
    import mlflow

    if settings.tracking_uri.startswith("sqlite:///"):
        Path(settings.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # mlflow.set_*_uri also export MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI, which Settings
    # reads as an override: a later load_settings() in the same process (tests, notebooks, the
    # demo) would silently point at this store. Keep the environment as the user set it.
    saved = {var: os.environ.get(var) for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    for var, value in saved.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
    # with a tracking server MLflow prints a "View run" link per run to stdout, where `tenure`
    # commands print only their JSON result
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if task is None:
        return None
    name = experiment_name(settings, task)
    client = mlflow.MlflowClient()
    exp = get_or_create_experiment(client, name, settings.artifact_root)
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    if is_remote_tracking(settings.tracking_uri) and is_local_location(exp.artifact_location):
        warnings.warn(f"experiment {name!r} on the tracking server {settings.tracking_uri} keeps its artefacts in "
                      f"the local folder {exp.artifact_location}: other machines cannot load its models. Run the "
                      "server with --serve-artifacts and use a new experiment prefix (settings experiment_prefix), "
                      "or set TENURE_ARTIFACT_ROOT to a store every machine reads", UserWarning, stacklevel=2)
    mlflow.set_experiment(experiment_id=exp.experiment_id)
    return str(exp.experiment_id)


def get_or_create_experiment(client: Any, name: str, artifact_root: str | None) -> Any:
    """The experiment `name`, created (artefacts under `<artifact_root>/<name>`, or where the server
    decides when `artifact_root` is None) unless it exists; a concurrent creation by another
    process is not an error."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp
    location = f"{artifact_root.rstrip('/')}/{name}" if artifact_root else None
    try:
        experiment_id = client.create_experiment(name, artifact_location=location)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        exp = client.get_experiment_by_name(name)  # another worker created it first
        if exp is None:
            raise
        return exp
    return client.get_experiment(experiment_id)


def is_local_location(location: str | None) -> bool:
    """True for an artefact location on this machine's file system (`file:` or a plain path)."""
    from urllib.parse import urlparse

    return bool(location) and urlparse(location).scheme in ("", "file")


class ArtifactLocationError(TenureError):
    """A model's artefacts sit in a folder of another machine (a local artifact location)."""


def unreachable_artifacts(model_uri: str) -> str | None:
    """Why the artefacts of `model_uri` (`models:/...` or `runs:/...`) cannot be read here when they
    sit in a local folder that this machine does not have (an experiment created with a `file:`
    artifact location on a shared tracking server); None otherwise."""
    from urllib.parse import unquote, urlparse

    try:
        if model_uri.startswith("models:/"):
            from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

            location = ModelsArtifactRepository.get_underlying_uri(model_uri)
        elif model_uri.startswith("runs:/"):
            from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

            location = RunsArtifactRepository.get_underlying_uri(model_uri)
        else:
            location = model_uri
    except Exception:  # noqa: BLE001 - the registry's own error is the better message then
        return None
    if not is_local_location(location) or Path(unquote(urlparse(location).path)).exists():
        return None
    return (f"{model_uri} keeps its artefacts in the folder {location} of the machine that trained it, which "
            "this machine does not have; train it where every machine reads the artefacts: an MLflow server "
            "run with --serve-artifacts (artifact root mlflow-artifacts:/) and a new experiment "
            "(settings experiment_prefix), or TENURE_ARTIFACT_ROOT on a shared store")
