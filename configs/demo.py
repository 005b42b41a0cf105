"""`tenure demo`: the whole platform end to end on the embedded default.

Each step is a named function; a failure stops the demo with the step's name and the cause.
Everything goes under the workspace (`<home>`), so `make clean` resets it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from configs import TenureError
from configs.settings import Settings

DEMO_CUSTOMERS = 5000
DEMO_MONTHS = 36
DEMO_SEED = 42
DRIFT_SCENARIO = "downturn"


class DemoStepError(TenureError):
    def __init__(self, step: str, cause: BaseException):
        self.step, self.cause = step, cause
        super().__init__(f"demo step '{step}' failed: {type(cause).__name__}: {cause}")


@dataclass
class DemoState:
    settings: Settings
    customers: int
    months: int
    seed: int
    outputs: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def baseline_dir(self) -> Path:
        return self.settings.dataset_dir("demo")

    @property
    def drift_dir(self) -> Path:
        return self.settings.dataset_dir(f"demo-{DRIFT_SCENARIO}")


def _generate(state: DemoState) -> None:
    from configs.data import DataConfig
    from features.generate import generate_dataset

    for name, scenario, out in (("demo", "baseline", state.baseline_dir),
                                (f"demo-{DRIFT_SCENARIO}", DRIFT_SCENARIO, state.drift_dir)):
        cfg = DataConfig(name=name, customers=state.customers, months=state.months, seed=state.seed,
                         scenario=scenario)
        manifest = generate_dataset(cfg, out, progress=True)
        state.outputs[f"dataset:{scenario}"] = out
        if scenario != "baseline":
            state.outputs["drift_shifted_features"] = manifest["scenario"]["shifted_features"]


def _features(state: DemoState) -> None:
    from configs import load_config
    from configs.features import FeaturesConfig
    from features.build import build_featuresets
    from models import TASKS

    cfg = load_config(FeaturesConfig, "features")
    paths = build_featuresets(state.baseline_dir, list(TASKS), state.settings.features_dir / "demo", cfg)
    state.outputs["featuresets"] = paths


STEPS: list[tuple[str, Callable[[DemoState], None]]] = [
    ("generate data", _generate),
    ("build features", _features),
]


def run_demo(settings: Settings, customers: int = DEMO_CUSTOMERS, months: int = DEMO_MONTHS,
             seed: int = DEMO_SEED) -> DemoState:
    state = DemoState(settings=settings, customers=customers, months=months, seed=seed)
    for i, (name, step) in enumerate(STEPS, 1):
        typer.secho(f"[{i}/{len(STEPS)}] {name}", bold=True)
        t0 = time.perf_counter()
        try:
            step(state)
        except Exception as exc:  # noqa: BLE001 - reported with the step's name
            raise DemoStepError(name, exc) from exc
        state.timings[name] = time.perf_counter() - t0
    _summary(state)
    return state


def _summary(state: DemoState) -> None:
    typer.secho("\nTenure demo finished", bold=True, fg=typer.colors.GREEN)
    typer.echo(f"  workspace:        {state.settings.home.resolve()}")
    for scenario in ("baseline", DRIFT_SCENARIO):
        typer.echo(f"  dataset ({scenario}): {state.outputs[f'dataset:{scenario}']}")
    typer.echo(f"  drift scenario shifts: {', '.join(state.outputs.get('drift_shifted_features', []))}")
    for task, path in state.outputs.get("featuresets", {}).items():
        typer.echo(f"  feature set {task:<13} {path}")
    total = sum(state.timings.values())
    typer.echo("  timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in state.timings.items()) + f" (total {total:.0f}s)")
