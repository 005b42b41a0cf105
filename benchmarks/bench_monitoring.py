"""Benchmark: Tenure's monitor computation against Evidently's DataDriftPreset on all logged rows.

For 100k and 1M logged rows against a 100k-row reference, with the churn model's 43 features
(synthetic values drawn per feature definition: counts, shares, amounts, categories, some
missing; a few features shifted by different amounts in the logged rows, some near the
threshold), each measured in a fresh process so peak memory is its own:

- Evidently 0.7 `Report([DataDriftPreset()])` on all rows (explicit `DataDefinition`), the way a
  user would run it; the per-feature verdicts are read from its tests;
- Tenure: reference statistics plus every feature's verdict (`monitoring.drift`), and the whole
  window computation of `tenure monitor` (drift, prediction drift, data quality, CBPE estimate);
- reading the logged rows back from a SQLite prediction log (features as JSON), the step the
  monitor job adds in front.

Reports wall time (imports excluded), peak memory above the process's resident size before the
step (Linux `VmHWM` after a reset), the speed-up, and whether the per-feature verdicts agree.

    python -m benchmarks.bench_monitoring            # all sizes, writes benchmarks/results/
    python -m benchmarks.bench_monitoring --worker tenure --rows 100000   # one measurement
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SIZES = (100_000, 1_000_000)
REFERENCE_ROWS = 100_000
TASK = "churn"
SEED = 20
# feature -> shift of the logged rows (in units of the feature's spread); the rest stay put
SHIFTS = {"complaints_6m": 0.6, "satisfaction_avg_12m": -0.5, "contacts_app_6m": -0.3, "utilisation_3m": -0.12,
          "hours_used_3m": -0.08, "email_opens_6m": -0.35, "late_share_12m": 0.1}
CATEGORY_SHIFTS = {"payment_method": 0.25, "region": 0.05}


# ---- data -------------------------------------------------------------------------------------

def _definitions() -> list[dict[str, Any]]:
    from features.definitions import FEATURES_BY_NAME
    from models import load_spec

    return [FEATURES_BY_NAME[f].to_dict() for f in load_spec(TASK).features]


def make_frame(definitions: list[dict[str, Any]], rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    """Rows of the model's features, drawn per definition (the same seed gives the same frame)."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for i, d in enumerate(definitions):
        name = d["name"]
        frng = np.random.default_rng([seed, i])
        if d["kind"] == "categorical":
            cats = d["categories"]
            w = np.linspace(2.0, 1.0, len(cats))
            if shifted and name in CATEGORY_SHIFTS:
                w[-1] += CATEGORY_SHIFTS[name] * w.sum()
            codes = frng.choice(len(cats), size=rows, p=w / w.sum())
            out[name] = pd.Categorical.from_codes(codes, categories=cats)
            continue
        shift = SHIFTS.get(name, 0.0) if shifted else 0.0
        hi = d.get("max")
        if hi == 1 and (d.get("min") or 0) >= 0:  # shares: beta
            values = frng.beta(2 + 4 * max(shift, 0), 5 + 4 * max(-shift, 0), rows)
        elif d.get("unit") in ("days", "CNY", "hours", "points", "%"):  # amounts: log-normal
            values = np.round(frng.lognormal(3 + shift, 1.0, rows), 2)
        elif name in ("satisfaction_last", "satisfaction_avg_12m"):
            values = np.clip(np.round(frng.normal(3.8 + shift, 0.7, rows), 1), 1, 5)
        else:  # counts
            values = frng.poisson(max(0.05, 2.0 * (1 + shift)), rows).astype(np.float64)
        if i % 5 == 0:
            values[frng.random(rows) < 0.05] = np.nan
        out[name] = values
    frame = pd.DataFrame(out)
    frame["probability"] = rng.beta(1.2 + (0.3 if shifted else 0.0), 12, rows)
    return frame


# ---- one measurement (worker process) ---------------------------------------------------------

