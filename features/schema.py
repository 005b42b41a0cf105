"""The source tables of a leasing company, as Tenure expects them.

This module is the single contract between the synthetic generator (`features.synthetic`), a
company's own extracts, the validator (`features.validate`) and the feature builder
(`features.build`). Every table is one Parquet file `<dataset_dir>/<table>.parquet`; dates are
day-resolution timestamps (`datetime64[ns]`, no time zone). A dataset folder also holds
`manifest.json` (see `features.manifest`).

Personal data lives only in `customers` (columns listed in `PERSONAL_DATA_COLUMNS`); nothing
downstream may read those columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["int", "float", "bool", "category", "date", "string"]

CUSTOMER_TYPES = ("business", "individual")
INDUSTRIES = (
    "medical",
    "education",
    "manufacturing",
    "logistics",
    "construction",
    "retail",
    "it",
    "hospitality",
    "property",
)
SIZE_BANDS = ("high", "middle", "low")
AGE_BANDS = ("young", "middle_aged", "elderly")
CITY_TIERS = ("tier1", "tier2", "tier3", "remote")
REGIONS = ("north", "east", "south", "west", "central")
CHANNELS = ("direct_sales", "partner", "online", "referral", "store")
MEMBERSHIP_LEVELS = ("basic", "silver", "gold", "platinum")
CREDIT_CLASSES = ("good", "average", "bad")
PAYMENT_METHODS = ("bank_transfer", "direct_debit", "card", "wechat_pay", "cash")
ASSET_TYPES = ("it_equipment", "construction_machinery", "vehicle", "medical_device", "office_furniture")
TERM_TYPES = ("temporary", "short_term", "long_term")
LEASE_STATUSES = ("active", "renewed", "terminated_early", "expired", "defaulted")
LEASE_ORIGINS = ("new_customer", "renewal", "additional", "upgrade")
TICKET_CATEGORIES = ("fault", "billing", "delivery", "maintenance", "complaint", "other")
INTERACTION_CHANNELS = ("phone", "email", "wechat", "app", "store")
INTERACTION_KINDS = ("contact", "campaign", "email_open", "referral")

PERSONAL_DATA_COLUMNS: frozenset[str] = frozenset({"name", "phone", "national_id", "address"})


@dataclass(frozen=True)
class Column:
    """One column of a source table and the rules it must satisfy."""

    name: str
    kind: Kind
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    # "table.column" this column must reference (every non-null value present there)
    references: str | None = None
    # dates only: the value may not be after the dataset end (manifest `end_date`)
    not_after_end: bool = True
    description: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    columns: tuple[Column, ...]
    description: str = ""
    # (earlier, later): rows where both are set must have earlier <= later
    ordered_dates: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


CUSTOMERS = Table(
    name="customers",
    key="customer_id",
    description="One row per customer: profile, credit and finance, and personal data.",
    columns=(
        Column("customer_id", "int", min=1),
        Column("customer_type", "category", categories=CUSTOMER_TYPES),
        Column("industry", "category", categories=INDUSTRIES),
        Column("size_band", "category", categories=SIZE_BANDS, description="company size or income band"),
        Column("age_band", "category", nullable=True, categories=AGE_BANDS, description="individuals only"),
        Column("city_tier", "category", categories=CITY_TIERS),
        Column("region", "category", categories=REGIONS),
        Column("acquisition_channel", "category", categories=CHANNELS),
        Column("membership_level", "category", categories=MEMBERSHIP_LEVELS),
        Column("signup_date", "date"),
        Column("credit_score", "float", nullable=True, min=300, max=850),
        Column("credit_class", "category", categories=CREDIT_CLASSES),
        Column("debt_ratio", "float", nullable=True, min=0, max=5),
        Column("blacklisted", "bool"),
        Column("payment_method", "category", categories=PAYMENT_METHODS),
        # personal data: present in the source, never read downstream
        Column("name", "string"),
        Column("phone", "string"),
        Column("national_id", "string"),
        Column("address", "string", nullable=True),
    ),
)

LEASES = Table(
    name="leases",
    key="lease_id",
    description="One row per lease contract. A renewal is a new row whose `renewal_of` names the lease it renews.",
    ordered_dates=(("start_date", "end_date"), ("start_date", "closed_date")),
    columns=(
        Column("lease_id", "int", min=1),
        Column("customer_id", "int", references="customers.customer_id"),
        Column("asset_type", "category", categories=ASSET_TYPES),
        Column("origin", "category", categories=LEASE_ORIGINS),
        Column("renewal_of", "int", nullable=True, references="leases.lease_id"),
        Column("term_type", "category", categories=TERM_TYPES),
        Column("start_date", "date"),
        # planned end of the contract; may lie after the dataset end
        Column("end_date", "date", not_after_end=False),
        Column("term_months", "int", min=1, max=120),
        Column("monthly_rent", "float", min=0),
        Column("rate", "float", min=0, max=1, description="annual lease rate"),
        Column("deposit", "float", min=0),
        Column("deposit_ratio", "float", min=0, max=1),
        Column("insurance", "bool"),
        Column("maintenance", "bool"),
        # status as of the dataset end; `closed_date` is when it stopped (null while active)
        Column("status", "category", categories=LEASE_STATUSES),
        Column("closed_date", "date", nullable=True),
    ),
)

INVOICES = Table(
    name="invoices",
    key="invoice_id",
    description="Monthly rent invoices, one per active lease and month.",
    ordered_dates=(("issue_date", "due_date"),),
    columns=(
        Column("invoice_id", "int", min=1),
        Column("lease_id", "int", references="leases.lease_id"),
        Column("customer_id", "int", references="customers.customer_id"),
        Column("issue_date", "date"),
        Column("due_date", "date", not_after_end=False),
        Column("amount", "float", min=0),
    ),
)

PAYMENTS = Table(
    name="payments",
    key="payment_id",
    description="Payments received against invoices; an invoice may be paid in several parts or never.",
    columns=(
        Column("payment_id", "int", min=1),
        Column("invoice_id", "int", references="invoices.invoice_id"),
        Column("customer_id", "int", references="customers.customer_id"),
        Column("paid_date", "date"),
        Column("amount", "float", min=0),
    ),
)

USAGE = Table(
    name="usage",
    key="usage_id",
    description="Monthly IoT readings per leased asset (month = first day of the month measured).",
    columns=(
        Column("usage_id", "int", min=1),
        Column("lease_id", "int", references="leases.lease_id"),
        Column("customer_id", "int", references="customers.customer_id"),
        Column("month", "date"),
        Column("hours_used", "float", nullable=True, min=0, max=744),
        Column("capacity_share", "float", nullable=True, min=0, max=1),
        Column("faults", "int", min=0),
        Column("maintenance_visits", "int", min=0),
    ),
)

TICKETS = Table(
    name="tickets",
    key="ticket_id",
    description="Service tickets, complaints and the satisfaction survey answered when a ticket closes.",
    ordered_dates=(("opened_at", "resolved_at"),),
    columns=(
        Column("ticket_id", "int", min=1),
        Column("customer_id", "int", references="customers.customer_id"),
        Column("lease_id", "int", nullable=True, references="leases.lease_id"),
        Column("opened_at", "date"),
        Column("resolved_at", "date", nullable=True),
        Column("category", "category", categories=TICKET_CATEGORIES),
        Column("is_complaint", "bool"),
        Column("first_contact_resolution", "bool"),
        Column("response_hours", "float", min=0),
        Column("satisfaction", "float", nullable=True, min=1, max=5),
    ),
)

INTERACTIONS = Table(
    name="interactions",
    key="interaction_id",
    description="Contacts by channel, campaign exposure, email opens and referrals.",
    columns=(
        Column("interaction_id", "int", min=1),
        Column("customer_id", "int", references="customers.customer_id"),
        Column("date", "date"),
        Column("channel", "category", categories=INTERACTION_CHANNELS),
        Column("kind", "category", categories=INTERACTION_KINDS),
        Column("loyalty_points", "float", min=0),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (CUSTOMERS, LEASES, INVOICES, PAYMENTS, USAGE, TICKETS, INTERACTIONS)
}
