"""CLI commands of the monitoring stage: `tenure monitor` and `tenure compliance` (plain functions for Typer).

`tenure/cli.py` registers them with `app.command("monitor")(monitor)` and
`app.command("compliance")(compliance)`. Both are thin: parse, load the config and settings,
call `monitoring.monitor.monitor_task` / `monitoring.compliance.compliance_pack`. Progress goes
to stderr; stdout holds one JSON object (the window's summary with the report paths, or the
compliance page's path).

Exit statuses of `tenure monitor`: 0 by default; with `--fail-on warn`: 10 when the overall
level is warn, 20 when it is alert; with `--fail-on alert`: 20 on alert, 0 otherwise. A usage or
input error exits 2 (`configs.console.user_errors`).
The stage's API is imported from its modules (`monitoring.monitor`, `monitoring.compliance`,
`monitoring.reports`), inside the commands, so `tenure --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from configs import ConfigError
from configs.console import SettingsOpt, user_errors

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Monitoring config YAML overriding configs/monitor.yaml.")]

def _err(message: str) -> None:
    typer.echo(message, err=True)


@user_errors
def monitor(
    task: Annotated[str, typer.Option(help="The task (the registered model's name), e.g. churn.")],
    version: Annotated[int | None, typer.Option(help="Model version (default: the champion).")] = None,
    since: Annotated[str | None, typer.Option(help="Window start, ISO 8601 (inclusive, on scored_at; UTC if "
                                                   "no offset).")] = None,
    until: Annotated[str | None, typer.Option(help="Window end, ISO 8601 (exclusive; default: now).")] = None,
    outcomes: Annotated[Path | None, typer.Option(help="Dataset folder whose labels are joined to the logged "
                                                       "rows (customer_ref, as_of) to measure performance.")] = None,
    fail_on: Annotated[str | None, typer.Option("--fail-on", help="warn | alert: exit 10 (warn) or 20 (alert) "
                                                                  "from that level on.")] = None,
    config: ConfigOpt = None,
    settings: SettingsOpt = None,
) -> None:
    """Compare what a model version scored with its reference (the same calendar months after its
    training period, else its test period): drift, data quality, performance."""
    from configs.monitor import load_monitor_config
    from configs.settings import load_settings
    from monitoring.alerts import exit_status
    from monitoring.monitor import monitor_task
    from monitoring.reports import summary_record

    if fail_on is not None and fail_on not in ("warn", "alert"):
        raise ConfigError(f"--fail-on must be warn or alert, got {fail_on!r}")
    cfg = load_monitor_config(config)
    result = monitor_task(task, load_settings(settings), cfg, version=version, since=since, until=until,
                          outcomes=outcomes, echo=_err)
    for c in result.checks:
        _err(f"  {c.name:<17} {c.level:<5} {'[estimate] ' if c.estimated else ''}{c.detail}")
    _err(f"{result.model_name} v{result.version}: {result.level.upper()} (window {result.window['name']}); "
         f"reports in {result.report_dir}")
    payload = summary_record(result.to_dict())
    payload["report_dir"] = str(result.report_dir) if result.report_dir else None
    payload["monitor_json"] = str(result.report_dir / "monitor.json") if result.report_dir else None
    payload["artifact_path"] = result.artifact_path
    typer.echo(json.dumps(payload, default=str))
    status = exit_status(result.level, fail_on)
    if status:
        raise typer.Exit(code=status)


@user_errors
def compliance(
    task: Annotated[str, typer.Option(help="The task (the registered model's name), e.g. churn.")],
    version: Annotated[int | None, typer.Option(help="Model version (default: the champion).")] = None,
    config: ConfigOpt = None,
    settings: SettingsOpt = None,
) -> None:
    """Write the compliance pack of a model version: one self-contained HTML page."""
    from configs.monitor import load_monitor_config
    from configs.settings import load_settings
    from monitoring.compliance import compliance_pack

    pack = compliance_pack(task, load_settings(settings), load_monitor_config(config), version=version)
    _err(f"{pack.model_name} v{pack.version}: compliance pack written to {pack.path}")
    typer.echo(json.dumps({"model_name": pack.model_name, "version": pack.version, "path": str(pack.path),
                           "run_id": pack.run_id, "artifact_path": pack.artifact_path}))
