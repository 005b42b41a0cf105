"""Task specs: the one place a task's target, features, constraints and decision policy live.

Each task has `models/<task>.yaml` (or `<task>.yaml` in a folder of `TENURE_TASK_DIRS`), validated
into a `TaskSpec` on load. The list of tasks is the list of spec files (`task_names()`): routes,
schemas, the served tasks and `--task all` follow from it. Training, serving and monitoring read a
task only through its spec (or the copy logged with the model in MLflow).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from configs import TenureError
from configs.tasks import TASK_DIRS_ENV, task_names, task_spec_paths

__all__ = ["TASK_DIRS_ENV", "LabelSpec", "SpecError", "TaskSpec", "Tier", "load_spec", "load_spec_file",
           "task_names"]


class SpecError(TenureError, ValueError):
    """A task spec that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelSpec(_Strict):
    name: str
    event: Literal["default_60dpd", "churn", "upsell", "early_termination", "column"]
    horizon_months: int = Field(ge=1, le=24)
    eligibility: Literal["active_lease", "active_lease_not_in_default", "all"]
    definition: str


class Tier(_Strict):
    name: str
    max_probability: float = Field(gt=0, le=1, description="upper bound (exclusive, 1.0 inclusive)")
    action: str
    action_en: str
    action_zh: str
    params: dict[str, float | int | str] = Field(default_factory=dict)


class TaskSpec(_Strict):
    name: str
    title: str
    question: str
    positive_means: str = Field(description="what a high score means, for reasons: 'raised the churn risk'")
    outcome_zh: str | None = Field(default=None, description="the outcome the score measures, in Chinese, "
                                   "for the reason sentences ('...推高了流失风险。')")
    label: LabelSpec
    features: tuple[str, ...]
    monotone: dict[str, Literal[-1, 1]] = Field(default_factory=dict)
    groups: tuple[str, ...] = ("age_band", "city_tier", "industry")
    tiers: tuple[Tier, ...]

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        if len(set(self.features)) != len(self.features):
            dup = sorted({f for f in self.features if self.features.count(f) > 1})
            raise ValueError(f"features listed twice: {dup}")
        unknown = [f for f in self.monotone if f not in self.features]
        if unknown:
            raise ValueError(f"monotone constraints on features not in the feature list: {unknown}")
        bounds = [t.max_probability for t in self.tiers]
        if not bounds or bounds != sorted(bounds) or len(set(bounds)) != len(bounds) or bounds[-1] != 1.0:
            raise ValueError(
                f"tiers must have strictly increasing max_probability ending at 1.0, got {bounds}"
            )
        return self

    def tier_for(self, probability: float) -> Tier:
        """The tier a probability falls in (upper bounds exclusive, the last one inclusive)."""
        for tier in self.tiers:
            if probability < tier.max_probability:
                return tier
        return self.tiers[-1]

    def monotone_vector(self) -> list[int]:
        """LightGBM's `monotone_constraints`, aligned with `features`."""
        return [int(self.monotone.get(f, 0)) for f in self.features]


def load_spec_file(path: Path) -> TaskSpec:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise SpecError(f"task spec {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"task spec {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"task spec {path} must be a mapping, got {type(raw).__name__}")
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise SpecError(f"task spec {path} is invalid: {problems}") from exc
    return spec  # its feature names are checked against the catalogue where features are built
    # (`features.definitions.check_spec`): models/ imports no stage


def load_spec(task: str) -> TaskSpec:
    """The spec of a task (`models/<task>.yaml` or a file in a folder of `TENURE_TASK_DIRS`)."""
    paths = task_spec_paths()
    if task not in paths:
        raise SpecError(f"unknown task {task!r}; choose one of {', '.join(paths)} (a task is a spec file in "
                        f"models/ or in a folder of {TASK_DIRS_ENV})")
    return _load_spec_path(paths[task])


@cache
def _load_spec_path(path: Path) -> TaskSpec:
    spec = load_spec_file(path)
    if spec.name != path.stem:
        raise SpecError(f"task spec {path}: name {spec.name!r} must be the file's name {path.stem!r}")
    return spec
