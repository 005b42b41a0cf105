"""Benchmark: the same Optuna budget with and without pruning on a large churn feature set.

Generates (or reuses) a synthetic dataset of `CUSTOMERS` customers over 36 months, builds the churn
feature set, and runs `training.tune.tune` twice on the same out-of-time split, seed and number of
trials: once with the configured pruner (median, across the CV folds) and
once without (the pruner judges the running CV mean after each fold). Reports the best CV ROC AUC and the wall time of each, in one run.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

CUSTOMERS = int(os.environ.get("TENURE_BENCH_PRUNING_CUSTOMERS", "100000"))
TRIALS = int(os.environ.get("TENURE_BENCH_PRUNING_TRIALS", "20"))


def run() -> dict:
    from benchmarks.results import write_results
    from configs.data import DataConfig
    from configs.features import FeaturesConfig
    from configs.train import load_train_config
    from features.build import build_featuresets
    from features.featureset import read_featureset
    from features.synthetic import generate_dataset
    from models import load_spec
    from models.artifact import TenureModel
    from training.split import split_featureset
    from training.train import TrainData, lightgbm_params, passive_openmp
    from training.tune import tune

    passive_openmp()
    work = Path(os.environ.get("TENURE_BENCH_DIR", tempfile.gettempdir())) / f"tenure-bench-pruning-{CUSTOMERS}"
    data_dir = work / "data"
    if not (data_dir / "manifest.json").exists():
        generate_dataset(DataConfig(name="bench", customers=CUSTOMERS, months=36, seed=5), data_dir, progress=False)
    fs_path = work / "features" / "churn.parquet"
    if not fs_path.exists():
        build_featuresets(data_dir, ["churn"], work / "features", FeaturesConfig(), progress=False)
    fs = read_featureset(fs_path)
    spec = load_spec("churn")
    base_cfg = load_train_config(None, trials=TRIALS)
    split = split_featureset(fs.frame, fs.time_column, fs.label_name, spec.label.horizon_months, base_cfg.split,
                             base_cfg.seed, folds=base_cfg.cv.folds, time_folds=base_cfg.cv.time_folds)
    encoder = TenureModel(booster=None, features=fs.features)

    def encode(rows):
        return encoder.encode_frame(rows[fs.feature_names]), rows[fs.label_name].to_numpy()

    X_dev, y_dev = encode(split.train)  # noqa: N806
    data = TrainData(X_dev, y_dev, split.folds, fs.feature_names, encoder.categorical_indices,
                     base_cfg.lightgbm.n_estimators, base_cfg.lightgbm.early_stopping_rounds)
    # warm-up (imports, OpenMP threads, Optuna storage) outside the timed runs
    warm = base_cfg.model_copy(update={"tuning": base_cfg.tuning.model_copy(update={"n_trials": 1})})
    tune(data, lightgbm_params(warm, spec), warm, f"sqlite:///{work / f'optuna-warm-{time.time_ns()}.db'}",
         "bench-warm-up", log_trials=False)
    runs = {}
    for label, enabled in (("pruned", True), ("unpruned", False)):
        tuning = base_cfg.tuning.model_copy(update={"pruning": base_cfg.tuning.pruning.model_copy(
            update={"enabled": enabled})})
        cfg = base_cfg.model_copy(update={"tuning": tuning})
        storage = f"sqlite:///{work / f'optuna-{label}-{time.time_ns()}.db'}"
        t0 = time.perf_counter()
        res = tune(data, lightgbm_params(cfg, spec), cfg, storage, f"bench-{label}", log_trials=False)
        runs[label] = {"seconds": round(time.perf_counter() - t0, 1), "best_valid_roc_auc": round(res.best_value, 5),
                       "complete": res.n_complete, "pruned": res.n_pruned, "best_trial": res.best_trial}
        print(label, runs[label], flush=True)
    p, u = runs["pruned"], runs["unpruned"]
    summary = {"time_ratio_pruned_over_unpruned": round(p["seconds"] / u["seconds"], 3),
               "auc_difference_unpruned_minus_pruned": round(u["best_valid_roc_auc"] - p["best_valid_roc_auc"], 5)}
    result = {"benchmark": "pruning",
              "description": f"Optuna TPE, {TRIALS} trials, churn feature set of {CUSTOMERS:,} customers x 36 months "
                             f"({len(split.train):,} development rows in {len(split.folds)} folds), with and without "
                             "the median pruner", "runs": runs, "summary": summary}
    table = ["| search | trials complete | pruned | best valid ROC AUC | wall s |", "|---|---:|---:|---:|---:|"]
    for label, r in runs.items():
        table.append(f"| {label} | {r['complete']} | {r['pruned']} | {r['best_valid_roc_auc']} | {r['seconds']} |")
    table.append(f"\nPruned search: {summary['time_ratio_pruned_over_unpruned']:.0%} of the unpruned time; "
                 f"best AUC {summary['auc_difference_unpruned_minus_pruned']:+.4f} behind.")
    write_results("pruning", result, "\n".join(table))
    return result


if __name__ == "__main__":
    run()
