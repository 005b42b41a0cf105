"""`tenure promote`: move a model's `challenger` to `champion` if it passes the gates.

Prints a table of the gates, then one JSON line
`{"model_name", "version", "promoted", "forced", "status", "reason"}`.

Exit codes: 0 promoted (or forced), 3 refused (a gate failed; the refusal is recorded on the
version and the champion is untouched), 2 the promotion could not be evaluated (the error names
what is missing). Heavy libraries load inside the command, so `tenure --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from configs.console import SettingsOpt, user_errors


@user_errors
def promote(
    task: Annotated[str, typer.Option(help="Registered model to promote: the task name "
                                           "(such as churn) or your dataset config's name.")],
    force: Annotated[bool, typer.Option("--force", help="Promote even if gates fail (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why; recorded on the model version. Required with --force.")] = None,
    actor: Annotated[str | None, typer.Option(help="Who decides (default: env TENURE_ACTOR, else the OS user).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML file overriding configs/promote.yaml.")] = None,
    settings: SettingsOpt = None,
) -> None:
    """Gate the challenger against the champion on the same test window; record the decision."""
    from configs.promote import load_promote_config
    from configs.settings import load_settings
    from tenure.promotion import promote as run_promotion
    from training.gates import format_gates
    from training.promote import EXIT_REFUSED

    cfg = load_promote_config(config)
    decision = run_promotion(task, load_settings(settings), cfg, force=force, reason=reason, actor=actor)
    typer.echo(format_gates(decision))
    typer.echo(json.dumps({
        "model_name": decision.model_name,
        "version": decision.challenger_version,
        "promoted": decision.promoted,
        "forced": decision.forced,
        "status": decision.status,
        "reason": decision.reason,
    }))
    if not decision.promoted:
        raise typer.Exit(code=EXIT_REFUSED)
