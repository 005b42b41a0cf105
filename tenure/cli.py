"""The `tenure` command: one entry point in front of every stage.

Commands are thin: they parse options, load the stage's config and call one importable
function. Heavy libraries (mlflow, lightgbm, shap, bentoml, evidently) are imported inside the
commands, so `tenure --help` starts fast.
"""

from __future__ import annotations

import typer

import training.commands
from configs.console import user_errors
from features.commands import data_app, features_app
from monitoring.commands import compliance, monitor
from serving.commands import compare as compare_command
from serving.commands import log_app
from serving.commands import serve as serve_command
from tenure.promote_cli import promote as promote_command
from tenure.retrain import retrain_command

app = typer.Typer(
    name="tenure",
    help="Tenure: customer risk and value models for leasing, rental and property services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.command("promote")(promote_command)
app.command("train")(training.commands.train)
app.command("predict")(training.commands.predict)
app.command("retrain")(retrain_command)
app.command("serve")(serve_command)
app.command("compare")(compare_command)
app.command("monitor")(monitor)
app.command("compliance")(compliance)
app.add_typer(log_app, name="log")


def main() -> None:  # pragma: no cover - console entry point
    import os

    # LightGBM's OpenMP threads spin while waiting unless told otherwise, which on a busy 2-core
    # machine makes training many times slower; it must be set before lightgbm is imported
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()



@app.command("demo")
@user_errors
def demo(
    customers: int | None = typer.Option(None, help="Customers in the demo dataset (default: configs/data.yaml)."),
    months: int | None = typer.Option(None, help="Months of history (default: configs/data.yaml)."),
    seed: int | None = typer.Option(None, help="Random seed (default: configs/data.yaml)."),
) -> None:
    """Run the whole platform end to end on the embedded default and print where everything went."""
    from configs.settings import load_settings
    from tenure.demo import run_demo

    run_demo(load_settings(), customers=customers, months=months, seed=seed)
