"""The MLflow pyfunc of a Tenure model, logged as code (MLflow models-from-code): no pickle.

`training.pyfunc.log_tenure_model` logs this file as the model's `python_model` and a copy of
`models/artifact.py` as its code (`code/tenure_artifact.py`). MLflow copies both into every
logged model and executes this file when the model is loaded with `mlflow.pyfunc.load_model`;
nothing is unpickled. It imports nothing from Tenure (the artefact code comes from the model's
own `code/` folder), so a model loads wherever its own `requirements.txt` is installed, outside
a Tenure checkout too. `predict` returns the calibrated positive-class probability per row.

Tenure itself (serving, monitoring, `tenure predict`) does not go through this file: it reads
the same `artifacts/tenure_model` folder with `models.artifact.TenureModel.load`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

ARTIFACT_KEY = "tenure_model"  # the same key as training.pyfunc.ARTIFACT_KEY (this file imports no Tenure code)
ARTIFACT_CODE = "tenure_artifact.py"  # the model's copy of models/artifact.py, in its `code/` folder


def _artifact_module(code_file: Path) -> Any:
    """The model's own copy of the artefact code, imported once per distinct content.

    Imported by path under a name that carries its hash, so two models logged by different
    Tenure versions in one process each get their own code, and nothing on `sys.path` can
    stand in for it.
    """
    source = code_file.read_bytes()
    name = f"tenure_artifact_{hashlib.sha256(source).hexdigest()[:16]}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, code_file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import the model code {code_file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses resolve their annotations through sys.modules
        spec.loader.exec_module(module)
    return module


class TenurePyfunc(mlflow.pyfunc.PythonModel):
    """`predict` returns a frame with one column, `probability`, one row per input row."""

    def load_context(self, context: Any) -> None:
        artefact = Path(context.artifacts[ARTIFACT_KEY])
        code_file = artefact.parent.parent / "code" / ARTIFACT_CODE
        self.model = _artifact_module(code_file).TenureModel.load(artefact)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        X = self.model.encode_frame(model_input)  # noqa: N806
        return pd.DataFrame({"probability": self.model.predict_proba(X)})


mlflow.models.set_model(TenurePyfunc())
