"""The MLproject entry points call `tenure` commands with options the CLI has."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tenure.cli import app

MLPROJECT = yaml.safe_load((Path(__file__).resolve().parents[2] / "MLproject").read_text())


@pytest.mark.parametrize("name", sorted(MLPROJECT["entry_points"]))
def test_entry_point_is_a_tenure_command_with_known_options(name: str) -> None:
    entry = MLPROJECT["entry_points"][name]
    defaults = {k: v.get("default", "x") for k, v in (entry.get("parameters") or {}).items()}
    args = shlex.split(entry["command"].format(**defaults))
    assert args[0] == "tenure"
    res = CliRunner().invoke(app, [*args[1:], "--help"])
    assert res.exit_code == 0, res.output


def test_retrain_entry_point_passes_task_and_level() -> None:
    command = MLPROJECT["entry_points"]["retrain"]["command"]
    assert "tenure retrain --task {task} --if-level {if_level}" in command