def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> float:
    """Give freed memory back to the system, then reset the peak resident size to the current one
    (Linux), so the step's peak is not hidden by reused free memory; returns the current MB."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _evidently(ref: pd.DataFrame, cur: pd.DataFrame, defs: list[dict[str, Any]]) -> tuple[dict[str, bool], dict]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    names = [d["name"] for d in defs]
    definition = DataDefinition(numerical_columns=[d["name"] for d in defs if d["kind"] != "categorical"],
                                categorical_columns=[d["name"] for d in defs if d["kind"] == "categorical"])
    start = _reset_peak()
    t0 = time.perf_counter()
    snapshot = Report([DataDriftPreset(columns=names)], include_tests=True).run(
        Dataset.from_pandas(cur[names], data_definition=definition),
        Dataset.from_pandas(ref[names], data_definition=definition))
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM") - start
    verdicts = {}
    for test in snapshot.dict()["tests"]:
        params = (test.get("metric_config") or {}).get("params") or {}
        if params.get("type", "").endswith("ValueDrift"):
            verdicts[params["column"]] = str(test["status"]).endswith("FAIL")
    return verdicts, {"seconds": seconds, "peak_mb": peak}


def _tenure(ref: pd.DataFrame, cur: pd.DataFrame, defs: list[dict[str, Any]]) -> tuple[dict[str, bool], dict]:
    from configs.monitor import load_monitor_config
    from monitoring.drift import feature_drift
    from monitoring.monitor import compute_window, reference_stats

    cfg = load_monitor_config()
    names = [d["name"] for d in defs]
    start = _reset_peak()
    t0 = time.perf_counter()
    stats = reference_stats(ref, defs)
    drift = feature_drift(stats, cur, names)
    drift_seconds = time.perf_counter() - t0
    drift_peak = _status("VmHWM") - start
    start = _reset_peak()
    t0 = time.perf_counter()
    compute_window(ref, cur, defs, cfg)
    window_seconds = time.perf_counter() - t0
    window_peak = _status("VmHWM") - start
    verdicts = {n: c.drifted for n, c in drift.columns.items()}
    return verdicts, {"seconds": drift_seconds, "peak_mb": drift_peak, "window_seconds": window_seconds,
                      "window_peak_mb": window_peak,
                      "methods": {n: c.method for n, c in drift.columns.items()},
                      "scores": {n: c.score for n, c in drift.columns.items()}}


def _read_log(cur: pd.DataFrame, defs: list[dict[str, Any]]) -> tuple[dict[str, bool], dict]:
    import sqlite3

    from monitoring.predictions import read_log

    names = [d["name"] for d in defs]
    with tempfile.TemporaryDirectory(prefix="tenure-bench-log-") as tmp:
        path = Path(tmp) / "predictions.db"
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE predictions (row_id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT, "
                    "scored_at TEXT, task TEXT, model_name TEXT, model_version TEXT, run_id TEXT, customer_ref TEXT, "
                    "as_of TEXT, features TEXT, probability REAL, tier TEXT, action TEXT)")
        features = cur[names].astype({d["name"]: "object" for d in defs if d["kind"] == "categorical"})
        texts = features.to_json(orient="records", lines=True).splitlines()
        n = len(cur)
        stamps = pd.date_range("2030-01-01", periods=n, freq="s").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        con.executemany(
            "INSERT INTO predictions (request_id, scored_at, task, model_name, model_version, run_id, customer_ref, "
            "as_of, features, probability, tier, action) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((f"r{i}", stamps[i], TASK, TASK, "1", "run", str(i), "2030-01-01", texts[i],
              float(cur["probability"].iat[i]), "low", "none") for i in range(n)))
        con.commit()
        con.close()
        del texts, features
        start = _reset_peak()
        t0 = time.perf_counter()
        window = read_log(path, model_name=TASK, model_version="1", features=defs)
        seconds = time.perf_counter() - t0
        peak = _status("VmHWM") - start
        assert len(window) == n
    return {}, {"seconds": seconds, "peak_mb": peak}


def worker(tool: str, rows: int, reference_rows: int, seed: int) -> dict[str, Any]:
    defs = _definitions()
    ref = make_frame(defs, reference_rows, seed, shifted=False)
    cur = make_frame(defs, rows, seed + 1, shifted=True)
    if tool == "evidently":
        import evidently  # noqa: F401 - imported before timing
    else:
        import scipy.spatial
        import scipy.stats  # noqa: F401
    fn = {"evidently": _evidently, "tenure": _tenure, "read_log": _read_log}[tool]
    verdicts, measured = fn(ref, cur, defs) if tool != "read_log" else fn(cur, defs)
    return {"tool": tool, "rows": rows, "reference_rows": reference_rows, "verdicts": verdicts, **measured}


# ---- the benchmark --------------------------------------------------------------------------------

def _measure(tool: str, rows: int, reference_rows: int, seed: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_monitoring", "--worker", tool, "--rows", str(rows),
                          "--reference", str(reference_rows), "--seed", str(seed)],
                         check=True, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(sizes: tuple[int, ...] = SIZES, reference_rows: int = REFERENCE_ROWS, seed: int = SEED,
        read_log: bool = True) -> dict[str, Any]:
    from benchmarks.results import write_results

    runs = []
    for n in sizes:
        ev = _measure("evidently", n, reference_rows, seed)
        print(f"{n:>9,} rows: Evidently {ev['seconds']:.1f}s, peak +{ev['peak_mb']:.0f} MB", flush=True)
        te = _measure("tenure", n, reference_rows, seed)
        print(f"{n:>9,} rows: Tenure drift {te['seconds']:.2f}s, whole window {te['window_seconds']:.2f}s, "
              f"peak +{te['peak_mb']:.0f} MB", flush=True)
        rl = _measure("read_log", n, reference_rows, seed) if read_log else None
        if rl:
            print(f"{n:>9,} rows: reading the SQLite log {rl['seconds']:.1f}s, peak +{rl['peak_mb']:.0f} MB", flush=True)
        disagree = sorted(c for c in ev["verdicts"] if ev["verdicts"][c] != te["verdicts"].get(c))
        runs.append({
            "logged_rows": n, "reference_rows": reference_rows, "features": len(ev["verdicts"]),
            "evidently_seconds": round(ev["seconds"], 2), "evidently_peak_mb": round(ev["peak_mb"], 1),
            "tenure_drift_seconds": round(te["seconds"], 3), "tenure_drift_peak_mb": round(te["peak_mb"], 1),
            "tenure_window_seconds": round(te["window_seconds"], 3),
            "tenure_window_peak_mb": round(te["window_peak_mb"], 1),
            "speedup_drift": round(ev["seconds"] / te["seconds"], 1),
            "speedup_window": round(ev["seconds"] / te["window_seconds"], 1),
            "read_log_seconds": round(rl["seconds"], 2) if rl else None,
            "read_log_peak_mb": round(rl["peak_mb"], 1) if rl else None,
            "verdicts_agree": not disagree, "disagreements": disagree,
            "drifted_evidently": sorted(c for c, v in ev["verdicts"].items() if v),
            "drifted_tenure": sorted(c for c, v in te["verdicts"].items() if v),
            "methods": te["methods"],
        })
    result = {
        "benchmark": "monitoring",
        "description": (f"per-feature data drift of the {TASK} model's features (synthetic rows, some shifted): "
                        "Evidently 0.7 DataDriftPreset on all logged rows vs Tenure's monitor computation "
                        f"(`monitoring.drift` / `compute_window`), reference {reference_rows:,} rows"),
        "runs": runs,
    }
    table = ["| logged rows | reference rows | features | Evidently DataDriftPreset s | Evidently peak MB | "
             "Tenure drift s | Tenure whole window s | Tenure peak MB | speed-up (drift / window) | "
             "verdicts agree | drifted (Evidently / Tenure) | read SQLite log s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|"]
    for r in runs:
        read = "-" if r["read_log_seconds"] is None else f"{r['read_log_seconds']:.1f}"
        table.append(
            f"| {r['logged_rows']:,} | {r['reference_rows']:,} | {r['features']} | {r['evidently_seconds']:.1f} | "
            f"{r['evidently_peak_mb']:,.0f} | {r['tenure_drift_seconds']:.2f} | {r['tenure_window_seconds']:.2f} | "
            f"{max(r['tenure_drift_peak_mb'], r['tenure_window_peak_mb']):,.0f} | "
            f"{r['speedup_drift']:.0f}x / {r['speedup_window']:.0f}x | {'yes' if r['verdicts_agree'] else 'NO'} | "
            f"{len(r['drifted_evidently'])} / {len(r['drifted_tenure'])} | "
            f"{read} |")
    table.append("\nPeak MB: resident memory above the process's size before the step (imports and data excluded). "
                 "Tenure's whole window adds prediction drift, data quality and the CBPE estimate to the drift "
                 "verdicts; reading the log (SQLite, features as JSON) comes in front of it in `tenure monitor`.")
    write_results("monitoring", result, "\n".join(table))
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", choices=["evidently", "tenure", "read_log"])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--reference", type=int, default=REFERENCE_ROWS)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.rows, args.reference, args.seed), default=float))
    else:
        run()


if __name__ == "__main__":
    main()
