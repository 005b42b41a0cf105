"""What a training run records about where it came from: the code version and the unseen rows.

`git_commit` / `git_dirty` describe the checkout that trained (run tags `tenure.git_commit`,
`tenure.git_dirty`); `unseen_rows` cuts the feature-set rows a version was not trained on (the
artefact `models.layout.UNSEEN_ROWS_ARTIFACT`). The MLflow connection itself is
`models.tracking`, shared with serving and monitoring.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def unseen_rows(frame: Any, train: Any, columns: list[str]) -> Any:
    """The rows of the feature set `frame` not in its training part `train` (same index), `columns` only."""
    return frame.loc[~frame.index.isin(train.index), columns].reset_index(drop=True)


def _git(path: Path, *args: str) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit(path: Path = PROJECT_ROOT) -> str:
    """The commit the code runs from, or `unknown` (not a git checkout, or no commit yet)."""
    return _git(path, "rev-parse", "HEAD") or "unknown"


def git_dirty(path: Path = PROJECT_ROOT) -> bool:
    """True when tracked files have uncommitted changes (the commit alone does not pin the code)."""
    return bool(_git(path, "status", "--porcelain", "--untracked-files=no"))
