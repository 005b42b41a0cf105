"""Config of the point-in-time feature builder (`tenure features build`)."""

from __future__ import annotations

from pydantic import Field

from configs import StrictModel


class FeaturesConfig(StrictModel):
    # months of history a dataset must have before the first snapshot
    min_history_months: int = Field(default=12, ge=1, le=60)
    # keep at most this many snapshots (the latest ones); null keeps all
    max_snapshots: int | None = Field(default=None, ge=1)
