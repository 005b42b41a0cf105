"""Sections `optuna` and `log` of the `scale` benchmark (`make bench BENCH=scale SECTIONS=optuna,log`):

- `optuna`: one Optuna study on PostgreSQL with the same trial budget, run by 1 worker with 2
  LightGBM threads against 2 workers (`tenure train --workers 2`) with 1 thread each: the same
  two cores either way. Wall time of the search (first trial start to last trial end) and of the
  whole `train_task`, trials run, repeated parameters, best CV value.
- `log`: the service (`tenure serve`, 2 workers, the churn champion) under 32 concurrent clients
  for 60 s (`/predict_churn`, one customer per request), once with the prediction log on
  PostgreSQL and once on SQLite, one after the other in the same run: requests per second,
  latency, and from the log afterwards the rows lost (answered 200 but not logged) and duplicated
  (a request id logged twice), which must both be 0.

Self-contained: a private PostgreSQL (`benchmarks.stack`), a generated dataset and a small churn
model trained and promoted in the section's work folder (MLflow on SQLite there). Each arm records
the 1-minute load average before and after it: the machine is shared, so read the ratios inside
one run, not the absolute times.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

OPTUNA_CUSTOMERS, OPTUNA_MONTHS, OPTUNA_TRIALS = 20_000, 36, 16
LOG_CLIENTS, LOG_SECONDS = 32, 60
SERVE_CUSTOMERS, SERVE_MONTHS = 3_000, 30


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _featureset(home: Path, customers: int, months: int, seed: int) -> Path:
    from configs import load_config
    from configs.data import DataConfig
    from configs.features import FeaturesConfig
    from features.build import build_featuresets
    from features.synthetic import generate_dataset

    data = home / "data" / "bench"
    generate_dataset(DataConfig(name="bench", customers=customers, months=months, seed=seed), data, progress=False)
    return build_featuresets(data, ["churn"], home / "features" / "bench", load_config(FeaturesConfig, "features"),
                             progress=False)["churn"]


# ---- optuna -------------------------------------------------------------------------------------

def _search_span(storage: str, study_name: str) -> dict[str, Any]:
    import optuna

    trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
    done = [t for t in trials if t.datetime_complete is not None]
    params = [json.dumps(t.params, sort_keys=True) for t in trials]
    values = [t.value for t in trials if t.value is not None]
    return {"trials": len(trials), "complete": sum(t.state.name == "COMPLETE" for t in trials),
            "pruned": sum(t.state.name == "PRUNED" for t in trials),
            "repeated_params": len(params) - len(set(params)),
            "workers_seen": len({t.user_attrs.get("tenure.worker") for t in trials}),
            "search_seconds": round(max(t.datetime_complete for t in done).timestamp()
                                    - min(t.datetime_start for t in done).timestamp(), 1),
            "best_value": round(max(values), 5) if values else None}


def optuna_section(workdir: Path) -> tuple[dict[str, Any], str]:
    """2 Optuna workers against 1 on the same trial budget."""
    from benchmarks.stack import private_postgres

    with private_postgres(workdir / "pg") as server:
        result = _optuna(workdir, server)
    return result, _optuna_table(result)


def log_section(workdir: Path) -> tuple[dict[str, Any], str]:
    """The prediction log on PostgreSQL against SQLite under 32 clients."""
    from benchmarks.stack import private_postgres

    with private_postgres(workdir / "pg") as server:
        result = _log(workdir, server)
    return result, _log_table(result)


def _optuna(tmp: Path, server: str) -> dict[str, Any]:
    import pandas as pd

    from benchmarks.stack import create_database
    from configs.settings import Settings
    from configs.train import load_train_config
    from training.train import passive_openmp, train_task

    passive_openmp()
    path = _featureset(tmp / "home", OPTUNA_CUSTOMERS, OPTUNA_MONTHS, seed=101)
    arms = []
    for workers, threads in ((1, 2), (2, 1)):
        storage = create_database(server, f"optuna_{workers}w_{uuid.uuid4().hex[:6]}")
        settings = Settings(home=tmp / f"home-{workers}", optuna_storage=storage)
        cfg = load_train_config(None, trials=OPTUNA_TRIALS)
        cfg = cfg.model_copy(update={"num_threads": threads})
        load_before = _load()
        t0 = time.perf_counter()
        result = train_task("churn", path, cfg, settings, workers=workers)
        total = time.perf_counter() - t0
        arms.append({"workers": workers, "threads_per_worker": threads, "train_seconds": round(total, 1),
                     "version": result.version, "test_roc_auc": round(result.test_metrics["roc_auc"], 5),
                     **_search_span(storage, result.study_name), "load_before": load_before, "load_after": _load()})
        print(f"optuna: {arms[-1]}", flush=True)
    one, two = arms
    return {"description": "2 Optuna workers (`tenure train --workers 2`, 1 LightGBM thread each) against 1 worker "
                           "(2 threads) on one PostgreSQL study with the same trial budget: wall time, trials, "
                           "repeated parameters, best value.",
            "customers": OPTUNA_CUSTOMERS, "months": OPTUNA_MONTHS, "trial_budget": OPTUNA_TRIALS,
            "feature_rows": len(pd.read_parquet(path, columns=["customer_id"])),
            "arms": arms, "search_speedup": round(one["search_seconds"] / two["search_seconds"], 2),
            "train_speedup": round(one["train_seconds"] / two["train_seconds"], 2)}


# ---- prediction log -------------------------------------------------------------------------------

def _champion(tmp: Path) -> tuple[dict[str, str], list[dict]]:
    """A churn champion in a temporary workspace and the requests to send (latest snapshot's customers)."""
    from configs.promote import load_promote_config
    from configs.settings import Settings
    from configs.train import load_train_config
    from features.build import scoring_frame
    from serving.schemas import request_records
    from training.promote import promote
    from training.train import train_task

    home = tmp / "serve-home"
    path = _featureset(home, SERVE_CUSTOMERS, SERVE_MONTHS, seed=202)
    settings = Settings(home=home)
    train_task("churn", path, load_train_config(None, trials=2), settings)
    promote("churn", settings, load_promote_config(), force=True, reason="scale benchmark", actor="benchmark")
    records = request_records(scoring_frame(home / "data" / "bench", eligible_for="churn"))
    env = {"TENURE_HOME": str(home), "MLFLOW_TRACKING_URI": settings.tracking_uri}
    return env, records


async def _drive(url: str, records: list[dict], clients: int, seconds: float) -> dict[str, Any]:
    import httpx

    ids: list[str] = []
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop = time.perf_counter() + seconds

    async def client(k: int, http: httpx.AsyncClient) -> None:
        i = k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                r = await http.post("/predict_churn", json=records[i % len(records)])
                code = r.status_code
            except httpx.HTTPError:
                code = -1
            latencies.append(time.perf_counter() - t0)
            statuses[code] = statuses.get(code, 0) + 1
            if code == 200:
                ids.append(r.json()["request_id"])
            i += clients

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(k, http) for k in range(clients)))
        elapsed = time.perf_counter() - t0
    lat = sorted(latencies)
    return {"answered_ids": ids, "requests": len(latencies), "statuses": {str(k): v for k, v in statuses.items()},
            "seconds": round(elapsed, 1), "req_per_s": round(len(ids) / elapsed, 1),
            "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
            "p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 1) if lat else None}


def _serve_and_drive(env: dict[str, str], log_target: str, records: list[dict], workdir: Path) -> dict[str, Any]:
    from benchmarks.stack import tenure_service
    from monitoring.predictions import read_log

    cfg = workdir / "serve.yaml"
    cfg.write_text("tasks: [churn]\n")
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TENURE_", "MLFLOW_"))}, **env,
                "TENURE_PREDICTION_LOG": log_target, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    with tenure_service(["--workers", "2", "--config", str(cfg)], full_env,
                        workdir / f"serve-{len(list(workdir.glob('serve-*.log')))}.log") as url:
        load_before = _load()
        out = asyncio.run(_drive(url, records, LOG_CLIENTS, LOG_SECONDS))
        out["load_before"], out["load_after"] = load_before, _load()
    answered = out.pop("answered_ids")
    logged = read_log(log_target, model_name="churn").frame["request_id"].astype(str)
    counts = logged.value_counts()
    out["rows_logged"] = int(len(logged))
    out["lost"] = len(set(answered) - set(counts.index))
    out["duplicated"] = int((counts > 1).sum())
    out["logged_not_answered"] = len(set(counts.index) - set(answered))
    return out


def _log(tmp: Path, server: str) -> dict[str, Any]:
    from benchmarks.stack import create_database

    env, records = _champion(tmp)
    arms = {}
    for backend in ("postgresql", "sqlite"):
        target = create_database(server, f"log_{uuid.uuid4().hex[:6]}") if backend == "postgresql" \
            else str(tmp / "bench-predictions.db")
        arms[backend] = _serve_and_drive(env, target, records, tmp)
        print(f"log {backend}: {arms[backend]}", flush=True)
    return {"description": "The service with its prediction log on PostgreSQL against SQLite: 32 concurrent "
                           "clients for 60 s each, one after the other; rows lost (answered, not logged) and "
                           "duplicated (a request id twice) counted from the log afterwards.",
            "clients": LOG_CLIENTS, "seconds": LOG_SECONDS, "service_workers": 2, "endpoint": "/predict_churn",
            "arms": arms, "req_per_s_ratio_pg_to_sqlite": round(arms["postgresql"]["req_per_s"]
                                                                / arms["sqlite"]["req_per_s"], 2)}


def _optuna_table(o: dict[str, Any]) -> str:
    lines = [f"One study on PostgreSQL, {o['trial_budget']} trials, churn on {o['customers']:,} customers x "
             f"{o['months']} months ({o['feature_rows']:,} rows); the same 2 cores either way.", "",
             "| workers x LightGBM threads | trials (complete / pruned) | repeated params | search wall | "
             "train_task wall | best CV value | test ROC AUC | load before / after |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for a in o["arms"]:
        lines.append(f"| {a['workers']} x {a['threads_per_worker']} | {a['trials']} ({a['complete']} / "
                     f"{a['pruned']}) | {a['repeated_params']} | {a['search_seconds']} s | {a['train_seconds']} s | "
                     f"{a['best_value']} | {a['test_roc_auc']} | {a['load_before'][0]} / {a['load_after'][0]} |")
    lines += ["", f"Search {o['search_speedup']}x as fast with 2 workers; the whole `train_task` {o['train_speedup']}x "
              "(it includes loading the data, the children's start and the final fit). Load averages above: the "
              "machine was shared with other jobs."]
    return "\n".join(lines)


def _log_table(g: dict[str, Any]) -> str:
    lines = [f"{g['clients']} concurrent clients for {g['seconds']} s on {g['endpoint']} "
             f"({g['service_workers']} service workers), one backend after the other.", "",
             "| log | req/s | p50 | p99 | answered 200 | other statuses | rows logged | lost | duplicated | "
             "load before / after |", "|---|---:|---:|---:|---:|---|---:|---:|---:|---|"]
    for name, a in g["arms"].items():
        others = {k: v for k, v in a["statuses"].items() if k != "200"}
        lines.append(f"| {name} | {a['req_per_s']} | {a['p50_ms']} ms | {a['p99_ms']} ms | "
                     f"{a['statuses'].get('200', 0)} | {others or '-'} | {a['rows_logged']} | {a['lost']} | "
                     f"{a['duplicated']} | {a['load_before'][0]} / {a['load_after'][0]} |")
    lines += ["", f"PostgreSQL / SQLite throughput: {g['req_per_s_ratio_pg_to_sqlite']}x. PostgreSQL, the service and "
              "the 32 clients share the same 2 cores here (load averages above, other jobs included); a team runs the "
              "database on its own machine."]
    return "\n".join(lines)
