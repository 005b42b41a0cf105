"""Where Tenure keeps its state: the workspace, MLflow, Optuna, the prediction log, reports.

The embedded default keeps everything under one workspace folder (SQLite for MLflow, Optuna and
the prediction log, plain files for data, artefacts and reports). A team points the same code at
shared services through `configs/settings.yaml`, `--settings FILE`, or environment variables:
an MLflow tracking server (`http(s)://`, which then chooses where artefacts go), Optuna and the
prediction log on PostgreSQL (`postgresql://`), a Dask scheduler (`tcp://host:port`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import Field, field_validator

from configs import ShippedConfig, load_config

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def url_scheme(value: str) -> str | None:
    """The scheme of a URL (`postgresql`, `http`, `sqlite`), None for a plain path."""
    match = _SCHEME.match(value)
    return match.group(1).lower() if match else None


def is_postgres_url(value: str | Path | None) -> bool:
    """True for `postgresql://...` (also `postgres://`, `postgresql+psycopg://`)."""
    return value is not None and url_scheme(str(value)) in POSTGRES_SCHEMES


def redact_url(url: str) -> str:
    """The URL without a password (`postgresql://user:***@host/db`)."""
    return re.sub(r"(//[^/:@]*:)[^/@]*@", r"\1***@", url)


def is_remote_tracking(uri: str) -> bool:
    """True when MLflow talks to a tracking server over HTTP (it then proxies or places artefacts)."""
    return url_scheme(uri) in ("http", "https")


class Settings(ShippedConfig):
    """Keys left out take configs/settings.yaml's values (the environment is `load_settings`'s)."""

    yaml_path = ("settings",)

    home: Path
    mlflow_tracking_uri: str | None
    mlflow_artifact_root: str | None
    optuna_storage: str | None
    prediction_log: str | None
    dask_scheduler: str | None
    train_max_customers: int | None = Field(ge=100)
    experiment_prefix: str

    @field_validator("prediction_log", mode="before")
    @classmethod
    def _log_target(cls, value: object) -> object:
        """A file path (SQLite; `sqlite:///PATH` too) or a PostgreSQL URL; any other URL is refused,
        so that `mysql://...` never becomes a relative file of that name."""
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, str) and value.strip():
            scheme = url_scheme(value)
            if scheme is not None and scheme not in (*POSTGRES_SCHEMES, "sqlite"):
                raise ValueError(f"{value.split('://')[0]}:// is not a prediction log; use a file path "
                                 "(SQLite) or postgresql://user@host:port/database")
            if scheme == "sqlite" and not value.startswith("sqlite:///"):
                raise ValueError("a SQLite prediction log is sqlite:///PATH (three slashes) or just the path")
        return value or None

    @field_validator("dask_scheduler", mode="before")
    @classmethod
    def _scheduler(cls, value: object) -> object:
        if isinstance(value, str) and value.strip() and url_scheme(value) not in ("tcp", "tls", "ws", "wss", "inproc"):
            raise ValueError(f"{value!r} is not a Dask scheduler address (e.g. tcp://scheduler:8786)")
        return value or None

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
    def artifact_root(self) -> str | None:
        """Where a new experiment's artefacts go: the setting; else, with a tracking server, None
        (the server decides: its proxied store when it runs with `--serve-artifacts`); else
        `<home>/mlartifacts`."""
        if self.mlflow_artifact_root:
            return self.mlflow_artifact_root
        if is_remote_tracking(self.tracking_uri):
            return None
        return (self.home / "mlartifacts").resolve().as_uri()

    @property
    def optuna_storage_url(self) -> str:
        return self.optuna_storage or f"sqlite:///{(self.home / 'optuna.db').resolve()}"

    @property
    def prediction_log_is_postgres(self) -> bool:
        return is_postgres_url(self.prediction_log)

    @property
    def prediction_log_path(self) -> Path:
        """The SQLite file of the prediction log (`<home>/predictions.db` by default); an error when
        the log is a PostgreSQL database (use `prediction_log_target`)."""
        if self.prediction_log_is_postgres:
            from configs import ConfigError

            raise ConfigError("the prediction log is a PostgreSQL database, not a file "
                              "(TENURE_PREDICTION_LOG / settings prediction_log)")
        if self.prediction_log:
            return Path(str(self.prediction_log).removeprefix("sqlite:///"))
        return self.home / "predictions.db"

    @property
    def prediction_log_target(self) -> str:
        """What the service writes and `tenure monitor` reads: the PostgreSQL URL, or the SQLite
        file's absolute path."""
        if self.prediction_log_is_postgres:
            return str(self.prediction_log)
        return str(self.prediction_log_path.resolve())

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
    "TENURE_DASK_SCHEDULER": "dask_scheduler",
    "TENURE_TRAIN_MAX_CUSTOMERS": "train_max_customers",
}


def load_settings(path: Path | str | None = None) -> Settings:
    """Settings from `configs/settings.yaml`, an optional user file, then the environment."""
    from configs import ConfigError

    overrides = {field: os.environ[var] for var, field in _ENV.items() if os.environ.get(var)}
    try:
        return load_config(Settings, "settings", path, overrides)
    except ConfigError as exc:
        named = [var for var, field in _ENV.items() if field in overrides and f"{field}:" in str(exc)]
        if named:
            raise ConfigError(f"{exc} (set by the environment: {', '.join(named)})") from exc
        raise
