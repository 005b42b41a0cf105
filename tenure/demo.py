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
from configs.data import DataConfig
from configs.settings import Settings

DRIFT_SCENARIO = "downturn"


class DemoStepError(TenureError):
    def __init__(self, step: str, cause: BaseException):
        self.step, self.cause = step, cause
        super().__init__(f"demo step '{step}' failed: {type(cause).__name__}: {cause}")


@dataclass
class DemoState:
    settings: Settings
    data: DataConfig  # size and seed of the generated datasets (name and scenario are the demo's)
    outputs: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def baseline_dir(self) -> Path:
        return self.settings.dataset_dir("demo")

    @property
    def drift_dir(self) -> Path:
        return self.settings.dataset_dir(f"demo-{DRIFT_SCENARIO}")


def _generate(state: DemoState) -> None:
    from features.synthetic import generate_dataset

    for name, scenario, out in (("demo", "baseline", state.baseline_dir),
                                (f"demo-{DRIFT_SCENARIO}", DRIFT_SCENARIO, state.drift_dir)):
        cfg = DataConfig(**{**state.data.model_dump(), "name": name, "scenario": scenario})
        manifest = generate_dataset(cfg, out, progress=True)
        state.outputs[f"dataset:{scenario}"] = out
        if scenario != "baseline":
            state.outputs["drift_shifted_features"] = manifest["scenario"]["shifted_features"]


def _features(state: DemoState) -> None:
    from configs import load_config
    from configs.features import FeaturesConfig
    from features.build import build_featuresets
    from models import task_names

    cfg = load_config(FeaturesConfig, "features")
    paths = build_featuresets(state.baseline_dir, list(task_names()), state.settings.features_dir / "demo", cfg)
    state.outputs["featuresets"] = paths


def _train(state: DemoState) -> None:
    from rich.progress import Progress

    from configs.train import load_train_config
    from training.train import train_task

    # a trial budget without a time limit, so the same seed gives the same models on any machine
    cfg = load_train_config(None, trials=load_train_config(None).tuning.n_trials)
    results = {}
    with Progress(transient=True) as bar:
        job = bar.add_task("training", total=len(state.outputs["featuresets"]))
        for task, path in state.outputs["featuresets"].items():
            bar.update(job, description=f"tuning and training {task}")
            results[task] = train_task(task, path, cfg, state.settings)
            bar.advance(job)
    state.outputs["trained"] = results


def _promote(state: DemoState) -> None:
    from configs.promote import load_promote_config
    from training.promote import promote

    cfg = load_promote_config(None)
    decisions = {}
    for task in state.outputs["trained"]:
        decisions[task] = promote(task, state.settings, cfg, actor="tenure-demo")
        if not decisions[task].promoted:
            failed = ", ".join(g.name for g in decisions[task].failed_gates)
            raise TenureError(f"{task} version {decisions[task].challenger_version} was refused by the gates: {failed}")
    state.outputs["promoted"] = decisions


