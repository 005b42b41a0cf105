"""Writes the walkthrough notebooks from the cell sources below (`python notebooks/build_notebooks.py`).

The notebooks are committed; this script keeps their source reviewable as plain Python and makes
them easy to regenerate after an API change. Each notebook reads `TENURE_HOME` (default
`workspace`) and creates the small data it needs when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

SETUP = """\
import os
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from configs.settings import load_settings

settings = load_settings()
print("workspace:", settings.home.resolve())"""

NB01 = [
    ("md", "# 01 · Exploring the synthetic leasing data and the feature sets\n\n"
           "Generates a small synthetic leasing company (or reuses it), reads it through the validator, "
           "and looks at the point-in-time feature sets the three models train on."),
    ("code", SETUP),
    ("code", """\
from configs.data import DataConfig
from features.synthetic import generate_dataset
from features.validate import read_dataset

dataset_dir = settings.dataset_dir("notebook")
if not (dataset_dir / "manifest.json").exists():
    generate_dataset(DataConfig(name="notebook", customers=1200, months=36, seed=7), dataset_dir, progress=False)
dataset = read_dataset(dataset_dir)   # validated; personal-data columns are never loaded
pd.DataFrame({t: {"rows": len(df), "columns": df.shape[1]} for t, df in dataset.tables.items()}).T"""),
    ("md", "Personal data (name, phone, national id, address) exists in the source but is not even loaded:"),
    ("code", """\
customers = dataset["customers"]
assert not {"name", "phone", "national_id", "address"} & set(customers.columns)
customers.head()"""),
    ("md", "The priors from the domain documents: credit class, income band and lease term shares."),
    ("code", """\
shares = pd.concat({
    "credit_class": customers["credit_class"].value_counts(normalize=True),
    "size_band": customers["size_band"].value_counts(normalize=True),
    "term_type": dataset["leases"]["term_type"].value_counts(normalize=True),
}).round(3)
shares"""),
    ("md", "Payment behaviour over time: share of invoices paid more than 5 days late, by due month."),
    ("code", """\
inv, pay = dataset["invoices"], dataset["payments"]
last_paid = pay.groupby("invoice_id")["paid_date"].max()
inv = inv.assign(paid=inv["invoice_id"].map(last_paid))
inv["late"] = (inv["paid"].isna()) | ((inv["paid"] - inv["due_date"]).dt.days > 5)
monthly = inv.groupby(inv["due_date"].dt.to_period("M"))["late"].mean()
ax = monthly.plot(title="share of invoices paid late", figsize=(8, 3))
monthly.tail()"""),
    ("md", "## Point-in-time feature sets\n\nOne row per customer and month-end snapshot; features use only "
           "events before the snapshot, labels only the window after it."),
    ("code", """\
from configs.features import FeaturesConfig
from features.build import build_featuresets
from features.featureset import read_featureset
from models import task_names

paths = build_featuresets(dataset_dir, list(task_names()), settings.features_dir / "notebook", FeaturesConfig(), progress=False)
featuresets = {task: read_featureset(path) for task, path in paths.items()}
pd.DataFrame({task: {"rows": fs.meta["rows"], "positives": fs.meta["positives"],
                     "snapshots": fs.meta["snapshots"], "range": " .. ".join(fs.meta["snapshot_range"]),
                     "hash": fs.content_hash[:12]} for task, fs in featuresets.items()}).T"""),
    ("code", """\
fig, ax = plt.subplots(figsize=(8, 3))
for task, fs in featuresets.items():
    fs.frame.groupby("snapshot_date")[fs.label_name].mean().plot(ax=ax, label=task)
ax.set_title("label rate by snapshot"); ax.legend();"""),
    ("md", "Feature definitions travel with the feature set (they drive request validation and the reasons in serving):"),
    ("code", """\
fs = featuresets["default_risk"]
pd.DataFrame(fs.features)[["name", "kind", "source", "description", "description_zh", "unit"]].head(12)"""),
    ("md", "The documented drivers are visible: default rate by debt-ratio decile and by past lateness."),
    ("code", """\
frame = fs.frame
by_debt = frame.groupby(pd.qcut(frame["debt_ratio"], 5, duplicates="drop"), observed=True)[fs.label_name].mean()
by_late = frame.groupby(pd.cut(frame["late_payments_12m"], [-1, 0, 1, 3, 100]), observed=True)[fs.label_name].mean()
pd.concat({"by debt ratio": by_debt, "by late payments (12m)": by_late}).round(3)"""),
]


PREPARE = """\
from configs.data import DataConfig
from configs.features import FeaturesConfig
from configs.train import load_train_config
from features.build import build_featuresets
from features.synthetic import generate_dataset

