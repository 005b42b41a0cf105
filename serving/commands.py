"""`tenure serve`: run the BentoML service (`bentoml serve serving.service:Tenure`) on the settings.

The command resolves the settings (MLflow registry, prediction log, workspace) and the serving
config, hands them to the server process through the environment, and waits for it; its exit
code is the server's. The server refuses to start (exit 2, one line naming what is missing) when
the registry is unreachable or a task has no champion. Heavy libraries load in the server process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from configs.console import SettingsOpt, user_errors


def server_environment(settings: Any, config_path: Path | None, overrides: Mapping[str, Any],
                       base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the server process: resolved settings, the serving config, quiet defaults."""
    from configs.serve import SERVE_CONFIG_ENV, SERVE_OVERRIDES_ENV

    env = dict(os.environ if base is None else base)
    env["TENURE_HOME"] = str(Path(settings.home).resolve())
    env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    env["TENURE_PREDICTION_LOG"] = settings.prediction_log_target
    if config_path is not None:
        env[SERVE_CONFIG_ENV] = str(Path(config_path).resolve())
    else:
        env.pop(SERVE_CONFIG_ENV, None)
    env[SERVE_OVERRIDES_ENV] = json.dumps({k: v for k, v in overrides.items() if v is not None})
    # no usage analytics from BentoML; a remote registry that is down fails fast instead of retrying for minutes
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    env.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    env.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    return env


def server_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "bentoml", "serve", "serving.service:Tenure", "--host", host, "--port", str(port)]


@user_errors
def serve(
    port: Annotated[int | None, typer.Option(help="Port to listen on (default from configs/serve.yaml: 3000).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1; 0.0.0.0 for every "
                                                  "interface: set an API key then).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default 2); each loads every model once.")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="Environment variable holding the API key "
                                                         "(default TENURE_API_KEY); unset = no key required.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML file overriding configs/serve.yaml.")] = None,
    settings: SettingsOpt = None,
) -> None:
    """Serve every task's champion over HTTP: /score, /score_batch, /predict_<task>, /model_info, docs at /."""
    from configs.serve import load_serve_config
    from configs.settings import load_settings

    overrides = {"port": port, "host": host, "workers": workers, "api_key_env": api_key_env}
    cfg = load_serve_config(config, overrides)
    resolved = load_settings(settings)
    env = server_environment(resolved, config, overrides)
    if not env.get(cfg.api_key_env):
        typer.secho(f"warning: {cfg.api_key_env} is not set, so the scoring endpoints need no API key; anyone who "
                    f"can reach {cfg.host}:{cfg.port} can call them", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"serving {', '.join(cfg.tasks)} ({cfg.alias}) from {env['MLFLOW_TRACKING_URI']} on "
               f"http://{cfg.host}:{cfg.port} with {cfg.workers} workers; predictions logged to "
               f"{env['TENURE_PREDICTION_LOG']}", err=True)
    proc = subprocess.Popen(server_command(cfg.host, cfg.port), env=env)
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: proc.send_signal(signum))  # stop together
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:
                continue  # the server got the same Ctrl-C and is shutting down gracefully
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(code=code)


@user_errors
def compare(
    task: Annotated[str, typer.Option(help="The task, e.g. churn.")],
    since: Annotated[str | None, typer.Option(help="Window start, ISO 8601 (inclusive, on scored_at).")] = None,
    until: Annotated[str | None, typer.Option(help="Window end, ISO 8601 (exclusive).")] = None,
    outcomes: Annotated[Path | None, typer.Option(help="Dataset folder whose labels are joined to the logged rows "
                                                       "(customer_ref, as_of) to compare ROC AUC.")] = None,
    settings: SettingsOpt = None,
) -> None:
    """Champion against shadow challenger on the same live rows of the prediction log: score
    agreement (Spearman, mean |diff|), tier changes and, with --outcomes, ROC AUC. JSON on stdout."""
    from configs.settings import load_settings
    from serving.compare import compare_shadow, format_report

    resolved = load_settings(settings)
    labels = None
    if outcomes is not None:
        from monitoring.performance import outcome_labels

        labels, _ = outcome_labels(outcomes, task)
    report = compare_shadow(resolved.prediction_log_target, task, since=since, until=until, labels=labels)
    typer.echo(format_report(report), err=True)
    typer.echo(json.dumps(report, indent=2, default=str))


log_app = typer.Typer(help="The prediction log: move old rows into an archive file, safely while serving.",
                      no_args_is_help=True)


@log_app.command("archive")
@user_errors
def archive(
    before: Annotated[str, typer.Option(help="Move the rows scored before this time (ISO 8601, UTC if no offset), "
                                             "e.g. 2026-01-01.")],
    to: Annotated[Path, typer.Option(help="The archive: an SQLite file with the log's table, created if missing; "
                                          "a later run appends to it.")],
    batch_rows: Annotated[int, typer.Option(help="Rows moved per transaction (the service's writes wait at most "
                                                 "one batch's delete).")] = 20_000,
    settings: SettingsOpt = None,
) -> None:
    """Move the prediction log's rows scored before --before into an SQLite archive (not `mv`: WAL
    rows would be lost); every row stays in the log or the archive. JSON on stdout."""
    from configs.serve import load_serve_config
    from configs.settings import load_settings
    from serving.log_archive import archive_log

    resolved = load_settings(settings)
    timeout = load_serve_config().prediction_log.busy_timeout_ms
    result = archive_log(resolved.prediction_log_target, to, before, batch_rows=batch_rows, busy_timeout_ms=timeout)
    typer.echo(f"{result.rows_archived} rows scored before {result.before} moved from {result.source} to "
               f"{result.archive}; {result.rows_left} rows left in the log", err=True)
    typer.echo(json.dumps(result.to_dict()))
