"""Writing benchmark results: `benchmarks/results/<name>.json` and `<name>.md`, with the machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def write_results(name: str, result: dict, markdown_table: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {**result, "machine": machine()}
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    m = payload["machine"]
    (RESULTS_DIR / f"{name}.md").write_text(
        f"# Benchmark: {name}\n\n{result.get('description', '')}\n\n{markdown_table}\n\n"
        f"Measured {m['measured_at']} on {m['cpus']} CPUs, Python {m['python']}, {m['platform']}.\n")
    return RESULTS_DIR / f"{name}.json"
