"""MLflow set-up shared by training, promotion, serving and monitoring: URIs, experiments, code version.

Reads `Settings` (tracking URI, artefact root, experiment prefix); writes nothing itself except,
when an experiment does not exist yet, creating it in the tracking store with its artefacts under
`<artifact_root>/<experiment name>`. Called by the command that runs, never on import.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from configs.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def experiment_name(settings: Settings, task: str) -> str:
    """`tenure-<task>` (the prefix comes from settings)."""
    return f"{settings.experiment_prefix}-{task}"


def setup_mlflow(settings: Settings, task: str | None = None) -> str | None:
    """Point MLflow (tracking and registry) at `settings`; with `task`, make its experiment active.

    Returns the experiment id when `task` is given. A new experiment stores its artefacts under
    `settings.artifact_root`; an existing one keeps its location.
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
    if task is None:
        return None
    name = experiment_name(settings, task)
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = f"{settings.artifact_root.rstrip('/')}/{name}"
        experiment_id = client.create_experiment(name, artifact_location=location)
    else:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        experiment_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _git(path: Path, *args: str) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit(path: Path = PROJECT_ROOT) -> str:
    """The commit the code runs from, or `unknown` (not a git checkout, or no commit yet)."""
    return _git(path, "rev-parse", "HEAD") or "unknown"


def git_dirty(path: Path = PROJECT_ROOT) -> bool:
    """True when tracked files have uncommitted changes (the commit alone does not pin the code)."""
    return bool(_git(path, "status", "--porcelain", "--untracked-files=no"))
