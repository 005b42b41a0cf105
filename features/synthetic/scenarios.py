"""Scenarios: a shift of chosen observable behaviour in the last `scenario_months` months.

`SCENARIOS` lists, per scenario, the features (names of `features.definitions`) whose distribution
moves and the effect on outcomes; the manifest records both (`scenario_info`). The strengths below
are applied by the simulation (`features.synthetic.simulation`). The hidden state draws from a
random stream of its own, with the same number of draws every month, so a scenario's extra events
leave the economy's path as in the baseline of the same seed: the two datasets differ by the
scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from configs.data import DataConfig


@dataclass(frozen=True)
class Scenario:
    """A shift of behaviour in the last months of the data, as recorded in the manifest."""

    name: str
    shifted_features: tuple[str, ...]
    outcome_effects: dict[str, str] = field(default_factory=dict)
    description: str = ""


SCENARIOS: dict[str, Scenario] = {
    "baseline": Scenario("baseline", (), {}, "No shift: the same behaviour throughout."),
    "downturn": Scenario(
        "downturn",
        ("late_payments_12m", "late_share_12m", "dpd_max_12m", "dpd_current", "overdue_amount_ratio",
         "partial_payments_12m", "avg_days_to_pay_6m", "utilisation_3m", "utilisation_trend",
         "hours_used_3m", "contacts_phone_6m", "avg_response_hours_6m", "tickets_6m"),
        {"default_rate": "x2.5", "upsell_rate": "x0.6"},
        "An economic downturn: customers pay later and more often in part (more collection calls and "
        "billing tickets, answered more slowly), use their assets less and less, default more often "
        "and take fewer extra assets.",
    ),
    "competitor": Scenario(
        "competitor",
        ("complaints_6m", "tickets_6m", "satisfaction_last", "satisfaction_avg_12m", "contacts_app_6m",
         "contacts_email_6m", "email_opens_6m"),
        {"churn_rate": "x2"},
        "A competitor's offer: more complaints and lower satisfaction, customers drift away from "
        "the app and e-mail, and fewer renew (churn doubles).",
    ),
}

# scenario strengths
DOWNTURN_DISTRESS = 0.75
DOWNTURN_DISTRESS_INDUSTRY = 0.35  # extra for construction, manufacturing, retail, hospitality
DOWNTURN_UTIL = -0.8  # on the logit of capacity use, reached in the last month (deepening)
DOWNTURN_HOURS = -0.25  # fewer shifts: log-factor on hours, reached in the last month
DOWNTURN_RESPONSE = 0.5  # a service desk cut back while tickets pile up: log-factor on response hours, ditto
DOWNTURN_BILLING = 2.0  # customers in trouble ask about their bills: factor on a late payer's billing tickets
DOWNTURN_UPSELL = -0.5
DOWNTURN_DEFAULT = 0.4  # on the default logit, beyond what the higher distress does
DOWNTURN_PARTIAL = 0.6  # on the logit of paying only part of an invoice
COMPETITOR_CHURN = 1.2
COMPETITOR_COMPLAINTS = 2.5
COMPETITOR_SATISFACTION = -0.9
COMPETITOR_DIGITAL = 0.45  # app and e-mail contacts and e-mail opens multiplied by this


def scenario_info(cfg: DataConfig) -> dict[str, Any]:
    """The manifest's `scenario` object for a config."""
    sc = SCENARIOS[cfg.scenario]
    start = None
    if sc.name != "baseline":
        start = np.datetime64(cfg.start_date, "M") + np.timedelta64(cfg.months - cfg.scenario_months, "M")
        start = str(start.astype("datetime64[D]"))
    return {
        "name": sc.name,
        "start_date": start,
        "months": cfg.scenario_months if sc.name != "baseline" else 0,
        "shifted_features": list(sc.shifted_features),
        "outcome_effects": dict(sc.outcome_effects),
        "description": sc.description,
    }
