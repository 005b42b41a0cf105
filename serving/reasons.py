"""Reasons: the features that pushed a score, as exact SHAP contributions and plain sentences.

Contributions come from LightGBM's TreeSHAP (`pred_contrib`) on the served booster, on the raw
(log-odds) score, blended with the exact SHAP values of the model's linear part when it has one
(`models.artifact.LinearPart`), so per row they sum with the base value to the raw score. The sentences are
built from the feature definitions (English and Chinese description, unit) and the task spec's
`positive_means` ("raised the default risk"), e.g. "Days past due on the oldest unpaid invoice
today is 45 days, which raised the default risk." / "当前最久未付账单的逾期天数为 45 天，推高了违约风险。"
Reads and writes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.schemas import Explanation, Reason

# Chinese measure words for the units of `features.definitions`
UNIT_ZH: dict[str, str] = {
    "days": "天", "months": "个月", "CNY": "元", "%": "%", "points": "分", "leases": "份",
    "invoices": "张", "hours": "小时", "faults": "次", "visits": "次", "tickets": "张",
    "complaints": "次", "contacts": "次", "campaigns": "次", "emails": "封", "referrals": "次",
    "renewals": "次", "of 5": "分（满分 5 分）",
}


def format_number(value: float) -> str:
    """A number as a person writes it: 45, 12,500, 3.5, 0.035."""
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def format_value_en(value: Any, unit: str) -> str:
    if value is None:
        return "missing"
    if isinstance(value, str):
        return value
    text = format_number(float(value))
    if not unit:
        return text
    if unit == "%":
        return f"{text}%"
    if unit.endswith("s") and float(value) == 1 and unit not in ("CNY",):
        unit = unit[:-1]
    return f"{text} {unit}"


def format_value_zh(value: Any, unit: str) -> str:
    if value is None:
        return "缺失"
    if isinstance(value, str):
        return value
    text = format_number(float(value))
    if not unit:
        return text
    zh = UNIT_ZH.get(unit, unit)
    return f"{text}{zh}" if zh == "%" else f"{text} {zh}"


@dataclass(frozen=True)
class ReasonWriter:
    """Writes one task's reasons; built once per served model, used for every request."""

    feature_names: tuple[str, ...]
    descriptions: tuple[str, ...]  # English, capitalised
    descriptions_zh: tuple[str, ...]
    units: tuple[str, ...]
    raised_en: str  # "raised the default risk"
    lowered_en: str  # "lowered the default risk"
    raised_zh: str  # "推高了违约风险"
    lowered_zh: str  # "降低了违约风险"

    @classmethod
    def build(cls, features: Sequence[Mapping[str, Any]], positive_means: str, outcome_zh: str | None,
              fallback: Mapping[str, Any] | None = None) -> ReasonWriter:
        """From the model's feature definitions; `fallback` (name -> FeatureDef) fills missing texts."""
        names, desc, desc_zh, units = [], [], [], []
        for f in features:
            extra = fallback.get(f["name"]) if fallback else None
            en = f.get("description") or (extra.description if extra is not None else f["name"])
            zh = f.get("description_zh") or (extra.description_zh if extra is not None else f["name"])
            unit = f.get("unit")
            if unit is None:
                unit = extra.unit if extra is not None else ""
            names.append(f["name"])
            desc.append(en[:1].upper() + en[1:])
            desc_zh.append(zh)
            units.append(unit or "")
        raised, lowered = _verbs_en(positive_means)
        outcome = outcome_zh or "得分"
        return cls(tuple(names), tuple(desc), tuple(desc_zh), tuple(units), raised, lowered,
                   f"推高了{outcome}", f"降低了{outcome}")

    def sentence_en(self, i: int, value: Any, raised: bool) -> str:
        verb = self.raised_en if raised else self.lowered_en
        return f"{self.descriptions[i]} is {format_value_en(value, self.units[i])}, which {verb}."

    def sentence_zh(self, i: int, value: Any, raised: bool) -> str:
        verb = self.raised_zh if raised else self.lowered_zh
        shown = format_value_zh(value, self.units[i])
        return f"{self.descriptions_zh[i]}缺失，{verb}。" if value is None else \
            f"{self.descriptions_zh[i]}为 {shown}，{verb}。"

    def explain(self, contributions: np.ndarray, raw_score: float, record: Mapping[str, Any],
                top_k: int) -> Explanation:
        """The top `top_k` features by |contribution| (zero contributions are never reasons).

        `contributions` is one row of `pred_contrib`: one value per feature, then the base value.
        """
        contrib = contributions[:-1]
        base = float(contributions[-1])
        order = np.argsort(-np.abs(contrib), kind="stable")[:top_k]
        reasons = []
        listed = 0.0
        for i in order:
            c = float(contrib[i])
            if c == 0.0:
                break
            name = self.feature_names[i]
            value = record.get(name)
            raised = c > 0
            reasons.append(Reason(feature=name, value=value, contribution=c,
                                  direction="raised" if raised else "lowered",
                                  text_en=self.sentence_en(i, value, raised),
                                  text_zh=self.sentence_zh(i, value, raised)))
            listed += c
        other = float(contrib.sum()) - listed
        return Explanation(raw_score=float(raw_score), base_value=base, reasons=reasons, other_contribution=other)


def _verbs_en(positive_means: str) -> tuple[str, str]:
    """("raised the churn risk", "lowered the churn risk") from the spec's `positive_means`."""
    text = positive_means.strip().rstrip(".")
    if text.startswith("raised "):
        return text, "lowered " + text[len("raised "):]
    if text.startswith("increased "):
        return text, "decreased " + text[len("increased "):]
    return text, f"worked against this ({text})"
