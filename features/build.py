"""Point-in-time feature sets: validated source tables in, one feature set per task out.

Reads a dataset folder (through `features.validate.read_dataset`, which checks every table and
never loads personal-data columns) and writes `<out_dir>/<task>.parquet` (format:
`features.featureset`).

Time convention (see `features.definitions`): snapshot `k` is the boundary at the first day of
month `k` of the dataset (month 0 = the dataset start). A feature at snapshot `k` uses only events
dated strictly before it, i.e. in months `< k`; a label uses only the window `[k, k + horizon)`.

How it stays fast: events are bucketed once into customer x month panels (numpy arrays), whose
cumulative sums give every trailing-window count at every snapshot in O(1). State at a snapshot
(active leases, unresolved tickets) comes from per-customer difference arrays. Only invoice
lateness needs a per-snapshot pass, over the invoices due in the trailing 12 months.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from configs import TenureError
from configs.features import FeaturesConfig
from configs.tasks import resolve_tasks
from features.definitions import FEATURES_BY_NAME, GROUP_COLUMNS
from features.featureset import FeatureSet, write_featureset
from features.io import file_sha256
from models import TaskSpec, load_spec

BUILDER_VERSION = "1"
GRACE_DAYS = 5  # an invoice paid more than this many days after its due date counts as late
DEFAULT_DPD = 60


def parse_tasks(task: str) -> list[str]:
    """`--task` of `tenure features build`: all, one task or a comma-separated list."""
    return resolve_tasks(task)


@dataclass
class Panel:
    """Customer x snapshot arrays: every feature and label ingredient at every snapshot."""

    customer_ids: np.ndarray  # (n,)
    snapshots: pd.DatetimeIndex  # (K + 1,) month boundaries: start, start + 1 month, ..., end + 1 day
    columns: dict[str, np.ndarray]  # name -> (n, K + 1) float64

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]


def _month_index(dates: pd.Series | np.ndarray, start: pd.Timestamp) -> np.ndarray:
    """Months since the dataset start month (NaT -> a large sentinel)."""
    arr = np.asarray(pd.to_datetime(dates), dtype="datetime64[ns]")
    months = arr.astype("datetime64[M]").astype(np.int64) - np.datetime64(start, "M").astype(np.int64)
    months[np.isnat(arr)] = 1 << 40
    return months


def _trailing(cum: np.ndarray, window: int) -> np.ndarray:
    """From a cumulative panel C[:, k] = sum of months < k, the sum over months [k - window, k)."""
    lagged = np.zeros_like(cum)
    lagged[:, window:] = cum[:, :-window]
    return cum - lagged


def _month_panel(cidx: np.ndarray, month: np.ndarray, n: int, n_months: int,
                 weights: np.ndarray | None = None) -> np.ndarray:
    """Cumulative customer x snapshot panel of an event count (or weighted sum)."""
    ok = (month >= 0) & (month < n_months)
    flat = cidx[ok] * n_months + month[ok]
    w = None if weights is None else np.nan_to_num(weights[ok])
    counts = np.bincount(flat, weights=w, minlength=n * n_months).reshape(n, n_months)
    cum = np.zeros((n, n_months + 1))
    np.cumsum(counts, axis=1, out=cum[:, 1:])
    return cum


def _state_panel(cidx: np.ndarray, first: np.ndarray, stop: np.ndarray, n: int, n_snap: int,
                 weights: np.ndarray | None = None) -> np.ndarray:
    """Sum over intervals [first, stop) of snapshots, per customer (difference arrays)."""
    first = np.clip(first, 0, n_snap)
    stop = np.clip(stop, 0, n_snap)
    keep = first < stop
    w = np.ones(keep.sum()) if weights is None else np.nan_to_num(weights[keep])
    diff = np.zeros(n * (n_snap + 1))
    np.add.at(diff, cidx[keep] * (n_snap + 1) + first[keep], w)
    np.add.at(diff, cidx[keep] * (n_snap + 1) + stop[keep], -w)
    return np.cumsum(diff.reshape(n, n_snap + 1), axis=1)[:, :n_snap]


def _last_value_panel(cidx: np.ndarray, month: np.ndarray, order: np.ndarray, values: np.ndarray,
                      n: int, n_months: int) -> np.ndarray:
    """Value of the latest event before each snapshot (NaN if none): (n, n_months + 1)."""
    ok = (month >= 0) & (month < n_months) & ~np.isnan(values)
    idx = np.lexsort((order[ok], month[ok], cidx[ok]))
    c, m, v = cidx[ok][idx], month[ok][idx], values[ok][idx]
    last = np.full((n, n_months), np.nan)
    last[c, m] = v  # later events in the same month overwrite earlier ones (sorted by order)
    has = ~np.isnan(last)
    pos = np.where(has, np.arange(n_months)[None, :], -1)
    np.maximum.accumulate(pos, axis=1, out=pos)
    filled = np.where(pos >= 0, np.take_along_axis(last, np.maximum(pos, 0), axis=1), np.nan)
    out = np.full((n, n_months + 1), np.nan)
    out[:, 1:] = filled
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def compute_panel(dataset) -> Panel:  # dataset: features.validate.Dataset
    """All features and label ingredients at every snapshot of the dataset."""
    customers = dataset["customers"]
    if not dataset.manifest.get("start_date"):
        raise TenureError(f"{Path(dataset.path) / 'manifest.json'} needs a `start_date` (the first day of the "
                          "first month the tables cover) to place month-end snapshots")
    start = pd.Timestamp(dataset.manifest["start_date"])
    end = pd.Timestamp(dataset.end_date)
    n_months = int(_month_index(np.array([end]), start)[0]) + 1
    n_snap = n_months + 1
    snapshots = pd.date_range(start, periods=n_snap, freq="MS")
    ids = customers["customer_id"].to_numpy()
    order = np.argsort(ids)
    ids_sorted = ids[order]
    n = len(ids)

    def cidx_of(col: pd.Series) -> np.ndarray:
        return order[np.searchsorted(ids_sorted, col.to_numpy())]

    snap_ns = snapshots.to_numpy(dtype="datetime64[ns]")
    cols: dict[str, np.ndarray] = {}

    # ---- leases ---------------------------------------------------------------------------
    leases = dataset["leases"]
    lc = cidx_of(leases["customer_id"])
    l_first = _month_index(leases["start_date"], start) + 1
    # active at snapshot k when it started before k and had not ended before k's eve: a lease
    # whose last day is the month's last day still counts, so a renewal starting on the 1st is
    # seamless rather than a month without a lease
    l_stop = np.minimum(_month_index(leases["closed_date"] + pd.Timedelta(days=1), start) + 1, n_snap)
    rent = leases["monthly_rent"].to_numpy(dtype=float)
    cols["active_leases"] = _state_panel(lc, l_first, l_stop, n, n_snap)
    cols["monthly_rent_total"] = _state_panel(lc, l_first, l_stop, n, n_snap, rent)
    dep = _state_panel(lc, l_first, l_stop, n, n_snap, leases["deposit_ratio"].to_numpy(dtype=float))
    addon = (leases["insurance"].to_numpy() | leases["maintenance"].to_numpy()).astype(float)
    addons = _state_panel(lc, l_first, l_stop, n, n_snap, addon)
    cols["deposit_ratio"] = _ratio(dep, cols["active_leases"])
    cols["addon_share"] = _ratio(addons, cols["active_leases"])
    prev_rent = np.full_like(cols["monthly_rent_total"], np.nan)
    prev_rent[:, 12:] = cols["monthly_rent_total"][:, :-12]
    cols["rent_change_12m_pct"] = np.clip(100 * _ratio(cols["monthly_rent_total"] - prev_rent, prev_rent), -100, 1000)

    start_month = l_first - 1
    is_renewal = (leases["origin"] == "renewal").to_numpy()
    cols["renewals_total"] = _month_panel(lc[is_renewal], start_month[is_renewal], n, n_months)
    early = (leases["status"] == "terminated_early").to_numpy()
    close_month = _month_index(leases["closed_date"], start)
    cols["_early_termination_events"] = _month_panel(lc[early], close_month[early], n, n_months)
    cols["early_terminations_24m"] = _trailing(cols["_early_termination_events"], 24)

    start_ns = leases["start_date"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    term_codes = pd.Categorical(leases["term_type"], categories=FEATURES_BY_NAME["main_term_type"].categories)
    cols["main_term_type"] = _last_value_panel(lc, start_month, start_ns,
                                               term_codes.codes.astype(float), n, n_months)
    # rent increase at renewal: renewal row's rent against the renewed lease's rent
    renewed_rent = pd.Series(rent, index=leases["lease_id"].to_numpy())
    prev = renewed_rent.reindex(leases["renewal_of"].astype("float").to_numpy()).to_numpy()
    increase = np.where(is_renewal, 100 * (rent - prev) / np.where(prev > 0, prev, np.nan), np.nan)
    cols["last_renewal_rent_increase_pct"] = np.clip(
        _last_value_panel(lc, start_month, start_ns, increase, n, n_months), -100, 1000)

    # months to the nearest end of an active lease, per snapshot
    end_month_frac = (leases["end_date"].to_numpy(dtype="datetime64[ns]").astype(np.int64) / 8.64e13) / 30.4375
    snap_month_frac = snap_ns.astype(np.int64) / 8.64e13 / 30.4375
    mte = np.full((n, n_snap), np.nan)
    for k in range(n_snap):
        act = (l_first <= k) & (l_stop > k)
        vals = np.full(n, np.inf)
        np.minimum.at(vals, lc[act], end_month_frac[act] - snap_month_frac[k])
        mte[:, k] = np.where(np.isinf(vals), np.nan, np.clip(vals, -120, 120))
    cols["months_to_lease_end"] = mte

    # upsell and churn label ingredients (counts of events per month, cumulative)
    upsell = leases["origin"].isin(["additional", "upgrade"]).to_numpy()
    cols["_upsell_events"] = _month_panel(lc[upsell], start_month[upsell], n, n_months)
    defaulted = (leases["status"] == "defaulted").to_numpy()
    cols["_default_closures"] = _month_panel(lc[defaulted], close_month[defaulted], n, n_months)

    # ---- invoices and payments ------------------------------------------------------------
    inv = dataset["invoices"]
    pay = dataset["payments"]
    ic = cidx_of(inv["customer_id"])
    due = inv["due_date"].to_numpy(dtype="datetime64[ns]")
    amount = inv["amount"].to_numpy(dtype=float)
    inv_pos = pd.Index(inv["invoice_id"].to_numpy()).get_indexer(pay["invoice_id"].to_numpy())
    pay_sorted = pay.assign(_pos=inv_pos).sort_values(["_pos", "paid_date", "payment_id"])
    pos = pay_sorted["_pos"].to_numpy()
    pamt = pay_sorted["amount"].to_numpy(dtype=float)
    pdate = pay_sorted["paid_date"].to_numpy(dtype="datetime64[ns]")
    cum_paid = pd.Series(pamt).groupby(pos).cumsum().to_numpy()
    full = cum_paid >= amount[pos] - 0.005
    full_paid = np.full(len(inv), np.datetime64("NaT"), dtype="datetime64[ns]")
    first_full = pd.Series(np.arange(len(pos))[full]).groupby(pos[full]).first()
    full_paid[first_full.index.to_numpy()] = pdate[first_full.to_numpy()]
    first_pay = pd.Series(np.arange(len(pos))).groupby(pos).first()
    first_pay_date = np.full(len(inv), np.datetime64("NaT"), dtype="datetime64[ns]")
    first_pay_amt = np.full(len(inv), np.nan)
    first_pay_date[first_pay.index.to_numpy()] = pdate[first_pay.to_numpy()]
    first_pay_amt[first_pay.index.to_numpy()] = pamt[first_pay.to_numpy()]
    partial_first = first_pay_amt < amount - 0.005

    day = np.timedelta64(1, "D")
    due_month = _month_index(due, start)
    unpaid_never = np.isnat(full_paid)
    days_to_pay = (full_paid - due) / day  # NaN where never fully paid

    # default events: the day an invoice reaches 60 days past due while still unpaid
    default_day = due + DEFAULT_DPD * day
    is_default_event = unpaid_never | (full_paid > default_day)
    cols["_default_events"] = _month_panel(ic[is_default_event], _month_index(default_day[is_default_event], start),
                                           n, n_months)

    by_due = np.argsort(due_month, kind="stable")
    due_sorted = due_month[by_due]
    names = ("invoices_12m", "late_payments_12m", "dpd_max_12m", "partial_payments_12m",
             "avg_days_to_pay_6m", "dpd_current", "overdue_amount")
    for name in names:
        cols[name] = np.full((n, n_snap), np.nan if name in ("avg_days_to_pay_6m",) else 0.0)
    # outstanding invoices at a snapshot: due before it and not fully paid before it
    for k in range(1, n_snap):
        s = snap_ns[k]
        lo, hi = np.searchsorted(due_sorted, [k - 12, k])
        w = by_due[lo:hi]
        wc = ic[w]
        fp = full_paid[w]
        paid_by_s = ~np.isnat(fp) & (fp < s)
        settle = np.where(paid_by_s, fp, s)
        dpd = np.maximum((settle - due[w]) / day, 0.0)
        cols["invoices_12m"][:, k] = np.bincount(wc, minlength=n)
        cols["late_payments_12m"][:, k] = np.bincount(wc, weights=(dpd > GRACE_DAYS), minlength=n)
        dmax = np.zeros(n)
        np.maximum.at(dmax, wc, dpd)
        cols["dpd_max_12m"][:, k] = dmax
        fpd = first_pay_date[w]
        part = partial_first[w] & ~np.isnat(fpd) & (fpd < s)
        cols["partial_payments_12m"][:, k] = np.bincount(wc, weights=part, minlength=n)
        recent = (due_month[w] >= k - 6) & paid_by_s
        cnt = np.bincount(wc[recent], minlength=n)
        tot = np.bincount(wc[recent], weights=days_to_pay[w][recent], minlength=n)
        cols["avg_days_to_pay_6m"][:, k] = _ratio(tot, cnt)
        # all invoices due before s and unpaid at s (any age)
        open_mask = (due_month < k) & (unpaid_never | (full_paid >= s))
        oi = np.flatnonzero(open_mask)
        if len(oi):
            dcur = np.zeros(n)
            np.maximum.at(dcur, ic[oi], (s - due[oi]) / day)
            cols["dpd_current"][:, k] = dcur
            # amount still owed at s: the invoice minus what was paid before s
            in_open = np.zeros(len(inv), dtype=bool)
            in_open[oi] = True
            pm = in_open[pos] & (pdate < s)
            paid_before = np.bincount(pos[pm], weights=pamt[pm], minlength=len(inv))
            owed = np.maximum(amount[oi] - paid_before[oi], 0.0)
            cols["overdue_amount"][:, k] = np.bincount(ic[oi], weights=owed, minlength=n)
    cols["late_share_12m"] = _ratio(cols["late_payments_12m"], cols["invoices_12m"])
    cols["overdue_amount_ratio"] = np.where(
        cols["overdue_amount"] > 0, _ratio(cols["overdue_amount"], cols["monthly_rent_total"]), 0.0)
    cols["overdue_amount_ratio"] = np.where(np.isnan(cols["overdue_amount_ratio"]), 0.0, cols["overdue_amount_ratio"])
    del cols["overdue_amount"]

    # ---- usage ----------------------------------------------------------------------------
    usage = dataset["usage"]
    uc = cidx_of(usage["customer_id"])
    um = _month_index(usage["month"], start)
    cap = usage["capacity_share"].to_numpy(dtype=float)
    hrs = usage["hours_used"].to_numpy(dtype=float)
    cap_sum = _month_panel(uc, um, n, n_months, cap)
    cap_cnt = _month_panel(uc, um, n, n_months, (~np.isnan(cap)).astype(float))
    cols["utilisation_3m"] = _ratio(_trailing(cap_sum, 3), _trailing(cap_cnt, 3))
    prior = _ratio(_trailing(cap_sum, 6) - _trailing(cap_sum, 3), _trailing(cap_cnt, 6) - _trailing(cap_cnt, 3))
    cols["utilisation_trend"] = cols["utilisation_3m"] - prior
    # monthly hours: total over the customer's assets, averaged over the months with readings
    hrs_sum = _month_panel(uc, um, n, n_months, hrs)
    has_reading = np.zeros((n, n_months))
    ok = ~np.isnan(hrs) & (um >= 0) & (um < n_months)
    has_reading[uc[ok], um[ok]] = 1.0
    months_with = np.zeros((n, n_months + 1))
    np.cumsum(has_reading, axis=1, out=months_with[:, 1:])
    cols["hours_used_3m"] = _ratio(_trailing(hrs_sum, 3), _trailing(months_with, 3))
    cols["faults_6m"] = _trailing(_month_panel(uc, um, n, n_months, usage["faults"].to_numpy(dtype=float)), 6)
    cols["maintenance_visits_6m"] = _trailing(
        _month_panel(uc, um, n, n_months, usage["maintenance_visits"].to_numpy(dtype=float)), 6)

    # ---- tickets --------------------------------------------------------------------------
    tickets = dataset["tickets"]
    tc = cidx_of(tickets["customer_id"])
    tm = _month_index(tickets["opened_at"], start)
    rm = _month_index(tickets["resolved_at"], start)
    cols["tickets_6m"] = _trailing(_month_panel(tc, tm, n, n_months), 6)
    cols["complaints_6m"] = _trailing(
        _month_panel(tc, tm, n, n_months, tickets["is_complaint"].to_numpy(dtype=float)), 6)
    cols["unresolved_tickets"] = _state_panel(tc, tm + 1, np.minimum(rm + 1, n_snap), n, n_snap)
    resp = _trailing(_month_panel(tc, tm, n, n_months, tickets["response_hours"].to_numpy(dtype=float)), 6)
    cols["avg_response_hours_6m"] = _ratio(resp, cols["tickets_6m"])
    fcr = _trailing(_month_panel(tc, tm, n, n_months,
                                 tickets["first_contact_resolution"].to_numpy(dtype=float)), 6)
    cols["fcr_share_6m"] = _ratio(fcr, cols["tickets_6m"])
    sat = tickets["satisfaction"].to_numpy(dtype=float)
    has_sat = ~np.isnan(sat) & (rm < n_months)
    resolved_ns = tickets["resolved_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    cols["satisfaction_last"] = _last_value_panel(tc, rm, resolved_ns, sat, n, n_months)
    sat_sum = _trailing(_month_panel(tc[has_sat], rm[has_sat], n, n_months, sat[has_sat]), 12)
    sat_cnt = _trailing(_month_panel(tc[has_sat], rm[has_sat], n, n_months), 12)
    cols["satisfaction_avg_12m"] = _ratio(sat_sum, sat_cnt)

    # ---- interactions ---------------------------------------------------------------------
    inter = dataset["interactions"]
    xc = cidx_of(inter["customer_id"])
    xm = _month_index(inter["date"], start)
    kind = inter["kind"].astype(str).to_numpy()
    channel = inter["channel"].astype(str).to_numpy()
    for ch in ("phone", "email", "wechat", "app", "store"):
        sel = (kind == "contact") & (channel == ch)
        cols[f"contacts_{ch}_6m"] = _trailing(_month_panel(xc[sel], xm[sel], n, n_months), 6)
    for name, k_, window in (("campaign_exposures_6m", "campaign", 6), ("email_opens_6m", "email_open", 6),
                             ("referrals_12m", "referral", 12)):
        sel = kind == k_
        cols[name] = _trailing(_month_panel(xc[sel], xm[sel], n, n_months), window)
    cols["loyalty_points"] = _month_panel(xc, xm, n, n_months, inter["loyalty_points"].to_numpy(dtype=float))

    # ---- profile --------------------------------------------------------------------------
    signup = customers["signup_date"].to_numpy(dtype="datetime64[ns]")
    signup_m = signup.astype("datetime64[M]").astype(np.int64)
    snap_m = snap_ns.astype("datetime64[M]").astype(np.int64)
    cols["tenure_months"] = (snap_m[None, :] - signup_m[:, None]).astype(float)
    cols["snapshot_month"] = np.broadcast_to(snapshots.month.to_numpy(dtype=float)[None, :], (n, n_snap))
    return Panel(customer_ids=ids, snapshots=snapshots, columns=cols)


_STATIC = ("customer_type", "industry", "size_band", "region", "acquisition_channel", "membership_level",
           "credit_score", "credit_class", "debt_ratio", "blacklisted", "payment_method")


def _window(panel: Panel, name: str, ks: np.ndarray, h: int) -> np.ndarray:
    """Events of the monthly counter `name` in the months [k, k + h) after each snapshot k."""
    cum = panel[name]
    return cum[:, ks + h] - cum[:, ks]


# a task's label, by `label.event` of its spec: one function of the panel, the snapshots and the
# horizon; a new event is one entry here (and its counters in `compute_panel`)
LABEL_EVENTS: dict[str, Callable[[Panel, np.ndarray, int], np.ndarray]] = {
    "default_60dpd": lambda panel, ks, h: _window(panel, "_default_events", ks, h) > 0,
    # no active lease at the window's end, and not because a lease defaulted
    "churn": lambda panel, ks, h: (panel["active_leases"][:, ks + h] == 0)
    & (_window(panel, "_default_closures", ks, h) == 0),
    "upsell": lambda panel, ks, h: _window(panel, "_upsell_events", ks, h) > 0,
    # a lease of the customer ends early (status terminated_early, closed in the window)
    "early_termination": lambda panel, ks, h: _window(panel, "_early_termination_events", ks, h) > 0,
}


def eligible_rows(panel: Panel, eligibility: str, ks: np.ndarray) -> np.ndarray:
    """Who is scored at snapshots `ks`, by the spec's `label.eligibility`: every customer (`all`),
    customers with an active lease (`active_lease`), or those not already 60+ days past due too
    (`active_lease_not_in_default`)."""
    active = panel["active_leases"][:, ks] > 0
    if eligibility == "all":
        return np.ones_like(active)
    if eligibility == "active_lease":
        return active
    if eligibility == "active_lease_not_in_default":
        return active & (panel["dpd_current"][:, ks] < DEFAULT_DPD)
    raise TenureError(f"unknown label eligibility {eligibility!r}")  # pragma: no cover - specs are validated


def _labels(panel: Panel, spec: TaskSpec, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eligible, label) arrays of shape (n, len(ks)) for the task at snapshots `ks`."""
    label_of = LABEL_EVENTS.get(spec.label.event)
    if label_of is None:  # pragma: no cover - specs are validated
        raise TenureError(f"task {spec.name}: label event {spec.label.event!r} needs a source table")
    return eligible_rows(panel, spec.label.eligibility, ks), label_of(panel, ks, spec.label.horizon_months)


