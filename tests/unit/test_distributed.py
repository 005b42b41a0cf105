"""Data beyond one machine: chunked generation, feature sets on Dask customer partitions, the
customer-level training sample.

One small chunked dataset (450 customers in chunks of 200, 26 months, a seed not used elsewhere),
read through the real validator; the Dask path runs on an in-process cluster of 2 workers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from configs import TenureError
from configs.data import DataConfig
from configs.features import FeaturesConfig
from features.build import build_featuresets
from features.distributed import build_featuresets_dask, customer_partitions, dask_client
from features.featureset import COMMON_METADATA, FeatureSetError, read_featureset, read_metadata
from features.manifest import manifest_hash
from features.synthetic import generate_dataset
from features.validate import DataValidationError, read_dataset
from models import task_names

CHUNKED = dict(name="chunked", customers=450, months=26, seed=29, chunk_customers=200)


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chunked") / "data"
    generate_dataset(DataConfig(**CHUNKED), out, progress=False)
    return out


@pytest.fixture(scope="module")
def client():
    with dask_client(None, workers=2, processes=False) as c:
        yield c


@pytest.fixture(scope="module")
def built(chunked: Path, client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("features")
    cfg = FeaturesConfig()
    return {"pandas": build_featuresets(chunked, list(task_names()), root / "pandas", cfg, progress=False),
            "dask": build_featuresets_dask(chunked, list(task_names()), root / "dask", cfg, client, partition_customers=130)}


def test_chunked_generation_writes_disjoint_customer_parts_with_ids_running_on(chunked: Path) -> None:
    manifest = json.loads((chunked / "manifest.json").read_text())
    assert manifest["chunk_customers"] == 200 and manifest["tables"]["customers"]["parts"] == 3
    parts = sorted((chunked / "customers.parquet").glob("part-*.parquet"))
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in parts]
    assert sizes == [200, 200, 50]
    ds = read_dataset(chunked)  # every key unique, every reference resolved across the whole dataset
    assert ds["customers"]["customer_id"].tolist() == list(range(1, 451))
    for name, frame in ds.tables.items():
        key = {"customers": "customer_id", "usage": "usage_id"}.get(name, f"{name.rstrip('s')}_id")
        assert frame[key].is_unique, name
    # each part holds its own customers and every row of them
    leases = [pq.read_table(p).to_pandas() for p in sorted((chunked / "leases.parquet").glob("*.parquet"))]
    assert leases[0]["customer_id"].max() <= 200 < leases[1]["customer_id"].min()
    assert leases[1]["lease_id"].min() == leases[0]["lease_id"].max() + 1


def test_chunked_generation_is_deterministic_per_seed_and_chunk_size(chunked: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    other_chunks = tmp_path / "other"
    m1 = json.loads((chunked / "manifest.json").read_text())
    m2 = generate_dataset(DataConfig(**CHUNKED), again, progress=False)
    m3 = generate_dataset(DataConfig(**{**CHUNKED, "chunk_customers": 150}), other_chunks, progress=False)
    assert manifest_hash(m1) == manifest_hash(m2)
    assert m1["tables"]["leases"]["sha256"] != m3["tables"]["leases"]["sha256"]  # its own stream


def test_a_customer_range_reads_exactly_those_customers_rows(chunked: Path) -> None:
    whole = read_dataset(chunked)
    part = read_dataset(chunked, customers=(150, 260))  # across the boundary of two chunks
    for name, frame in part.tables.items():
        expected = whole[name][whole[name]["customer_id"].between(150, 259)].reset_index(drop=True)
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), expected, check_like=False)


def test_partitions_cover_every_customer_once(chunked: Path) -> None:
    bounds = customer_partitions(chunked, 130)
    assert bounds == [(1, 131), (131, 261), (261, 391), (391, 451)]
    with pytest.raises(TenureError, match="at least 1"):
        customer_partitions(chunked, 0)


def test_dask_features_equal_the_pandas_path(built: dict[str, dict[str, Path]]) -> None:
    for task in task_names():
        pandas_fs, dask_fs = read_featureset(built["pandas"][task]), read_featureset(built["dask"][task])
        assert built["dask"][task].is_dir() and (built["dask"][task] / COMMON_METADATA).exists()
        assert len(list(built["dask"][task].glob("part-*.parquet"))) == 4
        keys = [pandas_fs.id_column, pandas_fs.time_column]
        a = pandas_fs.frame.sort_values(keys, ignore_index=True)
        b = dask_fs.frame.sort_values(keys, ignore_index=True)
        assert list(a.dtypes) == list(b.dtypes)
        pd.testing.assert_frame_equal(a, b)
        pd.testing.assert_frame_equal(pandas_fs.frame, dask_fs.frame)  # the same order, too
        meta = {k: v for k, v in dask_fs.meta.items() if k != "parts"}
        assert meta == pandas_fs.meta  # incl. rows, positives, snapshot range, content hash, lineage
        assert dask_fs.meta["parts"] == 4 and pandas_fs.meta["rows"] > 0


def test_a_dask_build_replaces_an_earlier_output_and_the_pandas_path_replaces_it_back(
        chunked: Path, client, tmp_path: Path) -> None:
    cfg = FeaturesConfig()
    first = build_featuresets(chunked, ["churn"], tmp_path, cfg, progress=False)["churn"]
    assert first.is_file()
    second = build_featuresets_dask(chunked, ["churn"], tmp_path, cfg, client, partition_customers=300)["churn"]
    assert second == first and second.is_dir()
    assert read_metadata(second)["content_hash"] == read_featureset(second).content_hash
    assert build_featuresets(chunked, ["churn"], tmp_path, cfg, progress=False)["churn"].is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["churn.parquet"]  # nothing staged left behind


def test_a_bad_partition_stops_the_build_and_leaves_the_earlier_output(chunked: Path, client, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(chunked, broken)
    part = broken / "payments.parquet" / "part-00001.parquet"
    frame = pq.read_table(part).to_pandas()
    frame.loc[3, "amount"] = -50.0
    frame.to_parquet(part, index=False)
    out = tmp_path / "out"
    before = build_featuresets(chunked, ["churn"], out, FeaturesConfig(), progress=False)["churn"]
    digest = read_metadata(before)["content_hash"]
    with pytest.raises(DataValidationError, match="payments.*amount"):
        build_featuresets_dask(broken, ["churn"], out, FeaturesConfig(), client, partition_customers=130)
    assert read_metadata(before)["content_hash"] == digest
    assert sorted(p.name for p in out.iterdir()) == ["churn.parquet"]


def test_an_unfinished_partitioned_folder_is_not_read_as_a_feature_set(tmp_path: Path) -> None:
    (tmp_path / "churn.parquet").mkdir()
    with pytest.raises(FeatureSetError, match="_common_metadata"):
        read_metadata(tmp_path / "churn.parquet")


def test_the_training_sample_keeps_whole_customers_and_the_positive_share(built: dict[str, dict[str, Path]]) -> None:
    path = built["dask"]["churn"]
    full = read_featureset(path)
    sample = read_featureset(path, max_customers=150)
    n_full = full.frame["customer_id"].nunique()
    kept = sample.frame["customer_id"].unique()
    info = sample.lineage["sample"]
    assert info["customers"] == n_full and info["kept_customers"] == len(kept)
    assert abs(len(kept) - 150) <= 1
    # whole histories: every kept customer has all its rows
    pd.testing.assert_frame_equal(sample.frame.reset_index(drop=True),
                                  full.frame[full.frame["customer_id"].isin(kept)].reset_index(drop=True))
    ever = full.frame.groupby("customer_id")[full.label_name].max()
    share_full, share_kept = ever.mean(), ever.loc[kept].mean()
    assert abs(share_full - share_kept) < 0.02, (share_full, share_kept)
    # deterministic, and a larger cap keeps every customer a smaller one kept
    assert set(read_featureset(path, max_customers=150).frame["customer_id"]) == set(kept)
    assert set(kept) <= set(read_featureset(path, max_customers=250).frame["customer_id"])
    # the single file gives the same sample
    assert np.array_equal(np.sort(read_featureset(built["pandas"]["churn"], max_customers=150).frame["customer_id"]
                                  .unique()), np.sort(kept))
    assert read_featureset(path, max_customers=10_000).lineage.get("sample") is None


def test_the_cap_is_a_setting_and_the_cli_refuses_what_it_cannot_do(monkeypatch: pytest.MonkeyPatch,
                                                                      chunked: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from configs import ConfigError
    from configs.settings import load_settings
    from tenure.cli import app

    monkeypatch.setenv("TENURE_TRAIN_MAX_CUSTOMERS", "300000")
    assert load_settings().train_max_customers == 300_000
    monkeypatch.setenv("TENURE_TRAIN_MAX_CUSTOMERS", "5")
    with pytest.raises(ConfigError, match="TENURE_TRAIN_MAX_CUSTOMERS"):
        load_settings()
    monkeypatch.delenv("TENURE_TRAIN_MAX_CUSTOMERS")
    runner = CliRunner()
    build = ["features", "build", "--dataset", str(chunked), "--out", str(tmp_path / "f")]
    for extra, message in ((["--engine", "spark"], "choose pandas or dask"),
                           (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --engine dask"),
                           (["--engine", "dask", "--scheduler", "http://x:1"], "not a Dask scheduler address")):
        res = runner.invoke(app, [*build, *extra])
        assert res.exit_code == 2 and message in res.output, res.output
    res = runner.invoke(app, ["data", "generate", "--customers", "100", "--chunk-customers", "10",
                              "--out", str(tmp_path / "d")])
    assert res.exit_code == 2 and "chunk_customers" in res.output, res.output
    assert not (tmp_path / "f").exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("engine", ["pandas", "dask"])
def test_a_time_window_or_id_filter_reads_exactly_those_rows(built: dict[str, dict[str, Path]], engine: str) -> None:
    """What promotion reads: the test snapshots, or the logged test ids, not the whole feature set."""
    path = built[engine]["churn"]
    full = read_featureset(path)
    frame, t = full.frame, full.time_column
    snapshots = sorted(frame[t].unique())
    start, end = pd.Timestamp(snapshots[-3]), pd.Timestamp(snapshots[-1])
    window = read_featureset(path, time_between=(start, end))
    expected = frame[(frame[t] >= start) & (frame[t] <= end)].reset_index(drop=True)
    assert 0 < len(window.frame) < len(frame)
    pd.testing.assert_frame_equal(window.frame.reset_index(drop=True), expected)
    assert window.content_hash == full.content_hash and window.features == full.features
    some = frame["customer_id"].drop_duplicates().sample(7, random_state=1)
    by_id = read_featureset(path, ids=some)
    pd.testing.assert_frame_equal(by_id.frame.reset_index(drop=True),
                                  frame[frame["customer_id"].isin(some)].reset_index(drop=True))
    both = read_featureset(path, time_between=(start, end), ids=some)
    assert len(both.frame) == int((expected["customer_id"].isin(some)).sum()) > 0


def test_ids_that_do_not_fit_the_id_column_are_refused_naming_it(built: dict[str, dict[str, Path]]) -> None:
    with pytest.raises(FeatureSetError, match=r"the ids asked for do not fit its id column 'customer_id'"):
        read_featureset(built["pandas"]["churn"], ids=["not-a-number"])
