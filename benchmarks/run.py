"""`make bench`: run every benchmark (or those named on the command line)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("features", "pruning", "serving", "monitoring", "scale", "realdata")
# run only when named (`make bench BENCH=demo_versions`): it trains the demo's tasks with two versions
# of the code on several datasets (about 35 minutes)
ON_REQUEST = ("demo_versions",)


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        if name not in BENCHMARKS + ON_REQUEST:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS + ON_REQUEST)}")
        print(f"== benchmark {name}", flush=True)
        importlib.import_module(f"benchmarks.bench_{name}").run()


if __name__ == "__main__":
    main(sys.argv[1:])