def panel_frame(panel: Panel, customers: pd.DataFrame, feature_names: Iterable[str],
                ks: np.ndarray, mask: np.ndarray | None = None) -> pd.DataFrame:
    """Rows (customer, snapshot) for snapshots `ks` where `mask` (n, len(ks)) holds."""
    n = len(panel.customer_ids)
    if mask is None:
        mask = np.ones((n, len(ks)), dtype=bool)
    ci, si = np.nonzero(mask)
    frame: dict[str, object] = {
        "customer_id": panel.customer_ids[ci],
        "snapshot_date": panel.snapshots[ks][si],
    }
    cust = customers.set_index("customer_id").reindex(panel.customer_ids)
    for name in feature_names:
        fdef = FEATURES_BY_NAME[name]
        if name in _STATIC:
            col = cust[name].to_numpy()[ci]
            if fdef.kind == "categorical":
                frame[name] = pd.Categorical(pd.Series(col, dtype="object").astype("object"), categories=list(fdef.categories))
            else:
                frame[name] = np.asarray(col, dtype=float)
        elif fdef.kind == "categorical":  # panels hold category codes
            codes = panel[name][:, ks][ci, si]
            codes = np.where(np.isnan(codes), -1, codes).astype(np.int64)
            frame[name] = pd.Categorical.from_codes(codes, categories=list(fdef.categories))
        else:
            frame[name] = panel[name][:, ks][ci, si].astype(float)
    for g in GROUP_COLUMNS:
        if g not in frame:
            frame[g] = cust[g].astype("object").to_numpy()[ci]
    return pd.DataFrame(frame)


