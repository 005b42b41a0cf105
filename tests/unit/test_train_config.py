"""Training config and CLI argument errors: every bad input names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from configs import ConfigError
from configs.train import TrainConfig, load_train_config
from tenure.cli import app


def _write(tmp_path: Path, data: dict, name: str = "train.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_config_is_valid_and_modest() -> None:
    cfg = load_train_config()
    assert isinstance(cfg, TrainConfig)
    assert cfg.num_threads == 2
    assert 0 < (cfg.tuning.n_trials or 0) <= 30 and 0 < (cfg.tuning.timeout_seconds or 0) <= 120
    assert {"num_leaves", "learning_rate", "min_child_samples", "feature_fraction", "bagging_fraction",
            "lambda_l1", "lambda_l2", "min_split_gain", "max_depth"} <= set(cfg.tuning.search_space)
    assert cfg.tuning.pruning.enabled


def test_user_file_changes_only_what_it_names(tmp_path: Path) -> None:
    path = _write(tmp_path, {"tuning": {"n_trials": 7, "search_space": {"num_leaves": {"type": "int", "low": 4,
                                                                                      "high": 16}}}})
    cfg = load_train_config(path)
    assert cfg.tuning.n_trials == 7
    assert cfg.tuning.search_space["num_leaves"].high == 16
    assert "learning_rate" in cfg.tuning.search_space  # merged, not replaced
    assert cfg.tuning.timeout_seconds == load_train_config().tuning.timeout_seconds


def test_cli_trials_lifts_the_time_budget_unless_timeout_is_given() -> None:
    assert load_train_config(trials=3).tuning.timeout_seconds is None
    both = load_train_config(trials=3, timeout=12)
    assert (both.tuning.n_trials, both.tuning.timeout_seconds) == (3, 12)
    assert load_train_config(seed=7).seed == 7


@pytest.mark.parametrize(("data", "field"), [
    ({"tuning": {"n_trails": 5}}, "tuning.n_trails"),  # unknown key (typo)
    ({"colour": "blue"}, "colour"),
    ({"tuning": {"n_trials": "many"}}, "tuning.n_trials"),  # wrong type
    ({"num_threads": [2]}, "num_threads"),
    ({"tuning": {"n_trials": 0}}, "tuning.n_trials"),
    ({"tuning": {"n_trials": -3}}, "tuning.n_trials"),
    ({"tuning": {"search_space": {"num_leaves": {"type": "int", "low": 64, "high": 8}}}},
     "tuning.search_space.num_leaves"),
    ({"tuning": {"search_space": {"learning_rate": {"type": "float", "low": 0.1, "high": 0.1}}}},
     "tuning.search_space.learning_rate"),
    ({"tuning": {"search_space": {"lambda_l1": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}}},
     "tuning.search_space.lambda_l1"),
    ({"tuning": {"search_space": {"num_leaves": {"type": "int", "low": 2.5, "high": 8}}}},
     "tuning.search_space.num_leaves"),
    ({"tuning": {"search_space": {"num_leafs": {"type": "int", "low": 2, "high": 8}}}}, "tuning"),
    ({"tuning": {"search_space": {"seed": {"type": "int", "low": 1, "high": 8}}}}, "tuning"),
    ({"tuning": {"n_trials": None, "timeout_seconds": None}}, "tuning"),
    ({"split": {"test_fraction": 1.5}}, "split.test_fraction"),
    ({"split": {"kind": "sideways"}}, "split.kind"),
    ({"lightgbm": {"params": {"objective": "regression"}}}, "lightgbm"),
    ({"lightgbm": {"params": {"num_leaves": 15}}}, "<root>"),  # fixed and searched at once
])
def test_bad_config_is_a_config_error_naming_file_and_field(tmp_path: Path, data: dict, field: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_train_config(path)
    message = str(err.value)
    assert str(path) in message
    assert field in message


def test_bad_search_space_bounds_message_says_what_is_wrong(tmp_path: Path) -> None:
    path = _write(tmp_path, {"tuning": {"search_space": {"num_leaves": {"type": "int", "low": 64, "high": 8}}}})
    with pytest.raises(ConfigError, match=r"low \(64.0\) must be smaller than high \(8.0\)"):
        load_train_config(path)


def test_missing_or_broken_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_train_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("tuning: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_train_config(broken)


# ---- through the CLI: exit 2 with one clear line, nothing trained ---------------------------

@pytest.fixture
def runner_env(tmp_path: Path) -> dict[str, str]:
    return {"TENURE_HOME": str(tmp_path / "home")}


def test_cli_unknown_task(runner_env: dict[str, str]) -> None:
    res = CliRunner().invoke(app, ["train", "--task", "fraud"], env=runner_env)
    assert res.exit_code == 2
    assert "--task 'fraud' is not a task" in res.output and "default_risk" in res.output


def test_cli_bad_config_file(tmp_path: Path, runner_env: dict[str, str]) -> None:
    path = _write(tmp_path, {"tuning": {"n_trials": 0}})
    res = CliRunner().invoke(app, ["train", "--task", "churn", "--config", str(path)], env=runner_env)
    assert res.exit_code == 2
    assert str(path) in res.output and "tuning.n_trials" in res.output


def test_cli_zero_trials_flag(runner_env: dict[str, str]) -> None:
    res = CliRunner().invoke(app, ["train", "--task", "churn", "--trials", "0"], env=runner_env)
    assert res.exit_code == 2
    assert "tuning.n_trials" in res.output


def test_cli_missing_featureset_names_the_file(tmp_path: Path, runner_env: dict[str, str]) -> None:
    res = CliRunner().invoke(app, ["train", "--task", "churn", "--trials", "1"], env=runner_env)
    assert res.exit_code == 2
    assert str(Path(runner_env["TENURE_HOME"]) / "features" / "demo" / "churn.parquet") in res.output
    assert "tenure features build" in res.output


@pytest.mark.parametrize(("data", "field"), [
    ({"name": "m", "path": "t.csv", "target": "y", "positive_label": 1, "colour": "red"}, "colour"),
    ({"name": "m", "path": "t.csv", "positive_label": 1}, "target"),
    ({"name": "bad name!", "path": "t.csv", "target": "y", "positive_label": 1}, "name"),
    ({"name": "m", "path": "t.csv", "target": "y", "positive_label": 1, "drop": "notes"}, "drop"),
])
def test_cli_bad_dataset_config(tmp_path: Path, runner_env: dict[str, str], data: dict, field: str) -> None:
    path = _write(tmp_path, data, "dataset.yaml")
    res = CliRunner().invoke(app, ["train", "--dataset-config", str(path)], env=runner_env)
    assert res.exit_code == 2, res.output
    assert str(path) in res.output and field in res.output


def test_cli_dataset_config_with_a_missing_table(tmp_path: Path, runner_env: dict[str, str]) -> None:
    path = _write(tmp_path, {"name": "m", "path": "absent.csv", "target": "y", "positive_label": 1}, "dataset.yaml")
    res = CliRunner().invoke(app, ["train", "--dataset-config", str(path)], env=runner_env)
    assert res.exit_code == 2
    assert "absent.csv" in res.output and "does not exist" in res.output


def test_cli_dataset_config_cannot_be_combined_with_task(tmp_path: Path, runner_env: dict[str, str]) -> None:
    path = _write(tmp_path, {"name": "m", "path": "t.csv", "target": "y", "positive_label": 1}, "dataset.yaml")
    res = CliRunner().invoke(app, ["train", "--dataset-config", str(path), "--task", "churn"], env=runner_env)
    assert res.exit_code == 2
    assert "--dataset-config" in res.output


def test_small_tables_train_on_their_own_thread_count(tmp_path: Path) -> None:
    cfg = load_train_config(_write(tmp_path, {"num_threads": 4, "small_table_threads": 1,
                                              "tuning": {"small_table_rows": 1000}}))
    assert cfg.for_rows(999).num_threads == 1
    assert cfg.for_rows(1000).num_threads == 4 and cfg.for_rows(1000) is cfg
    assert cfg.num_threads == 4  # the loaded config is not changed
    with pytest.raises(ValueError, match="small_table_threads"):
        load_train_config(_write(tmp_path, {"small_table_threads": 0}, "bad.yaml"))
