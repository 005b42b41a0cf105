"""Benchmark: the demo's tasks trained by this checkout against an earlier commit, on several datasets.

A change to training is judged on the demo's out-of-time test, but one generated dataset is one draw
of the portfolio: the default_risk test period of the demo's seed-42 data holds 84 customers who
default, so two models' test AUCs differ by a few thousandths from which customers happen to be in it.
This benchmark repeats the comparison on datasets generated with other seeds.

Per data seed: `tenure data generate --seed S` and `tenure features build` (this checkout's code; the
same feature sets go to both versions), then for each task `tenure train --featureset F --trials N
--seed 42` once with this checkout and once with the base commit (a detached `git worktree`, run
with the same virtualenv), each in its own fresh workspace. The test ROC AUC is the `test_metrics`
of the JSON line `tenure train` prints. A trial budget without a time limit: the same code gives the
same models on any machine, so a rerun reproduces every number.

Environment: `TENURE_BENCH_DEMO_BASE` (the commit to compare with; default `0ecb6ea^`, the code
before issue 10's cross-validated training), `TENURE_BENCH_DEMO_SEEDS` (data seeds, default
42 (the demo's own data) and six others), `TENURE_BENCH_DEMO_TASKS` (default the demo's three:
default_risk, churn, upsell), `TENURE_BENCH_DEMO_TRIALS` (default 25, the demo's budget),
`TENURE_BENCH_DEMO_WORK` (where datasets and workspaces go; default a temporary folder; a kept
folder lets an interrupted run resume: finished trainings are not repeated). About 5 minutes per
data seed on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASE = "0ecb6ea^"
SEEDS = "42,101,202,303,404,505,606"
TASKS = "default_risk,churn,upsell"
TRAIN_SEED = 42


def _env(home: Path, code: Path) -> dict[str, str]:
    """The environment of one CLI call: everything under `home`, imports from `code` only."""
    drop = {"MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "TENURE_ARTIFACT_ROOT", "TENURE_OPTUNA_STORAGE",
            "TENURE_PREDICTION_LOG", "TENURE_DASK_SCHEDULER", "TENURE_TRAIN_MAX_CUSTOMERS", "PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "TENURE_HOME": str(home), "PYTHONPATH": str(code), "PYTHONWARNINGS": "ignore"}


def cli_module(code: Path) -> str:
    """The module holding `main` of the `tenure` CLI in a checkout (configs.cli before `tenure/` existed)."""
    return "tenure.cli" if (code / "tenure" / "cli.py").exists() else "configs.cli"


def tenure(code: Path, home: Path, args: list[str], log: Path) -> str:
    """Run `tenure ARGS` with the code in `code`; its stdout (stderr goes to `log`). A failure stops
    the benchmark naming the command and the log."""
    call = f"import sys; sys.argv = ['tenure', *{args!r}]; from {cli_module(code)} import main; sys.exit(main())"
    with log.open("w") as err:
        proc = subprocess.run([sys.executable, "-c", call], cwd=code, env=_env(home, code), stdout=subprocess.PIPE,
                              stderr=err, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"tenure {' '.join(args)} (code {code}) failed with exit {proc.returncode}; see {log}")
    return proc.stdout


def read_test_auc(stdout: str) -> float:
    """The test ROC AUC from `tenure train`'s result line (the last JSON line with test_metrics)."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{") and "test_metrics" in line:
            return float(json.loads(line)["test_metrics"]["roc_auc"])
    raise ValueError("no JSON line with test_metrics in tenure train's output")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def summarise(rows: list[dict[str, Any]], seeds: list[int], tasks: list[str]) -> dict[str, Any]:
    """Per task: mean AUC of each version, the mean paired difference (head - base) with its SE, and
    how many datasets each version won, over every seed and over the seeds other than the demo's 42."""
    out: dict[str, Any] = {}
    for task in tasks:
        by_seed = {r["data_seed"]: r for r in rows if r["task"] == task}
        per: dict[str, Any] = {}
        for label, chosen in (("all", seeds), ("other_than_42", [s for s in seeds if s != 42])):
            pairs = [(by_seed[s]["base"], by_seed[s]["head"]) for s in chosen if s in by_seed]
            if not pairs:
                continue
            diffs = [h - b for b, h in pairs]
            per[label] = {
                "datasets": len(pairs),
                "base": statistics.fmean(b for b, _ in pairs),
                "head": statistics.fmean(h for _, h in pairs),
                "diff": statistics.fmean(diffs),
                "se": statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else None,
                "head_better": sum(d > 0 for d in diffs),
                "head_worse": sum(d < 0 for d in diffs),
            }
        out[task] = per
    return out


