"""Where the task specs are: the list of tasks is the list of spec files, nothing else.

A task is `models/<task>.yaml` (the built-in ones) or `<task>.yaml` in a folder named by
`TENURE_TASK_DIRS` (folders separated by `os.pathsep`, searched after `models/`). The file's stem is
the task's name. This module only finds the files (configs imports no other layer); `models`
parses and validates them.

Order: the built-in tasks first, then each extra folder in turn, file names sorted within a folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from configs import ConfigError

TASK_DIRS_ENV = "TENURE_TASK_DIRS"
BUILTIN_SPEC_DIR = Path(__file__).resolve().parent.parent / "models"
# a task name becomes a registered model name, an HTTP route (/predict_<task>) and a file name
TASK_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}\Z")


def task_spec_paths(environ: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Task name -> its spec file, for the built-in folder and the folders in `TENURE_TASK_DIRS`."""
    env = os.environ if environ is None else environ
    return dict(_discover(env.get(TASK_DIRS_ENV, "")))


def task_names(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every task, in order (see the module docstring)."""
    return tuple(task_spec_paths(environ))


def resolve_tasks(task: str, *, several: bool = True, hint: str = "") -> list[str]:
    """A `--task` option: `all` -> every task; one task name; with `several`, a comma-separated list.

    An unknown name raises `ConfigError` in one line naming the option, the tasks and where tasks
    come from; `hint` is appended (e.g. how to train one's own table instead).
    """
    names = task_names()
    if task == "all":
        return list(names)
    chosen = [t.strip() for t in task.split(",") if t.strip()] if several else [task]
    if not chosen or any(t not in names for t in chosen):
        which = "one or several (comma-separated) of" if several else "one of"
        raise ConfigError(f"--task {task!r} is not {'a list of tasks' if several and ',' in task else 'a task'}; "
                          f"choose {which} {', '.join(names)} or all (a task is a spec file in models/ or in a "
                          f"folder of {TASK_DIRS_ENV}{hint})")
    return chosen


@cache
def _discover(extra: str) -> tuple[tuple[str, Path], ...]:
    folders = [BUILTIN_SPEC_DIR]
    for part in extra.split(os.pathsep):
        if part.strip():
            folder = Path(part.strip()).expanduser().resolve()
            if not folder.is_dir():
                raise ConfigError(f"{TASK_DIRS_ENV} names {part!r}, which is not a folder")
            if folder not in folders:
                folders.append(folder)
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")):
            name = path.stem
            if not TASK_NAME.match(name):
                raise ConfigError(f"task spec {path}: the file name must be the task's name, lower case letters, "
                                  "digits and _ starting with a letter (it becomes a model name and a route)")
            if name in found:
                raise ConfigError(f"task {name!r} is defined twice: {found[name]} and {path}")
            found[name] = path
    return tuple(found.items())
