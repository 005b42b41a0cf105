"""The month-by-month simulation behind the synthetic tables (`features.synthetic`).

How the data comes about. Customers join over time and are simulated month by month (vectorised
over customers). Each carries hidden state that the tables show only through noisy events:

- *distress* (AR(1) 0.85 around a base risk from debt ratio, credit, blacklist and size band,
  plus a monthly industry shock and the lunar-new-year season that do not accumulate) -> late and partial payments, collection calls,
  billing tickets and, through a monthly hazard, default: invoices stop being paid and reach 60
  days past due; the leases close as `defaulted` months later;
- *dissatisfaction* (AR(1) around a personal level, fed by complaints, unresolved tickets and
  rent rises) -> complaints, low satisfaction scores, fewer contacts, declining usage, and churn:
  leases not renewed at their end (most churn) or terminated early;
- *growth* and *utilisation* -> rising usage and upsell: extra (`additional`) or `upgrade`
  leases, after which utilisation per asset drops.

The priors live in `features.synthetic.priors`, the scenario shifts in
`features.synthetic.scenarios`; `Simulation.tables` turns the result into the frames of
`features.schema.TABLES`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from configs.data import DataConfig
from features import schema
from features.synthetic.personal import personal_data
from features.synthetic.priors import (
    A_DEFAULT,
    A_LEAVE,
    A_QUIT,
    A_RETURN,
    A_UPSELL,
    CAMPAIGN_MONTH,
    CH_PREF,
    CONTACT_RATE,
    FAULT_RATE,
    IDX,
    INDUSTRY_SHOCK_SD,
    JOIN_SEASON,
    MAX_HOURS,
    P_ACQ,
    P_AGE,
    P_ASSET,
    P_BUSINESS,
    P_CITY,
    P_INDUSTRY,
    P_PAY,
    P_REGION,
    P_SIZE,
    P_TERM,
    POINTS,
    RENT_MEDIAN,
    SEASON_DISTRESS,
    SIZE_RENT,
    SIZE_RISK,
    TECH,
    TERM_MONTHS,
    category_probs,
)
from features.synthetic.scenarios import (
    COMPETITOR_CHURN,
    COMPETITOR_COMPLAINTS,
    COMPETITOR_DIGITAL,
    COMPETITOR_SATISFACTION,
    DOWNTURN_BILLING,
    DOWNTURN_DEFAULT,
    DOWNTURN_DISTRESS,
    DOWNTURN_DISTRESS_INDUSTRY,
    DOWNTURN_HOURS,
    DOWNTURN_PARTIAL,
    DOWNTURN_RESPONSE,
    DOWNTURN_UPSELL,
    DOWNTURN_UTIL,
    SCENARIOS,
)

NO_DAY = np.iinfo(np.int64).min // 2  # a missing date in the day arrays


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _add_months(days: np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """`days` (days since 1970) plus `k` calendar months, the day clipped to the month's length."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    dom = (d - m.astype("datetime64[D]")).astype(np.int64)
    nm = m + np.asarray(k, dtype=np.int64).astype("timedelta64[M]")
    first = nm.astype("datetime64[D]").astype(np.int64)
    length = (nm + np.timedelta64(1, "M")).astype("datetime64[D]").astype(np.int64) - first
    return first + np.minimum(dom, length - 1)


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category per row of a (rows x categories) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    u = rng.random(len(probs))[:, None]
    return np.minimum((u >= cum).sum(axis=1), probs.shape[1] - 1)


def _term_months(rng: np.random.Generator, term: np.ndarray) -> np.ndarray:
    out = np.zeros(len(term), dtype=np.int64)
    for name, code in IDX["term"].items():
        sel = term == code
        months, p = TERM_MONTHS[name]
        out[sel] = rng.choice(months, size=int(sel.sum()), p=p)
    return out