def task_snapshots(panel: Panel, spec: TaskSpec, cfg: FeaturesConfig) -> np.ndarray:
    """Snapshot indices with enough history before and a fully observed label window after."""
    last = len(panel.snapshots) - 1 - spec.label.horizon_months
    ks = np.arange(cfg.min_history_months, last + 1)
    if cfg.max_snapshots is not None:
        ks = ks[-cfg.max_snapshots:]
    if len(ks) == 0:
        raise TenureError(
            f"task {spec.name}: the dataset has {len(panel.snapshots) - 1} months, too few for "
            f"{cfg.min_history_months} months of history plus a {spec.label.horizon_months}-month label window")
    return ks


def build_task_featureset(panel: Panel, dataset, spec: TaskSpec, cfg: FeaturesConfig) -> FeatureSet:
    ks = task_snapshots(panel, spec, cfg)
    eligible, label = _labels(panel, spec, ks)
    frame = panel_frame(panel, dataset["customers"], spec.features, ks, eligible)
    frame[spec.label.name] = label[eligible].astype(np.int8)
    manifest = dataset.manifest
    return FeatureSet(
        frame=frame,
        task=spec.name,
        features=[FEATURES_BY_NAME[f].to_dict() for f in spec.features],
        label={"name": spec.label.name, "definition": spec.label.definition,
               "horizon_months": spec.label.horizon_months, "eligibility": spec.label.eligibility,
               "event": spec.label.event},
        group_columns=list(GROUP_COLUMNS),
        lineage={
            "dataset_dir": str(Path(dataset.path).resolve()),
            "dataset": manifest.get("dataset"),
            "manifest_sha256": file_sha256(Path(dataset.path) / "manifest.json"),
            "generator": manifest.get("generator"),
            "generator_version": manifest.get("generator_version"),
            "scenario": (manifest.get("scenario") or {}).get("name"),
            "builder_version": BUILDER_VERSION,
            "build_config": cfg.model_dump(),
        },
    )


