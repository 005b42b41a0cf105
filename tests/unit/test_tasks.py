"""Task discovery (`configs.tasks`): the tasks are the spec files, and `--task` resolves against them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from configs import ConfigError
from configs.tasks import (
    BUILTIN_SPEC_DIR,
    TASK_DIRS_ENV,
    resolve_tasks,
    task_names,
    task_spec_paths,
)

BUILTIN = ("churn", "default_risk", "early_termination", "upsell")


def test_builtin_tasks_in_file_name_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TASK_DIRS_ENV, raising=False)
    assert task_names() == BUILTIN
    assert resolve_tasks("all") == list(BUILTIN) == resolve_tasks("all", several=False)


def test_one_task_or_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TASK_DIRS_ENV, raising=False)
    assert resolve_tasks("churn", several=False) == ["churn"]
    assert resolve_tasks(" upsell , churn ") == ["upsell", "churn"]


@pytest.mark.parametrize(("task", "several", "message"), [
    ("fraud", False, "--task 'fraud' is not a task; choose one of churn, default_risk"),
    ("churn,upsell", False, "--task 'churn,upsell' is not a task; choose one of"),
    ("churn,fraud", True, "--task 'churn,fraud' is not a list of tasks; choose one or several (comma-separated) of"),
    (" , ", True, "is not a list of tasks"),
    ("", True, "--task '' is not a task"),
])
def test_unknown_tasks_are_refused_in_one_line(task: str, several: bool, message: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TASK_DIRS_ENV, raising=False)
    with pytest.raises(ConfigError) as err:
        resolve_tasks(task, several=several, hint="; or use --dataset-config")
    text = str(err.value)
    assert message in text and TASK_DIRS_ENV in text and text.endswith("; or use --dataset-config)")
    assert "\n" not in text


def test_an_extra_folder_adds_tasks_after_the_builtin_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(BUILTIN_SPEC_DIR / "churn.yaml", tmp_path / "asset_return.yaml")
    monkeypatch.setenv(TASK_DIRS_ENV, str(tmp_path))
    assert task_names() == (*BUILTIN, "asset_return")
    assert task_spec_paths()["asset_return"] == tmp_path / "asset_return.yaml"
    assert resolve_tasks("asset_return,churn") == ["asset_return", "churn"]


@pytest.mark.parametrize(("file_name", "message"), [
    ("churn.yaml", "task 'churn' is defined twice"),
    ("Asset-Return.yaml", "the file name must be the task's name"),
])
def test_bad_task_folders_are_refused(file_name: str, message: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(BUILTIN_SPEC_DIR / "churn.yaml", tmp_path / file_name)
    monkeypatch.setenv(TASK_DIRS_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match=message):
        task_names()


def test_a_task_dir_that_is_not_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TASK_DIRS_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=f"{TASK_DIRS_ENV} names .*missing.*which is not a folder"):
        task_names()
