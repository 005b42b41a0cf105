"""Benchmark: Tenure's service against `mlflow models serve` for the churn champion.

Needs a workspace with champions (run `make demo` first; `TENURE_HOME` picks another one). Starts,
in turn, `mlflow models serve --env-manager local` of `models:/churn@champion` and Tenure's
BentoML service, each on 127.0.0.1 and a free port, and drives both with the same bounded Python
load generator (one customer per request, concurrency 1 and 16): Debian's `wrk` when installed
(`apt-get install wrk`; 10 s per measurement), else a bounded Python client. Also times, in process, one-row
predict and pred_contrib as the floor, and `/score` (three models with reasons) at concurrency 1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REQUESTS = {1: 400, 16: 2000}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready within {timeout} s")


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def drive(url: str, bodies: list[dict], concurrency: int, total: int) -> dict[str, float]:
    """POST `total` requests (cycling over `bodies`) from `concurrency` threads; latency stats in ms."""
    import httpx

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        nonlocal errors
        with httpx.Client(timeout=30) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                try:
                    ok = client.post(url, json=bodies[i % len(bodies)]).status_code == 200
                except httpx.HTTPError:
                    ok = False
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    latencies.append(dt)
                    errors += not ok

    warm = httpx.Client(timeout=30)
    for body in bodies[:20]:
        warm.post(url, json=body)
    warm.close()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {"requests": total, "rps": round(total / wall, 1), "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 2), "errors": errors}


def drive_wrk(url: str, body: dict, concurrency: int, seconds: int = 10) -> dict[str, float]:
    """The same POST from wrk (Debian's `wrk`): `concurrency` connections for `seconds`, bounded."""
    import json
    import re
    import shutil

    script = Path(tempfile.mkdtemp(prefix="tenure-wrk-")) / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(json.dumps(body))}\n")
    out = subprocess.run([shutil.which("wrk"), "-t", str(min(2, concurrency)), "-c", str(concurrency),
                          "-d", f"{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        value, unit = float(m.group(1)), m.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 3)

    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return {"requests": total, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50%"), "p99_ms": ms("99%"), "errors": errors, "tool": "wrk"}


def _floor(model: Any, records: list[dict]) -> dict[str, float]:
    """In-process: encode + predict and encode + pred_contrib for one row (median of many)."""
    def timed(fn: Callable[[], Any], n: int = 2000) -> float:
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1000)
        return round(statistics.median(samples), 4)

    rec = records[0]
    return {
        "predict_ms": timed(lambda: model.predict_proba(model.encode_record(rec), num_threads=1)),
        "pred_contrib_ms": timed(lambda: model.contributions(model.encode_record(rec), num_threads=1)),
    }


def run() -> dict:
    import numpy as np

    from benchmarks.results import write_results
    from configs.serve import load_serve_config
    from configs.settings import load_settings
    from features.build import scoring_frame
    from models.registry import load_tenure_model
    from models.tracking import setup_mlflow
    from serving.commands import server_command, server_environment

    settings = load_settings()
    setup_mlflow(settings)
    use_wrk = shutil.which("wrk") is not None and os.environ.get("TENURE_BENCH_CLIENT", "wrk") == "wrk"

    def load(url: str, bodies: list[dict], concurrency: int, total: int) -> dict[str, float]:
        if use_wrk:  # a C load generator: the client is not the bottleneck on 2 cores
            drive(url, bodies[:20], 1, 20)  # warm-up
            return drive_wrk(url, bodies[0], concurrency)
        return drive(url, bodies, concurrency, total)

    model = load_tenure_model("models:/churn@champion")
    dataset = settings.dataset_dir("demo")
    if not (dataset / "manifest.json").exists():
        raise SystemExit(f"no demo dataset in {dataset}: run `make demo` first (or set TENURE_HOME)")
    frame = scoring_frame(dataset).head(500)
    records = []
    for row in frame.to_dict("records"):
        rec = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()
               if k in model.feature_names}
        records.append({"customer_id": str(row["customer_id"]), **rec})
    features_only = [{k: v for k, v in r.items() if k != "customer_id"} for r in records]
    # mlflow starts `uvicorn` by name: the virtual environment's bin must be on PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    results: dict[str, Any] = {"floor": _floor(model, features_only)}

    # mlflow models serve (the pyfunc of the same registered version)
    port = _free_port()
    mlflow_cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/churn@champion",
                  "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "--workers", "2"]
    proc = subprocess.Popen(mlflow_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        _wait(f"http://127.0.0.1:{port}/ping", proc)
        bodies = [{"dataframe_records": [r]} for r in features_only]
        results["mlflow"] = {c: load(f"http://127.0.0.1:{port}/invocations", bodies, c, n)
                             for c, n in REQUESTS.items()}
    finally:
        _stop(proc)

    # Tenure's BentoML service (2 workers, as configs/serve.yaml ships)
    cfg = load_serve_config(None)
    port = _free_port()
    log = Path(settings.home) / "logs" / "bench-serve.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    bench_settings = settings.model_copy(update={"prediction_log": Path(settings.home) / "bench-predictions.db"})
    senv = server_environment(bench_settings, None, {})
    with open(log, "ab") as fh:
        proc = subprocess.Popen(server_command("127.0.0.1", port), env=senv, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait(f"http://127.0.0.1:{port}/readyz", proc)
        results["tenure"] = {c: load(f"http://127.0.0.1:{port}/predict_churn", records, c, n)
                             for c, n in REQUESTS.items()}
        results["tenure_score_all_three_with_reasons"] = {1: load(f"http://127.0.0.1:{port}/score", records, 1, 400)}
    finally:
        _stop(proc)

    m16, t16 = results["mlflow"][16], results["tenure"][16]
    m1, t1 = results["mlflow"][1], results["tenure"][1]
    summary = {
        "rps_ratio_c16": round(t16["rps"] / m16["rps"], 2),
        "p50_ratio_c1_tenure_over_mlflow": round(t1["p50_ms"] / m1["p50_ms"], 3),
        "score_p50_ms_c1": results["tenure_score_all_three_with_reasons"][1]["p50_ms"],
        "workers": cfg.workers,
    }
    result = {"benchmark": "serving",
              "description": "one customer per request against the churn champion: `mlflow models serve "
                             "--env-manager local` (2 workers) vs Tenure's BentoML service (2 workers)",
              "results": results, "summary": summary}
    rows = ["| server | endpoint | concurrency | requests | rps | p50 ms | p99 ms | errors |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, endpoint, key in (("mlflow models serve", "/invocations", "mlflow"),
                                ("Tenure", "/predict_churn", "tenure"),
                                ("Tenure", "/score (3 models + reasons)", "tenure_score_all_three_with_reasons")):
        for c, r in results[key].items():
            rows.append(f"| {name} | {endpoint} | {c} | {r['requests']} | {r['rps']} | {r['p50_ms']} | "
                        f"{r['p99_ms']} | {r['errors']} |")
    rows.append(f"\nIn-process floor (one row): predict {results['floor']['predict_ms']} ms, "
                f"pred_contrib {results['floor']['pred_contrib_ms']} ms.")
    rows.append(f"Tenure / mlflow requests per second at concurrency 16: {summary['rps_ratio_c16']}x; "
                f"p50 at concurrency 1: Tenure {t1['p50_ms']} ms vs mlflow {m1['p50_ms']} ms "
                f"({summary['p50_ratio_c1_tenure_over_mlflow']}).")
    write_results("serving", result, "\n".join(rows))
    print("\n".join(rows))
    return result


if __name__ == "__main__":
    run()
