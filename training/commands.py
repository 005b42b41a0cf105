"""CLI commands of the training stage: `tenure train` and `tenure predict` (plain functions for Typer).

`tenure/cli.py` registers them with `app.command("train")(train)` and
`app.command("predict")(predict)`. They are thin: parse, load config and settings, call
`training.train.train_task` / `training.predict.predict_file`. (`tenure retrain` is the app's:
`tenure.retrain`.)

Output contract of `tenure train`: progress goes to stderr; stdout holds one JSON object per
trained task, one line each, in task order (`--task all`: `models.task_names()`, file-name order), with keys
`run_id`, `model_name`, `version`, `model_uri`, `test_metrics` (and `task`). The last stdout line
is therefore the JSON of the last task trained; a script reads all lines for `--task all`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from configs import ConfigError, TenureError
from configs.console import SettingsOpt, user_errors

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Training config YAML overriding configs/train.yaml.")]


def _err(message: str) -> None:
    typer.echo(message, err=True)


def parse_train_tasks(task: str) -> list[str]:
    """`all` -> every task; otherwise one task name (a spec in models/ or a folder of TENURE_TASK_DIRS)."""
    from configs.tasks import resolve_tasks

    return resolve_tasks(task, several=False, hint="; train your own data with --dataset-config FILE.yaml")


@user_errors
def train(
    task: Annotated[str | None, typer.Option(help="A task (a spec in models/ or TENURE_TASK_DIRS, e.g. churn) or all (default: all, or the "
                                                  "task stored in --featureset).")] = None,
    dataset: Annotated[str, typer.Option(help="Feature sets under <home>/features/<dataset>/<task>.parquet.")] = "demo",
    featureset: Annotated[Path | None, typer.Option(help="A feature-set file to train on (one task).")] = None,
    dataset_config: Annotated[Path | None, typer.Option("--dataset-config", help="Your own table's dataset config "
                                                        "YAML: build its feature set, then train a model named "
                                                        "after the config.")] = None,
    config: ConfigOpt = None,
    trials: Annotated[int | None, typer.Option(help="Optuna trials (lifts the time budget unless --timeout "
                                                    "is given too).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds of search per task.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the split, sampler and LightGBM.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes running Optuna trials on this machine; "
                                         "with a shared TENURE_OPTUNA_STORAGE, `tenure train` on other machines "
                                         "joins the same study. The model is registered once per study run.")] = 1,
    settings: SettingsOpt = None,
) -> None:
    """Tune, train, evaluate and register models (alias `challenger`); one JSON line per task on stdout."""
    from training.train import passive_openmp

    passive_openmp()  # before anything imports lightgbm
    from configs.settings import load_settings
    from configs.train import load_train_config
    from features.featureset import read_metadata
    from training.train import train_task

    st = load_settings(settings)
    cfg = load_train_config(config, trials=trials, timeout=timeout, seed=seed)
    jobs: list[tuple[str, Path, str | None]] = []  # (task or spec name, feature set, model name)
    if dataset_config is not None:
        if featureset is not None or task is not None:
            raise ConfigError("--dataset-config trains your own table; do not combine it with --task or --featureset")
        from configs.dataset import load_dataset_config
        from features.own_data import build_from_dataset_config
        from training.split import min_class_rows

        ds = load_dataset_config(dataset_config)
        path = build_from_dataset_config(dataset_config, None, st,
                                         min_class_rows=min_class_rows(cfg.cv.folds, cfg.split.test_fraction))
        _err(f"feature set of {dataset_config} written to {path}")
        jobs.append((ds.name, path, ds.name))
    elif featureset is not None:
        if task == "all":
            raise ConfigError("--featureset holds one task; pass --task <task> or leave it out")
        stored = read_metadata(featureset)["task"]
        name = parse_train_tasks(task)[0] if task is not None else stored
        jobs.append((name, featureset, None))
    else:
        for t in parse_train_tasks(task or "all"):
            jobs.append((t, st.featureset_path(dataset, t), None))
    # Launched by `mlflow run` (MLproject): that run only records which Tenure runs it produced;
    # Tenure's own parent runs live in the task's experiment, as for any other `tenure train`.
    launcher_run = os.environ.pop("MLFLOW_RUN_ID", None)
    summaries = []
    for name, path, model_name in jobs:
        result = train_task(name, path, cfg, st, model_name=model_name, echo=_err, workers=workers)
        summaries.append({"task": name, **result.summary()})
        typer.echo(json.dumps(summaries[-1]))
    if launcher_run:
        _record_launcher(launcher_run, st, summaries)


def _record_launcher(run_id: str, settings: Any, summaries: list[dict[str, Any]]) -> None:
    import mlflow

    client = mlflow.MlflowClient(settings.tracking_uri)
    client.set_tag(run_id, "tenure.trained_runs", ",".join(s["run_id"] for s in summaries))
    client.set_tag(run_id, "tenure.models", ",".join(f"{s['model_name']}/{s['version']}" for s in summaries))
    for s in summaries:
        for metric, value in s["test_metrics"].items():
            client.log_metric(run_id, f"{s['task']}.test_{metric}", value)


@user_errors
def predict(
    model: Annotated[str, typer.Option(help="MLflow model URI, e.g. models:/churn@champion or models:/churn/3.")],
    data: Annotated[Path, typer.Option(help="Rows to score: CSV or Parquet with the model's feature columns.")],
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet): id column and `probability`.")],
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Score the valid rows and write the invalid "
                                               "ones to <out stem>.rejected.csv instead of failing.")] = False,
    id_column: Annotated[str | None, typer.Option(help="Id column of the input (default: the model's).")] = None,
    engine: Annotated[str, typer.Option(help="pandas (one process) | dask (Parquet input, file or folder of parts, "
                                             "scored by row group on a Dask cluster; --out becomes a folder)")] = "pandas",
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address (default TENURE_DASK_SCHEDULER; "
                                                       "without either, a local cluster of 2 workers).")] = None,
    settings: SettingsOpt = None,
) -> None:
    """Score a file with a registered model: every row gets a probability, or the run fails naming bad rows."""
    from configs.settings import load_settings
    from models.tracking import setup_mlflow
    from training.predict import predict_file

    st = load_settings(settings)
    setup_mlflow(st)
    if engine not in ("pandas", "dask") or (scheduler is not None and engine != "dask"):
        raise ConfigError(f"--engine {engine!r}: choose pandas or dask" if engine not in ("pandas", "dask")
                          else "--scheduler needs --engine dask")
    if engine == "dask":
        from features.distributed import dask_client, scheduler_address
        from models.registry import load_tenure_model
        from training.predict import PredictError
        from training.predict_dask import predict_partitions

        try:
            loaded = load_tenure_model(model)
        except TenureError:
            raise
        except Exception as exc:  # mlflow raises its own exception types for unknown names/aliases
            raise PredictError(f"cannot load model {model}: {exc}") from exc
        with dask_client(scheduler_address(scheduler, st)) as client:
            result = predict_partitions(loaded, model, data, out, client, skip_invalid=skip_invalid,
                                        id_column=id_column)
    else:
        result = predict_file(model, data, out, skip_invalid=skip_invalid, id_column=id_column)
    if result.rejected:
        _err(f"{result.rejected} invalid row(s) skipped; see {result.rejected_path}")
    typer.echo(json.dumps({"out": str(result.out), "rows": result.rows, "scored": result.scored,
                           "rejected": result.rejected,
                           "rejected_path": str(result.rejected_path) if result.rejected_path else None,
                           "model_uri": result.model_uri}))
