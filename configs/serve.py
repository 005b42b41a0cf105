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

# environment variables through which `tenure serve` hands its config to the service process
SERVE_CONFIG_ENV = "TENURE_SERVE_CONFIG"
SERVE_OVERRIDES_ENV = "TENURE_SERVE_OVERRIDES"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PredictionLogConfig(StrictModel):
    busy_timeout_ms: int = Field(ge=0, le=600_000)
    synchronous: Literal["NORMAL", "FULL"]


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
    outcome_zh: dict[str, str] = Field(default_factory=dict)
    api_key_env: str
    prediction_log: PredictionLogConfig

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: list[str]) -> list[str]:
        from models import TASKS

        unknown = [t for t in tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; choose from {list(TASKS)}")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks listed twice: {sorted({t for t in tasks if tasks.count(t) > 1})}")
        return tasks

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, name: str) -> str:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name (letters, digits, _)")
        return name

    @model_validator(mode="after")
    def _limits(self) -> ServeConfig:
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
