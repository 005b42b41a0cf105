"""`tenure retrain`: the closed loop monitor -> train -> gated promote, for one task.

1. Monitor the task's champion over a window of the prediction log (`monitoring.monitor`,
   `configs/monitor.yaml`), as `tenure monitor` does: reports written and logged to MLflow.
2. Only when the monitor's overall level is at least `if_level` (ok < warn < alert): train a new
   version on the given feature set (`training.train.train_task`, alias `challenger`) and tag it
   with what triggered it (`tenure.retrain.trigger`).
3. Promote it through the gates (`tenure.promotion.promote`, never forced): the alias `champion`
   moves only when every gate passes. A running service picks the new champion up by polling the
   alias (see `configs/serve.yaml`); nothing here touches the service.

Reads and writes what those three stages read and write; adds nothing of its own except the tag.
The feature set is the caller's: rebuild it from fresh data first (`tenure features build`), so
the new version learns from the data that drifted. It is app-layer code: the one place monitoring,
training and promotion (with the prediction log's shadow evidence) run together.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from configs import ConfigError
from configs.console import SettingsOpt, user_errors
from configs.monitor import MonitorConfig
from configs.promote import PromoteConfig
from configs.settings import Settings
from configs.train import TrainConfig

SKIPPED, PROMOTED, REFUSED = "skipped", "promoted", "refused"
TRIGGER_TAG = "tenure.retrain.trigger"


@dataclass
class RetrainResult:
    task: str
    level: str  # the monitor's overall level
    if_level: str
    action: str  # skipped | promoted | refused
    monitored_version: str
    window: str
    report_dir: str | None
    trained_version: str | None = None
    run_id: str | None = None
    champion_version: str | None = None  # after the loop
    failed_gates: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary (stderr of `tenure retrain`)."""
        head = (f"{self.task}: monitor {self.level.upper()} on champion v{self.monitored_version} "
                f"(window {self.window}; retrain from {self.if_level})")
        if self.action == SKIPPED:
            return f"{head} -> skipped: champion v{self.champion_version} stays"
        trained = f"trained v{self.trained_version}"
        if self.action == PROMOTED:
            return f"{head} -> {trained} -> promoted: champion v{self.champion_version}"
        return (f"{head} -> {trained} -> refused by {', '.join(self.failed_gates)}: "
                f"champion v{self.champion_version} stays")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def level_reached(level: str, if_level: str) -> bool:
    """Whether the monitor's `level` is at least `if_level` (ok < warn < alert; not_measured: never)."""
    from monitoring.alerts import reached

    return reached(level, if_level)


def retrain(task: str, featureset: Path, settings: Settings, *, if_level: str, monitor_cfg: MonitorConfig,
            train_cfg: TrainConfig, promote_cfg: PromoteConfig, since: str | None = None,
            until: str | None = None, outcomes: Path | None = None, actor: str | None = None,
            echo: Callable[[str], None] | None = None) -> RetrainResult:
    """Monitor the champion of `task`; from `if_level` on, train on `featureset` and promote through the gates."""
    import mlflow

    from monitoring.monitor import monitor_task
    from tenure.promotion import promote
    from training.train import train_task

    say = echo or (lambda _msg: None)
    watched = monitor_task(task, settings, monitor_cfg, since=since, until=until, outcomes=outcomes, echo=echo)
    result = RetrainResult(task=task, level=watched.level, if_level=if_level, action=SKIPPED,
                           monitored_version=str(watched.version), window=str(watched.window.get("name")),
                           report_dir=str(watched.report_dir) if watched.report_dir else None,
                           champion_version=str(watched.version))
    if not level_reached(watched.level, if_level):
        return result
    flagged = ", ".join(c.name for c in watched.checks if level_reached(c.level, if_level))
    say(f"{task}: monitor level {watched.level} ({flagged}) reaches {if_level}: training on {featureset}")
    trained = train_task(task, featureset, train_cfg, settings, echo=echo)
    trigger = (f"monitor {watched.level} ({flagged}) on champion v{watched.version}, window "
               f"{result.window}; reports {result.report_dir}")
    mlflow.MlflowClient(settings.tracking_uri).set_model_version_tag(trained.model_name, trained.version,
                                                                     TRIGGER_TAG, trigger[:5000])
    decision = promote(trained.model_name, settings, promote_cfg, actor=actor or "tenure retrain")
    result.trained_version, result.run_id = str(trained.version), trained.run_id
    result.action = PROMOTED if decision.promoted else REFUSED
    result.champion_version = str(decision.challenger_version if decision.promoted else decision.champion_version)
    result.failed_gates = [g.name for g in decision.failed_gates]
    return result


@user_errors
def retrain_command(  # the `tenure retrain` command
    task: Annotated[str, typer.Option(help="The task whose champion is watched, e.g. churn.")],
    if_level: Annotated[str, typer.Option("--if-level", help="ok | warn | alert: train and promote only when the "
                                                             "monitor's level is at least this.")] = "alert",
    dataset: Annotated[str, typer.Option(help="Feature sets under <home>/features/<dataset>/<task>.parquet "
                                              "(rebuild them from fresh data first).")] = "demo",
    featureset: Annotated[Path | None, typer.Option(help="A feature-set file to train on instead.")] = None,
    since: Annotated[str | None, typer.Option(help="Monitoring window start, ISO 8601 (on scored_at).")] = None,
    until: Annotated[str | None, typer.Option(help="Monitoring window end, ISO 8601 (default: now).")] = None,
    outcomes: Annotated[Path | None, typer.Option(help="Dataset folder whose labels are joined to the logged "
                                                       "rows (measured performance).")] = None,
    trials: Annotated[int | None, typer.Option(help="Optuna trials of the training step.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds of search of the training step.")] = None,
    monitor_config: Annotated[Path | None, typer.Option(help="YAML overriding configs/monitor.yaml.")] = None,
    train_config: Annotated[Path | None, typer.Option(help="YAML overriding configs/train.yaml.")] = None,
    promote_config: Annotated[Path | None, typer.Option(help="YAML overriding configs/promote.yaml.")] = None,
    actor: Annotated[str | None, typer.Option(help="Who is recorded as promoting (default: tenure retrain).")] = None,
    settings: SettingsOpt = None,
) -> None:
    """Monitor a champion; from --if-level on, train a new version and promote it through the gates.

    Exit 0: skipped (level below --if-level) or promoted; 3: refused by a gate (the champion stays); 2: an error.
    """
    from training.train import passive_openmp

    passive_openmp()  # before anything imports lightgbm
    from configs.monitor import load_monitor_config
    from configs.promote import load_promote_config
    from configs.settings import load_settings
    from configs.train import load_train_config
    from monitoring.alerts import LEVELS
    from training.promote import EXIT_REFUSED

    if if_level not in LEVELS:
        raise ConfigError(f"--if-level must be one of {', '.join(LEVELS)}, got {if_level!r}")
    from training.commands import parse_train_tasks

    parse_train_tasks(task)
    st = load_settings(settings)
    result = retrain(task, featureset or st.featureset_path(dataset, task), st, if_level=if_level,
                         monitor_cfg=load_monitor_config(monitor_config),
                         train_cfg=load_train_config(train_config, trials=trials, timeout=timeout),
                         promote_cfg=load_promote_config(promote_config), since=since, until=until,
                         outcomes=outcomes, actor=actor, echo=_err)
    _err(result.line())
    typer.echo(json.dumps(result.to_dict()))
    if result.action == REFUSED:
        raise typer.Exit(code=EXIT_REFUSED)


def _err(message: str) -> None:
    typer.echo(message, err=True)