def build_featuresets(dataset_dir: Path, tasks: list[str], out_dir: Path, cfg: FeaturesConfig,
                      progress: bool = True) -> dict[str, Path]:
    """Validate the dataset, then write one feature set per task; returns task -> path.

    Every table is validated before anything is written; each file is written atomically, so a
    failure leaves earlier outputs as they were and no partial file behind.
    """
    from rich.progress import Progress

    from features.definitions import check_spec
    from features.validate import read_dataset

    specs = [load_spec(t) for t in tasks]
    for spec in specs:
        check_spec(spec)
    with Progress(disable=not progress, transient=True) as bar:
        job = bar.add_task("reading and validating source tables", total=2 + len(specs))
        dataset = read_dataset(Path(dataset_dir))
        bar.update(job, advance=1, description="computing point-in-time panels")
        panel = compute_panel(dataset)
        bar.advance(job)
        built = []
        for spec in specs:
            bar.update(job, description=f"building {spec.name}")
            built.append(build_task_featureset(panel, dataset, spec, cfg))
            bar.advance(job)
    paths = {}
    for fs in built:
        paths[fs.task] = write_featureset(fs, Path(out_dir) / f"{fs.task}.parquet")
    return paths


def scoring_frame(dataset_dir: Path, snapshot: str | None = None, eligible_for: str | None = None) -> pd.DataFrame:
    """Features of every customer with an active lease at one snapshot (default: the latest).

    What applications would send for scoring today: all features of all tasks, no labels. With
    `eligible_for` (a task), only the customers that task's label eligibility admits (e.g. not
    already 60+ days past due for default risk), so live traffic matches the training population.
    """
    from features.definitions import FEATURES
    from features.validate import read_dataset

    dataset = read_dataset(Path(dataset_dir))
    panel = compute_panel(dataset)
    if snapshot is None:
        k = len(panel.snapshots) - 1
    else:
        matches = np.flatnonzero(panel.snapshots == pd.Timestamp(snapshot))
        if not len(matches):
            raise TenureError(f"snapshot {snapshot} is not a month boundary of {dataset_dir} "
                              f"({panel.snapshots[0].date()} .. {panel.snapshots[-1].date()})")
        k = int(matches[0])
    ks = np.array([k])
    mask = panel["active_leases"][:, ks] > 0
    if eligible_for is not None:
        mask &= eligible_rows(panel, load_spec(eligible_for).label.eligibility, ks)
    return panel_frame(panel, dataset["customers"], [f.name for f in FEATURES], ks, mask)
