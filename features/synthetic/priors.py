"""Priors of the simulated leasing company: who the customers are, what they lease, how they behave.

Category shares, rents, usage and fault rates, seasons, contact habits and the hazards' intercepts,
calibrated so that the builder's labels have realistic rates. Arrays are aligned with the category
tuples of `features.schema`; `IDX` maps each category to its code in the simulation's arrays.
"""

from __future__ import annotations

import numpy as np

from features import schema

IDX = {name: {v: i for i, v in enumerate(values)} for name, values in {
    "industry": schema.INDUSTRIES, "asset": schema.ASSET_TYPES, "term": schema.TERM_TYPES,
    "origin": schema.LEASE_ORIGINS, "status": schema.LEASE_STATUSES, "ticket": schema.TICKET_CATEGORIES,
    "channel": schema.INTERACTION_CHANNELS, "kind": schema.INTERACTION_KINDS,
    "pay": schema.PAYMENT_METHODS, "acq": schema.CHANNELS,
}.items()}


def category_probs(order: tuple[str, ...], shares: dict[str, float]) -> np.ndarray:
    """Probabilities aligned with a schema category tuple."""
    p = np.array([shares[k] for k in order], dtype=float)
    return p / p.sum()


P_BUSINESS = 0.65
P_INDUSTRY = category_probs(schema.INDUSTRIES, {"manufacturing": .18, "construction": .13, "logistics": .13,
                                             "retail": .14, "it": .11, "medical": .09, "education": .08,
                                             "hospitality": .08, "property": .06})
P_SIZE = category_probs(schema.SIZE_BANDS, {"high": .30, "middle": .50, "low": .20})
P_AGE = category_probs(schema.AGE_BANDS, {"young": .35, "middle_aged": .45, "elderly": .20})
P_CITY = category_probs(schema.CITY_TIERS, {"tier1": .30, "tier2": .35, "tier3": .25, "remote": .10})
P_REGION = category_probs(schema.REGIONS, {"north": .20, "east": .28, "south": .24, "west": .12, "central": .16})
P_ACQ = {
    "business": category_probs(schema.CHANNELS, {"direct_sales": .38, "partner": .27, "online": .15, "referral": .12, "store": .08}),
    "individual": category_probs(schema.CHANNELS, {"direct_sales": .08, "partner": .12, "online": .42, "referral": .15, "store": .23}),
}
P_PAY = {
    "business": category_probs(schema.PAYMENT_METHODS, {"bank_transfer": .45, "direct_debit": .30, "card": .05, "wechat_pay": .15, "cash": .05}),
    "individual": category_probs(schema.PAYMENT_METHODS, {"bank_transfer": .10, "direct_debit": .20, "card": .25, "wechat_pay": .40, "cash": .05}),
}
P_TERM = category_probs(schema.TERM_TYPES, {"long_term": .20, "short_term": .50, "temporary": .30})
TERM_MONTHS = {  # term type -> (months, probabilities)
    "temporary": (np.array([1, 2, 3]), np.array([.35, .35, .30])),
    "short_term": (np.array([6, 9, 12]), np.array([.40, .10, .50])),
    "long_term": (np.array([24, 36, 48, 60]), np.array([.35, .40, .10, .15])),
}
# asset mix per industry (rows: INDUSTRIES, then individuals), columns: ASSET_TYPES
_A = ("it_equipment", "construction_machinery", "vehicle", "medical_device", "office_furniture")
assert _A == schema.ASSET_TYPES
P_ASSET = np.array([
    [.15, .00, .10, .65, .10],  # medical
    [.55, .00, .10, .05, .30],  # education
    [.20, .35, .25, .00, .20],  # manufacturing
    [.10, .10, .75, .00, .05],  # logistics
    [.05, .70, .20, .00, .05],  # construction
    [.35, .00, .30, .00, .35],  # retail
    [.80, .00, .05, .00, .15],  # it
    [.25, .00, .25, .00, .50],  # hospitality
    [.20, .15, .20, .00, .45],  # property
    [.35, .02, .50, .00, .13],  # individuals
])
RENT_MEDIAN = np.array([2500., 18000., 5500., 12000., 1200.])  # per asset type, CNY per month
MAX_HOURS = np.array([600., 400., 350., 450., 250.])  # available hours per month by asset type
FAULT_RATE = np.array([.06, .22, .14, .09, .02])  # faults per asset-month
SIZE_RENT = np.array([1.6, 1.0, 0.6])  # high / middle / low
SIZE_RISK = np.array([-0.25, 0.0, 0.35])
TECH = np.isin(np.array(schema.INDUSTRIES), ["it", "medical", "education"])
# a good or bad month for a whole industry, drawn afresh every month: no cycle that lasts a year, so
# the baseline's payment behaviour a year apart differs by chance only (a lasting cycle, AR(1) 0.8,
# moved late payments a year apart by up to 0.18 std, as much as a real shift)
INDUSTRY_SHOCK_SD = 0.07
# lunar new year (Jan/Feb) strains cash flow; December closes the books
SEASON_DISTRESS = {1: 0.25, 2: 0.40, 3: 0.10, 12: 0.10}
CAMPAIGN_MONTH = {3: 0.25, 6: 0.15, 9: 0.25, 11: 0.30}  # extra campaign exposure in promo months
JOIN_SEASON = {1: 0.85, 2: 0.65, 3: 1.15, 4: 1.15, 5: 1.05, 6: 1.0, 7: 0.95, 8: 0.95, 9: 1.15,
               10: 1.0, 11: 1.05, 12: 0.9}
# contact channel preference (phone, email, wechat, app, store)
CH_PREF = {
    "business": np.array([.35, .30, .25, .05, .05]),
    "young": np.array([.10, .10, .30, .40, .10]),
    "middle_aged": np.array([.25, .10, .35, .20, .10]),
    "elderly": np.array([.45, .05, .15, .05, .30]),
}
CONTACT_RATE = 0.75  # contacts per customer-month before engagement effects
POINTS = {"contact": np.array([0., 0., 2., 5., 20.]), "email_open": 1., "referral": 500.}

# hazards (logit intercepts), calibrated so that the builder's labels have realistic rates
A_DEFAULT = -7.45
A_LEAVE = np.array([-4.5, -2.8, -1.7])  # at lease end, by term type (temporary, short, long)
A_QUIT = -6.0  # ends every lease early this month
A_RETURN = -5.0  # returns one of several assets early
A_UPSELL = -4.8
