"""Config of monitoring (`tenure monitor`) and the compliance pack (`tenure compliance`).

Defaults live in `configs/monitor.yaml` only; this module declares the types and bounds, so a
negative threshold, a warn bound above its alert bound or an unknown key is a `ConfigError`
naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from configs import StrictModel, load_config


def _ordered(warn: float, alert: float, what: str) -> None:
    if warn > alert:
        raise ValueError(f"{what}: the warn bound ({warn}) must not exceed the alert bound ({alert})")


class DriftConfig(StrictModel):
    reference: Literal["season", "test", "training"]
    season_min_rows: int = Field(ge=1)
    num_threshold: float | None = Field(ge=0)
    cat_threshold: float | None = Field(ge=0)
    exclude: list[str]
    share_warn: float = Field(ge=0, le=1)
    share_alert: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> DriftConfig:
        _ordered(self.share_warn, self.share_alert, "drift.share_warn/share_alert")
        return self


class PredictionDriftConfig(StrictModel):
    method: Literal["psi", "wasserstein"]
    bins: int = Field(ge=2, le=100)
    warn: float = Field(ge=0)
    alert: float = Field(ge=0)
    match_calendar: list[str]

    @model_validator(mode="after")
    def _check(self) -> PredictionDriftConfig:
        _ordered(self.warn, self.alert, "prediction_drift.warn/alert")
        return self


class PerformanceConfig(StrictModel):
    auc_drop_warn: float = Field(ge=0, le=1)
    auc_drop_alert: float = Field(ge=0, le=1)
    min_labelled_rows: int = Field(ge=1)
    estimate_draws: int = Field(ge=0, le=10_000)
    estimate_max_rows: int = Field(ge=100)
    recalibrate_on: list[Literal["valid", "test"]]

    @model_validator(mode="after")
    def _check(self) -> PerformanceConfig:
        _ordered(self.auc_drop_warn, self.auc_drop_alert, "performance.auc_drop_warn/auc_drop_alert")
        return self


class QualityConfig(StrictModel):
    missing_increase_warn: float = Field(ge=0, le=1)
    missing_increase_alert: float = Field(ge=0, le=1)
    invalid_share_warn: float = Field(ge=0, le=1)
    invalid_share_alert: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> QualityConfig:
        _ordered(self.missing_increase_warn, self.missing_increase_alert,
                 "quality.missing_increase_warn/missing_increase_alert")
        _ordered(self.invalid_share_warn, self.invalid_share_alert,
                 "quality.invalid_share_warn/invalid_share_alert")
        return self


class ReportsConfig(StrictModel):
    evidently: bool
    evidently_max_rows: int = Field(ge=100)
    log_to_mlflow: bool
    seed: int = Field(ge=0)


class ComplianceConfig(StrictModel):
    shap_rows: int = Field(ge=10)
    examples: int = Field(ge=0, le=50)
    reasons: int = Field(ge=1, le=20)
    top_features: int = Field(ge=1, le=200)


class MonitorConfig(StrictModel):
    min_rows: int = Field(ge=1)
    drift: DriftConfig
    prediction_drift: PredictionDriftConfig
    performance: PerformanceConfig
    quality: QualityConfig
    reports: ReportsConfig
    compliance: ComplianceConfig


def load_monitor_config(path: Path | str | None = None) -> MonitorConfig:
    """The shipped monitoring config, with the keys of `path` (if given) replacing them."""
    return load_config(MonitorConfig, "monitor", path)
