"""Config of the serving stage (`tenure serve`): one `ServeConfig` from `configs/serve.yaml`.

The defaults live in the YAML file only; this module declares the types and bounds. The service
process reads its config the same way: `tenure serve` passes the user's file and the CLI
overrides to it through the environment (`TENURE_SERVE_CONFIG`, `TENURE_SERVE_OVERRIDES`), so
`bentoml serve serving.service:Tenure` started by hand reads the same settings.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from configs import ConfigError, StrictModel, load_config
from configs.tasks import TASK_DIRS_ENV, task_names, task_spec_paths

# environment variables through which `tenure serve` hands its config to the service process
SERVE_CONFIG_ENV = "TENURE_SERVE_CONFIG"
SERVE_OVERRIDES_ENV = "TENURE_SERVE_OVERRIDES"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")



def _env_var_name(name: str) -> str:
    if not _ENV_NAME.match(name):
        raise ValueError(f"{name!r} is not an environment variable name (letters, digits, _)")
    return name


class PredictionLogConfig(StrictModel):
    busy_timeout_ms: int = Field(ge=0, le=600_000)
    synchronous: Literal["NORMAL", "FULL"]


class ReloadConfig(StrictModel):
    poll_seconds: float = Field(ge=0, le=86_400)
    follow_seconds: float = Field(gt=0, le=60)
    admin_wait_seconds: float = Field(ge=0, le=600)
    admin_key_env: str

    _env_name = field_validator("admin_key_env")(lambda name: _env_var_name(name))


class ServeConfig(StrictModel):
    tasks: list[str] = Field(min_length=1)
    alias: str = Field(min_length=1)
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    workers: int = Field(ge=1, le=64)
    timeout_seconds: int = Field(ge=1, le=3600)
    trace_requests: bool
    max_batch_size: int = Field(ge=1, le=100_000)
    max_explained_batch_size: int = Field(ge=0, le=100_000)
    max_body_bytes: int = Field(ge=1024, le=1_000_000_000)
    top_reasons: int = Field(ge=1, le=100)
    api_key_env: str
    prediction_log: PredictionLogConfig
    reload: ReloadConfig
    shadow: list[str] | dict[str, list[str]]
    shadow_queue: int = Field(ge=1, le=1_000_000)

    @field_validator("tasks", mode="before")
    @classmethod
    def _all_tasks(cls, tasks: Any) -> Any:
        # `all`: every task spec (models/ and TENURE_TASK_DIRS), found as files: configs imports no other layer
        return list(task_names()) if tasks == "all" else tasks

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: list[str]) -> list[str]:
        paths = task_spec_paths()
        unknown = [t for t in tasks if t not in paths]
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; choose from {list(paths)} or all (a task is a spec file "
                             f"in models/ or in a folder of {TASK_DIRS_ENV})")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks listed twice: {sorted({t for t in tasks if tasks.count(t) > 1})}")
        return tasks

    _env_name = field_validator("api_key_env")(lambda name: _env_var_name(name))

    def shadow_by_alias(self) -> dict[str, list[str]]:
        """Shadow alias -> the served tasks it is scored for (`shadow: [a]` means every task)."""
        out: dict[str, list[str]] = {}
        if isinstance(self.shadow, list):
            for alias in self.shadow:
                out[alias] = list(self.tasks)
        else:
            for task, aliases in self.shadow.items():
                for alias in aliases:
                    out.setdefault(alias, []).append(task)
        return out

    @model_validator(mode="after")
    def _limits(self) -> ServeConfig:
        if isinstance(self.shadow, dict):
            unknown = [t for t in self.shadow if t not in self.tasks]
            if unknown:
                raise ValueError(f"shadow: tasks {unknown} are not served (tasks: {self.tasks})")
        if self.alias in self.shadow_by_alias():
            raise ValueError(f"shadow: {self.alias!r} is the served alias; shadow another one (e.g. challenger)")
        if self.max_explained_batch_size > self.max_batch_size:
            raise ValueError(f"max_explained_batch_size ({self.max_explained_batch_size}) exceeds "
                             f"max_batch_size ({self.max_batch_size})")
        return self


def load_serve_config(path: Path | str | None = None,
                      overrides: Mapping[str, Any] | None = None) -> ServeConfig:
    """The shipped serving config, with the keys of `path` (if given) and then `overrides` replacing them."""
    return load_config(ServeConfig, "serve", path, dict(overrides or {}))


def serve_config_from_env(environ: Mapping[str, str] | None = None) -> ServeConfig:
    """The config the service process runs with: `TENURE_SERVE_CONFIG` file and `TENURE_SERVE_OVERRIDES` JSON."""
    env = os.environ if environ is None else environ
    raw = env.get(SERVE_OVERRIDES_ENV) or "{}"
    try:
        overrides = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{SERVE_OVERRIDES_ENV} is not valid JSON: {exc}") from exc
    if not isinstance(overrides, dict):
        raise ConfigError(f"{SERVE_OVERRIDES_ENV} must hold a JSON object, got {type(overrides).__name__}")
    return load_serve_config(env.get(SERVE_CONFIG_ENV) or None, overrides)
