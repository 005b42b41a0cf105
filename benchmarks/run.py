"""`make bench`: run every benchmark (or those named on the command line)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("features", "pruning", "serving", "monitoring", "scale", "realdata")


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        if name not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        print(f"== benchmark {name}", flush=True)
        importlib.import_module(f"benchmarks.bench_{name}").run()


if __name__ == "__main__":
    main(sys.argv[1:])