def _serve(state: DemoState) -> None:
    import os
    import signal
    import subprocess

    import httpx

    from configs.serve import load_serve_config
    from serving.commands import server_command, server_environment

    cfg = load_serve_config(None)
    pid_file = state.settings.home / "serve.pid"
    if pid_file.exists():  # a service from an earlier demo: stop it, it serves the old champions
        try:
            os.killpg(int(pid_file.read_text().strip()), signal.SIGTERM)
            time.sleep(2)
        except (ProcessLookupError, ValueError, PermissionError):
            pass
    log_path = state.settings.home / "logs" / "serve.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = server_environment(state.settings, None, {})
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(server_command(cfg.host, cfg.port), env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file.write_text(str(proc.pid))
    url = f"http://{cfg.host}:{cfg.port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TenureError(f"the service exited with code {proc.returncode}; see {log_path}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
        raise TenureError(f"the service did not become ready within 180 s; see {log_path}")
    state.outputs.update(service_url=url, service_pid=proc.pid, service_log=log_path, pid_file=pid_file)


def _traffic(state: DemoState) -> None:
    import datetime as dt

    import httpx
    from rich.progress import Progress

    from features.build import scoring_frame
    from serving.schemas import request_records

    url = state.outputs["service_url"]
    sent = {}
    with Progress(transient=True) as bar, httpx.Client(timeout=60) as client:
        for scenario, dataset_dir in (("baseline", state.baseline_dir), (DRIFT_SCENARIO, state.drift_dir)):
            # customers a new decision is made for: active leases, not already in collections
            frame = scoring_frame(dataset_dir, eligible_for="default_risk")
            as_of = frame["snapshot_date"].iloc[0].date()
            records = request_records(frame)
            started = dt.datetime.now(dt.UTC)
            job = bar.add_task(f"scoring {scenario} customers", total=len(records))
            for i in range(0, len(records), 250):
                chunk = records[i:i + 250]
                resp = client.post(f"{url}/score_batch", json={"customers": chunk, "explain": False})
                if resp.status_code != 200:
                    raise TenureError(f"/score_batch answered {resp.status_code}: {resp.text[:300]}")
                bar.advance(job, len(chunk))
            sent[scenario] = {"rows": len(records), "as_of": str(as_of), "since": started.isoformat(),
                              "until": dt.datetime.now(dt.UTC).isoformat()}
        one = client.post(f"{url}/score", json=records[0])
        if one.status_code != 200:
            raise TenureError(f"/score answered {one.status_code}: {one.text[:300]}")
    state.outputs["traffic"] = sent


def _monitor(state: DemoState) -> None:
    from configs.monitor import load_monitor_config
    from monitoring.monitor import monitor_task

    cfg = load_monitor_config(None)
    traffic = state.outputs["traffic"]
    results = {}
    for task in state.outputs["trained"]:
        for scenario, window in traffic.items():
            results[(task, scenario)] = monitor_task(task, state.settings, cfg, since=window["since"],
                                                     until=window["until"])
    state.outputs["monitoring"] = results


def _compliance(state: DemoState) -> None:
    from configs.monitor import load_monitor_config
    from monitoring.compliance import compliance_pack

    cfg = load_monitor_config(None)
    state.outputs["compliance"] = {task: compliance_pack(task, state.settings, cfg)
                                   for task in state.outputs["trained"]}


STEPS: list[tuple[str, Callable[[DemoState], None]]] = [
    ("generate data", _generate),
    ("build features", _features),
    ("tune and train", _train),
    ("promote", _promote),
    ("start the service", _serve),
    ("send traffic", _traffic),
    ("monitor", _monitor),
    ("compliance packs", _compliance),
]


def run_demo(settings: Settings, customers: int | None = None, months: int | None = None,
             seed: int | None = None) -> DemoState:
    """The demo; `customers`, `months` and `seed` left out are configs/data.yaml's."""
    _quiet_libraries()
    given = {"customers": customers, "months": months, "seed": seed}
    state = DemoState(settings=settings, data=DataConfig(**{k: v for k, v in given.items() if v is not None}))
    for i, (name, step) in enumerate(STEPS, 1):
        typer.secho(f"[{i}/{len(STEPS)}] {name}", bold=True)
        t0 = time.perf_counter()
        try:
            step(state)
        except Exception as exc:  # reported with the step's name
            raise DemoStepError(name, exc) from exc
        state.timings[name] = time.perf_counter() - t0
    _summary(state)
    return state


def _quiet_libraries() -> None:
    """Keep the demo's output to its steps and summary: library chatter goes, errors stay."""
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic", "optuna", "evidently"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def _summary(state: DemoState) -> None:
    out, st = state.outputs, state.settings
    typer.secho("\nTenure demo finished", bold=True, fg=typer.colors.GREEN)
    typer.echo(f"workspace: {st.home.resolve()}")
    typer.echo(f"datasets: {out['dataset:baseline']} (baseline), {out[f'dataset:{DRIFT_SCENARIO}']} "
               f"({DRIFT_SCENARIO}: shifts {', '.join(out.get('drift_shifted_features', []))})")
    typer.echo("\nmodels (out-of-time test window):")
    for task, r in out.get("trained", {}).items():
        m = r.test_metrics
        decision = out.get("promoted", {}).get(task)
        status = "champion" if decision is not None and decision.promoted else "challenger"
        typer.echo(f"  {task:<17} v{r.version} {status:<10} ROC AUC {m['roc_auc']:.3f} (baseline "
                   f"{r.baseline_test_metrics['roc_auc']:.3f})  PR AUC {m['pr_auc']:.3f}  Brier {m['brier']:.4f}  "
                   f"ECE {m['ece']:.4f}  lift@10% {m['lift_top10']:.2f}")
    if out.get("monitoring"):
        typer.echo("\nmonitoring (live traffic against each model version's reference):")
        for (task, scenario), res in out["monitoring"].items():
            flagged = res.flagged_features
            shown = ", ".join(flagged[:6]) + (f" and {len(flagged) - 6} more" if len(flagged) > 6 else "")
            reference = res.reference.get("kind", "?")
            if res.reference.get("months"):
                reference += " " + ", ".join(res.reference["months"])
            pred = res.stats.prediction
            pred_text = f"{pred.method_name} {pred.score:.3f}" if pred.score is not None else "not tested"
            typer.echo(f"  {task:<17} {scenario:<9} {res.level.upper():<5} {res.rows:>5} rows vs {reference}; "
                       f"prediction drift {pred_text}; drifted features: {len(flagged)} ({shown or 'none'})")
            typer.echo(f"      report: {res.report_dir / res.files['index_html']}")
    if out.get("compliance"):
        typer.echo("\ncompliance packs:")
        for task, pack in out["compliance"].items():
            typer.echo(f"  {task:<17} {pack.path}")
    if out.get("service_url"):
        url = out["service_url"]
        typer.echo(f"\nservice: {url}  (API docs: {url}/ , OpenAPI: {url}/docs.json, model info: {url}/model_info)")
        typer.echo(f"  log: {out['service_log']}; predictions logged to {st.prediction_log_target}")
        typer.echo(f"  stop it with: kill -TERM -$(cat {out['pid_file']})")
    typer.echo(f"\nMLflow UI: mlflow ui --backend-store-uri {st.tracking_uri} --port 5000  ->  http://127.0.0.1:5000")
    typer.echo(f"Optuna dashboard: optuna-dashboard {st.optuna_storage_url}")
    total = sum(state.timings.values())
    typer.echo("\ntimings: " + ", ".join(f"{k} {v:.0f}s" for k, v in state.timings.items()) + f" (total {total:.0f}s)")
