"""Each default lives in one place, the stage's YAML: no config field the YAML sets has a Python
default as well, every field is in the YAML, and a config built in code equals the loaded one."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from configs import CONFIG_DIR, ShippedConfig, load_config
from configs.data import DataConfig
from configs.features import FeaturesConfig
from configs.monitor import MonitorConfig
from configs.promote import PromoteConfig
from configs.serve import ServeConfig
from configs.settings import Settings
from configs.train import CVConfig, SplitConfig, TrainConfig, TuningConfig

STAGES: dict[str, type[BaseModel]] = {
    "data": DataConfig, "features": FeaturesConfig, "train": TrainConfig, "promote": PromoteConfig,
    "monitor": MonitorConfig, "serve": ServeConfig, "settings": Settings,
}


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The config model a field holds directly (not inside a dict or list), if any."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    for a in typing.get_args(annotation) if union else (annotation,):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def _problems(model: type[BaseModel], node: dict[str, Any], where: str) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{where}.{name}"
        if name not in node:
            out.append(f"{key} is not in the YAML (its default would live in Python only)")
            continue
        if not field.is_required():
            default = field.default_factory() if field.default_factory else field.default
            out.append(f"{key}: Python default {default!r} repeats the YAML's {node[name]!r}")
        sub = _nested_model(field.annotation)
        if sub is not None and isinstance(node[name], dict):
            out.extend(_problems(sub, node[name], key))
    return out


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_default_is_the_yamls_only(stage: str) -> None:
    shipped = yaml.safe_load((CONFIG_DIR / f"{stage}.yaml").read_text()) or {}
    assert _problems(STAGES[stage], shipped, stage) == []


@pytest.mark.parametrize("stage", sorted(s for s, m in STAGES.items() if issubclass(m, ShippedConfig)))
def test_a_config_built_in_code_has_the_yamls_defaults(stage: str) -> None:
    model = STAGES[stage]
    assert model() == load_config(model, stage)


def test_a_nested_config_built_in_code_fills_what_it_leaves_out() -> None:
    loaded = load_config(TrainConfig, "train")
    assert SplitConfig(kind="random") == loaded.split.model_copy(update={"kind": "random"})
    assert CVConfig() == loaded.cv
    assert TuningConfig(n_trials=3).search_space == loaded.tuning.search_space
    assert DataConfig(customers=800).months == load_config(DataConfig, "data").months
    assert Settings(home=Path("/x")).experiment_prefix == load_config(Settings, "settings").experiment_prefix
