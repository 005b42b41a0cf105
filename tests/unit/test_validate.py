"""Validated reading of source tables: a tiny hand-built dataset, then one test per error kind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.schema import PERSONAL_DATA_COLUMNS, TABLES
from features.validate import Dataset, DataValidationError, read_dataset, read_table
from tenure.cli import app

END = "2024-06-30"
D = pd.Timestamp


def valid_tables() -> dict[str, pd.DataFrame]:
    """A few rows per table that satisfy every rule of the schema."""
    customers = pd.DataFrame({
        "customer_id": [1, 2, 3],
        "customer_type": ["business", "individual", "business"],
        "industry": pd.Categorical(["retail", "it", "medical"]),
        "size_band": ["high", "low", "middle"],
        "age_band": [None, "young", None],
        "city_tier": ["tier1", "tier2", "remote"],
        "region": ["north", "east", "west"],
        "acquisition_channel": ["online", "partner", "direct_sales"],
        "membership_level": ["basic", "gold", "silver"],
        "signup_date": [D("2022-01-15"), D("2022-03-01"), D("2023-07-20")],
        "credit_score": [720.0, np.nan, 610.0],
        "credit_class": ["good", "average", "bad"],
        "debt_ratio": [0.4, 1.2, np.nan],
        "blacklisted": [False, False, True],
        "payment_method": ["card", "cash", "direct_debit"],
        "name": ["Acme Ltd", "Li Wei", "Beta GmbH"],
        "phone": ["+1 555 0100", "+86 138 0000", "+49 30 1234"],
        "national_id": ["A1", "B2", "C3"],
        "address": ["1 Main St", None, "Hauptstr. 2"],
    })
    # lease keys deliberately unsorted: exercises the hash-based key and reference checks
    leases = pd.DataFrame({
        "lease_id": [12, 10, 11, 13],
        "customer_id": [2, 1, 3, 1],
        "asset_type": ["vehicle", "it_equipment", "medical_device", "it_equipment"],
        "origin": ["new_customer", "new_customer", "new_customer", "renewal"],
        "renewal_of": pd.array([None, None, None, 10], dtype="Int64"),
        "term_type": ["short_term", "long_term", "temporary", "long_term"],
        "start_date": [D("2023-02-01"), D("2022-02-01"), D("2023-08-01"), D("2024-02-01")],
        "end_date": [D("2024-02-01"), D("2024-02-01"), D("2024-02-01"), D("2026-02-01")],
        "term_months": [12, 24, 6, 24],
        "monthly_rent": [300.0, 1200.0, 800.0, 1100.0],
        "rate": [0.08, 0.06, 0.1, 0.065],
        "deposit": [600.0, 2400.0, 0.0, 2200.0],
        "deposit_ratio": [0.1, 0.1, 0.0, 0.1],
        "insurance": [True, False, True, True],
        "maintenance": [False, True, True, False],
        "status": ["expired", "renewed", "terminated_early", "active"],
        "closed_date": [D("2024-02-01"), D("2024-02-01"), D("2023-12-15"), pd.NaT],
    })
    invoices = pd.DataFrame({
        "invoice_id": [100, 101, 102, 103],
        "lease_id": [12, 10, 11, 13],
        "customer_id": [2, 1, 3, 1],
        "issue_date": [D("2024-01-01"), D("2024-01-01"), D("2023-11-01"), D("2024-06-01")],
        "due_date": [D("2024-01-31"), D("2024-01-31"), D("2023-11-30"), D("2024-07-01")],
        "amount": [300.0, 1200.0, 800.0, 1100.0],
    })
    payments = pd.DataFrame({
        "payment_id": [1000, 1001, 1002],
        "invoice_id": [100, 101, 101],
        "customer_id": [2, 1, 1],
        "paid_date": [D("2024-01-20"), D("2024-01-25"), D("2024-02-10")],
        "amount": [300.0, 600.0, 600.0],
    })
    usage = pd.DataFrame({
        "usage_id": [1, 2, 3],
        "lease_id": [10, 13, 11],
        "customer_id": [1, 1, 3],
        "month": [D("2024-01-01"), D("2024-05-01"), D("2023-10-01")],
        "hours_used": [120.5, np.nan, 300.0],
        "capacity_share": [0.5, np.nan, 0.9],
        "faults": [0, 1, 2],
        "maintenance_visits": [1, 0, 0],
    })
    tickets = pd.DataFrame({
        "ticket_id": [7, 8],
        "customer_id": [1, 3],
        "lease_id": pd.array([10, None], dtype="Int64"),
        "opened_at": [D("2023-05-02"), D("2024-06-29")],
        "resolved_at": [D("2023-05-03"), pd.NaT],
        "category": ["fault", "complaint"],
        "is_complaint": [False, True],
        "first_contact_resolution": [True, False],
        "response_hours": [4.5, 30.0],
        "satisfaction": [4.0, np.nan],
    })
    interactions = pd.DataFrame({
        "interaction_id": [1, 2, 3],
        "customer_id": [1, 2, 3],
        "date": [D("2024-03-03"), D("2024-06-30"), D("2023-01-09")],
        "channel": ["phone", "app", "email"],
        "kind": ["contact", "campaign", "email_open"],
        "loyalty_points": [10.0, 0.0, 5.0],
    })
    return {"customers": customers, "leases": leases, "invoices": invoices, "payments": payments,
            "usage": usage, "tickets": tickets, "interactions": interactions}


def write_dataset(path: Path, tables: dict[str, pd.DataFrame], end_date: str | None = END) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(path / f"{name}.parquet", index=False)
    if end_date is not None:
        (path / "manifest.json").write_text(json.dumps({"name": "tiny", "end_date": end_date}))
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "tiny", valid_tables())


@pytest.fixture
def broken(tmp_path: Path) -> Callable[[Callable[[dict[str, pd.DataFrame]], None]], Path]:
    """Write the valid dataset after applying `change` to its tables."""

    def make(change: Callable[[dict[str, pd.DataFrame]], None]) -> Path:
        tables = valid_tables()
        change(tables)
        return write_dataset(tmp_path / "broken", tables)

    return make


def expect_error(path: Path, table: str, column: str | None, *needles: str) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        read_dataset(path)
    err = info.value
    msg = str(err)
    assert err.table == table and f"table {table!r}" in msg, msg
    if column is not None:
        assert err.column == column and f"column {column!r}" in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return err


# ------------------------------------------------------------------------------- valid dataset

EXPECTED_DTYPES = {"float": "float64", "bool": "bool", "date": "datetime64[ns]", "string": "object"}


def test_valid_dataset_reads_with_canonical_dtypes_and_no_personal_data(dataset: Path) -> None:
    ds = read_dataset(dataset)
    assert isinstance(ds, Dataset)
    assert ds.end_date == pd.Timestamp(END)
    assert ds.manifest["name"] == "tiny"
    assert list(ds.tables) == list(TABLES)
    for name, spec in TABLES.items():
        frame = ds[name]
        assert len(frame) == len(valid_tables()[name])
        expected_cols = [c.name for c in spec.columns if c.name not in PERSONAL_DATA_COLUMNS]
        assert list(frame.columns) == expected_cols
        for col in spec.columns:
            if col.name in PERSONAL_DATA_COLUMNS:
                continue
            dtype = frame[col.name].dtype
            if col.kind == "int":
                assert str(dtype) == ("Int64" if col.nullable else "int64"), (name, col.name)
            elif col.kind == "category":
                assert isinstance(dtype, pd.CategoricalDtype), (name, col.name)
                assert list(dtype.categories) == list(col.categories), (name, col.name)
            else:
                assert str(dtype) == EXPECTED_DTYPES[col.kind], (name, col.name)
    assert not PERSONAL_DATA_COLUMNS & set(ds["customers"].columns)
    # values survive the coercion
    assert ds["leases"].set_index("lease_id").loc[13, "renewal_of"] == 10
    assert ds["customers"]["industry"].tolist() == ["retail", "it", "medical"]
    assert pd.isna(ds["customers"]["age_band"].iloc[0])
    with pytest.raises(KeyError, match="not read"):
        ds["nope"]


def test_personal_data_loaded_only_when_asked(dataset: Path) -> None:
    customers = read_dataset(dataset, ["customers"], drop_personal_data=False)["customers"]
    assert set(customers.columns) >= PERSONAL_DATA_COLUMNS
    assert customers["name"].tolist() == ["Acme Ltd", "Li Wei", "Beta GmbH"]
    assert customers["address"].iloc[1] is None


def test_personal_data_columns_still_required_when_not_loaded(broken) -> None:
    path = broken(lambda t: t["customers"].drop(columns=["national_id"], inplace=True))
    expect_error(path, "customers", "national_id", "missing")


def test_extra_columns_are_allowed_and_never_returned(broken) -> None:
    path = broken(lambda t: t["invoices"].insert(2, "internal_note", ["x", "y", "z", "w"]))
    invoices = read_dataset(path)["invoices"]
    assert "internal_note" not in invoices.columns
    assert list(invoices.columns) == list(TABLES["invoices"].column_names)


def test_dates_from_iso_text_and_date32_and_times_floored(tmp_path: Path) -> None:
    tables = valid_tables()
    tables["interactions"]["date"] = ["2024-03-03", "2024-06-30", "2023-01-09"]
    tables["tickets"]["opened_at"] = [D("2023-05-02 14:30"), D("2024-06-29 08:00")]
    path = write_dataset(tmp_path / "d", tables)
    usage = pa.Table.from_pandas(tables["usage"], preserve_index=False)
    i = usage.schema.get_field_index("month")
    usage = usage.set_column(i, "month", pc.cast(usage.column("month"), pa.date32()))
    pq.write_table(usage, path / "usage.parquet")
    ds = read_dataset(path)
    assert ds["interactions"]["date"].dtype == "datetime64[ns]"
    assert ds["interactions"]["date"].iloc[0] == D("2024-03-03")
    assert ds["usage"]["month"].dtype == "datetime64[ns]"
    assert ds["usage"]["month"].tolist() == tables["usage"]["month"].tolist()
    assert ds["tickets"]["opened_at"].tolist() == [D("2023-05-02"), D("2024-06-29")]


def test_integral_floats_become_ints(broken) -> None:
    def change(t: dict[str, pd.DataFrame]) -> None:
        t["usage"]["faults"] = t["usage"]["faults"].astype("float64")
        t["tickets"]["lease_id"] = [10.0, np.nan]

    ds = read_dataset(broken(change))
    assert ds["usage"]["faults"].dtype == "int64"
    assert ds["tickets"]["lease_id"].dtype == "Int64"
    assert ds["tickets"]["lease_id"].iloc[0] == 10 and pd.isna(ds["tickets"]["lease_id"].iloc[1])


def test_read_table_loads_only_the_columns_asked_for(dataset: Path) -> None:
    frame = read_table(dataset, "invoices", pd.Timestamp(END), ["amount", "issue_date"])
    assert list(frame.columns) == ["amount", "issue_date"]
    assert frame["amount"].tolist() == [300.0, 1200.0, 800.0, 1100.0]


def test_subset_of_tables_still_checks_references_to_tables_not_asked_for(broken) -> None:
    path = broken(lambda t: t["payments"].loc.__setitem__((1, "customer_id"), 77))
    ds_tables = ["payments"]
    with pytest.raises(DataValidationError) as info:
        read_dataset(path, ds_tables)
    assert info.value.column == "customer_id"
    assert "payment_id=1001 customer_id=77" in str(info.value)
    assert "customers.customer_id" in str(info.value)


# ---------------------------------------------------------------------------- one per error kind


def test_wrong_type_strings_in_numeric_column(broken) -> None:
    path = broken(lambda t: t["invoices"].__setitem__("amount", ["300", "1200", "800", "1100"]))
    err = expect_error(path, "invoices", "amount", "type string", "expected float",
                       "invoice_id=100 amount='300'")
    assert err.examples[0] == {"invoice_id": 100, "amount": "300"}


def test_wrong_type_non_integer_floats_in_int_column(broken) -> None:
    path = broken(lambda t: t["leases"].__setitem__("term_months", [12.0, 24.0, 6.5, 24.0]))
    expect_error(path, "leases", "term_months", "non-integer", "lease_id=11 term_months=6.5")


def test_wrong_type_unparseable_date_text(broken) -> None:
    path = broken(lambda t: t["payments"].__setitem__("paid_date", ["2024-01-20", "20/01/2024", "2024-02-10"]))
    expect_error(path, "payments", "paid_date", "not an ISO date", "payment_id=1001 paid_date='20/01/2024'")


def test_wrong_type_dates_with_time_zone_offsets(broken) -> None:
    path = broken(lambda t: t["payments"].__setitem__(
        "paid_date", ["2024-01-20", "2024-01-25T10:00+01:00", "2024-02-10"]))
    expect_error(path, "payments", "paid_date", "time zone", "payment_id=1001 paid_date='2024-01-25T10:00+01:00'")


def test_missing_column(broken) -> None:
    path = broken(lambda t: t["leases"].drop(columns=["rate"], inplace=True))
    expect_error(path, "leases", "rate", "missing", "leases.parquet")


def test_missing_file(dataset: Path) -> None:
    (dataset / "tickets.parquet").unlink()
    err = expect_error(dataset, "tickets", None, "tickets.parquet is missing", str(dataset))
    assert err.column is None


def test_duplicate_key(broken) -> None:
    path = broken(lambda t: t["payments"].__setitem__("payment_id", [1000, 1001, 1000]))
    err = expect_error(path, "payments", "payment_id", "appear more than once", "row=0 payment_id=1000",
                       "row=2 payment_id=1000")
    assert len(err.examples) == 2


def test_orphan_foreign_key(broken) -> None:
    path = broken(lambda t: t["invoices"].loc.__setitem__((2, "lease_id"), 999))
    expect_error(path, "invoices", "lease_id", "1 rows reference lease_id values missing from leases.lease_id",
                 "invoice_id=102 lease_id=999")


def test_orphan_self_reference(broken) -> None:
    path = broken(lambda t: t["leases"].__setitem__("renewal_of", pd.array([None, None, 555, 10], dtype="Int64")))
    expect_error(path, "leases", "renewal_of", "missing from leases.lease_id", "lease_id=11 renewal_of=555")


def test_orphan_foreign_key_with_sparse_ids(broken) -> None:
    # ids far apart take the hashing path rather than the dense lookup table
    big = 9_000_000_000

    def change(t: dict[str, pd.DataFrame]) -> None:
        for name in ("customers", "leases", "invoices", "payments", "usage", "tickets", "interactions"):
            t[name]["customer_id"] = t[name]["customer_id"].replace(3, big)
        t["interactions"].loc[0, "customer_id"] = big + 1

    expect_error(broken(change), "interactions", "customer_id", "missing from customers.customer_id",
                 f"interaction_id=1 customer_id={big + 1}")


def test_future_dated_event(broken) -> None:
    path = broken(lambda t: t["interactions"].loc.__setitem__((1, "date"), D("2024-07-01")))
    expect_error(path, "interactions", "date", "after the dataset end 2024-06-30",
                 "interaction_id=2 date=2024-07-01")


def test_planned_end_date_may_lie_after_dataset_end(dataset: Path) -> None:
    # leases.end_date and invoices.due_date have not_after_end=False and already pass 2024-06-30
    ds = read_dataset(dataset)
    assert ds["leases"]["end_date"].max() > ds.end_date
    assert ds["invoices"]["due_date"].max() > ds.end_date


def test_negative_amount(broken) -> None:
    def change(t: dict[str, pd.DataFrame]) -> None:
        t["invoices"]["amount"] = [300.0, -12.5, 800.0, -3.0]

    err = expect_error(broken(change), "invoices", "amount",
                       "2 rows have negative values (min 0); e.g. invoice_id=101 amount=-12.5, "
                       "invoice_id=103 amount=-3.0")
    assert err.problem.startswith("2 rows have negative values")


def test_value_above_maximum(broken) -> None:
    path = broken(lambda t: t["customers"].loc.__setitem__((0, "credit_score"), 900.0))
    expect_error(path, "customers", "credit_score", "above the maximum (max 850)", "customer_id=1 credit_score=900.0")


def test_unknown_category(broken) -> None:
    path = broken(lambda t: t["customers"].__setitem__("industry", ["retail", "mining", "medical"]))
    expect_error(path, "customers", "industry", "unknown categories ('mining')", "customer_id=2 industry='mining'")


def test_null_in_non_nullable_column(broken) -> None:
    path = broken(lambda t: t["customers"].loc.__setitem__((2, "signup_date"), pd.NaT))
    expect_error(path, "customers", "signup_date", "1 rows are null", "customer_id=3 signup_date=null")


def test_null_in_non_nullable_int_column(broken) -> None:
    path = broken(lambda t: t["leases"].__setitem__("customer_id", pd.array([2, None, 3, 1], dtype="Int64")))
    expect_error(path, "leases", "customer_id", "1 rows are null", "lease_id=10 customer_id=null")


def test_ordered_dates_violation(broken) -> None:
    path = broken(lambda t: t["leases"].loc.__setitem__((2, "closed_date"), D("2023-07-01")))
    expect_error(path, "leases", "closed_date", "closed_date before start_date",
                 "lease_id=11 start_date=2023-08-01 closed_date=2023-07-01")


def test_missing_manifest(dataset: Path) -> None:
    (dataset / "manifest.json").unlink()
    with pytest.raises(DataValidationError, match=r"no manifest\.json; add one .*end_date"):
        read_dataset(dataset)
    # an explicit end date stands in for the manifest
    ds = read_dataset(dataset, end_date="2024-12-31")
    assert ds.end_date == pd.Timestamp("2024-12-31")


def test_end_date_argument_overrides_the_manifest(dataset: Path) -> None:
    with pytest.raises(DataValidationError, match="after the dataset end 2024-01-31"):
        read_dataset(dataset, end_date="2024-01-31")


# --------------------------------------------------------------------------------------------- CLI


def test_cli_validate_good_and_bad(dataset: Path, broken) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["data", "validate", str(dataset)])
    assert ok.exit_code == 0, ok.output
    assert "invoices 4 rows ok" in ok.output

    bad = broken(lambda t: t["invoices"].__setitem__("amount", [300.0, -12.5, 800.0, 1100.0]))
    res = runner.invoke(app, ["data", "validate", str(bad)])
    assert res.exit_code == 2
    assert "error: table 'invoices', column 'amount': 1 rows have negative values" in res.stderr
    assert "invoice_id=101 amount=-12.5" in res.stderr
