"""Promotion as the app runs it: the gates of `training.gates` with the evidence of live traffic.

`promote` is `training.promote.promote` with the shadow-period evidence read from the prediction
log (`serving.compare.shadow_period`), which the training stage does not read itself (training and
serving are independent; the app joins them).
"""

from __future__ import annotations

from typing import Any

from configs.promote import PromoteConfig
from configs.settings import Settings
from training.gates import PromotionDecision, ShadowEvidence
from training.promote import promote as gated_promote


def shadow_evidence(settings: Settings, model_name: str) -> ShadowEvidence:
    """version -> (shadow rows, days, note) of `model_name` in the settings' prediction log; a log
    that cannot be read shows no shadow period, and says why."""
    from serving.compare import shadow_period
    from serving.prediction_log import PredictionLogError

    def read(version: str) -> tuple[int, float, str]:
        try:
            rows, days = shadow_period(settings.prediction_log_target, model_name, model_name, version)
        except PredictionLogError as exc:
            return 0, 0.0, f"; the prediction log cannot be read: {exc}"
        return rows, days, ""

    return read


def promote(model_name: str, settings: Settings, cfg: PromoteConfig, **kwargs: Any) -> PromotionDecision:
    """`training.promote.promote` with the shadow-period evidence of the prediction log."""
    return gated_promote(model_name, settings, cfg, shadow=shadow_evidence(settings, model_name), **kwargs)