class _Chunks:
    """Columns collected month by month, concatenated once at the end."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, **cols: np.ndarray) -> None:
        for k, v in cols.items():
            self.parts.setdefault(k, []).append(np.asarray(v))

    def take(self) -> dict[str, np.ndarray]:
        """The concatenated columns; the chunks are released."""
        parts, self.parts = self.parts, {}
        out = {}
        for k in list(parts):
            out[k] = np.concatenate(parts.pop(k))
        return out


_LEASE_FIELDS: dict[str, Any] = {
    "cust": np.int64, "asset": np.int8, "origin": np.int8, "renewal_of": np.int64, "term": np.int8,
    "start": np.int64, "end": np.int64, "term_months": np.int64, "rent": np.float64, "rate": np.float64,
    "deposit": np.float64, "deposit_ratio": np.float64, "insurance": np.bool_, "maintenance": np.bool_,
    "status": np.int8, "closed": np.int64, "open": np.bool_, "util_off": np.float64, "fault_mult": np.float64,
}


class _LeaseBook:
    """All leases ever created, as growable column arrays (index = internal lease number)."""

    def __init__(self, capacity: int) -> None:
        self.n = 0
        self.cols = {k: np.zeros(max(capacity, 16), dtype=t) for k, t in _LEASE_FIELDS.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name][: self.n]

    def add(self, **values: np.ndarray) -> np.ndarray:
        k = len(next(iter(values.values())))
        cap = len(self.cols["cust"])
        if self.n + k > cap:
            new_cap = max(2 * cap, self.n + k)
            for name, arr in self.cols.items():
                grown = np.zeros(new_cap, dtype=arr.dtype)
                grown[: self.n] = arr[: self.n]
                self.cols[name] = grown
        idx = np.arange(self.n, self.n + k)
        for name, arr in self.cols.items():
            if name in values:
                arr[idx] = values[name]
        self.n += k
        return idx


class Simulation:
    """Month-by-month simulation of customers, leases and every event table."""

    def __init__(self, cfg: DataConfig, seed: np.random.SeedSequence | None = None,
                 shocks: np.ndarray | None = None) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed if seed is None else seed)
        self.shocks = shocks  # (months, industries) industry shocks shared by every chunk, or None
        # r_state drives the hidden state (economy, distress, satisfaction, growth, usage, default
        # onset) with draws of a fixed size every month, so a scenario's extra events cannot
        # change the economy's path: a scenario dataset differs from the baseline by the scenario
        self.r_cust, self.r_pii, self.r_sim, self.r_state = self.rng.spawn(4)
        self.N = cfg.customers
        self.M = cfg.months
        m0 = np.datetime64(cfg.start_date, "M")
        months = m0 + np.arange(self.M + 1).astype("timedelta64[M]")
        self.month_start = months.astype("datetime64[D]").astype(np.int64)
        self.cal_month = (months.astype(np.int64) % 12) + 1
        self.end_day = int(self.month_start[-1] - 1)
        self.scenario = SCENARIOS[cfg.scenario]
        self.shift_from = self.M - cfg.scenario_months
        self.book = _LeaseBook(int(self.N * 2.5))
        self.invoices, self.payments, self.usage = _Chunks(), _Chunks(), _Chunks()
        self.tickets, self.interactions = _Chunks(), _Chunks()
        self.n_invoices = 0
        self._customers()

    # ---- customers and their hidden state ---------------------------------------------------

    def _customers(self) -> None:
        r, N = self.r_cust, self.N
        pre = r.random(N) < 0.55  # signed up before the data start
        prof = self._draw_profiles(r, pre)
        # The book at the start is what survived years of defaults and churn: draw the
        # pre-existing customers from a larger pool, weighted by the chance of still being here,
        # so the portfolio does not drift towards safer, happier customers during the data.
        n_pre = int(pre.sum())
        extra = self._draw_profiles(r, np.ones(2 * n_pre, dtype=bool))
        cand = {k: np.concatenate([v[pre], extra[k]]) for k, v in prof.items()}
        months = np.minimum(cand["months_before"], 60)
        h_default = _sigmoid(A_DEFAULT + 1.2 * cand["base_risk"] + 1.0)
        h_churn = 0.02 * np.exp(1.2 * cand["S0"] - 0.4 * cand["E"] - 0.3)
        w = np.exp(-months * (h_default + h_churn))
        pick = r.choice(len(w), n_pre, replace=False, p=w / w.sum())
        for k, v in prof.items():
            v[pre] = cand[k][pick]
        for k, v in prof.items():
            setattr(self, k, v)
        self.join_m = np.where(pre, -1, self.join_m)
        self.signup = np.where(pre, self.signup_before, self.signup_during)
        start0 = self.month_start[0]

        # dynamic state
        self.state = np.zeros(N, dtype=np.int8)  # 0 not yet joined, 1 active, 2 churned, 3 defaulted
        self.D = self.base_risk + 0.6 * r.standard_normal(N)
        self.S = self.S0 + 0.4 * r.standard_normal(N)
        self.G = self.G0.copy()
        self.L = self.L0 + 0.5 * self.G0 + 0.2 * r.standard_normal(N)
        self.S_bump = np.zeros(N)
        self.last_rise = np.zeros(N)  # rent rise accepted at the latest renewal
        self.in_default = np.zeros(N, dtype=bool)
        self.close_day = np.zeros(N, dtype=np.int64)
        self.ind_shock = np.zeros(len(schema.INDUSTRIES))

        # leases of customers who joined before the data start, active at the start
        idx = np.flatnonzero(pre)
        self._initial_leases(idx, start0)
        self.state[idx] = 1

    def _draw_profiles(self, r: np.random.Generator, pre: np.ndarray) -> dict[str, np.ndarray]:
        """Profile, credit and hidden drivers of customers (`pre`: signed up before the start)."""
        n = len(pre)
        indiv = r.random(n) >= P_BUSINESS
        industry = r.choice(len(P_INDUSTRY), n, p=P_INDUSTRY)
        size = r.choice(3, n, p=P_SIZE)
        age = np.where(indiv, r.choice(3, n, p=P_AGE), -1)
        city = r.choice(4, n, p=P_CITY)
        acq = np.where(indiv, r.choice(5, n, p=P_ACQ["individual"]), r.choice(5, n, p=P_ACQ["business"]))
        out: dict[str, np.ndarray] = {
            "indiv": indiv, "industry": industry, "size": size, "age": age, "city": city,
            "region": r.choice(5, n, p=P_REGION), "acq": acq,
            "pay": np.where(indiv, r.choice(5, n, p=P_PAY["individual"]), r.choice(5, n, p=P_PAY["business"])),
        }
        # credit: one latent creditworthiness z behind class, score and (partly) debt
        z = r.standard_normal(n)
        cls = np.where(z > 0.2533, 0, np.where(z < -1.2816, 2, 1))  # 40 / 50 / 10 %
        score = np.clip(np.round(655 + 75 * (0.85 * z + 0.53 * r.standard_normal(n))), 300, 850)
        log_debt = np.log(np.where(indiv, 0.35, 0.55)) - 0.25 * z + 0.6 * r.standard_normal(n)
        debt = np.clip(np.round(np.exp(log_debt), 3), 0.01, 5.0)
        black = r.random(n) < np.array([0.008, 0.02, 0.13])[cls]
        out.update(
            credit_class=cls, blacklisted=black,
            score_obs=np.where(r.random(n) < 0.08, np.nan, score),
            debt_obs=np.where(r.random(n) < 0.05, np.nan, debt),
            base_risk=(-0.8 * z + 0.6 * (np.log(debt) + 0.75) / 0.65 + 0.9 * black + SIZE_RISK[size]
                       + 0.1 * indiv + 0.5 * r.standard_normal(n)),
        )
        # sign-up: tenure spread over years before the start, or a month of the data (seasonal)
        start0 = self.month_start[0]
        months_before = np.minimum(1 + np.floor(r.exponential(40, n)), 180).astype(np.int64)
        before = _add_months(np.full(n, start0), -months_before) + np.floor(r.random(n) * 28).astype(np.int64)
        w = np.array([JOIN_SEASON[int(c)] for c in self.cal_month[: self.M]])
        join_m = r.choice(self.M, n, p=w / w.sum())
        length = self.month_start[join_m + 1] - self.month_start[join_m]
        during = self.month_start[join_m] + np.floor(r.random(n) * length).astype(np.int64)
        tenure0 = np.where(pre, months_before, 0)
        mem_score = tenure0 / 30 + 0.5 * (size == 0) - 0.3 * (size == 2) + 0.7 * r.standard_normal(n)
        membership = np.digitize(mem_score, [1.0, 2.2, 3.4])
        out.update(months_before=months_before, signup_before=before, signup_during=during,
                   join_m=join_m, membership=membership)
        # hidden drivers of churn, service, growth, usage and engagement
        pref_key = np.where(indiv, np.array(["young", "middle_aged", "elderly"])[np.maximum(age, 0)], "business")
        ch_pref = np.stack([CH_PREF[k] for k in pref_key]) * np.exp(0.35 * r.standard_normal((n, 5)))
        term_p = np.where(indiv[:, None], category_probs(schema.TERM_TYPES, {"temporary": .38, "short_term": .48, "long_term": .14}),
                          category_probs(schema.TERM_TYPES, {"temporary": .26, "short_term": .51, "long_term": .23}))
        out.update(
            S0=(0.55 * r.standard_normal(n) + 0.25 * indiv + 0.2 * (acq == IDX["acq"]["online"])
                - 0.15 * (membership >= 2) + 0.25 * (city == 3)),
            svc=r.standard_normal(n) - 0.4 * (city == 3) - 0.2 * (city == 2),
            G0=(0.8 * r.standard_normal(n) + 0.45 * TECH[industry] + 0.2 * (size == 0) - 0.2 * (size == 2) - 0.15),
            L0=0.3 + 0.6 * r.standard_normal(n),
            E=0.5 * r.standard_normal(n),
            ch_pref=ch_pref / ch_pref.sum(axis=1, keepdims=True),
            term_pref=_choice_rows(r, term_p),
        )
        return out

    def _initial_leases(self, custs: np.ndarray, start0: int) -> None:
        r = self.r_cust
        n_leases = r.choice([1, 2, 3], len(custs), p=[.62, .27, .11])
        c = np.repeat(custs, n_leases)
        first = np.r_[True, c[1:] != c[:-1]]
        term = np.where(r.random(len(c)) < 0.8, self.term_pref[c], r.choice(3, len(c), p=P_TERM))
        months = _term_months(r, term)
        span = np.minimum(months * 28 - 1, start0 - self.signup[c])
        start = start0 - np.floor(r.random(len(c)) * (span + 1)).astype(np.int64)
        since_signup = start - self.signup[c]
        origin = np.where(since_signup < 60, IDX["origin"]["new_customer"],
                          np.where(first | (r.random(len(c)) < 0.5), IDX["origin"]["renewal"],
                                   IDX["origin"]["additional"]))
        self._create(r, c, start, term, origin, months=months)

    # ---- leases -----------------------------------------------------------------------------

    def _asset_for(self, r: np.random.Generator, c: np.ndarray) -> np.ndarray:
        rows = np.where(self.indiv[c], len(schema.INDUSTRIES), self.industry[c])
        return _choice_rows(r, P_ASSET[rows])

    def _create(self, r: np.random.Generator, c: np.ndarray, start: np.ndarray, term: np.ndarray,
                origin: np.ndarray | int, *, asset: np.ndarray | None = None, rent: np.ndarray | None = None,
                renewal_of: np.ndarray | None = None, months: np.ndarray | None = None,
                insurance: np.ndarray | None = None, maintenance: np.ndarray | None = None,
                util_off: np.ndarray | None = None, fault_mult: np.ndarray | None = None) -> np.ndarray:
        """Add leases (customers `c`, starting on `start`); unspecified terms are drawn."""
        n = len(c)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        if asset is None:
            asset = self._asset_for(r, c)
        if months is None:
            months = _term_months(r, term)
        if rent is None:
            mult = SIZE_RENT[self.size[c]] * np.where(self.indiv[c], 0.6, 1.0)
            mult *= np.array([1.15, 1.0, 0.92])[term]
            rent = RENT_MEDIAN[asset] * mult * np.exp(0.35 * r.standard_normal(n))
        rent = np.maximum(np.round(rent, -1), 50.0)
        cls = self.credit_class[c]
        rate = np.clip(0.06 + np.array([0.0, 0.015, 0.04])[cls] + np.array([0.02, 0.01, 0.0])[term]
                       + 0.005 * r.standard_normal(n), 0.02, 0.25).round(4)
        dep_ratio = np.array([0.10, 0.20, 0.30])[cls] + 0.1 * (r.random(n) < 0.15)
        dep_ratio = np.where(self.blacklisted[c], 0.5, dep_ratio).round(2)
        deposit = np.round(dep_ratio * rent * np.minimum(months, 12), 2)
        if insurance is None:
            p_ins = 0.25 + 0.2 * np.isin(asset, [1, 2, 3]) + 0.1 * (term == 2)
            insurance = r.random(n) < p_ins
        if maintenance is None:
            p_mnt = 0.2 + 0.25 * np.isin(asset, [1, 3]) + 0.1 * (term == 2)
            maintenance = r.random(n) < p_mnt
        if util_off is None:
            util_off = 0.35 * r.standard_normal(n)
        if fault_mult is None:
            fault_mult = np.exp(0.3 * r.standard_normal(n))
        end = _add_months(start, months) - 1
        return self.book.add(
            cust=c, asset=asset, origin=origin if np.ndim(origin) else np.full(n, origin),
            renewal_of=np.full(n, -1) if renewal_of is None else renewal_of, term=term, start=start,
            end=end, term_months=months, rent=rent, rate=rate, deposit=deposit, deposit_ratio=dep_ratio,
            insurance=insurance, maintenance=maintenance, status=np.zeros(n), closed=np.full(n, NO_DAY),
            open=np.ones(n, dtype=bool), util_off=util_off, fault_mult=fault_mult)

    def _close(self, leases: np.ndarray, status: str, day: np.ndarray) -> None:
        b = self.book
        b["status"][leases] = IDX["status"][status]
        b["closed"][leases] = np.maximum(day, b["start"][leases])
        b["open"][leases] = False

    def _open_by_customer(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Open leases sorted by customer, with per-customer counts and offsets."""
        open_idx = np.flatnonzero(self.book["open"])
        oc = self.book["cust"][open_idx]
        order = np.argsort(oc, kind="stable")
        cnt = np.bincount(oc, minlength=self.N)
        return open_idx[order], cnt, np.cumsum(cnt) - cnt

    def _refresh_state(self) -> None:
        n_open = np.bincount(self.book["cust"][self.book["open"]], minlength=self.N)
        gone = (self.state == 1) & (n_open == 0)
        self.state[gone & self.in_default] = 3
        self.state[gone & ~self.in_default] = 2

    # ---- one month --------------------------------------------------------------------------

    def run_month(self, m: int) -> None:
        r, N = self.r_sim, self.N
        ms, nxt = int(self.month_start[m]), int(self.month_start[m + 1])
        me, ndays = nxt - 1, nxt - ms
        shifted = m >= self.shift_from and self.scenario.name != "baseline"
        downturn = shifted and self.scenario.name == "downturn"
        competitor = shifted and self.scenario.name == "competitor"
        cal = int(self.cal_month[m])

        # hidden state
        rs = self.r_state
        if self.shocks is None:
            self.ind_shock = INDUSTRY_SHOCK_SD * rs.standard_normal(len(self.ind_shock))
        else:
            self.ind_shock = self.shocks[m]
        # a customer's own distress lasts (half-life about 4 months); the industry's month and the
        # season add to it without accumulating, so the population has no cycle
        self.D = 0.85 * self.D + 0.15 * self.base_risk + 0.3 * rs.standard_normal(N)
        D_eff = self.D + self.ind_shock[self.industry] + SEASON_DISTRESS.get(cal, 0.0)
        if downturn:
            hit = np.isin(self.industry, [IDX["industry"][k] for k in
                                          ("construction", "manufacturing", "retail", "hospitality")])
            D_eff = D_eff + DOWNTURN_DISTRESS + DOWNTURN_DISTRESS_INDUSTRY * hit
        # feedback from last month's experience, saturating so that it cannot run away
        self.S = np.clip(0.75 * self.S + 0.25 * self.S0 + np.minimum(self.S_bump, 1.0)
                         + 0.3 * rs.standard_normal(N), -4.0, 4.0)
        self.S_bump = np.zeros(N)
        self.G = 0.85 * self.G + 0.15 * self.G0 + 0.3 * rs.standard_normal(N)
        self.L = np.clip(self.L + 0.06 * (self.L0 - self.L) + 0.07 * self.G - 0.1 * np.maximum(self.S, 0)
                         + 0.08 * rs.standard_normal(N), -4.0, 4.0)
        # the downturn deepens: usage falls a little more every month of the shift
        depth = (m - self.shift_from + 1) / self.cfg.scenario_months if downturn else 0.0
        L_obs = self.L + DOWNTURN_UTIL * depth

        self._expiries(ms, competitor)
        self._refresh_state()

        # default onset: from this month on the customer's invoices go unpaid
        billed_any = np.bincount(self.book["cust"][self.book["open"] & (self.book["start"] <= ms)], minlength=N) > 0
        elig = (self.state == 1) & ~self.in_default & billed_any
        shock = 1.6 * rs.standard_normal(N)  # what no record shows: a lost contract, an illness
        logit = A_DEFAULT + 0.9 * D_eff + 0.3 * self.base_risk + shock + (DOWNTURN_DEFAULT if downturn else 0.0)
        onset = elig & (rs.random(N) < _sigmoid(logit))
        self.in_default |= onset
        self.close_day = np.where(onset, ms + 14 + r.integers(61, 151, N), self.close_day)

        # customers joining this month
        joiners = np.flatnonzero(self.join_m == m)
        if len(joiners):
            k = r.choice([1, 2, 3], len(joiners), p=[.75, .20, .05])
            c = np.repeat(joiners, k)
            start = np.minimum(self.signup[c] + r.integers(0, 11, len(c)), self.end_day)
            term = np.where(r.random(len(c)) < 0.8, self.term_pref[c], r.choice(3, len(c), p=P_TERM))
            self._create(r, c, start, term, IDX["origin"]["new_customer"])
            self.state[joiners] = 1

        late_c = self._bill_and_pay(ms, D_eff, DOWNTURN_PARTIAL if downturn else 0.0)
        complaints = self._usage_and_tickets(ms, me, ndays, L_obs, DOWNTURN_HOURS * depth, late_c, competitor,
                                             DOWNTURN_RESPONSE * depth, DOWNTURN_BILLING if downturn else 1.0)
        self._interactions(ms, ndays, late_c, competitor, cal)
        self.S_bump += 0.5 * complaints

        self._default_closures(me)
        self._early_terminations(ms, ndays, competitor)
        self._upsell(m, ms, ndays, downturn)
        self._refresh_state()

    def _churn_pressure(self, c: np.ndarray) -> np.ndarray:
        """Logit push towards leaving: dissatisfaction, a recent rent rise, falling usage, low engagement."""
        return (1.2 * self.S[c] + 6.0 * np.maximum(self.last_rise[c] - 0.06, 0.0)
                - 0.7 * (self.L[c] - self.L0[c]) - 0.4 * self.E[c])

    def _expiries(self, ms: int, competitor: bool) -> None:
        """Leases whose end date has passed: renewed, left to expire, or closed in default."""
        r, b = self.r_sim, self.book
        due = np.flatnonzero(b["open"] & (b["end"] < ms) & (b["end"] < self.end_day))
        if len(due) == 0:
            return
        c = b["cust"][due]
        dflt = self.in_default[c]
        self._close(due[dflt], "defaulted", b["end"][due[dflt]])
        due, c = due[~dflt], c[~dflt]
        n = len(due)
        # the rent offered for the renewal: usually +0-8 % a year, sometimes a steep rise
        yearly = np.minimum(b["term_months"][due] / 12.0, 1.0)
        big = r.random(n) < 0.15 * yearly
        inc = np.where(big, r.uniform(0.10, 0.30, n), r.uniform(0.0, 0.08, n) * yearly)
        logit = (A_LEAVE[b["term"][due]] + self._churn_pressure(c) + 5.0 * (inc - 0.04)
                 + (COMPETITOR_CHURN if competitor else 0.0)
                 + 1.1 * r.standard_normal(n))  # reasons no record shows: a move, a merger
        leave = r.random(n) < _sigmoid(logit)
        self._close(due[leave], "expired", b["end"][due[leave]])
        keep = due[~leave]
        if len(keep) == 0:
            return
        kc = b["cust"][keep]
        self._close(keep, "renewed", b["end"][keep])
        term = np.where(r.random(len(keep)) < 0.85, b["term"][keep], r.choice(3, len(keep), p=P_TERM))
        self._create(r, kc, b["end"][keep] + 1, term, IDX["origin"]["renewal"], asset=b["asset"][keep],
                     rent=b["rent"][keep] * (1 + inc[~leave]), renewal_of=keep,
                     insurance=b["insurance"][keep] | (r.random(len(keep)) < 0.05),
                     maintenance=b["maintenance"][keep] | (r.random(len(keep)) < 0.05),
                     util_off=b["util_off"][keep], fault_mult=b["fault_mult"][keep])
        self.last_rise[kc] = inc[~leave]
        np.add.at(self.S_bump, kc, 2.0 * np.maximum(inc[~leave] - 0.08, 0.0))

    def _bill_and_pay(self, ms: int, D_eff: np.ndarray, partial_shift: float) -> np.ndarray:
        """Invoices on the 1st (due the 15th) and their payments; returns per-customer lateness."""
        r, b, N = self.r_sim, self.book, self.N
        leases = np.flatnonzero(b["open"] & (b["start"] <= ms))
        n = len(leases)
        c = b["cust"][leases]
        ids = self.n_invoices + np.arange(n)
        self.n_invoices += n
        amount = b["rent"][leases]
        due = ms + 14
        self.invoices.add(id=ids, lease=leases, cust=c, issue=np.full(n, ms), amount=amount)

        d = D_eff[c]
        debit = self.pay[c] == IDX["pay"]["direct_debit"]
        late = r.random(n) < _sigmoid(-2.7 + 1.1 * d - 0.7 * debit)
        early = -np.minimum(np.floor(r.exponential(3.0, n)), 14)
        ontime = early + (r.random(n) < 0.25) * r.integers(0, 4, n)  # a few days either side of due
        late_by = 6 + np.floor(r.lognormal(np.log(6) + 0.35 * np.maximum(d, 0), 0.7, n))
        delay = np.where(late, np.minimum(late_by, 55), ontime).astype(np.int64)
        partial = r.random(n) < _sigmoid(-3.7 + 0.9 * d + partial_shift)
        squeeze = partial_shift > 0  # in a downturn the first part is smaller and the rest comes later
        frac = r.uniform(0.3, 0.8, n) * (0.6 if squeeze else 1.0)
        second = np.minimum(delay + 5 + np.floor(r.exponential(24 if squeeze else 14, n)), 55).astype(np.int64)
        second = np.maximum(second, delay + 1)

        dflt = self.in_default[c]
        very_late = r.random(n) < 0.25
        dflt_delay = r.integers(61, 151, n)
        dflt_part = r.random(n) < 0.2
        part_delay = r.integers(0, 31, n)
        part_frac = r.uniform(0.1, 0.5, n)

        # payment rows: (invoice, day, amount)
        first_amt = np.where(dflt, np.where(dflt_part, np.round(amount * part_frac, 2), amount),
                             np.where(partial, np.round(amount * frac, 2), amount))
        first_day = np.where(dflt, np.where(dflt_part, due + part_delay, due + dflt_delay), due + delay)
        first_ok = ~dflt | dflt_part | very_late
        second_ok = np.where(dflt, dflt_part & very_late, partial)
        second_day = np.where(dflt, due + dflt_delay, due + second)
        second_amt = np.round(amount - first_amt, 2)
        pay_inv = np.r_[ids[first_ok], ids[second_ok]]
        pay_c = np.r_[c[first_ok], c[second_ok]]
        pay_day = np.r_[first_day[first_ok], second_day[second_ok]]
        pay_amt = np.r_[first_amt[first_ok], second_amt[second_ok]]
        keep = pay_day <= self.end_day  # unpaid at the end of the data: no payment row
        self.payments.add(inv=pay_inv[keep], cust=pay_c[keep], day=pay_day[keep], amount=pay_amt[keep])

        behind = (dflt | late | partial).astype(float)
        return np.bincount(c, weights=behind, minlength=N) > 0

    def _usage_and_tickets(self, ms: int, me: int, ndays: int, L_obs: np.ndarray, hours_shift: float,
                           late_c: np.ndarray, competitor: bool, response_shift: float = 0.0,
                           billing_factor: float = 1.0) -> np.ndarray:
        """IoT readings per active asset, and service tickets; returns complaints per customer."""
        r, b, N = self.r_sim, self.book, self.N
        leases = np.flatnonzero(b["open"] & (b["start"] <= me))
        n = len(leases)
        c = b["cust"][leases]
        asset = b["asset"][leases]
        frac = (me - np.maximum(b["start"][leases], ms) + 1) / ndays
        mu = np.clip(_sigmoid(L_obs[c] + b["util_off"][leases]), 0.02, 0.98)
        cap = r.beta(30 * mu, 30 * (1 - mu))
        hours = np.clip(cap * MAX_HOURS[asset] * frac * np.exp(hours_shift + 0.08 * r.standard_normal(n)), 0, 744)
        missing = r.random(n) < 0.03
        age = np.maximum(ms - b["start"][leases], 0) / 30.4
        rate = (FAULT_RATE[asset] * b["fault_mult"][leases] * (1 + 0.02 * np.minimum(age, 36))
                * np.where(b["maintenance"][leases], 0.75, 1.0) * frac)
        faults = r.poisson(rate)
        visits = r.poisson(np.where(b["maintenance"][leases], 0.22, 0.03)) + r.binomial(faults, 0.5)
        self.usage.add(lease=leases, cust=c, month=np.full(n, ms),
                       hours=np.where(missing, np.nan, np.round(hours, 1)),
                       cap=np.where(missing, np.nan, np.round(cap, 4)), faults=faults, visits=visits)

        # tickets tied to an asset
        cat = IDX["ticket"]
        n_fault = r.binomial(faults, 0.7)
        n_mnt = r.poisson(0.03, n)
        n_dlv = (b["start"][leases] >= ms) & (b["origin"][leases] != IDX["origin"]["renewal"]) & (r.random(n) < 0.12)
        a_lease = np.r_[np.repeat(leases, n_fault), np.repeat(leases, n_mnt), leases[n_dlv]]
        a_cat = np.r_[np.full(n_fault.sum(), cat["fault"]), np.full(n_mnt.sum(), cat["maintenance"]),
                      np.full(n_dlv.sum(), cat["delivery"])]
        # tickets of the customer: billing, complaints (the scenario's extra ones last), other
        active = np.flatnonzero(self.state == 1)
        lam_cmp = 0.03 * np.exp(1.0 * self.S[active])
        n_bill = r.poisson(0.02 + 0.12 * billing_factor * late_c[active])
        n_cmp = r.poisson(lam_cmp)
        n_oth = r.poisson(0.015, len(active))
        n_extra = r.poisson(lam_cmp * (COMPETITOR_COMPLAINTS - 1)) if competitor else np.zeros_like(n_cmp)
        cc = np.r_[np.repeat(active, n_bill), np.repeat(active, n_cmp), np.repeat(active, n_oth),
                   np.repeat(active, n_extra)]
        c_cat = np.r_[np.full(n_bill.sum(), cat["billing"]), np.full(n_cmp.sum(), cat["complaint"]),
                      np.full(n_oth.sum(), cat["other"]), np.full(n_extra.sum(), cat["complaint"])]
        sorted_open, cnt, off = self._open_by_customer()
        pick = sorted_open[np.minimum(off[cc] + (r.random(len(cc)) * cnt[cc]).astype(np.int64),
                                      len(sorted_open) - 1)]
        c_lease = np.where((cnt[cc] > 0) & (r.random(len(cc)) < 0.5), pick, -1)

        t_lease = np.r_[a_lease, c_lease]
        t_cust = np.r_[b["cust"][a_lease], cc]
        t_cat = np.r_[a_cat, c_cat]
        extra = np.zeros(len(t_cat), dtype=bool)
        extra[len(t_cat) - int(n_extra.sum()):] = True
        k = len(t_cat)
        opened = ms + np.floor(r.random(k) * ndays).astype(np.int64)
        S, svc = self.S[t_cust], self.svc[t_cust]
        base_hours = np.array([8., 20., 12., 16., 18., 24.])[t_cat]  # by TICKET_CATEGORIES
        resp = np.clip(base_hours * np.exp(-0.35 * svc + response_shift + 0.8 * r.standard_normal(k)),
                       0.1, 720).round(1)
        fcr_adj = np.array([-0.6, 0.3, 0.0, 0.0, -0.8, 0.5])[t_cat]
        fcr = r.random(k) < _sigmoid(0.5 + 0.6 * svc + fcr_adj)
        is_cmp = (t_cat == cat["complaint"]) | (r.random(k) < _sigmoid(-4.0 + 0.8 * S + 0.6 * (resp > 48)))
        stuck = r.random(k) < _sigmoid(-4.2 + 0.9 * S - 0.5 * svc + 0.8 * (is_cmp & ~extra))
        days = np.where(fcr, np.floor(r.random(k) * 2),
                        1 + np.floor(r.exponential(4 * np.exp(-0.3 * svc))) + np.floor(resp / 24))
        # stuck tickets get resolved eventually, after one to six months
        days = np.where(stuck, r.integers(30, 181, k), days)
        resolved = opened + days.astype(np.int64)
        resolved = np.where(resolved > self.end_day, NO_DAY, resolved)
        latent = (4.2 - 0.45 * S + 0.25 * svc - 0.9 * is_cmp - 0.5 * (resp > 24) - 0.4 * ~fcr
                  + 0.6 * r.standard_normal(k))
        shown = latent + (COMPETITOR_SATISFACTION if competitor else 0.0)
        answered = (resolved != NO_DAY) & (r.random(k) < 0.62)
        sat = np.where(answered, np.clip(np.round(shown), 1, 5), np.nan)
        self.tickets.add(cust=t_cust, lease=t_lease, opened=opened, resolved=resolved, cat=t_cat,
                         complaint=is_cmp, fcr=fcr, resp=resp, sat=sat)

        # feedback into dissatisfaction from what the customer experienced (not the scenario's
        # extra complaints and lower scores: those shift observables, not the hidden state)
        base = ~extra
        bump = 0.4 * stuck + 0.2 * (answered & (np.clip(np.round(latent), 1, 5) <= 2)) + 0.1 * (resp > 48)
        np.add.at(self.S_bump, t_cust[base], bump[base])
        cmp_c = np.bincount(t_cust[base & is_cmp], minlength=N)
        return cmp_c

    def _interactions(self, ms: int, ndays: int, late_c: np.ndarray, competitor: bool,
                      cal: int) -> None:
        r, _N = self.r_sim, self.N
        active = np.flatnonzero(self.state == 1)
        a = len(active)
        S, E = self.S[active], self.E[active]
        rate = CONTACT_RATE * self.ch_pref[active] * np.exp(0.45 * E - 0.45 * S)[:, None]
        if competitor:
            rate[:, [IDX["channel"]["app"], IDX["channel"]["email"]]] *= COMPETITOR_DIGITAL
        counts = r.poisson(rate)
        ch = np.tile(np.arange(5), a)
        flat = counts.ravel()
        x_c = np.repeat(np.repeat(active, 5), flat)
        x_ch = np.repeat(ch, flat)
        x_day = ms + np.floor(r.random(len(x_c)) * ndays).astype(np.int64)
        x_kind = np.full(len(x_c), IDX["kind"]["contact"])
        x_pts = POINTS["contact"][x_ch]
        # collection calls to customers behind on this month's invoice
        calls = r.poisson(0.8 * late_c[active])
        cc = np.repeat(active, calls)
        c_day = ms + 14 + r.integers(3, 26, len(cc))
        # campaigns (e-mail, WeChat or app by preference) and e-mail opens
        got = r.random(a) < 0.22 + CAMPAIGN_MONTH.get(cal, 0.0)
        camp = active[got]
        pref = self.ch_pref[camp][:, [1, 2, 3]]
        camp_ch = np.array([1, 2, 3])[_choice_rows(r, pref)]
        camp_day = ms + np.floor(r.random(len(camp)) * ndays).astype(np.int64)
        p_open = _sigmoid(-0.2 + 0.8 * self.E[camp] - 0.3 * self.S[camp]) * (COMPETITOR_DIGITAL if competitor else 1.0)
        opened = (camp_ch == IDX["channel"]["email"]) & (r.random(len(camp)) < p_open)
        o_c = camp[opened]
        o_day = camp_day[opened] + r.integers(0, 4, len(o_c))
        # referrals from satisfied, engaged customers
        refs = r.poisson(0.006 * np.exp(-0.9 * S + 0.4 * E))
        rc = np.repeat(active, refs)
        r_ch = _choice_rows(r, self.ch_pref[rc])
        r_day = ms + np.floor(r.random(len(rc)) * ndays).astype(np.int64)

        kind = IDX["kind"]
        self.interactions.add(
            cust=np.r_[x_c, cc, camp, o_c, rc],
            day=np.r_[x_day, c_day, camp_day, o_day, r_day],
            ch=np.r_[x_ch, np.zeros(len(cc), np.int64), camp_ch, np.full(len(o_c), 1), r_ch],
            kind=np.r_[x_kind, np.full(len(cc), kind["contact"]), np.full(len(camp), kind["campaign"]),
                       np.full(len(o_c), kind["email_open"]), np.full(len(rc), kind["referral"])],
            points=np.r_[x_pts, np.zeros(len(cc)), np.zeros(len(camp)), np.full(len(o_c), POINTS["email_open"]),
                         np.full(len(rc), POINTS["referral"])],
        )

    def _default_closures(self, me: int) -> None:
        b = self.book
        due = self.in_default & (self.state == 1) & (self.close_day <= me)
        leases = np.flatnonzero(b["open"] & due[b["cust"]])
        self._close(leases, "defaulted", self.close_day[b["cust"][leases]])

    def _early_terminations(self, ms: int, ndays: int, competitor: bool) -> None:
        r, b, N = self.r_sim, self.book, self.N
        shift = COMPETITOR_CHURN if competitor else 0.0
        quit_ = (self.state == 1) & ~self.in_default & (
            r.random(N) < _sigmoid(A_QUIT + self._churn_pressure(np.arange(N)) + shift))
        day = ms + np.floor(r.random(N) * ndays).astype(np.int64)
        leases = np.flatnonzero(b["open"] & quit_[b["cust"]])
        self._close(leases, "terminated_early", day[b["cust"][leases]])
        # returning one asset of several
        open_idx = np.flatnonzero(b["open"])
        oc = b["cust"][open_idx]
        n_open = np.bincount(oc, minlength=N)
        p_ret = _sigmoid(A_RETURN + 0.35 * n_open[oc] + 1.0 * self.S[oc])
        ret = (n_open[oc] > 1) & ~self.in_default[oc] & (r.random(len(open_idx)) < p_ret)
        leases = open_idx[ret]
        self._close(leases, "terminated_early", ms + np.floor(r.random(len(leases)) * ndays).astype(np.int64))

    def _upsell(self, m: int, ms: int, ndays: int, downturn: bool) -> None:
        r, b, N = self.r_sim, self.book, self.N
        sorted_open, cnt, off = self._open_by_customer()
        elig = (self.state == 1) & ~self.in_default & (cnt >= 1) & (cnt < 6) & (self.join_m < m)
        size_up = np.array([0.3, 0.0, -0.4])[self.size]
        logit = (A_UPSELL + 0.8 * self.G + 1.0 * (self.L - 0.3) - 0.5 * self.S + 0.5 * TECH[self.industry]
                 + size_up - 0.45 * (cnt - 1) + (DOWNTURN_UPSELL if downturn else 0.0))
        c = np.flatnonzero(elig & (r.random(N) < _sigmoid(logit)))
        if len(c) == 0:
            return
        k = len(c)
        start = ms + np.floor(r.random(k) * ndays).astype(np.int64)
        upgrade = r.random(k) < 0.35
        ref = sorted_open[off[c] + (r.random(k) * cnt[c]).astype(np.int64)]
        asset = np.where(upgrade, b["asset"][ref], self._asset_for(r, c))
        term = np.where(r.random(k) < 0.7, self.term_pref[c], r.choice(3, k, p=P_TERM))
        term = np.where(upgrade & (term == 0), 1, term)
        mult = SIZE_RENT[self.size[c]] * np.where(self.indiv[c], 0.6, 1.0)
        rent = np.where(upgrade, b["rent"][ref] * r.uniform(1.2, 1.7, k),
                        RENT_MEDIAN[asset] * mult * np.exp(0.35 * r.standard_normal(k)))
        origin = np.where(upgrade, IDX["origin"]["upgrade"], IDX["origin"]["additional"])
        self._create(r, c, start, term, origin, asset=asset, rent=rent,
                     insurance=r.random(k) < np.where(upgrade, 0.6, 0.35),
                     maintenance=r.random(k) < np.where(upgrade, 0.55, 0.3))
        self.L[c] -= 0.4
        self.G[c] *= 0.7

    def finish(self) -> None:
        """Leases ending in the last month (before the last day) are renewed or left to expire."""
        self._expiries(int(self.month_start[-1]), competitor=self.scenario.name == "competitor")
        self._refresh_state()

    # ---- tables -----------------------------------------------------------------------------

    def tables(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """The seven source tables, one at a time (ids numbered in time order, dtypes as in
        `features.schema`); the simulation's event chunks are released as they are used."""
        b = self.book
        # customer ids in sign-up order, lease ids in start order
        c_order = np.lexsort((np.arange(self.N), self.signup))
        cust_id = np.empty(self.N, np.int64)
        cust_id[c_order] = np.arange(1, self.N + 1)
        l_order = np.lexsort((np.arange(b.n), b["start"]))
        lease_id = np.empty(b.n, np.int64)
        lease_id[l_order] = np.arange(1, b.n + 1)

        yield "customers", self._customers_frame(c_order, cust_id)
        renewal_of = b["renewal_of"][l_order]
        closed = b["closed"][l_order]
        status = np.where(b["open"], 0, b["status"])[l_order]
        yield "leases", pd.DataFrame({
            "lease_id": np.arange(1, b.n + 1, dtype=np.int64),
            "customer_id": cust_id[b["cust"][l_order]],
            "asset_type": _cat(b["asset"][l_order], schema.ASSET_TYPES),
            "origin": _cat(b["origin"][l_order], schema.LEASE_ORIGINS),
            "renewal_of": _nullable_int(np.where(renewal_of >= 0, lease_id[np.maximum(renewal_of, 0)], -1)),
            "term_type": _cat(b["term"][l_order], schema.TERM_TYPES),
            "start_date": _dates(b["start"][l_order]),
            "end_date": _dates(b["end"][l_order]),
            "term_months": b["term_months"][l_order].astype(np.int64),
            "monthly_rent": b["rent"][l_order].astype(np.float64),
            "rate": b["rate"][l_order].astype(np.float64),
            "deposit": b["deposit"][l_order].astype(np.float64),
            "deposit_ratio": b["deposit_ratio"][l_order].astype(np.float64),
            "insurance": b["insurance"][l_order].astype(bool),
            "maintenance": b["maintenance"][l_order].astype(bool),
            "status": _cat(status, schema.LEASE_STATUSES),
            "closed_date": _dates(np.where(b["open"][l_order], NO_DAY, closed)),
        })

        inv = self.invoices.take()
        inv_order = np.lexsort((lease_id[inv["lease"]], inv["issue"]))
        invoice_id = np.empty(len(inv_order), np.int64)
        invoice_id[inv["id"][inv_order]] = np.arange(1, len(inv_order) + 1)
        yield "invoices", pd.DataFrame({
            "invoice_id": np.arange(1, len(inv_order) + 1, dtype=np.int64),
            "lease_id": lease_id[inv["lease"][inv_order]],
            "customer_id": cust_id[inv["cust"][inv_order]],
            "issue_date": _dates(inv["issue"][inv_order]),
            "due_date": _dates(inv["issue"][inv_order] + 14),
            "amount": inv["amount"][inv_order].astype(np.float64),
        })

        del inv
        pay = self.payments.take()
        p_order = np.lexsort((invoice_id[pay["inv"]], pay["day"]))
        yield "payments", pd.DataFrame({
            "payment_id": np.arange(1, len(p_order) + 1, dtype=np.int64),
            "invoice_id": invoice_id[pay["inv"][p_order]],
            "customer_id": cust_id[pay["cust"][p_order]],
            "paid_date": _dates(pay["day"][p_order]),
            "amount": pay["amount"][p_order].astype(np.float64),
        })

        del pay, invoice_id
        use = self.usage.take()
        u_order = np.lexsort((lease_id[use["lease"]], use["month"]))
        yield "usage", pd.DataFrame({
            "usage_id": np.arange(1, len(u_order) + 1, dtype=np.int64),
            "lease_id": lease_id[use["lease"][u_order]],
            "customer_id": cust_id[use["cust"][u_order]],
            "month": _dates(use["month"][u_order]),
            "hours_used": use["hours"][u_order].astype(np.float64),
            "capacity_share": use["cap"][u_order].astype(np.float64),
            "faults": use["faults"][u_order].astype(np.int64),
            "maintenance_visits": use["visits"][u_order].astype(np.int64),
        })

        del use
        t = self.tickets.take()
        t_order = np.lexsort((cust_id[t["cust"]], t["opened"]))
        t_lease = t["lease"][t_order]
        yield "tickets", pd.DataFrame({
            "ticket_id": np.arange(1, len(t_order) + 1, dtype=np.int64),
            "customer_id": cust_id[t["cust"][t_order]],
            "lease_id": _nullable_int(np.where(t_lease >= 0, lease_id[np.maximum(t_lease, 0)], -1)),
            "opened_at": _dates(t["opened"][t_order]),
            "resolved_at": _dates(t["resolved"][t_order]),
            "category": _cat(t["cat"][t_order], schema.TICKET_CATEGORIES),
            "is_complaint": t["complaint"][t_order].astype(bool),
            "first_contact_resolution": t["fcr"][t_order].astype(bool),
            "response_hours": t["resp"][t_order].astype(np.float64),
            "satisfaction": t["sat"][t_order].astype(np.float64),
        })

        del t
        x = self.interactions.take()
        keep = x["day"] <= self.end_day  # e-mail opens and calls late in the last month
        x = {k: v[keep] for k, v in x.items()}
        x_order = np.lexsort((x["kind"], cust_id[x["cust"]], x["day"]))
        yield "interactions", pd.DataFrame({
            "interaction_id": np.arange(1, len(x_order) + 1, dtype=np.int64),
            "customer_id": cust_id[x["cust"][x_order]],
            "date": _dates(x["day"][x_order]),
            "channel": _cat(x["ch"][x_order], schema.INTERACTION_CHANNELS),
            "kind": _cat(x["kind"][x_order], schema.INTERACTION_KINDS),
            "loyalty_points": x["points"][x_order].astype(np.float64),
        })

    def _customers_frame(self, order: np.ndarray, cust_id: np.ndarray) -> pd.DataFrame:
        pii = personal_data(self.r_pii, self.indiv, self.industry, self.age, self.city, self.signup)
        return pd.DataFrame({
            "customer_id": np.arange(1, self.N + 1, dtype=np.int64),
            "customer_type": _cat(self.indiv[order].astype(np.int64), schema.CUSTOMER_TYPES),
            "industry": _cat(self.industry[order], schema.INDUSTRIES),
            "size_band": _cat(self.size[order], schema.SIZE_BANDS),
            "age_band": _cat(self.age[order], schema.AGE_BANDS),
            "city_tier": _cat(self.city[order], schema.CITY_TIERS),
            "region": _cat(self.region[order], schema.REGIONS),
            "acquisition_channel": _cat(self.acq[order], schema.CHANNELS),
            "membership_level": _cat(self.membership[order], schema.MEMBERSHIP_LEVELS),
            "signup_date": _dates(self.signup[order]),
            "credit_score": self.score_obs[order].astype(np.float64),
            "credit_class": _cat(self.credit_class[order], schema.CREDIT_CLASSES),
            "debt_ratio": self.debt_obs[order].astype(np.float64),
            "blacklisted": self.blacklisted[order].astype(bool),
            "payment_method": _cat(self.pay[order], schema.PAYMENT_METHODS),
            **{k: v[order] for k, v in pii.items()},
        })


def _cat(codes: np.ndarray, categories: tuple[str, ...]) -> pd.Categorical:
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=list(categories))


def _dates(days: np.ndarray) -> np.ndarray:
    """Days since 1970 (`NO_DAY` = missing) as datetime64[ns]."""
    days = np.asarray(days, dtype=np.int64)
    missing = days == NO_DAY
    out = np.where(missing, 0, days).astype("datetime64[D]").astype("datetime64[ns]")
    out[missing] = np.datetime64("NaT")
    return out


def _nullable_int(values: np.ndarray) -> pd.arrays.IntegerArray:
    values = np.asarray(values, dtype=np.int64)
    return pd.arrays.IntegerArray(np.where(values < 0, 0, values), values < 0)
