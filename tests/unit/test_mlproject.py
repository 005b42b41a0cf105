"""The MLproject entry points call `tenure` commands with options the CLI has, and repeat no
default: a parameter MLproject declares is one the CLI requires, so every value left out is the
command's own (configs/*.yaml)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from tenure.cli import app

ROOT = Path(__file__).resolve().parents[2]
MLPROJECT = yaml.safe_load((ROOT / "MLproject").read_text())
ENTRY_POINTS = sorted(MLPROJECT["entry_points"])


def _command(args: list[str]) -> Any:
    """The click command of `tenure <args...>` (subcommands followed while they are groups)."""
    cmd = typer.main.get_command(app)
    for word in args:
        if not hasattr(cmd, "commands"):
            break
        cmd = cmd.commands[word]
    return cmd


def _options(cmd: Any) -> dict[str, Any]:
    """Option spelling (`--trials`) -> the click option."""
    return {opt: p for p in cmd.params if p.param_type_name == "option" for opt in p.opts}


def _bound(command: str) -> dict[str, str]:
    """Parameter name -> the CLI option it is substituted after (`--task {task}` -> task: --task)."""
    words = shlex.split(command)
    return {w[1:-1]: words[i - 1] for i, w in enumerate(words) if w.startswith("{") and w.endswith("}")}


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_entry_point_is_a_tenure_command_with_known_options(name: str) -> None:
    entry = MLPROJECT["entry_points"][name]
    values = {k: v.get("default", "x") for k, v in (entry.get("parameters") or {}).items()}
    args = shlex.split(entry["command"].format(**values))
    assert args[0] == "tenure"
    res = CliRunner().invoke(app, [*args[1:], "--help"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_entry_point_declares_only_what_the_cli_requires(name: str) -> None:
    """A declared default would replace the command's (the YAML's) default; an undeclared
    required option would make `mlflow run` start a command that fails."""
    entry = MLPROJECT["entry_points"][name]
    params = entry.get("parameters") or {}
    cmd = _command(shlex.split(entry["command"])[1:])
    options = _options(cmd)
    bound = _bound(entry["command"])
    for param, spec in params.items():
        assert "default" not in (spec or {}), (
            f"MLproject {name}: parameter {param} has default {spec['default']!r}; the CLI's default "
            f"(configs/*.yaml) applies when it is left out, so declare only required options")
        assert param in bound, f"MLproject {name}: parameter {param} is not used in the command"
        assert options[bound[param]].required, (
            f"MLproject {name}: {bound[param]} is optional in `tenure`; let it pass through as -P")
    required = {p.opts[0] for p in cmd.params if p.param_type_name == "option" and p.required}
    assert required <= set(bound.values()), f"MLproject {name}: the CLI requires {required}"


def test_a_left_out_value_is_the_yamls_and_a_given_one_passes_as_the_cli_option() -> None:
    """MLflow's own expansion: `-e train` without -P trials runs `tenure train` (configs/train.yaml's
    budget); -P trials=5 -P if-level=warn become `--trials 5`, `--if-level warn`."""
    from mlflow.projects._project_spec import load_project

    project = load_project(str(ROOT))
    assert project.get_entry_point("train").compute_command({}, None) == "tenure train"
    train = project.get_entry_point("train").compute_command({"task": "churn", "trials": "5"}, None)
    assert shlex.split(train) == ["tenure", "train", "--task", "churn", "--trials", "5"]
    retrain = project.get_entry_point("retrain").compute_command({"task": "churn", "if-level": "warn"}, None)
    assert shlex.split(retrain) == ["tenure", "retrain", "--task", "churn", "--if-level", "warn"]
    # and the CLI takes them: every option passed this way is one `tenure train --help` lists
    assert {"--task", "--trials", "--timeout", "--seed", "--workers"} <= set(_options(_command(["train"])))
    assert "--if-level" in _options(_command(["retrain"]))
