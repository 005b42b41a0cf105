"""Definitions of every point-in-time feature the builder produces from the source tables.

A feature set carries these definitions in its metadata; serving uses them for request
validation (type, range, allowed categories) and for plain-language reasons (English and
Chinese), so the description must read well after "Because ...".

Time convention: a snapshot is a month boundary `s` (the first day of a month, 00:00). Features
use only events dated strictly before `s`; "last 6 months" means the six calendar months before
`s`. Labels use only the window `[s, s + horizon)`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from features import schema

FeatureKind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class FeatureDef:
    name: str
    kind: FeatureKind
    source: str  # source table(s) it is computed from
    description: str  # English, reads as a noun phrase: "days past due on the worst invoice..."
    description_zh: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None

    @property
    def dtype(self) -> str:
        return "category" if self.kind == "categorical" else "float64"

    def out_of_range(self, values: Any) -> Any:
        """Mask of the numbers outside `[min, max]`: the one range rule of the API (the request
        schema's `ge`/`le`) and batch scoring (`tenure predict`). Missing (NaN) is not out of range."""
        import numpy as np

        values = np.asarray(values, dtype=np.float64)
        bad = np.zeros(values.shape, dtype=bool)
        if self.min is not None:
            bad |= values < self.min
        if self.max is not None:
            bad |= values > self.max
        return bad

    @property
    def range_text(self) -> str:
        """The range rule in words: `between 300 and 850`, `at least 0`, `at most 1`."""
        if self.min is not None and self.max is not None:
            return f"between {self.min:g} and {self.max:g}"
        if self.min is not None:
            return f"at least {self.min:g}"
        return f"at most {self.max:g}" if self.max is not None else "any number"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dtype"] = self.dtype
        if d["categories"] is not None:
            d["categories"] = list(d["categories"])
        return d


def _cat(name: str, source: str, cats: tuple[str, ...], en: str, zh: str) -> FeatureDef:
    return FeatureDef(name, "categorical", source, en, zh, categories=cats)


def _num(name: str, source: str, en: str, zh: str, unit: str = "", lo: float | None = 0.0,
         hi: float | None = None) -> FeatureDef:
    return FeatureDef(name, "numeric", source, en, zh, unit=unit, min=lo, max=hi)


FEATURES: tuple[FeatureDef, ...] = (
    # profile
    _cat("customer_type", "customers", schema.CUSTOMER_TYPES, "customer type", "客户类型"),
    _cat("industry", "customers", schema.INDUSTRIES, "industry", "所属行业"),
    _cat("size_band", "customers", schema.SIZE_BANDS, "company size or income band", "企业规模或收入档次"),
    _cat("region", "customers", schema.REGIONS, "region", "所在区域"),
    _cat("acquisition_channel", "customers", schema.CHANNELS, "acquisition channel", "获客渠道"),
    _cat("membership_level", "customers", schema.MEMBERSHIP_LEVELS, "membership level", "会员等级"),
    _num("tenure_months", "customers", "months since sign-up", "注册以来的月数", "months", 0, 600),
    # credit and finance
    _num("credit_score", "customers", "credit-bureau score", "征信评分", "points", 300, 850),
    _cat("credit_class", "customers", schema.CREDIT_CLASSES, "credit class", "信用等级"),
    _num("debt_ratio", "customers", "debt ratio", "负债率", "", 0, 5),
    _num("blacklisted", "customers", "blacklist flag (1 = on a blacklist)", "黑名单标记（1 表示在黑名单中）", "", 0, 1),
    _cat("payment_method", "customers", schema.PAYMENT_METHODS, "payment method", "付款方式"),
    # leases
    _num("active_leases", "leases", "number of active leases", "在租合同数量", "leases", 0, 1000),
    _num("monthly_rent_total", "leases", "total monthly rent of active leases", "在租合同月租金合计", "CNY", 0, None),
    _num("rent_change_12m_pct", "leases", "change in total monthly rent over the last 12 months",
         "近 12 个月月租金合计的变化幅度", "%", -100, 1000),
    _num("last_renewal_rent_increase_pct", "leases", "rent increase at the last renewal",
         "最近一次续约的租金涨幅", "%", -100, 1000),
    _num("months_to_lease_end", "leases", "months until the nearest active lease ends",
         "距最近一份在租合同到期的月数", "months", -120, 120),
    _num("deposit_ratio", "leases", "average deposit ratio of active leases", "在租合同平均押金比例", "", 0, 1),
    _num("addon_share", "leases", "share of active leases with insurance or maintenance",
         "在租合同中附加保险或维保服务的比例", "", 0, 1),
    _num("renewals_total", "leases", "number of renewals so far", "累计续约次数", "renewals", 0, 1000),
    _num("early_terminations_24m", "leases", "leases terminated early in the last 24 months",
         "近 24 个月提前解约的合同数", "leases", 0, 1000),
    _cat("main_term_type", "leases", schema.TERM_TYPES, "term of the most recent lease", "最近一份合同的租期类型"),
    # invoices and payments
    _num("invoices_12m", "invoices", "invoices due in the last 12 months", "近 12 个月到期的账单数", "invoices", 0, None),
    _num("late_payments_12m", "invoices,payments", "invoices paid late or still overdue in the last 12 months",
         "近 12 个月逾期支付或仍未支付的账单数", "invoices", 0, None),
    _num("late_share_12m", "invoices,payments", "share of invoices paid late in the last 12 months",
         "近 12 个月逾期账单占比", "", 0, 1),
    _num("dpd_max_12m", "invoices,payments", "worst days past due in the last 12 months",
         "近 12 个月最长逾期天数", "days", 0, 10000),
    _num("dpd_current", "invoices,payments", "days past due on the oldest unpaid invoice today",
         "当前最久未付账单的逾期天数", "days", 0, 10000),
    _num("overdue_amount_ratio", "invoices,payments", "overdue amount relative to monthly rent",
         "逾期金额与月租金之比", "", 0, None),
    _num("partial_payments_12m", "invoices,payments", "invoices paid only in part in the last 12 months",
         "近 12 个月部分支付的账单数", "invoices", 0, None),
    _num("avg_days_to_pay_6m", "invoices,payments", "average days from due date to payment over the last 6 months",
         "近 6 个月从到期到付款的平均天数", "days", -60, 10000),
    # asset usage
    _num("utilisation_3m", "usage", "average share of capacity used over the last 3 months",
         "近 3 个月设备平均利用率", "", 0, 1),
    _num("utilisation_trend", "usage", "change in utilisation, last 3 months against the 3 before",
         "近 3 个月与之前 3 个月相比利用率的变化", "", -1, 1),
    _num("hours_used_3m", "usage", "average monthly hours of use over the last 3 months",
         "近 3 个月平均每月使用小时数", "hours", 0, 100000),
    _num("faults_6m", "usage", "asset faults in the last 6 months", "近 6 个月设备故障次数", "faults", 0, None),
    _num("maintenance_visits_6m", "usage", "maintenance visits in the last 6 months", "近 6 个月维保上门次数", "visits", 0, None),
    # service and feedback
    _num("tickets_6m", "tickets", "service tickets in the last 6 months", "近 6 个月服务工单数", "tickets", 0, None),
    _num("complaints_6m", "tickets", "complaints in the last 6 months", "近 6 个月投诉次数", "complaints", 0, None),
    _num("unresolved_tickets", "tickets", "tickets still unresolved", "尚未解决的工单数", "tickets", 0, None),
    _num("avg_response_hours_6m", "tickets", "average response time to tickets over the last 6 months",
         "近 6 个月工单平均响应时长", "hours", 0, None),
    _num("fcr_share_6m", "tickets", "share of tickets resolved at first contact in the last 6 months",
         "近 6 个月首次联系即解决的工单比例", "", 0, 1),
    _num("satisfaction_last", "tickets", "latest satisfaction score", "最近一次满意度评分", "of 5", 1, 5),
    _num("satisfaction_avg_12m", "tickets", "average satisfaction over the last 12 months",
         "近 12 个月平均满意度", "of 5", 1, 5),
    # interactions
    _num("contacts_phone_6m", "interactions", "phone contacts in the last 6 months", "近 6 个月电话联系次数", "contacts", 0, None),
    _num("contacts_email_6m", "interactions", "email contacts in the last 6 months", "近 6 个月邮件联系次数", "contacts", 0, None),
    _num("contacts_wechat_6m", "interactions", "WeChat contacts in the last 6 months", "近 6 个月微信联系次数", "contacts", 0, None),
    _num("contacts_app_6m", "interactions", "app contacts in the last 6 months", "近 6 个月 App 联系次数", "contacts", 0, None),
    _num("contacts_store_6m", "interactions", "store visits in the last 6 months", "近 6 个月到店次数", "visits", 0, None),
    _num("campaign_exposures_6m", "interactions", "campaigns received in the last 6 months", "近 6 个月收到的营销活动数", "campaigns", 0, None),
    _num("email_opens_6m", "interactions", "marketing emails opened in the last 6 months", "近 6 个月打开的营销邮件数", "emails", 0, None),
    _num("referrals_12m", "interactions", "referrals given in the last 12 months", "近 12 个月推荐新客户次数", "referrals", 0, None),
    _num("loyalty_points", "interactions", "loyalty points earned so far", "累计积分", "points", 0, None),
    # calendar
    _num("snapshot_month", "calendar", "calendar month of the snapshot", "快照所在月份", "", 1, 12),
)

FEATURES_BY_NAME: dict[str, FeatureDef] = {f.name: f for f in FEATURES}

# Columns carried beside the features for fairness audits and monitoring; never model inputs.
GROUP_COLUMNS: tuple[str, ...] = ("age_band", "city_tier", "industry")
ID_COLUMNS: tuple[str, ...] = ("customer_id", "snapshot_date")


def check_spec(spec: Any) -> None:
    """Refuse a task spec (`models.TaskSpec`) that names features this catalogue does not define
    (a spec on an own table, `label.event: column`, names the table's columns instead)."""
    from models import SpecError

    if spec.label.event == "column":
        return
    missing = [f for f in spec.features if f not in FEATURES_BY_NAME]
    if missing:
        raise SpecError(f"task spec {spec.name}: features not defined in features.definitions: {missing}")