dataset_dir = settings.dataset_dir("notebook")
if not (dataset_dir / "manifest.json").exists():
    generate_dataset(DataConfig(name="notebook", customers=1200, months=36, seed=7), dataset_dir, progress=False)
paths = build_featuresets(dataset_dir, TASKS, settings.features_dir / "notebook", FeaturesConfig(), progress=False)
paths"""

NB02 = [
    ("md", "# 02 · Comparing experiments and trials through the MLflow client\n\n"
           "Trains the churn model twice with different budgets and seeds (tiny budgets, small data), then "
           "compares the parent runs, their nested Optuna trials and the registered versions, the way a data "
           "scientist would before promoting one."),
    ("code", SETUP),
    ("code", "TASKS = [\"churn\"]\n" + PREPARE),
    ("code", """\
from training.train import train_task

results = {}
for label, trials, seed in (("small", 3, 1), ("larger", 6, 2)):
    results[label] = train_task("churn", paths["churn"], load_train_config(trials=trials, seed=seed), settings)
{label: (r.version, round(r.test_metrics["roc_auc"], 4)) for label, r in results.items()}"""),
    ("md", "Every run is in MLflow: parent runs carry the metrics, nested runs are the Optuna trials."),
    ("code", """\
import mlflow
from models.tracking import experiment_name, setup_mlflow

setup_mlflow(settings)
runs = mlflow.search_runs(experiment_names=[experiment_name(settings, "churn")])
is_trial = runs["tags.mlflow.parentRunId"].notna()
parents, trials = runs[~is_trial], runs[is_trial]
cols = ["run_id", "tags.tenure.seed", "tags.tenure.chosen", "tags.tenure.calibration", "metrics.valid_roc_auc",
        "metrics.test_roc_auc", "metrics.baseline_test_roc_auc", "metrics.test_brier", "metrics.test_ece"]
parents[[c for c in cols if c in parents.columns]]"""),
    ("code", """\
fig, ax = plt.subplots(figsize=(7, 3))
for parent_id, group in trials.groupby("tags.mlflow.parentRunId"):
    group = group.sort_values("start_time")
    ax.plot(range(len(group)), group["metrics.valid_roc_auc"], marker="o", label=parent_id[:8])
ax.set_xlabel("trial"); ax.set_ylabel("validation ROC AUC"); ax.legend(title="parent run");
trials.groupby("tags.mlflow.parentRunId").size().rename("trials")"""),
    ("md", "The registry: each training registered a version; the newest holds the `challenger` alias."),
    ("code", """\
client = mlflow.MlflowClient()
versions = client.search_model_versions("name = 'churn'")
pd.DataFrame([{"version": v.version, "run_id": v.run_id[:8], "aliases": v.aliases,
               "featureset_hash": v.tags.get("tenure.featureset_hash", "")[:12]} for v in versions])"""),
]

NB03 = [
    ("md", "# 03 · Explaining the model and single decisions with SHAP\n\n"
           "Trains and promotes a small default-risk model, then explains it: global SHAP importance, the "
           "monotone constraints the business demands, and one customer's decision with its reasons in "
           "English and Chinese, exactly as the service returns them."),
    ("code", SETUP),
    ("code", "TASKS = [\"default_risk\"]\n" + PREPARE),
    ("code", """\
from configs.promote import load_promote_config
from training.promote import promote
from training.train import train_task

result = train_task("default_risk", paths["default_risk"], load_train_config(trials=3), settings)
decision = promote("default_risk", settings, load_promote_config(None), force=True,
                   reason="notebook walkthrough on small data", actor="notebook")
result.test_metrics["roc_auc"], decision.status"""),
    ("code", """\
import numpy as np
import shap
from features.featureset import read_featureset
from models.registry import load_tenure_model

model = load_tenure_model("models:/default_risk@champion")
fs = read_featureset(paths["default_risk"])
sample = fs.frame.sample(800, random_state=0)
X = model.encode_frame(sample)
contrib = model.contributions(X)            # TreeSHAP on the served booster (LightGBM pred_contrib)
assert np.allclose(contrib.sum(axis=1), model.raw_score(X))
shap.summary_plot(contrib[:, :-1], X, feature_names=model.feature_names, show=False, max_display=12)"""),
    ("md", "Monotone constraints: raising days past due never lowers the predicted risk."),
    ("code", """\
row = sample.iloc[[0]].copy()
grid = np.arange(0, 120, 10)
risk = [model.predict_proba(model.encode_frame(row.assign(dpd_current=float(d))))[0] for d in grid]
assert all(b >= a - 1e-12 for a, b in zip(risk, risk[1:]))
pd.Series(risk, index=grid, name="predicted default risk").rename_axis("dpd_current").round(4)"""),
    ("md", "One decision, as `/score` explains it: tier, action and the top reasons."),
    ("code", """\
