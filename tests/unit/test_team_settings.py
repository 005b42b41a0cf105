"""Team-mode settings and tracking helpers: what the configuration chooses, and the errors it gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs import ConfigError
from configs.settings import Settings, is_postgres_url, load_settings


def test_the_embedded_default_is_unchanged(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    assert s.tracking_uri == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    assert s.artifact_root == (tmp_path / "mlartifacts").resolve().as_uri()
    assert s.optuna_storage_url == f"sqlite:///{(tmp_path / 'optuna.db').resolve()}"
    assert s.prediction_log_path == tmp_path / "predictions.db"
    assert s.prediction_log_target == str((tmp_path / "predictions.db").resolve())
    assert s.dask_scheduler is None


def test_a_tracking_server_chooses_the_artifact_location_unless_one_is_set(tmp_path: Path) -> None:
    assert Settings(home=tmp_path, mlflow_tracking_uri="http://mlflow:5000").artifact_root is None
    assert Settings(home=tmp_path, mlflow_tracking_uri="https://mlflow:5000",
                    mlflow_artifact_root="s3://bucket/mlflow").artifact_root == "s3://bucket/mlflow"


def test_the_prediction_log_is_a_file_or_postgresql(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TENURE_HOME", str(tmp_path))
    monkeypatch.setenv("TENURE_PREDICTION_LOG", "postgresql://tenure@db:5432/predictions")
    s = load_settings()
    assert s.prediction_log_is_postgres
    assert s.prediction_log_target == "postgresql://tenure@db:5432/predictions"
    with pytest.raises(ConfigError, match="PostgreSQL database, not a file"):
        _ = s.prediction_log_path
    monkeypatch.setenv("TENURE_PREDICTION_LOG", str(tmp_path / "shared.db"))
    assert load_settings().prediction_log_target == str(tmp_path / "shared.db")
    monkeypatch.setenv("TENURE_PREDICTION_LOG", "mysql://tenure@db/predictions")
    with pytest.raises(ConfigError, match=r"mysql:// is not a prediction log.*TENURE_PREDICTION_LOG"):
        load_settings()
    assert is_postgres_url("postgres://x@y/z") and is_postgres_url("postgresql+psycopg://x@y/z")
    assert not is_postgres_url("postgresql.db") and not is_postgres_url(None)


def test_a_dask_scheduler_is_an_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENURE_DASK_SCHEDULER", "tcp://scheduler:8786")
    assert load_settings().dask_scheduler == "tcp://scheduler:8786"
    monkeypatch.setenv("TENURE_DASK_SCHEDULER", "scheduler:8786")
    with pytest.raises(ConfigError, match="not a Dask scheduler address.*TENURE_DASK_SCHEDULER"):
        load_settings()
