"""The `tenure` CLI run in-process (Typer's runner), every location under one home."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tenure.cli import app


def invoke(args: list[str], home: Path) -> Any:
    """Run `tenure ...` in-process with everything under `home` (other overrides removed)."""
    env = {"TENURE_HOME": str(home), "MLFLOW_TRACKING_URI": None, "MLFLOW_REGISTRY_URI": None,
           "TENURE_ARTIFACT_ROOT": None, "TENURE_OPTUNA_STORAGE": None}
    return CliRunner().invoke(app, args, env=env)


def last_json(output: str) -> dict[str, Any]:
    """The JSON object on the last line of a command's output (the result line)."""
    return json.loads(output.strip().splitlines()[-1])