from models import TaskSpec
from serving.reasons import ReasonWriter

spec = TaskSpec.model_validate(model.task_spec)
customer = sample.sort_values("dpd_max_12m").iloc[-1]
x = model.encode_frame(customer.to_frame().T)
p = float(model.predict_proba(x)[0])
tier = spec.tier_for(p)
print(f"probability {p:.3f} -> tier {tier.name}: {tier.action_en} / {tier.action_zh} {tier.params}")
top = np.argsort(-np.abs(model.contributions(x)[0, :-1]))[:3]
pd.DataFrame({"feature": [model.feature_names[i] for i in top],
              "value": [customer[model.feature_names[i]] for i in top],
              "shap": model.contributions(x)[0, top]})"""),
]

NB04 = [
    ("md", "# 04 · A drift investigation with the monitoring reports\n\n"
           "A churn model trained on the baseline scenario meets customers of the `competitor` scenario (a "
           "rival's offer in the last months). The customers are scored through the service's own scoring "
           "code into the prediction log, with their snapshot date (`as_of`); `monitor_task` compares them with "
           "the same calendar months of the model's feature set that it was not trained on (its season "
           "reference), and the manifest tells us which features the scenario really shifted."),
    ("code", SETUP),
    ("code", "TASKS = [\"churn\"]\n" + PREPARE),
    ("code", """\
from configs.promote import load_promote_config
from training.promote import promote
from training.train import train_task

train_task("churn", paths["churn"], load_train_config(trials=3), settings)
promote("churn", settings, load_promote_config(None), force=True, reason="notebook walkthrough", actor="notebook")

drift_dir = settings.dataset_dir("notebook-competitor")
if not (drift_dir / "manifest.json").exists():
    generate_dataset(DataConfig(name="notebook-competitor", customers=1200, months=36, seed=7,
                                scenario="competitor"), drift_dir, progress=False)"""),
    ("code", """\
import datetime as dt
import json

from configs.serve import load_serve_config
from features.build import scoring_frame
from serving.schemas import request_records
from serving.startup import start_scorer

scorer = start_scorer(load_serve_config(None, {"tasks": ["churn"]}), settings)
windows = {}
for name, ds in (("baseline", dataset_dir), ("competitor", drift_dir)):
    frame = scoring_frame(ds)
    records = request_records(frame)  # the customers as the service accepts them
    since = dt.datetime.now(dt.UTC).isoformat()
    for i in range(0, len(records), 500):
        scorer.score_batch(records[i:i + 500])
    windows[name] = (since, dt.datetime.now(dt.UTC).isoformat())
scorer.close()
{k: v[0] for k, v in windows.items()}"""),
    ("code", """\
from configs.monitor import load_monitor_config
from monitoring.monitor import monitor_task

cfg = load_monitor_config(None)
results = {name: monitor_task("churn", settings, cfg, since=a, until=b) for name, (a, b) in windows.items()}
shifted = json.loads((drift_dir / "manifest.json").read_text())["scenario"]["shifted_features"]
pd.DataFrame({name: {"level": r.level, "rows": r.rows, "reference": r.reference["kind"],
                     "reference months": r.reference.get("months"),
                     "prediction drift (PSI)": round(r.stats.prediction.score, 4),
                     "drifted": ", ".join(r.flagged_features) or "-"}
              for name, r in results.items()}).T"""),
    ("md", "Which flagged features did the scenario really shift? (the manifest is the known truth)"),
    ("code", """\
flagged = set(results["competitor"].flagged_features)
pd.DataFrame({"feature": sorted(flagged | set(shifted))}).assign(
    flagged=lambda d: d.feature.isin(flagged), shifted_by_scenario=lambda d: d.feature.isin(shifted))"""),
    ("code", """\
r = results["competitor"]
print("open in a browser:", r.report_dir / r.files["index_html"])
[c.to_dict() for c in r.checks]"""),
]


def write(name: str, cells: list[tuple[str, str]]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
    for i, cell in enumerate(nb.cells):  # stable ids: rebuilding changes only what changed
        cell.id = f"cell-{i:02d}"
    path = HERE / name
    nbformat.write(nb, path)
    return path


NOTEBOOKS = {
    "01_explore_data_and_features.ipynb": NB01,
    "02_compare_experiments.ipynb": NB02,
    "03_explain_decisions.ipynb": NB03,
    "04_drift_investigation.ipynb": NB04,
}

if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        print(write(name, cells))
