"""Where Tenure keeps its state: the workspace, MLflow, Optuna, the prediction log, reports.

The embedded default keeps everything under one workspace folder (SQLite for MLflow, Optuna and
the prediction log, plain files for data, artefacts and reports). A team points the same code at
shared services through `configs/settings.yaml`, `--config`, or environment variables.
"""

from __future__ import annotations

import os
from pathlib import Path

from configs import StrictModel, load_config


class Settings(StrictModel):
    home: Path = Path("workspace")
    mlflow_tracking_uri: str | None = None
    mlflow_artifact_root: str | None = None
    optuna_storage: str | None = None
    prediction_log: Path | None = None
    experiment_prefix: str = "tenure"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def features_dir(self) -> Path:
        return self.home / "features"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> str:
        return self.mlflow_artifact_root or (self.home / "mlartifacts").resolve().as_uri()

    @property
    def optuna_storage_url(self) -> str:
        return self.optuna_storage or f"sqlite:///{(self.home / 'optuna.db').resolve()}"

    @property
    def prediction_log_path(self) -> Path:
        return self.prediction_log or self.home / "predictions.db"

    def dataset_dir(self, name: str) -> Path:
        return self.data_dir / name

    def featureset_path(self, dataset: str, task: str) -> Path:
        return self.features_dir / dataset / f"{task}.parquet"


_ENV = {
    "TENURE_HOME": "home",
    "MLFLOW_TRACKING_URI": "mlflow_tracking_uri",
    "TENURE_ARTIFACT_ROOT": "mlflow_artifact_root",
    "TENURE_OPTUNA_STORAGE": "optuna_storage",
    "TENURE_PREDICTION_LOG": "prediction_log",
}


def load_settings(path: Path | str | None = None) -> Settings:
    """Settings from `configs/settings.yaml`, an optional user file, then the environment."""
    overrides = {field: os.environ[var] for var, field in _ENV.items() if os.environ.get(var)}
    return load_config(Settings, "settings", path, overrides)
