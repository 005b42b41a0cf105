"""One MLflow model per task version: the `TenureModel` wrapped as an MLflow pyfunc.

`log_tenure_model` logs it (with signature and input example) inside the active run and, when
`registered_model_name` is given, registers it. `load_tenure_model(uri)` gives back the
`TenureModel` from any MLflow model URI (`models:/churn@champion`, `runs:/<id>/model`), which is
how `tenure predict`, serving and monitoring read a model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from training.artifact import TenureModel

ARTIFACT_KEY = "tenure_model"
MODEL_ARTIFACT_PATH = "model"


class TenurePyfunc(mlflow.pyfunc.PythonModel):
    """`predict` returns the calibrated positive-class probability per input row."""

    def load_context(self, context: Any) -> None:
        self.model = TenureModel.load(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        X = self.model.encode_frame(model_input)  # noqa: N806
        return pd.DataFrame({"probability": self.model.predict_proba(X)})


def _signature_frame(model: TenureModel, example: pd.DataFrame) -> pd.DataFrame:
    """The example with categoricals as strings and numerics as float, as callers send them."""
    out = {}
    for f in model.features:
        col = example[f["name"]]
        if f["kind"] == "categorical":
            out[f["name"]] = col.astype("object").where(col.notna(), None).astype("string")
        else:
            out[f["name"]] = pd.to_numeric(col, errors="coerce").astype("float64")
    return pd.DataFrame(out)


def log_tenure_model(model: TenureModel, example: pd.DataFrame, registered_model_name: str | None = None,
                     pip_requirements: list[str] | None = None) -> Any:
    """Log `model` as the run's `model` artefact; returns mlflow's ModelInfo."""
    from mlflow.models import infer_signature

    sig_frame = _signature_frame(model, example.head(5))
    probs = model.predict_proba(model.encode_frame(sig_frame))
    signature = infer_signature(sig_frame, pd.DataFrame({"probability": probs.astype(np.float64)}))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = model.save(Path(tmp) / ARTIFACT_KEY)
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT_PATH,
            python_model=TenurePyfunc(),
            artifacts={ARTIFACT_KEY: str(model_dir)},
            signature=signature,
            input_example=sig_frame.head(2),
            registered_model_name=registered_model_name,
            pip_requirements=pip_requirements or _requirements(),
            code_paths=None,
        )


def _requirements() -> list[str]:
    from importlib.metadata import version

    # the Tenure package itself must be installed where the model is loaded (it holds TenurePyfunc)
    return [f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "lightgbm", "numpy", "pandas", "scikit-learn")]


def load_tenure_model(model_uri: str) -> TenureModel:
    """The TenureModel behind an MLflow model URI (downloads the artefact once)."""
    from training.tracking import ArtifactLocationError, unreachable_artifacts

    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri.rstrip("/"))
    except Exception as exc:
        problem = unreachable_artifacts(model_uri)
        if problem:
            raise ArtifactLocationError(problem) from exc
        raise
    path = Path(local) / "artifacts" / ARTIFACT_KEY
    if not path.exists():
        raise FileNotFoundError(unreachable_artifacts(model_uri)
                                or f"{model_uri} is not a Tenure model (no artifacts/{ARTIFACT_KEY})")
    return TenureModel.load(path)
