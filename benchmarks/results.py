"""Writing benchmark results: `benchmarks/results/<name>.json` and `<name>.md`, with the machine.

A rerun rewrites both files, except the notes people add to `<name>.md` below the line `NOTES_MARKER`
(before/after tables, what a result means): they are kept, after the new table."""

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


NOTES_MARKER = "<!-- notes: kept when the benchmark reruns -->"


def write_results(name: str, result: dict, markdown_table: str, directory: Path | None = None) -> Path:
    folder = directory or RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    payload = {**result, "machine": machine()}
    (folder / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    m = payload["machine"]
    md = folder / f"{name}.md"
    notes = ""
    if md.exists() and NOTES_MARKER in (old := md.read_text()):
        notes = "\n" + NOTES_MARKER + old.split(NOTES_MARKER, 1)[1]
    md.write_text(
        f"# Benchmark: {name}\n\n{result.get('description', '')}\n\n{markdown_table}\n\n"
        f"Measured {m['measured_at']} on {m['cpus']} CPUs, Python {m['python']}, {m['platform']}.\n{notes}")
    return folder / f"{name}.json"
