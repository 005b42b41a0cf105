"""Config of the synthetic data generator (`tenure data generate`)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from configs import ShippedConfig

Scenario = Literal["baseline", "downturn", "competitor"]


class DataConfig(ShippedConfig):
    """Keys left out take configs/data.yaml's values."""

    yaml_path = ("data",)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    customers: int = Field(ge=50, le=5_000_000)
    months: int = Field(ge=12, le=120)
    seed: int = Field(ge=0)
    start_date: dt.date
    scenario: Scenario
    # the scenario's shift applies to the last `scenario_months` months of the dataset
    scenario_months: int = Field(ge=1, le=24)
    # simulate and write the customers in chunks of this many (memory bounded by one chunk; tables
    # become folders of part files); None: one simulation of everyone (see features.synthetic.dataset)
    chunk_customers: int | None = Field(ge=50)

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.start_date.day != 1:
            raise ValueError(f"start_date must be the first day of a month, got {self.start_date}")
        if self.scenario_months >= self.months:
            raise ValueError("scenario_months must be smaller than months")
        return self
