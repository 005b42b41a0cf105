"""The synthetic leasing CRM generator: schema, keys, time rules, determinism, priors, scenarios.

Small datasets (300 customers x 14 months, one of 3000 for the priors) keep the file fast; the
written datasets are also read back through the real validator (`features.validate`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from configs.data import DataConfig
from features.definitions import FEATURES_BY_NAME
from features.io import file_sha256
from features.manifest import ManifestError, manifest_hash, read_manifest, write_manifest
from features.schema import PERSONAL_DATA_COLUMNS, TABLES
from features.synthetic import (
    GENERATOR,
    GENERATOR_VERSION,
    SCENARIOS,
    GenerateError,
    generate_dataset,
    generate_tables,
)
from features.synthetic import dataset as synthetic_dataset
from features.validate import read_dataset
from tenure.cli import app

SMALL = dict(customers=300, months=14, seed=11)
END = pd.Timestamp("2024-02-29")  # 2023-01-01 + 14 months - 1 day


def cfg(**kw) -> DataConfig:
    return DataConfig(**{**SMALL, **kw})


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("datasets")
    out = {}
    for scenario in ("baseline", "downturn", "competitor"):
        out[scenario] = root / scenario
        generate_dataset(cfg(scenario=scenario), out[scenario], progress=False)
    return out


@pytest.fixture(scope="module")
def tables(datasets: dict[str, Path]) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(datasets["baseline"] / f"{name}.parquet") for name in TABLES}


# ------------------------------------------------------------------------------------ schema


def _expected_dtype(col) -> str:
    if col.kind == "int":
        return "Int64" if col.nullable else "int64"
    return {"float": "float64", "bool": "bool", "date": "datetime64[ns]", "string": "object",
            "category": "category"}[col.kind]


@pytest.mark.parametrize("name", list(TABLES))
def test_columns_kinds_and_rules_match_the_schema(tables: dict[str, pd.DataFrame], name: str) -> None:
    df, spec = tables[name], TABLES[name]
    assert list(df.columns) == list(spec.column_names)
    assert len(df) > 0
    for col in spec.columns:
        s = df[col.name]
        assert str(s.dtype) == _expected_dtype(col), (name, col.name, s.dtype)
        if not col.nullable:
            assert not s.isna().any(), (name, col.name)
        if col.kind == "category":
            assert list(s.cat.categories) == list(col.categories), (name, col.name)
        if col.kind == "date":
            present = s.dropna()
            assert (present == present.dt.normalize()).all(), (name, col.name)
            if col.not_after_end:
                assert present.max() <= END, (name, col.name, present.max())
        if col.kind in ("int", "float"):
            values = s.astype("float64")
            if col.min is not None:
                assert values.min() >= col.min, (name, col.name)
            if col.max is not None:
                assert values.max() <= col.max, (name, col.name)


def test_keys_are_unique_and_references_resolve(tables: dict[str, pd.DataFrame]) -> None:
    for name, spec in TABLES.items():
        df = tables[name]
        assert df[spec.key].is_unique, name
        for col in spec.columns:
            if col.references:
                ref_table, ref_col = col.references.split(".")
                values = df[col.name].dropna().astype("int64")
                assert values.isin(tables[ref_table][ref_col]).all(), (name, col.name)


def test_written_dataset_passes_the_validator(datasets: dict[str, Path]) -> None:
    for path in datasets.values():
        ds = read_dataset(path)
        assert ds.end_date == END
        assert set(ds.tables) == set(TABLES)


# --------------------------------------------------------------------------------- consistency


def test_leases_follow_their_life_cycle(tables: dict[str, pd.DataFrame]) -> None:
    leases = tables["leases"].set_index("lease_id")
    active = leases["status"] == "active"
    assert leases.loc[active, "closed_date"].isna().all()
    assert leases.loc[~active, "closed_date"].notna().all()
    assert set(leases["status"]) == {"active", "renewed", "terminated_early", "expired", "defaulted"}
    assert {"new_customer", "renewal", "additional", "upgrade"} <= set(leases["origin"])
    # a renewal starts the day after the lease it renews closed; that lease is `renewed`
    ren = leases[leases["renewal_of"].notna()]
    old = leases.loc[ren["renewal_of"].astype("int64")]
    assert (old["status"] == "renewed").all()
    assert (ren["start_date"].to_numpy() == (old["closed_date"] + pd.Timedelta(days=1)).to_numpy()).all()
    assert (ren["origin"] == "renewal").all()
    # term lengths by term type
    for term, (lo, hi) in {"temporary": (1, 3), "short_term": (6, 12), "long_term": (24, 60)}.items():
        months = leases.loc[leases["term_type"] == term, "term_months"]
        assert months.between(lo, hi).all(), term


def test_invoices_and_payments_are_consistent(tables: dict[str, pd.DataFrame]) -> None:
    inv, pay = tables["invoices"], tables["payments"]
    leases = tables["leases"].set_index("lease_id")
    assert (inv["issue_date"].dt.day == 1).all()
    assert ((inv["due_date"] - inv["issue_date"]).dt.days == 14).all()
    lease = leases.loc[inv["lease_id"]]
    assert (lease["start_date"].to_numpy() <= inv["issue_date"].to_numpy()).all()
    closed = lease["closed_date"].to_numpy()
    assert (pd.isna(closed) | (closed >= inv["issue_date"].to_numpy())).all()
    assert (lease["customer_id"].to_numpy() == inv["customer_id"].to_numpy()).all()
    # one invoice per lease and month; never more paid than invoiced; no payment after the end
    assert not inv.duplicated(["lease_id", "issue_date"]).any()
    paid = pay.groupby("invoice_id")["amount"].sum()
    assert (paid <= inv.set_index("invoice_id").loc[paid.index, "amount"] + 0.011).all()
    assert pay["paid_date"].max() <= END
    assert (pay.groupby("invoice_id").size() <= 2).all()
    assert (pay.groupby("invoice_id").size() == 2).any()  # partial payments exist
    # some invoices reach 60 days past due (defaults), most are paid around the due date
    delay = (pay.groupby("invoice_id")["paid_date"].max() - inv.set_index("invoice_id").loc[paid.index, "due_date"]).dt.days
    assert (delay.abs() <= 5).mean() > 0.7
    unpaid_long = ~inv["invoice_id"].isin(pay["invoice_id"]) & (inv["due_date"] + pd.Timedelta(days=60) <= END)
    assert unpaid_long.any() or (delay > 60).any()


def test_usage_and_tickets_are_plausible(tables: dict[str, pd.DataFrame]) -> None:
    usage, tickets = tables["usage"], tables["tickets"]
    assert (usage["month"].dt.day == 1).all()
    missing = usage["hours_used"].isna()
    assert (missing == usage["capacity_share"].isna()).all()
    assert 0.005 < missing.mean() < 0.08  # IoT outages
    assert not usage.duplicated(["lease_id", "month"]).any()
    resolved = tickets["resolved_at"].notna()
    assert (tickets.loc[resolved, "resolved_at"] >= tickets.loc[resolved, "opened_at"]).all()
    assert tickets.loc[~resolved, "satisfaction"].isna().all()
    assert 0.2 < tickets["satisfaction"].isna().mean() < 0.6
    assert set(tickets["satisfaction"].dropna().unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert tickets.loc[tickets["category"] == "complaint", "is_complaint"].all()
    assert 5 < tickets["response_hours"].median() < 30  # the 24-hour target, mostly met


def test_personal_data_stays_in_the_customers_table(tables: dict[str, pd.DataFrame]) -> None:
    customers = tables["customers"]
    assert set(customers.columns) >= PERSONAL_DATA_COLUMNS
    assert customers["phone"].is_unique and customers["national_id"].is_unique
    assert customers["address"].isna().any() and customers["address"].notna().mean() > 0.8
    secrets = set(customers["name"]) | set(customers["phone"]) | set(customers["national_id"])
    for name, df in tables.items():
        if name == "customers":
            continue
        assert not PERSONAL_DATA_COLUMNS & set(df.columns), name
        for col in df.columns:
            values = df[col].astype(str) if df[col].dtype in (object, "category") else None
            if values is not None:
                assert not values.isin(secrets).any(), (name, col)


# ------------------------------------------------------------------------------- manifest


def test_manifest_describes_the_files(datasets: dict[str, Path]) -> None:
    path = datasets["baseline"]
    manifest = read_manifest(path)
    assert manifest["generator"] == GENERATOR and manifest["generator_version"] == GENERATOR_VERSION
    assert (manifest["seed"], manifest["customers"], manifest["months"]) == (11, 300, 14)
    assert manifest["start_date"] == "2023-01-01" and manifest["end_date"] == "2024-02-29"
    assert "created_at" not in json.dumps(manifest)
    assert list(manifest["tables"]) == list(TABLES)
    for name, entry in manifest["tables"].items():
        assert entry["file"] == f"{name}.parquet"
        assert entry["rows"] == len(pd.read_parquet(path / entry["file"]))
        assert entry["sha256"] == file_sha256(path / entry["file"])
    assert manifest["scenario"]["name"] == "baseline" and manifest["scenario"]["shifted_features"] == []
    assert not list(path.parent.glob(".baseline.*"))  # no temporary folders left behind


def test_read_manifest_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest.json"):
        read_manifest(tmp_path)
    write_manifest(tmp_path, {"end_date": "2024-13-01"})
    with pytest.raises(ManifestError, match="end_date"):
        read_manifest(tmp_path)
    write_manifest(tmp_path, {"end_date": "2024-12-31"})  # enough for a company's own extract
    assert read_manifest(tmp_path)["end_date"] == "2024-12-31"


def test_same_seed_gives_identical_files_and_another_seed_does_not(datasets: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    again = tmp_path / "again"
    other = tmp_path / "other"
    m1 = read_manifest(datasets["baseline"])
    m2 = generate_dataset(cfg(), again, progress=False)
    assert (datasets["baseline"] / "manifest.json").read_bytes() == (again / "manifest.json").read_bytes()
    assert manifest_hash(m1) == manifest_hash(m2)
    m3 = generate_dataset(cfg(seed=12), other, progress=False)
    assert manifest_hash(m3) != manifest_hash(m1)
    for name in TABLES:
        assert m3["tables"][name]["sha256"] != m1["tables"][name]["sha256"], name


# ---------------------------------------------------------------------------- realism


def test_priors_roughly_hold_on_a_bigger_sample() -> None:
    t = generate_tables(DataConfig(customers=3000, months=12, seed=5))
    c = t["customers"]
    shares = c["credit_class"].value_counts(normalize=True)
    # the book at the start is survival-weighted, so bad credit is a little rarer than 10 %
    assert abs(shares["good"] - 0.40) < 0.04 and abs(shares["average"] - 0.50) < 0.04
    assert 0.06 < shares["bad"] < 0.12
    size = c["size_band"].value_counts(normalize=True)
    assert abs(size["high"] - 0.30) < 0.04 and abs(size["middle"] - 0.50) < 0.04 and abs(size["low"] - 0.20) < 0.04
    assert abs((c["customer_type"] == "business").mean() - 0.65) < 0.04
    assert c.loc[c["customer_type"] == "business", "age_band"].isna().all()
    assert c.loc[c["customer_type"] == "individual", "age_band"].notna().all()
    assert 0.05 < c["credit_score"].isna().mean() < 0.11
    assert 0.03 < c["debt_ratio"].isna().mean() < 0.08
    assert 0.01 < c["blacklisted"].mean() < 0.035
    assert abs((c["signup_date"] < pd.Timestamp("2023-01-01")).mean() - 0.55) < 0.04
    # credit score goes with credit class; blacklisting with bad credit
    means = c.groupby("credit_class", observed=True)["credit_score"].mean()
    assert means["good"] > means["average"] > means["bad"]
    black = c.groupby("credit_class", observed=True)["blacklisted"].mean()
    assert black["bad"] > black["good"]
    # the customers' lease behaviour at the start: temporary / short / long by the priors
    leases = t["leases"]
    first = leases.sort_values("start_date").groupby("customer_id").first()
    terms = first["term_type"].value_counts(normalize=True)
    assert abs(terms["short_term"] - 0.50) < 0.06 and abs(terms["long_term"] - 0.20) < 0.06
    assert abs(terms["temporary"] - 0.30) < 0.06
    # 1-3 leases per customer at the start
    start = pd.Timestamp("2023-01-01")
    at_start = leases[(leases["start_date"] <= start)
                      & (leases["closed_date"].isna() | (leases["closed_date"] >= start))]
    per = at_start.groupby("customer_id").size()
    assert per.between(1, 3).all() and 1.2 < per.mean() < 1.8


def _late_share(path: Path, since: pd.Timestamp) -> float:
    """Share of invoices issued since `since` paid more than 5 days late (or unpaid by then)."""
    inv = pd.read_parquet(path / "invoices.parquet")
    pay = pd.read_parquet(path / "payments.parquet")
    inv = inv[(inv["issue_date"] >= since) & (inv["due_date"] + pd.Timedelta(days=5) < END)]
    last = pay.groupby("invoice_id")["paid_date"].max()
    paid = inv["invoice_id"].map(last)
    late = paid.isna() | (paid > inv["due_date"] + pd.Timedelta(days=5))
    return float(late.mean())


def test_scenarios_name_only_features_the_builder_produces() -> None:
    assert SCENARIOS["baseline"].shifted_features == ()
    for sc in SCENARIOS.values():
        assert all(f in FEATURES_BY_NAME for f in sc.shifted_features), sc.name
        assert len(set(sc.shifted_features)) == len(sc.shifted_features)


def test_scenarios_list_their_shift_and_the_shift_is_visible(datasets: dict[str, Path]) -> None:
    since = pd.Timestamp("2023-09-01")  # 14 months, the last 6 shifted
    for scenario in ("downturn", "competitor"):
        info = read_manifest(datasets[scenario])["scenario"]
        assert info["name"] == scenario and info["start_date"] == "2023-09-01"
        assert info["shifted_features"] and all(f in FEATURES_BY_NAME for f in info["shifted_features"])
        assert info["outcome_effects"] and info["description"]
    # identical before the shift (same seed), different after it
    base_inv = pd.read_parquet(datasets["baseline"] / "invoices.parquet")
    down_inv = pd.read_parquet(datasets["downturn"] / "invoices.parquet")
    before = base_inv["issue_date"] < since
    pd.testing.assert_frame_equal(base_inv[before].reset_index(drop=True),
                                  down_inv[down_inv["issue_date"] < since].reset_index(drop=True))
    # downturn: clearly more late payment in the shifted months, as much as before it otherwise
    base_late = _late_share(datasets["baseline"], since)
    assert _late_share(datasets["downturn"], since) > 1.5 * base_late
    assert "late_share_12m" in read_manifest(datasets["downturn"])["scenario"]["shifted_features"]
    # competitor: more complaints, lower satisfaction, fewer app and e-mail contacts
    def service(path: Path) -> tuple[float, float, float]:
        t = pd.read_parquet(path / "tickets.parquet")
        x = pd.read_parquet(path / "interactions.parquet")
        t, x = t[t["opened_at"] >= since], x[x["date"] >= since]
        digital = ((x["kind"] == "contact") & x["channel"].isin(["app", "email"])).sum()
        return float(t["is_complaint"].sum()), float(t["satisfaction"].mean()), float(digital)
    b_cmp, b_sat, b_dig = service(datasets["baseline"])
    c_cmp, c_sat, c_dig = service(datasets["competitor"])
    assert c_cmp > 1.5 * b_cmp and c_sat < b_sat - 0.4 and c_dig < 0.75 * b_dig


# ----------------------------------------------------------------------- atomic writing, CLI


def test_replaces_an_old_dataset_but_never_an_unrelated_folder(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "ds"
    small = DataConfig(customers=60, months=12, seed=3)
    first = generate_dataset(small, out, progress=False)
    (out / "stale.txt").write_text("from an older run")
    second = generate_dataset(DataConfig(customers=60, months=12, seed=4), out, progress=False)
    assert not (out / "stale.txt").exists() and manifest_hash(second) != manifest_hash(first)

    # a failure half-way leaves the previous dataset as it was and no temporary folder
    before = (out / "manifest.json").read_bytes()

    def broken(frame: pd.DataFrame, path: Path) -> None:
        if path.name == "usage.parquet":
            raise OSError("disk full")
        frame.to_parquet(path)

    monkeypatch.setattr(synthetic_dataset, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        generate_dataset(small, out, progress=False)
    assert (out / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    monkeypatch.undo()

    unrelated = tmp_path / "mine"
    unrelated.mkdir()
    (unrelated / "thesis.tex").write_text("precious")
    with pytest.raises(GenerateError, match="refusing to replace"):
        generate_dataset(small, unrelated, progress=False)
    assert (unrelated / "thesis.tex").read_text() == "precious"


def test_cli_generates_a_dataset(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["data", "generate", "--customers", "60", "--months", "12",
                                      "--seed", "9", "--scenario", "downturn", "--out", str(out),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "customers 60" in result.output
    manifest = read_manifest(out)
    assert manifest["scenario"]["name"] == "downturn" and manifest["end_date"] == "2023-12-31"
    bad = CliRunner().invoke(app, ["data", "generate", "--customers", "10", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "customers" in bad.output
