"""One size of the feature benchmark, in its own process so peak memory is its own.

`python -m benchmarks.features_pipeline --customers N --months M --out DIR` generates a dataset,
builds the three feature sets and prints one JSON line: timings, rows and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, required=True)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from configs.data import DataConfig
    from configs.features import FeaturesConfig
    from features.build import build_featuresets
    from features.featureset import read_metadata
    from features.synthetic import generate_dataset
    from models import task_names

    t0 = time.perf_counter()
    manifest = generate_dataset(
        DataConfig(name="bench", customers=args.customers, months=args.months, seed=args.seed),
        args.out / "data", progress=False)
    t1 = time.perf_counter()
    paths = build_featuresets(args.out / "data", list(task_names()), args.out / "features", FeaturesConfig(),
                              progress=False)
    t2 = time.perf_counter()
    source_rows = sum(t["rows"] for t in manifest["tables"].values())
    feature_rows = {task: read_metadata(p)["rows"] for task, p in paths.items()}
    print(json.dumps({
        "customers": args.customers,
        "months": args.months,
        "generate_seconds": round(t1 - t0, 2),
        "build_seconds": round(t2 - t1, 2),
        "total_seconds": round(t2 - t0, 2),
        "source_rows": source_rows,
        "feature_rows": feature_rows,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
