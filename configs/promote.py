"""Config of the promotion gates (`tenure promote`): one `PromoteConfig` from `configs/promote.yaml`.

The defaults live in the YAML file only; this module declares the types and bounds, so a
negative bound or an unknown key is a `ConfigError` that names the file and the field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from configs import StrictModel, load_config


class PromoteConfig(StrictModel):
    # performance
    max_auc_drop: float = Field(ge=0, le=1)
    min_auc: float = Field(ge=0, le=1)
    max_ece: float = Field(ge=0, le=1)
    ece_bins: int = Field(ge=2, le=1000)
    # fairness
    min_group_size: int = Field(ge=1)
    min_group_class_count: int = Field(ge=1)
    max_group_auc_gap: float = Field(ge=0, le=1)
    max_group_positive_rate_gap: float = Field(ge=0, le=1)
    positive_tier: int = Field(ge=1, le=20)
    gap_confidence: float = Field(ge=0.5, lt=1)
    positive_rate_gap_exempt: dict[str, list[str]]
    # stability
    max_feature_psi: float = Field(ge=0)
    psi_min_importance: float = Field(ge=0, le=1)
    psi_bins: int = Field(ge=2, le=1000)
    psi_epsilon: float = Field(gt=0, le=0.01)
    psi_exclude: list[str]
    psi_report_worst: int = Field(ge=1, le=100)
    min_shadow_days: float = Field(ge=0, le=3650)
    min_shadow_rows: int = Field(ge=0)


def load_promote_config(path: Path | str | None = None) -> PromoteConfig:
    """The shipped gates, with the keys of `path` (if given) replacing them."""
    return load_config(PromoteConfig, "promote", path)
