"""The logged model format and how `tenure predict` reads the registry.

- models-from-code: a registered Tenure model carries no pickle; it loads with
  `mlflow.pyfunc.load_model` in a fresh virtual environment made from the model's own
  `requirements.txt` only (no Tenure, cwd outside the checkout) and scores like Tenure does;
- `tenure predict` only reads the registry: its artefact tree and database are byte-identical
  afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tenure.cli import app

from helpers.serving import register_champions

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return register_champions(tmp_path_factory.mktemp("registry"), tasks=("churn",))


def _model_dir(root: Path) -> Path:
    (mlmodel,) = root.glob("artifacts/models/*/artifacts/MLmodel")
    return mlmodel.parent


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _fresh_venv(requirements: Path, where: Path) -> Path:
    """A new virtual environment with only `requirements` (uv; the local cache first, then the index)."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build the fresh environment (it is in requirements.lock)")
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(where)], check=True)
    python = where / "bin" / "python"
    install = [uv, "pip", "install", "--quiet", "--python", str(python), "-r", str(requirements)]
    if subprocess.run([*install, "--offline"], capture_output=True).returncode != 0:
        subprocess.run(install, check=True)
    return python


def test_registered_model_has_no_pickle_and_loads_from_its_own_requirements_alone(
        registry: dict[str, Any], tmp_path: Path) -> None:
    source = _model_dir(Path(registry["tracking_uri"].removeprefix("sqlite:///")).parent)
    model_dir = shutil.copytree(source, tmp_path / "model")
    mlmodel = (model_dir / "MLmodel").read_text()
    assert not list(model_dir.rglob("*.pkl")) and "python_model.pkl" not in mlmodel
    assert "model_code_path" in mlmodel and (model_dir / "code" / "tenure_artifact.py").is_file()
    requirements = (model_dir / "requirements.txt").read_text().split()
    assert sorted(r.split("==")[0] for r in requirements) == ["lightgbm", "mlflow", "numpy", "pandas", "scikit-learn"]

    python = _fresh_venv(model_dir / "requirements.txt", tmp_path / "venv")
    model = registry["models"]["churn"]
    rows = registry["rows"]["churn"][model.feature_names].head(25)
    rows.to_json(tmp_path / "rows.json", orient="split")
    script = (
        "import json, sys\n"
        "import mlflow.pyfunc, pandas as pd\n"
        "rows = pd.read_json(sys.argv[2], orient='split', dtype=False)\n"
        "out = mlflow.pyfunc.load_model(sys.argv[1]).predict(rows)\n"
        "tenure = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('training', 'configs', 'features', 'serving', 'monitoring', 'models'))\n"
        "print(json.dumps({'p': out['probability'].tolist(), 'tenure_modules': tenure}))\n"
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    res = subprocess.run([str(python), "-c", script, str(model_dir), str(tmp_path / "rows.json")], cwd=work,
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["tenure_modules"] == []
    probe = subprocess.run([str(python), "-c", "import training"], cwd=work, env=env, capture_output=True)
    assert probe.returncode != 0  # the fresh environment really has no Tenure
    np.testing.assert_allclose(got["p"], model.predict_proba(model.encode_frame(rows)), rtol=0, atol=1e-12)


def test_predict_leaves_the_registry_byte_identical(registry: dict[str, Any], tmp_path: Path) -> None:
    store = Path(registry["tracking_uri"].removeprefix("sqlite:///")).parent
    before = _tree_digest(store)
    model = registry["models"]["churn"]
    rows = registry["rows"]["churn"].head(30)
    rows.to_csv(tmp_path / "in.csv", index=False)
    env = {"TENURE_HOME": str(tmp_path / "home"), "MLFLOW_TRACKING_URI": registry["tracking_uri"],
           "MLFLOW_REGISTRY_URI": None, "TENURE_ARTIFACT_ROOT": None}
    for uri in ("models:/churn@champion", "models:/churn/1", f"runs:/{registry['run_ids']['churn']}/model"):
        res = CliRunner().invoke(app, ["predict", "--model", uri, "--data", str(tmp_path / "in.csv"),
                                       "--out", str(tmp_path / "out.csv")], env=env)
        assert res.exit_code == 0, res.output
        scores = pd.read_csv(tmp_path / "out.csv")
        np.testing.assert_allclose(scores["probability"],
                                   model.predict_proba(model.encode_frame(rows[model.feature_names])), atol=1e-12)
    assert _tree_digest(store) == before
