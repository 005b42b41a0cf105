"""Tracking helpers for a shared tracking server, against real MLflow on a temporary SQLite store:
the experiment get-or-create race between workers, and artefacts left in another machine's folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_an_experiment_created_meanwhile_by_another_worker_is_used(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from models.tracking import get_or_create_experiment

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    first = get_or_create_experiment(client, "tenure-churn", (tmp_path / "art").as_uri())
    assert first.artifact_location == f"{(tmp_path / 'art').as_uri()}/tenure-churn"

    class Late(MlflowClient):  # looked before the other worker created it
        looked = False

        def get_experiment_by_name(self, name: str):  # type: ignore[no-untyped-def]
            if not self.looked:
                self.looked = True
                return None
            return super().get_experiment_by_name(name)

    again = get_or_create_experiment(Late(tracking_uri=uri), "tenure-churn", None)
    assert again.experiment_id == first.experiment_id


def test_artefacts_in_a_folder_of_another_machine_are_named(tmp_path: Path) -> None:
    import mlflow

    from models.tracking import is_local_location, unreachable_artifacts

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment("x", artifact_location=(tmp_path / "elsewhere").as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        (tmp_path / "model.txt").write_text("m")
        mlflow.log_artifact(str(tmp_path / "model.txt"), "model")
    uri = f"runs:/{run.info.run_id}/model"
    assert unreachable_artifacts(uri) is None  # still here
    shutil.rmtree(tmp_path / "elsewhere")
    problem = unreachable_artifacts(uri)
    assert problem is not None and "of the machine that trained it" in problem and "--serve-artifacts" in problem
    assert not is_local_location("mlflow-artifacts:/1/abc") and not is_local_location("s3://b/x")
    assert is_local_location("file:///tmp/x") and is_local_location("/tmp/x")
