"""Point-in-time feature sets: no leakage, exact label windows, no personal data, atomic output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from configs.data import DataConfig
from configs.features import FeaturesConfig
from features.build import build_featuresets, build_task_featureset, compute_panel, scoring_frame
from features.definitions import FEATURES
from features.featureset import read_featureset
from features.schema import PERSONAL_DATA_COLUMNS
from features.synthetic import generate_dataset
from features.validate import read_dataset
from models import load_spec, task_names


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "small"
    generate_dataset(DataConfig(name="small", customers=400, months=24, seed=3), out, progress=False)
    return out


@dataclass
class MemoryDataset:
    """A dataset held in memory, so tests can edit events and rebuild panels."""

    path: Path
    manifest: dict
    end_date: pd.Timestamp
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]


@pytest.fixture(scope="module")
def dataset(dataset_dir) -> MemoryDataset:
    ds = read_dataset(dataset_dir)
    return MemoryDataset(ds.path, ds.manifest, ds.end_date, {k: v.copy() for k, v in ds.tables.items()})


def _copy(ds: MemoryDataset) -> MemoryDataset:
    return MemoryDataset(ds.path, ds.manifest, ds.end_date, {k: v.copy() for k, v in ds.tables.items()})


def _features_at(panel, k: int) -> dict[str, np.ndarray]:
    return {name: arr[:, k] for name, arr in panel.columns.items() if not name.startswith("_")}


def _scramble_from(ds: MemoryDataset, s: pd.Timestamp, rng: np.random.Generator) -> MemoryDataset:
    """Change every event dated on or after `s` (values, dates within [s, end], deletions)."""
    out = _copy(ds)
    end = ds.end_date
    span = max((end - s).days, 0)

    def later(n: int) -> pd.Series:
        return pd.Series(s + pd.to_timedelta(rng.integers(0, span + 1, n), unit="D"))

    inv = out["invoices"]
    m = inv["due_date"] >= s
    inv.loc[m, "amount"] = inv.loc[m, "amount"] * 3.0
    pay = out["payments"]
    m = pay["paid_date"] >= s
    pay.loc[m, "paid_date"] = later(m.sum()).to_numpy()
    pay.loc[m, "amount"] = pay.loc[m, "amount"] * 0.5
    drop = pay.index[m][: m.sum() // 2]
    out.tables["payments"] = pay.drop(index=drop)
    leases = out["leases"]
    m = leases["start_date"] >= s
    leases.loc[m, "monthly_rent"] = leases.loc[m, "monthly_rent"] * 2 + 5
    leases.loc[m, "origin"] = "additional"
    c = leases["closed_date"] >= s
    leases.loc[c, "closed_date"] = later(c.sum()).to_numpy()
    leases.loc[c, "status"] = "terminated_early"
    usage = out["usage"]
    m = usage["month"] >= s
    usage.loc[m, "capacity_share"] = 0.01
    usage.loc[m, "faults"] = 9
    tickets = out["tickets"]
    m = tickets["opened_at"] >= s
    tickets.loc[m, "is_complaint"] = True
    tickets.loc[m, "response_hours"] = 500.0
    r = tickets["resolved_at"] >= s
    tickets.loc[r, "resolved_at"] = pd.NaT
    tickets.loc[r, "satisfaction"] = 1.0
    inter = out["interactions"]
    out.tables["interactions"] = inter[inter["date"] < s]
    return out


@pytest.mark.parametrize("k_offset", [7, 11])
def test_changing_events_on_or_after_a_snapshot_leaves_its_features_unchanged(dataset, k_offset):
    panel = compute_panel(dataset)
    k = k_offset
    s = panel.snapshots[k]
    changed = compute_panel(_scramble_from(dataset, s, np.random.default_rng(k)))
    before, after = _features_at(panel, k), _features_at(changed, k)
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=f"feature {name} leaked events after {s.date()}")
    # the scramble really changed later snapshots, so the test can fail
    later = _features_at(changed, k + 2)
    assert any(not np.array_equal(_features_at(panel, k + 2)[n], later[n], equal_nan=True) for n in later)


def _label_of(ds: MemoryDataset, task: str, customer_id: int, snapshot: pd.Timestamp) -> int | None:
    spec = load_spec(task)
    fs = build_task_featureset(compute_panel(ds), ds, spec, FeaturesConfig(min_history_months=3))
    row = fs.frame[(fs.frame["customer_id"] == customer_id) & (fs.frame["snapshot_date"] == snapshot)]
    return None if row.empty else int(row[spec.label.name].iloc[0])


def _negative_row(ds: MemoryDataset, task: str) -> tuple[int, pd.Timestamp]:
    spec = load_spec(task)
    fs = build_task_featureset(compute_panel(ds), ds, spec, FeaturesConfig(min_history_months=3))
    neg = fs.frame[fs.frame[spec.label.name] == 0]
    row = neg[neg["snapshot_date"] == sorted(neg["snapshot_date"].unique())[2]].iloc[0]
    return int(row["customer_id"]), pd.Timestamp(row["snapshot_date"])


def _add_lease(ds: MemoryDataset, customer_id: int, start: pd.Timestamp, origin: str) -> MemoryDataset:
    out = _copy(ds)
    leases = out["leases"]
    new = leases[leases["customer_id"] == customer_id].iloc[[0]].copy()
    new["lease_id"] = leases["lease_id"].max() + 1
    new["origin"] = origin
    new["renewal_of"] = pd.NA
    new["start_date"] = start
    new["end_date"] = start + pd.DateOffset(months=12)
    new["status"] = "active"
    new["closed_date"] = pd.NaT
    out.tables["leases"] = pd.concat([leases, new], ignore_index=True)
    return out


def test_upsell_label_uses_exactly_the_window_after_the_snapshot(dataset):
    horizon = load_spec("upsell").label.horizon_months
    cid, s = _negative_row(dataset, "upsell")
    inside = s + pd.DateOffset(months=horizon) - pd.Timedelta(days=1)
    assert _label_of(_add_lease(dataset, cid, inside, "additional"), "upsell", cid, s) == 1
    outside = s + pd.DateOffset(months=horizon)
    assert _label_of(_add_lease(dataset, cid, outside, "additional"), "upsell", cid, s) == 0
    before = s - pd.Timedelta(days=1)
    assert _label_of(_add_lease(dataset, cid, before, "additional"), "upsell", cid, s) == 0


def test_default_label_counts_an_invoice_reaching_60_days_past_due_inside_the_window(dataset):
    cid, s = _negative_row(dataset, "default_risk")
    horizon = load_spec("default_risk").label.horizon_months

    def with_unpaid_invoice(due: pd.Timestamp) -> MemoryDataset:
        out = _copy(dataset)
        inv = out["invoices"]
        new = inv[inv["customer_id"] == cid].iloc[[0]].copy()
        new["invoice_id"] = inv["invoice_id"].max() + 1
        new["issue_date"] = due - pd.Timedelta(days=14)
        new["due_date"] = due
        out.tables["invoices"] = pd.concat([inv, new], ignore_index=True)
        return out

    # reaches 60 days past due on the last day of the window -> positive
    last_day = s + pd.DateOffset(months=horizon) - pd.Timedelta(days=1)
    assert _label_of(with_unpaid_invoice(last_day - pd.Timedelta(days=60)), "default_risk", cid, s) == 1
    # reaches 60 days past due the day after the window -> not this snapshot's event
    assert _label_of(with_unpaid_invoice(last_day - pd.Timedelta(days=59)), "default_risk", cid, s) == 0


def test_churn_label_is_no_active_lease_at_the_window_end(dataset):
    cid, s = _negative_row(dataset, "churn")
    horizon = load_spec("churn").label.horizon_months
    out = _copy(dataset)
    leases = out["leases"]
    mine = (leases["customer_id"] == cid) & (leases["closed_date"].isna() | (leases["closed_date"] >= s))
    close = s + pd.Timedelta(days=20)
    leases.loc[mine, "closed_date"] = close
    leases.loc[mine, "status"] = "expired"
    started_later = (leases["customer_id"] == cid) & (leases["start_date"] >= s)
    out.tables["leases"] = leases[~started_later]
    assert _label_of(out, "churn", cid, s) == 1
    # a new lease starting inside the window that stays active past it -> not churn
    renewed = _add_lease(out, cid, s + pd.DateOffset(months=horizon) - pd.Timedelta(days=2), "renewal")
    assert _label_of(renewed, "churn", cid, s) == 0
    # the same closure through default is not churn
    out.tables["leases"].loc[mine & ~started_later, "status"] = "defaulted"
    assert _label_of(out, "churn", cid, s) == 0


def test_featuresets_have_no_personal_data_and_carry_metadata(dataset_dir, tmp_path):
    paths = build_featuresets(dataset_dir, list(task_names()), tmp_path, FeaturesConfig(), progress=False)
    for task, path in paths.items():
        fs = read_featureset(path)
        assert not PERSONAL_DATA_COLUMNS & set(fs.frame.columns)
        assert fs.feature_names == list(load_spec(task).features)
        assert fs.meta["content_hash"] and fs.meta["rows"] == len(fs.frame) > 100
        assert fs.meta["snapshot_range"][0] < fs.meta["snapshot_range"][1]
        assert all(f["description"] and f["source"] and f["dtype"] for f in fs.features)
        assert 0 < fs.y().mean() < 0.5, f"{task} positive rate {fs.y().mean():.3f}"
        # one row per customer and snapshot, snapshots are month starts
        assert not fs.frame.duplicated(["customer_id", "snapshot_date"]).any()
        assert (fs.frame["snapshot_date"].dt.day == 1).all()
    # none of the personal data values appear anywhere in the files
    raw = pd.read_parquet(dataset_dir / "customers.parquet", columns=["name", "phone", "national_id"])
    blob = b"".join(p.read_bytes() for p in paths.values())
    for value in raw.head(20).to_numpy().ravel():
        assert str(value).encode() not in blob


def test_build_is_deterministic(dataset_dir, tmp_path):
    a = build_featuresets(dataset_dir, ["churn"], tmp_path / "a", FeaturesConfig(), progress=False)
    b = build_featuresets(dataset_dir, ["churn"], tmp_path / "b", FeaturesConfig(), progress=False)
    assert read_featureset(a["churn"]).content_hash == read_featureset(b["churn"]).content_hash


def test_a_bad_table_stops_the_build_and_writes_nothing(dataset_dir, tmp_path):
    import shutil

    from features.validate import DataValidationError

    bad = tmp_path / "bad"
    shutil.copytree(dataset_dir, bad)
    inv = pd.read_parquet(bad / "invoices.parquet")
    inv.loc[inv.index[3], "amount"] = -10.0
    inv.to_parquet(bad / "invoices.parquet")
    out = tmp_path / "out"
    with pytest.raises(DataValidationError, match="invoices.*amount"):
        build_featuresets(bad, list(task_names()), out, FeaturesConfig(), progress=False)
    assert not out.exists() or not any(out.iterdir())


def test_scoring_frame_has_every_feature_for_active_customers(dataset_dir):
    frame = scoring_frame(dataset_dir)
    assert {f.name for f in FEATURES} <= set(frame.columns)
    assert frame["snapshot_date"].nunique() == 1 and len(frame) > 50


def test_a_spec_naming_a_feature_the_catalogue_lacks_is_refused_before_anything_is_built(tmp_path):
    from features.definitions import check_spec
    from models import SpecError, load_spec_file

    spec = load_spec("churn")
    raw = spec.model_dump(mode="json")
    raw["features"] = [*raw["features"], "shoe_size"]
    path = tmp_path / "churn.yaml"
    path.write_text(json.dumps(raw))  # JSON is YAML
    custom = load_spec_file(path)  # the spec alone is valid: models/ does not know the catalogue
    with pytest.raises(SpecError, match=r"churn: features not defined .*shoe_size"):
        check_spec(custom)
    for task in task_names():
        check_spec(load_spec(task))


def test_a_task_from_a_spec_file_builds_its_featureset_from_the_spec_alone(dataset, tmp_path):
    """A fifth, throwaway task written as YAML in a temporary folder (no code): early lease
    termination within 6 months, for customers with an active lease. Its labels are exactly the
    leases closed as terminated_early in [s, s + 6 months)."""
    from features.definitions import check_spec
    from models import load_spec_file

    raw = load_spec("churn").model_dump(mode="json")
    raw.update(name="early_exit", title="Early lease termination",
               question="Will a lease of this customer be ended early within 6 months?")
    raw["label"].update(name="early_exit_6m", event="early_termination", horizon_months=6, eligibility="active_lease",
                        definition="a lease of the customer ends early (terminated_early) within 6 months")
    path = tmp_path / "early_exit.yaml"
    path.write_text(json.dumps(raw))
    spec = load_spec_file(path)
    check_spec(spec)
    panel = compute_panel(dataset)
    fs = build_task_featureset(panel, dataset, spec, FeaturesConfig(min_history_months=6))
    frame = fs.frame
    assert fs.label_name == "early_exit_6m" and 0 < frame["early_exit_6m"].mean() < 0.5
    # every row is a customer with an active lease at its snapshot (the spec's eligibility)
    active = panel["active_leases"]
    k_of = {s: k for k, s in enumerate(panel.snapshots)}
    c_of = {c: i for i, c in enumerate(panel.customer_ids)}
    assert all(active[c_of[c], k_of[pd.Timestamp(s)]] > 0 for c, s in zip(frame["customer_id"], frame["snapshot_date"], strict=True))
    # the label against the raw leases table
    leases = dataset["leases"]
    early = leases[leases["status"] == "terminated_early"]
    for c, s, y in frame.sample(300, random_state=0)[["customer_id", "snapshot_date", "early_exit_6m"]].itertuples(index=False):
        s = pd.Timestamp(s)
        closed = early.loc[early["customer_id"] == c, "closed_date"]
        expected = bool(((closed >= s) & (closed < s + pd.DateOffset(months=6))).any())
        assert bool(y) == expected, (c, s)


def test_features_build_takes_a_dataset_name_or_folder(dataset_dir, tmp_path, monkeypatch):
    """`--dataset` is the name `tenure data generate --name` wrote under <home>/data, or a folder;
    a name that is neither is refused naming it."""
    import shutil

    from helpers.cli import invoke

    home = tmp_path / "home"
    shutil.copytree(dataset_dir, home / "data" / "small")
    monkeypatch.chdir(tmp_path)  # no folder called `small` here: the name resolves under <home>/data
    res = invoke(["features", "build", "--task", "churn", "--dataset", "small", "--no-progress"], home)
    assert res.exit_code == 0, res.output
    assert (home / "features" / "small" / "churn.parquet").exists()
    res = invoke(["features", "build", "--task", "churn", "--dataset", str(dataset_dir), "--out", str(tmp_path / "o"),
                  "--no-progress"], home)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "churn.parquet").exists()
    res = invoke(["features", "build", "--task", "churn", "--dataset", "nosuch", "--no-progress"], home)
    assert res.exit_code != 0 and "nosuch" in res.output and "Traceback" not in res.output
