"""Typed configuration: one Pydantic object per stage, loaded from `configs/<stage>.yaml`.

Each default lives in exactly one place: the stage's YAML file shipped here (a config built in
code, `SplitConfig(kind="random")`, takes what it leaves out from there too: `ShippedConfig`). A
user passes their own file with `--config FILE` (validated the same way) and the environment can
override where things live (`TENURE_HOME`, `MLFLOW_TRACKING_URI`, `TENURE_OPTUNA_STORAGE`,
`TENURE_PREDICTION_LOG`). Loading has no side effects: directories are created by the command
that writes into them.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

CONFIG_DIR = Path(__file__).resolve().parent

M = TypeVar("M", bound=BaseModel)


class TenureError(Exception):
    """An error the user can act on; the CLI prints its message (no traceback) and exits 2."""


class ConfigError(TenureError, ValueError):
    """A configuration that cannot be used; the message names the file and the field."""


class StrictModel(BaseModel):
    """Base for config objects: unknown keys are errors, values are validated on load."""

    model_config = ConfigDict(extra="forbid")


class ShippedConfig(StrictModel):
    """A config whose keys left out take the shipped YAML's values, so that one built in code
    (`SplitConfig(kind="random")`, `Settings(home=tmp)`) gets the same defaults as a loaded one
    and no default is also written in Python. `yaml_path`: the stage's file and the keys down to
    this model's mapping, e.g. ("train", "split") for `split:` in configs/train.yaml."""

    yaml_path: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _shipped_defaults(cls, data: Any) -> Any:
        if not cls.yaml_path or not isinstance(data, dict):
            return data
        return _merge(shipped_defaults(*cls.yaml_path), data)


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


@functools.cache
def _shipped(stage: str) -> dict[str, Any]:
    return read_yaml(CONFIG_DIR / f"{stage}.yaml")


def shipped_defaults(stage: str, *keys: str) -> dict[str, Any]:
    """A copy of the mapping at `keys` in the shipped `configs/<stage>.yaml` (the defaults)."""
    node: Any = _shipped(stage)
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ConfigError(f"config {CONFIG_DIR / f'{stage}.yaml'} has no mapping at {'.'.join(keys)}")
    return copy.deepcopy(node)


def load_config(model: type[M], stage: str, path: Path | str | None = None,
                overrides: dict[str, Any] | None = None) -> M:
    """Validate the stage's config: the shipped defaults, then `path` (if given), then overrides.

    A user file replaces the keys it names (nested mappings are merged), so it only needs what
    it changes. `overrides` come from CLI flags; `None` values are ignored.
    """
    data = shipped_defaults(stage)
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
