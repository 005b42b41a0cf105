"""The import-linter contracts in pyproject.toml hold (serving and monitoring never import the
trainer; models/ imports no stage; no stage imports the synthetic simulator; the promotion gates
reach no MLflow), and the checker really catches a breach."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(exe), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": str(exe.parent)})


def test_the_layering_contracts_are_kept() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout and " KEPT" in done.stdout


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    for part in ("tenure", "configs", "models", "features", "training", "serving", "monitoring"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_a_stage_importing_the_trainer_or_the_simulator_breaks_a_contract(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    (copy / "serving" / "sneaky.py").write_text("from training.cv import refit\n")
    (copy / "monitoring" / "sneaky.py").write_text("from features.synthetic import generate_dataset\n")
    done = _lint_imports(copy)
    assert done.returncode != 0
    assert "serving.sneaky -> training.cv" in done.stdout
    assert "monitoring.sneaky -> features.synthetic" in done.stdout


def test_the_promotion_gates_reaching_mlflow_through_the_registry_break_the_contract(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    gates = copy / "training" / "gates.py"
    gates.write_text(gates.read_text() + "\nfrom models.registry import registry_client\n")
    done = _lint_imports(copy)
    assert done.returncode != 0
    assert "training.gates is not allowed to import mlflow" in done.stdout
    assert "models.registry -> mlflow" in done.stdout
