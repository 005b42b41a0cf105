"""Benchmark: generate data and build all three feature sets at 10k, 30k and 100k customers.

Each size runs in a fresh process (peak memory is per size). Reports wall time, source and
feature rows per second and peak RSS, and how time grows with size (100k against 10k).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

from benchmarks.results import write_results

SIZES = (10_000, 30_000, 100_000)


def run(sizes: tuple[int, ...] = SIZES, months: int = 36) -> dict:
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix=f"tenure-bench-{n}-") as tmp:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.features_pipeline", "--customers", str(n),
                 "--months", str(months), "--out", tmp],
                check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        total_features = sum(r["feature_rows"].values())
        r["source_rows_per_second"] = round(r["source_rows"] / r["total_seconds"])
        r["feature_rows_per_second"] = round(total_features / r["build_seconds"])
        rows.append(r)
        print(f"{n:>7} customers: {r['total_seconds']:.1f}s, peak {r['peak_rss_mb']:.0f} MB", flush=True)
    growth = rows[-1]["total_seconds"] / rows[0]["total_seconds"] if len(rows) > 1 else None
    result = {
        "benchmark": "features",
        "description": f"generate + build default_risk, churn, upsell feature sets over {months} months",
        "runs": rows,
        "time_ratio_largest_vs_smallest": round(growth, 2) if growth else None,
        "size_ratio_largest_vs_smallest": sizes[-1] / sizes[0],
    }
    table = ["| customers | generate s | build s | total s | source rows | feature rows | feature rows/s | peak MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        table.append(f"| {r['customers']:,} | {r['generate_seconds']:.1f} | {r['build_seconds']:.1f} | "
                     f"{r['total_seconds']:.1f} | {r['source_rows']:,} | {sum(r['feature_rows'].values()):,} | "
                     f"{r['feature_rows_per_second']:,} | {r['peak_rss_mb']:,.0f} |")
    if growth:
        table.append(f"\nTime grows {growth:.1f}x for {sizes[-1] // sizes[0]}x the customers.")
    write_results("features", result, "\n".join(table))
    return result


if __name__ == "__main__":
    run()