def markdown(summary: dict[str, Any], rows: list[dict[str, Any]], base: str, head: str, trials: int = 25) -> str:
    lines = [f"Base `{base}`, head `{head}`; test ROC AUC on each dataset's out-of-time test period "
             f"(`tenure train --trials {trials} --seed {TRAIN_SEED}`).", "",
             "| task | datasets | base | head | head - base (SE) | head better / worse |",
             "|---|---|---:|---:|---:|---|"]
    for task, per in summary.items():
        for label, s in per.items():
            se = f" ({s['se']:.4f})" if s["se"] is not None else ""
            what = "all seeds" if label == "all" else "seeds other than 42"
            lines.append(f"| {task} | {what} ({s['datasets']}) | {s['base']:.4f} | {s['head']:.4f} | "
                         f"{s['diff']:+.4f}{se} | {s['head_better']} / {s['head_worse']} |")
    lines += ["", "| data seed | task | base | head | head - base |", "|---:|---|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["task"], r["data_seed"])):
        lines.append(f"| {r['data_seed']} | {r['task']} | {r['base']:.4f} | {r['head']:.4f} | "
                     f"{r['head'] - r['base']:+.4f} |")
    return "\n".join(lines)


def run() -> dict:
    from benchmarks.results import write_results

    base = os.environ.get("TENURE_BENCH_DEMO_BASE", BASE)
    seeds = [int(s) for s in os.environ.get("TENURE_BENCH_DEMO_SEEDS", SEEDS).split(",")]
    tasks = os.environ.get("TENURE_BENCH_DEMO_TASKS", TASKS).split(",")
    trials = int(os.environ.get("TENURE_BENCH_DEMO_TRIALS", "25"))
    try:
        base_sha = _git("rev-parse", "--verify", f"{base}^{{commit}}")
        head = _git("describe", "--always", "--dirty")
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        raise SystemExit(f"the demo_versions benchmark needs this checkout's git history and base {base!r}: {e}") from None
    kept = os.environ.get("TENURE_BENCH_DEMO_WORK")
    work = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="tenure-demo-versions-"))
    work.mkdir(parents=True, exist_ok=True)
    base_code = work / f"base-{base_sha[:12]}"
    if not base_code.exists():
        _git("worktree", "add", "--detach", "--force", str(base_code), base_sha)
    rows_path = work / "rows.jsonl"
    # finished trainings of this base and head (a rerun with a kept work folder resumes after them)
    done = {(r["data_seed"], r["task"]): r for r in map(json.loads, rows_path.read_text().splitlines())
            if r["base_sha"] == base_sha and r["head"] == head} if rows_path.exists() else {}
    try:
        for seed in seeds:
            data_home = work / f"data-{seed}"
            features = data_home / "features" / "demo"
            if not all((features / f"{t}.parquet").exists() for t in tasks):
                tenure(REPO, data_home, ["data", "generate", "--seed", str(seed), "--name", "demo", "--no-progress"],
                       work / f"generate-{seed}.log")
                tenure(REPO, data_home, ["features", "build", "--no-progress"], work / f"build-{seed}.log")
            for task in tasks:
                if (seed, task) in done:
                    continue
                auc = {}
                for version, code in (("head", REPO), ("base", base_code)):
                    out = tenure(code, work / f"{version}-{seed}-{task}",
                                 ["train", "--featureset", str(features / f"{task}.parquet"),
                                  "--trials", str(trials), "--seed", str(TRAIN_SEED)],
                                 work / f"{version}-{seed}-{task}.log")
                    auc[version] = read_test_auc(out)
                row = {"data_seed": seed, "task": task, "base_auc": auc["base"], "head_auc": auc["head"],
                       "base_sha": base_sha, "head": head}
                done[(seed, task)] = row
                with rows_path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"data seed {seed} {task}: base {auc['base']:.4f} head {auc['head']:.4f}", flush=True)
    finally:
        _git("worktree", "remove", "--force", str(base_code))
        if not kept:
            shutil.rmtree(work, ignore_errors=True)
    rows = [{"data_seed": s, "task": t, "base": r["base_auc"], "head": r["head_auc"]} for (s, t), r in done.items()
            if s in seeds and t in tasks]
    summary = summarise(rows, seeds, tasks)
    result = {"description": __doc__.split("\n\n")[0], "base": base, "base_sha": base_sha, "head": head,
              "trials": trials, "train_seed": TRAIN_SEED, "summary": summary, "rows": rows}
    write_results("demo_versions", result, markdown(summary, rows, f"{base} = {base_sha[:12]}", head, trials))
    return result
