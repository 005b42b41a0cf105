"""Section `features` of `make bench BENCH=scale`: feature sets beyond one machine's memory.

The same three feature sets (default_risk, churn, upsell; 36 months) built by the pandas path
(`tenure features build`, one process) and by the Dask path (`tenure features build --engine dask`
on a cluster of 2 workers of 1 thread with a memory limit each, started as a team would: `dask
scheduler` and `dask worker`), one after the other on one machine. Peak memory is the sum of the
resident memory of every process involved (the command and its children; for Dask also the
scheduler and the workers with their nanny), sampled every 0.2 s. The data is generated beforehand
in chunks (`tenure data generate --chunk-customers`), outside the measurement.

Sizes: the pandas path at the largest size it does in a few GB (100k customers), Dask at the same
size (same content hashes expected) and at 1M customers. `SCALE_FEATURES_CUSTOMERS=20000,50000`
(pandas size, Dask size) for a quick run. `SCALE_FEATURES_DATA=DIR` reuses datasets generated
beforehand into `DIR/c<customers>` with their timing in `DIR/c<customers>.generate.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
MONTHS = 36
SEED = 17
CHUNK_CUSTOMERS = 50_000
PARTITION_CUSTOMERS = 25_000
WORKERS = 2
MEMORY_LIMIT = "3GB"
SAMPLE_SECONDS = 0.2


def _tree_rss(pids: list[int]) -> int:
    """Bytes resident in the processes `pids` and all their descendants (each counted once)."""
    import psutil

    seen: dict[int, int] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                seen[p.pid] = p.memory_info().rss
    return sum(seen.values())


def measure(cmd: list[str], env: dict[str, str], also: list[int] = (), log: Path | None = None) -> dict[str, Any]:
    """Run `cmd` to the end; wall time and the peak of the summed RSS of it and the `also` trees."""
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    peak = 0
    try:
        while proc.poll() is None:
            peak = max(peak, _tree_rss([proc.pid, *also]))
            time.sleep(SAMPLE_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if log:
            out.close()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        tail = log.read_text()[-3000:] if log else ""
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    return {"wall_s": round(wall, 1), "peak_rss_gb": round(peak / 1e9, 2)}


@contextlib.contextmanager
def dask_cluster(workdir: Path, env: dict[str, str]) -> Iterator[tuple[str, list[int]]]:
    """A scheduler and `WORKERS` workers (1 thread, `MEMORY_LIMIT` each) on 127.0.0.1: the address
    and the PIDs to measure; stopped by PID (their process groups) when the block ends."""
    from benchmarks.stack import free_port

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = workdir / "dask-logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", "127.0.0.1:0"], env=env, start_new_session=True,
                              stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT)]  # noqa: SIM115
    procs.append(subprocess.Popen(
        [str(BIN / "dask"), "worker", address, "--host", "127.0.0.1", "--nworkers", str(WORKERS), "--nthreads", "1",
         "--memory-limit", MEMORY_LIMIT, "--local-directory", str(workdir / "dask-worker-space")],
        env=env, start_new_session=True, stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT))  # noqa: SIM115
    try:
        from distributed import Client

        deadline = time.monotonic() + 120
        with Client(address, timeout="60s") as client:
            while len(client.scheduler_info(n_workers=-1)["workers"]) < WORKERS:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Dask workers did not come up; see {logs}")
                time.sleep(0.5)
        yield address, [p.pid for p in procs]
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def features_section(workdir: Path) -> tuple[dict[str, Any], str]:
    from features.featureset import read_metadata

    sizes = [int(s) for s in os.environ.get("SCALE_FEATURES_CUSTOMERS", "100000,1000000").split(",")]
    pandas_n, dask_n = sizes[0], sizes[-1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENURE_", "MLFLOW_"))}
    env["TENURE_HOME"] = str(workdir / "home")
    tenure = str(BIN / "tenure")
    datasets, runs = {}, []
    reuse = Path(os.environ["SCALE_FEATURES_DATA"]) if os.environ.get("SCALE_FEATURES_DATA") else None
    for n in sorted({pandas_n, dask_n}):
        if reuse is not None and (reuse / f"c{n}" / "manifest.json").exists() and (reuse / f"c{n}.generate.json").exists():
            # generated earlier with the same command and seed (the timing file is written by the same
            # `measure`): generation is not part of the measurement anyway
            datasets[n] = {"dir": reuse / f"c{n}", "generate": json.loads((reuse / f"c{n}.generate.json").read_text())}
            print(f"   reusing {datasets[n]['dir']} ({n:,} customers)", flush=True)
            continue
        out = workdir / "data" / f"c{n}"
        print(f"   generating {n:,} customers x {MONTHS} months (chunks of {CHUNK_CUSTOMERS:,})", flush=True)
        gen = measure([tenure, "data", "generate", "--customers", str(n), "--months", str(MONTHS), "--seed", str(SEED),
                       "--chunk-customers", str(CHUNK_CUSTOMERS), "--out", str(out), "--no-progress"], env,
                      log=workdir / f"generate-{n}.log")
        datasets[n] = {"dir": out, "generate": gen}
        print(f"   generated in {gen['wall_s']} s, peak {gen['peak_rss_gb']} GB", flush=True)

    def build(engine: str, n: int, extra: list[str], also: list[int]) -> dict[str, Any]:
        out = workdir / "features" / f"{engine}-{n}"
        load = _load()
        print(f"   {engine} build, {n:,} customers", flush=True)
        m = measure([tenure, "features", "build", "--task", "all", "--dataset", str(datasets[n]["dir"]),
                     "--out", str(out), "--no-progress", *extra], env, also, log=workdir / f"{engine}-{n}.log")
        metas = {t: read_metadata(out / f"{t}.parquet") for t in ("default_risk", "churn", "upsell")}
        row = {"engine": engine, "customers": n, "months": MONTHS, **m,
               "feature_rows": sum(x["rows"] for x in metas.values()),
               "content_hashes": {t: x["content_hash"] for t, x in metas.items()},
               "load_before": load, "load_after": _load()}
        print(f"   {row['wall_s']} s, peak {row['peak_rss_gb']} GB, {row['feature_rows']:,} rows", flush=True)
        return row

    runs.append(build("pandas", pandas_n, [], []))
    with dask_cluster(workdir, env) as (address, pids):
        for n in sorted({pandas_n, dask_n}):
            runs.append(build("dask", n, ["--engine", "dask", "--scheduler", address,
                                          "--partition-customers", str(PARTITION_CUSTOMERS)], pids))
    pandas_run = runs[0]
    same = next(r for r in runs[1:] if r["customers"] == pandas_n)
    identical = same["content_hashes"] == pandas_run["content_hashes"]
    big = runs[-1]
    result = {
        "description": ("Point-in-time feature sets (default_risk, churn, upsell; 36 months) on Dask (2 workers "
                        f"of 1 thread, memory limit {MEMORY_LIMIT} each, customer partitions of "
                        f"{PARTITION_CUSTOMERS:,}) against the pandas path in one process: wall time and peak "
                        "memory (summed RSS of every process involved, sampled every 0.2 s)."),
        "runs": runs,
        "generate": {str(n): d["generate"] for n, d in datasets.items()},
        "same_content_hash_at_pandas_size": identical,
        "settings": {"chunk_customers": CHUNK_CUSTOMERS, "partition_customers": PARTITION_CUSTOMERS,
                     "workers": WORKERS, "memory_limit_per_worker": MEMORY_LIMIT, "seed": SEED},
    }
    lines = ["| engine | customers | feature rows | wall | peak memory (all processes) | load before / after |",
             "|---|---:|---:|---:|---:|---|"]
    for r in runs:
        lines.append(f"| {r['engine']} | {r['customers']:,} | {r['feature_rows']:,} | {r['wall_s']} s | "
                     f"{r['peak_rss_gb']} GB | {r['load_before']} / {r['load_after']} |")
    gens = ", ".join(f"{n:,} customers in {d['generate']['wall_s']} s, peak {d['generate']['peak_rss_gb']} GB"
                     for n, d in datasets.items())
    lines += ["", f"At {pandas_n:,} customers Dask / pandas: wall {same['wall_s'] / pandas_run['wall_s']:.2f}x, "
                  f"peak memory {same['peak_rss_gb'] / pandas_run['peak_rss_gb']:.2f}x; the three feature sets "
                  f"{'have identical' if identical else 'DIFFER in their'} content hashes. "
                  f"At {big['customers']:,} customers Dask peaks at {big['peak_rss_gb']} GB "
                  f"({big['peak_rss_gb'] / 8:.0%} of the 8 GB budget) in {big['wall_s']} s.",
              f"Data generated beforehand in chunks of {CHUNK_CUSTOMERS:,} customers (not measured above): {gens}.",
              "Scheduler, workers, the `tenure` client and the benchmark share the machine's cores; load averages "
              "above include other jobs on the machine."]
    return result, "\n".join(lines)
