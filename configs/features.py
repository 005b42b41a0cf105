"""Config of the point-in-time feature builder (`tenure features build`)."""

from __future__ import annotations

from pydantic import Field

from configs import ShippedConfig


class FeaturesConfig(ShippedConfig):
    """Keys left out take configs/features.yaml's values."""

    yaml_path = ("features",)

    # months of history a dataset must have before the first snapshot
    min_history_months: int = Field(ge=1, le=60)
    # keep at most this many snapshots (the latest ones); null keeps all
    max_snapshots: int | None = Field(ge=1)
