"""Benchmark `scale`: Tenure beyond one machine and one process, in sections.

`make bench BENCH=scale` runs every section; `make bench BENCH=scale SECTIONS=optuna,log` runs
those only. Each section writes its own entry of `benchmarks/results/scale.json` (the other
sections' entries are kept), and `scale.md` is rebuilt from all entries. A section is a function
`(workdir) -> (result dict, markdown)` registered in `SECTIONS`. Run it alone:
`flock /tmp/tenure-bench.lock make bench BENCH=scale`.

Sections:

- `optuna`: 2 Optuna workers against 1 on one PostgreSQL study with the same trial budget
  (`benchmarks.scale_team`);
- `log`: the prediction log on PostgreSQL against SQLite, 32 concurrent clients for 60 s through
  the service, 0 lost and 0 duplicated rows (`benchmarks.scale_team`);
- `features`: feature sets for 1M customers x 36 months on Dask (2 workers, memory limit) against
  the pandas path at 100k, wall time and peak memory of all processes (`benchmarks.scale_data`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.results import RESULTS_DIR, machine
from benchmarks.scale_data import features_section
from benchmarks.scale_team import log_section, optuna_section

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "workspace" / "bench-scale"

SECTIONS: dict[str, Callable[[Path], tuple[dict[str, Any], str]]] = {
    "optuna": optuna_section,
    "log": log_section,
    "features": features_section,
}


def write_section(name: str, result: dict[str, Any], markdown: str) -> None:
    """Update one section of `scale.json` and rebuild `scale.md` from every section."""
    path = RESULTS_DIR / "scale.json"
    payload = json.loads(path.read_text()) if path.exists() else {"benchmark": "scale", "sections": {}}
    payload["sections"][name] = {**result, "markdown": markdown, "machine": machine()}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    parts = ["# Benchmark: scale", "", "Sections of `make bench BENCH=scale` (`SECTIONS=name,...` for some)."]
    for sec_name, sec in payload["sections"].items():
        m = sec["machine"]
        parts += ["", f"## {sec_name}", "", sec.get("description", ""), "", sec["markdown"], "",
                  f"Measured {m['measured_at']} on {m['cpus']} CPUs, Python {m['python']}, {m['platform']}."]
    (RESULTS_DIR / "scale.md").write_text("\n".join(parts) + "\n")


def run() -> None:
    names = [s for s in os.environ.get("SECTIONS", ",".join(SECTIONS)).split(",") if s]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    for name in names:
        workdir = WORKDIR / name
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        print(f"-- section {name}", flush=True)
        try:
            result, md = SECTIONS[name](workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        write_section(name, result, md)


if __name__ == "__main__":
    run()
