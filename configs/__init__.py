"""Typed configuration: one Pydantic object per stage, loaded from `configs/<stage>.yaml`.

Each default lives in exactly one place: the stage's YAML file shipped here. A user passes their
own file with `--config FILE` (validated the same way) and the environment can override where
things live (`TENURE_HOME`, `MLFLOW_TRACKING_URI`, `TENURE_OPTUNA_STORAGE`,
`TENURE_PREDICTION_LOG`). Loading has no side effects: directories are created by the command
that writes into them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

CONFIG_DIR = Path(__file__).resolve().parent

M = TypeVar("M", bound=BaseModel)


class TenureError(Exception):
    """An error the user can act on; the CLI prints its message (no traceback) and exits 2."""


class ConfigError(TenureError, ValueError):
    """A configuration that cannot be used; the message names the file and the field."""


class StrictModel(BaseModel):
    """Base for config objects: unknown keys are errors, values are validated on load."""

    model_config = ConfigDict(extra="forbid")


def format_validation_error(exc: ValidationError, where: str) -> str:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        problems.append(f"{loc}: {err['msg']}{shown}")
    return f"{where} is invalid: " + "; ".join(problems)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from `path`, with errors that name the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(raw).__name__}")
    return raw


def load_config(model: type[M], stage: str, path: Path | str | None = None,
                overrides: dict[str, Any] | None = None) -> M:
    """Validate the stage's config: the shipped defaults, then `path` (if given), then overrides.

    A user file replaces the keys it names (nested mappings are merged), so it only needs what
    it changes. `overrides` come from CLI flags; `None` values are ignored.
    """
    data = read_yaml(CONFIG_DIR / f"{stage}.yaml")
    where = f"config {CONFIG_DIR / f'{stage}.yaml'}"
    if path is not None:
        data = _merge(data, read_yaml(Path(path)))
        where = f"config {path}"
    if overrides:
        data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from exc


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
