"""One MLflow model per task version: the `TenureModel` logged as an MLflow pyfunc from code.

`log_tenure_model` logs it (with signature and input example) inside the active run and, when
`registered_model_name` is given, registers it. The pyfunc is `training/pyfunc_model.py`, logged
as code with a copy of `models/artifact.py` (MLflow models-from-code): loading it runs no
pickle, and its own small `requirements.txt` (mlflow, lightgbm, numpy, pandas, scikit-learn) is
all it needs, outside Tenure too.

Reading a model back is `models.registry.load_tenure_model`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from models import artifact
from models.artifact import TenureModel
from models.layout import ARTIFACT_KEY, MODEL_ARTIFACT_PATH

PYFUNC_CODE = Path(__file__).resolve().with_name("pyfunc_model.py")
ARTIFACT_CODE = "tenure_artifact.py"  # the name training/pyfunc_model.py imports the artefact code by
REQUIREMENTS = ("mlflow", "lightgbm", "numpy", "pandas", "scikit-learn")


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


def model_signature(model: TenureModel, probs: np.ndarray) -> Any:
    """Every feature a required column typed by its kind (categorical: string, numeric: double),
    whatever the example rows hold: the model needs every column, and a null value is accepted in
    any of them. (Inferred from a few rows, a feature was optional only when those rows held a null.)"""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema([ColSpec("string" if f["kind"] == "categorical" else "double", f["name"], required=True)
                     for f in model.features])
    return ModelSignature(inputs=inputs,
                          outputs=infer_signature(pd.DataFrame({"probability": probs.astype(np.float64)})).inputs)


def log_tenure_model(model: TenureModel, example: pd.DataFrame, registered_model_name: str | None = None,
                     pip_requirements: list[str] | None = None) -> Any:
    """Log `model` as the run's `model` artefact; returns mlflow's ModelInfo."""
    sig_frame = _signature_frame(model, example.head(5))
    probs = model.predict_proba(model.encode_frame(sig_frame))
    signature = model_signature(model, probs)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = model.save(Path(tmp) / ARTIFACT_KEY)
        code = Path(tmp) / ARTIFACT_CODE
        shutil.copyfile(artifact.__file__, code)
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT_PATH,
            python_model=str(PYFUNC_CODE),
            artifacts={ARTIFACT_KEY: str(model_dir)},
            code_paths=[str(code)],
            signature=signature,
            input_example=sig_frame.head(2),
            registered_model_name=registered_model_name,
            pip_requirements=pip_requirements or requirements(),
        )


def requirements() -> list[str]:
    """What a logged model needs where it is loaded: these packages at the versions that logged it."""
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in REQUIREMENTS]
