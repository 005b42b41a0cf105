"""Train one task: split, cross-validated tuning, choice, calibration, refit, evaluate, log and register.

Reads a feature set (`features.featureset.read_featureset`) and the training config; writes one
MLflow parent run in experiment `tenure-<task>` (nested runs: the Optuna trials), one Optuna
study in `settings.optuna_storage_url`, and one registered model version with alias `challenger`.

How the model is made (`training.split`, `training.cv`): the test rows (the latest snapshots, or a
stratified 20 % of a one-snapshot table) are kept apart; everything else is the development set,
cut into folds (stratified k-fold, or expanding-window time-series folds with the label-horizon
embargo). Each Optuna trial, the default-parameter baseline and the tuned parameters are judged
by their CV mean ROC AUC (early stopping inside each fold). The tuned model is the mean raw score
of the `tuning.ensemble_size` best trials (at most `tuning.ensemble_share` of the finished ones),
judged by the CV of the averaged out-of-fold scores (`training.cv.mean_cv`); it is used unless the
baseline's CV mean leads it by more than `-cv.choose_margin_se` standard errors (`training.cv.choose`). On a development set of
at most `blend.max_rows` rows a logistic regression is then blended into the chosen model's raw score
at the weight its out-of-fold scores choose (`training.linear`; weight 0 keeps the trees alone). The calibration is
chosen on the chosen candidate's (blended) out-of-fold scores (`training.evaluate.choose_oof_calibration`).
Each member is refitted on every development row with its CV's rounds (`refit_rounds`) and the
members are averaged into one booster (`training.cv.average_boosters`); the test metrics come
from that model. Then, with `refit: all` (the default for
own tables), the registered model (and its linear part) is refitted once more on every row, test rows included (tag
`tenure.refit`: `non_test` or `all`); the test metrics stay those of the model that had not seen
the test rows.

What the parent run holds (promotion, serving and monitoring read these names):

- artefacts: `model/` (the pyfunc, `training.pyfunc`), `reference/reference.parquet` (rows the
  registered model was fitted on, at most `evaluation.reference_max_rows`, sampled with the seed:
  id, time, raw feature values, group columns, label, `probability`), `reference/unseen_rows.parquet`
  (every feature-set row not fitted on: id, time, raw feature values; monitoring's same-season and
  test-period references), `evaluation/test_predictions.parquet` (every test row) and
  `evaluation/valid_predictions.parquet` (every out-of-fold development row, calibrated; id, time,
  group columns, label, `probability`), `evaluation/metrics.json` (with the per-fold CV of the
  chosen, baseline and tuned candidates), `config/train_config.json`, `plots/*.png` (test plots and
  `plots/oof_calibration.png`); id, time and label keep the feature set's column names;
- metrics `valid_<m>` (out of fold), `test_<m>` (the model refitted on the development rows,
  calibrated), `baseline_valid_<m>`, `baseline_test_<m>` (default LightGBM parameters, chosen,
  calibrated and refitted the same way) for every metric in `training.evaluate.METRICS`;
  `cv_mean_roc_auc`, `cv_std_roc_auc`, `cv_se_roc_auc`, `fold_<i>_roc_auc`, `baseline_cv_mean_roc_auc`,
  `tuned_cv_mean_roc_auc` (the ensemble's), `tuned_best_trial_cv_mean_roc_auc`, `ensemble_size`,
  `best_iteration` (the CV's mean rounds), `refit_rounds` (the refit's, per member), `blend_weight` (the
  linear part's; NaN when not tried), `trees_cv_mean_roc_auc` and `linear_cv_mean_roc_auc` (each part
  alone; `cv_mean_roc_auc` is the blend's); each trial's nested run has its
  per-fold AUCs;
- tags `tenure.task`, `tenure.model_name`, `tenure.featureset_path`, `tenure.featureset_hash`,
  `tenure.split` (development span as `train`, out-of-fold span as `valid`, `test`, `folds`),
  `tenure.best_trial`, `tenure.ensemble` (the members' trial numbers, best first; [] for the
  baseline), `tenure.chosen`, `tenure.calibration`, `tenure.refit`, `tenure.git_commit`,
  `tenure.blend_weight`, `tenure.seed` (and `tenure.columns`, `tenure.study`, `tenure.registered_version`).

Tasks with monotone constraints (default risk: more days past due, late payments and debt never
lower the risk) train with `monotone_constraints_method: intermediate`, and the registered booster
is checked on 500 of its training rows along a grid of each constrained feature before anything is
registered; a model that breaks a constraint stops the run (`TrainingError`).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from configs import TenureError
from configs.settings import Settings
from configs.train import TrainConfig
from features.featureset import FeatureSet, read_featureset
from models import LabelSpec, TaskSpec, Tier, load_spec, task_names
from models.artifact import Calibration, LinearPart, TenureModel
from models.layout import CHALLENGER, TAG_RUN_ID
from models.metrics import binary_metrics
from training.cv import (
    CVResult,
    TrainData,
    average_boosters,
    choose,
    cross_validate,
    mean_cv,
    passive_openmp,
    refit,
)
from training.evaluate import choose_oof_calibration
from training.linear import Blend, choose_weight, fit_linear, linear_oof
from training.split import Split, split_featureset

__all__ = ["TrainData", "passive_openmp", "train_task", "lightgbm_params", "monotone_violations"]

OOF_CALIBRATION_PLOT = "oof_calibration.png"
Echo = Callable[[str], None]


class TrainingError(TenureError, ValueError):
    """A feature set that does not fit the task, or a training run that cannot proceed."""


# ---- the one training function ------------------------------------------------------------

def lightgbm_params(cfg: TrainConfig, spec: TaskSpec) -> dict[str, Any]:
    """The fixed LightGBM parameters of a task: objective, reproducibility, monotone constraints.

    Searched parameters are added on top; the baseline uses these alone (LightGBM defaults for
    everything else).
    """
    params: dict[str, Any] = {
        "objective": "binary",
        "metric": "auc",
        "seed": cfg.seed,
        "num_threads": cfg.num_threads,
        "deterministic": True,
        "force_col_wise": True,
        "feature_pre_filter": False,
        "verbosity": -1,
        **cfg.lightgbm.params,
    }
    monotone = spec.monotone_vector()
    if any(monotone):
        params["monotone_constraints"] = monotone
        params["monotone_constraints_method"] = cfg.lightgbm.monotone_constraints_method
    return params


def monotone_violations(score: Callable[[np.ndarray], np.ndarray], X: np.ndarray,  # noqa: N803
                        feature_names: Sequence[str], monotone: dict[str, int],
                        grid_points: int = 20) -> dict[str, float]:
    """Per constrained feature, the largest raw-score move against its constraint (0.0 = respected).

    `score` maps encoded rows to raw scores. Each row of `X` is scored along a grid of the feature's values (its quantiles in `X` plus
    0), the other features held; a +1 feature must never lower the score, a -1 never raise it.
    """
    out: dict[str, float] = {}
    for name, sign in monotone.items():
        if not sign:
            continue
        j = list(feature_names).index(name)
        col = X[:, j][np.isfinite(X[:, j])]
        grid = np.unique(np.concatenate([[0.0], np.quantile(col, np.linspace(0, 1, grid_points))])) if len(col) else [0.0]
        scores = []
        for value in grid:
            Xg = X.copy()  # noqa: N806
            Xg[:, j] = value
            scores.append(score(Xg))
        steps = np.diff(np.vstack(scores), axis=0) * sign
        out[name] = float(max(0.0, -steps.min())) if steps.size else 0.0
    return out


# ---- task specs ---------------------------------------------------------------------------

GENERIC_TIERS: tuple[tuple[str, float, str, str, str], ...] = (
    ("low", 0.3, "no_action", "No action.", "无需行动。"),
    ("medium", 0.6, "review", "Review the case.", "人工复核。"),
    ("high", 1.0, "act", "Act now.", "立即采取行动。"),
)


def generic_spec(fs: FeatureSet, name: str) -> TaskSpec:
    """A task spec for an own-data feature set: its features, no monotone constraints, 3 generic tiers.

    The label horizon (the out-of-time gap) is the dataset config's `label_horizon_months`, else
    1 month; `split.gap_months` in a training config overrides it.
    """
    horizon = fs.label.get("horizon_months") or 1
    return TaskSpec(
        name=name,
        title=name,
        question=f"Will {fs.label.get('definition') or fs.label_name} hold?",
        positive_means="raised the predicted probability",
        label=LabelSpec(name=fs.label_name, event="column", horizon_months=int(horizon), eligibility="all",
                        definition=str(fs.label.get("definition") or fs.label_name)),
        features=tuple(fs.feature_names),
        monotone={},
        groups=tuple(fs.group_columns),
        tiers=tuple(Tier(name=n, max_probability=p, action=a, action_en=en, action_zh=zh)
                    for n, p, a, en, zh in GENERIC_TIERS),
    )


def resolve_spec(task_or_spec: str | TaskSpec, fs: FeatureSet) -> TaskSpec:
    """The spec to train: a built-in task by name, a given spec, or a generic one named after `fs`."""
    if isinstance(task_or_spec, TaskSpec):
        return task_or_spec
    if task_or_spec in task_names():
        return load_spec(task_or_spec)
    if task_or_spec == fs.task:
        return generic_spec(fs, task_or_spec)
    raise TrainingError(f"unknown task {task_or_spec!r}; choose one of {', '.join(task_names())}, or train your own "
                        f"data with --dataset-config (feature set task: {fs.task!r})")


def _check_featureset(fs: FeatureSet, spec: TaskSpec, path: Path) -> list[dict[str, Any]]:
    """The feature definitions in the spec's order; errors when the feature set is for another task."""
    if spec.label.event != "column" and fs.task != spec.name:
        raise TrainingError(f"feature set {path} was built for task {fs.task!r}, not {spec.name!r}")
    if fs.label_name != spec.label.name:
        raise TrainingError(f"feature set {path} has label {fs.label_name!r}; task {spec.name} needs "
                            f"{spec.label.name!r}")
    defs = {f["name"]: f for f in fs.features}
    missing = [f for f in spec.features if f not in defs]
    if missing:
        raise TrainingError(f"feature set {path} lacks features {missing} of task {spec.name}; rebuild it "
                            "with `tenure features build`")
    return [defs[f] for f in spec.features]


# ---- the run ------------------------------------------------------------------------------

@dataclass
class TrainResult:
    run_id: str
    model_name: str
    version: str
    model_uri: str  # models:/<name>/<version> (immutable; the alias `challenger` moves)
    test_metrics: dict[str, float]
    baseline_test_metrics: dict[str, float]
    best_params: dict[str, Any]
    chosen: str = "tuned"
    calibration: str = "none"
    best_trial: int | None = None
    study_name: str = ""
    split: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The JSON line `tenure train` prints per task."""
        return {"run_id": self.run_id, "model_name": self.model_name, "version": self.version,
                "model_uri": self.model_uri, "test_metrics": self.test_metrics}


def study_name_for(spec: TaskSpec, fs_hash: str, cfg: TrainConfig, params: dict[str, Any], dev_rows: int = 0) -> str:
    """`<task>-<featureset hash[:12]>-<search hash[:8]>`: resumable, never mixing search spaces.

    The search hash covers everything that changes what a trial means (seed, split, fixed and
    searched parameters, pruning); the budget is left out, so a larger `n_trials` extends the
    same study.
    """
    search = {
        "seed": cfg.seed, "split": cfg.split.model_dump(mode="json"), "lightgbm": cfg.lightgbm.model_dump(mode="json"),
        "cv": cfg.cv.model_dump(mode="json"),
        "search_space": {k: v.model_dump(mode="json") for k, v in cfg.tuning.space_for(dev_rows).items()},
        "start_points": cfg.tuning.start_points,
        "sampler_startup_trials": cfg.tuning.sampler_startup_trials,
        "pruning": cfg.tuning.pruning.model_dump(mode="json"), "params": params,
    }
    digest = hashlib.sha256(json.dumps(search, sort_keys=True, default=str).encode()).hexdigest()
    return f"{spec.name}-{fs_hash[:12]}-{digest[:8]}"


def _columns(fs: FeatureSet, spec: TaskSpec) -> dict[str, Any]:
    groups = [g for g in fs.group_columns if g in fs.frame.columns]
    return {"id": fs.id_column, "time": fs.time_column, "label": fs.label_name, "groups": groups,
            "probability": "probability"}


def _prediction_frame(rows: pd.DataFrame, cols: dict[str, Any], probability: np.ndarray,
                      features: Sequence[str] = ()) -> pd.DataFrame:
    keep = [cols["id"], cols["time"], *features]
    keep += [g for g in cols["groups"] if g not in keep]
    out = rows[[*keep, cols["label"]]].reset_index(drop=True).copy()
    out["probability"] = np.asarray(probability, dtype=np.float64)
    return out


def _log_datasets(split: Split, fs: FeatureSet, spec: TaskSpec, path: Path) -> None:
    import mlflow

    digest = fs.content_hash[:32]  # MLflow keeps at most 36 characters; the full hash is a tag
    with warnings.catch_warnings():  # MLflow's hints about integer columns and local sources
        warnings.simplefilter("ignore", UserWarning)
        for part in ("train", "valid", "test"):
            frame = getattr(split, part)
            ds = mlflow.data.from_pandas(frame, source=str(path), targets=fs.label_name,
                                         name=f"{spec.name}-{part}", digest=digest)
            mlflow.log_input(ds, context=part)


Member = tuple[dict[str, Any], CVResult]  # one parameter set and its CV


@dataclass
class Candidate:
    """A model judged by CV, calibrated on its out-of-fold scores, refitted on the development rows.

    One parameter set (the baseline, or the tuned model with `tuning.ensemble_size: 1`), or the
    mean raw score of several (`members`, the best trials): `cv` is then the CV of that mean."""

    members: list[Member]
    cv: CVResult
    calibration: Calibration
    calibration_scores: dict[str, float]
    booster: Any  # refitted on every development row with the CV's rounds (each member its own)
    linear: LinearPart | None = None  # blended in (`blend`), fitted on every development row
    blend: Blend | None = None

    def raw_score(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        trees = self.booster.predict(X, raw_score=True)
        return trees if self.linear is None else self.linear.blend(trees, X)

    @property
    def params(self) -> dict[str, Any]:
        """The first (best) member's parameters."""
        return self.members[0][0]


def _calibrate(cv: CVResult, y: np.ndarray, cfg: TrainConfig) -> tuple[Calibration, dict[str, float]]:
    mask = cv.validated
    return choose_oof_calibration(
        cv.oof_raw[mask], y[mask], cv.fold_of_row[mask], cfg.calibration.methods,
        isotonic_min_rows=cfg.calibration.isotonic_min_rows, max_auc_loss=cfg.calibration.max_auc_loss)


def _candidate(members: list[Member], data: TrainData, cfg: TrainConfig, split_kind: str) -> Candidate:
    cv = mean_cv([c for _, c in members], data.y)
    calibration, scores = _calibrate(cv, data.y, cfg)
    return Candidate(members, cv, calibration, scores,
                     refit_members(members, data.X, data.y, data, cfg, split_kind))


def _blended(candidate: Candidate, data: TrainData, features: list[dict[str, Any]], spec: TaskSpec,
             cfg: TrainConfig) -> Candidate:
    """`candidate` with the linear part blended in at the weight its out-of-fold scores choose
    (`training.linear`), recalibrated on the blend; unchanged (with its `blend` set) at weight 0."""
    blend = choose_weight(candidate.cv, linear_oof(data, features, spec.monotone, cfg.blend.c), data.y,
                          cfg.blend.weight_step)
    if blend.weight == 0:
        return replace(candidate, blend=blend)
    calibration, scores = _calibrate(blend.cv, data.y, cfg)
    linear = fit_linear(data.X, data.y, features, spec.monotone, cfg.blend.c, weight=blend.weight)
    return replace(candidate, cv=blend.cv, calibration=calibration, calibration_scores=scores, linear=linear,
                   blend=blend)


def refit_members(members: list[Member], X: np.ndarray, y: np.ndarray, data: TrainData,  # noqa: N803
                  cfg: TrainConfig, split_kind: str) -> Any:
    """Each member refitted on `X`, `y` with its own CV's rounds (`refit_rounds`), averaged into one booster."""
    return average_boosters([refit(params, X, y, refit_rounds(cv, data, len(y), cfg, split_kind), data)
                             for params, cv in members])


def refit_rounds(cv: CVResult, data: TrainData, rows: int, cfg: TrainConfig, split_kind: str) -> int:
    """Boosting rounds for a refit on `rows` rows (`lightgbm.refit_rounds`).

    `auto` scales the folds' mean best iteration by the refit's rows over a fold's training rows
    for a random split (k-fold: the refit sees the same distribution, 1.25x or more of the rows;
    measured on four public tables the benchmark does not use, 3 split seeds each: better on 9 of
    12, mean test AUC +0.003), and keeps the mean out of time (expanding windows train on a few
    early snapshots: scaling to all of them was -0.005 and +0.003 on default_risk, seeds 42 and 7).
    """
    how = cfg.lightgbm.refit_rounds
    if how == "auto":
        how = "scaled" if split_kind == "random" else "mean"
    if how == "mean" or not data.folds:
        return cv.rounds
    fold_rows = float(np.mean([len(t) for t, _ in data.folds]))
    return max(1, int(round(cv.rounds * rows / fold_rows)))


def refit_target(cfg: TrainConfig, fs: FeatureSet) -> str:
    """`non_test` or `all`: `refit: auto` refits own tables on every row, built-in tasks on the non-test rows."""
    if cfg.refit != "auto":
        return cfg.refit
    return "all" if fs.lineage.get("kind") == "own_data" else "non_test"


def _metrics(y: np.ndarray, p: np.ndarray, cfg: TrainConfig) -> dict[str, float]:
    return binary_metrics(y, p, ece_bins=cfg.evaluation.ece_bins, top_fraction=cfg.evaluation.top_fraction)


def train_task(task_or_spec: str | TaskSpec, featureset_path: Path | str, cfg: TrainConfig, settings: Settings, *,
               model_name: str | None = None, echo: Echo | None = None, workers: int = 1) -> TrainResult:
    """Train, evaluate, log and register one model; see the module docstring for what is written.

    `task_or_spec`: a built-in task name, a `TaskSpec`, or the task name stored in an own-data
    feature set (a generic spec is made for it). `model_name` defaults to the spec's name.
    `workers`: trial processes on this machine. The model is fitted and registered once per study
    run (`training.study.StudyRun`): when another `tenure train` of the same study finalises it,
    this returns that run's result and registers nothing.
    """
    import mlflow

    from models.layout import UNSEEN_ROWS_ARTIFACT
    from models.tracking import setup_mlflow
    from training import tune as tuning
    from training.plots import plot_calibration, write_plots
    from training.pyfunc import log_tenure_model
    from training.study import StudyRun
    from training.tracking import git_commit, git_dirty, unseen_rows

    passive_openmp()
    say = echo or (lambda _msg: None)
    started = time.monotonic()
    path = Path(featureset_path).resolve()
    fs = read_featureset(path, max_customers=settings.train_max_customers)  # a sample beyond one machine
    spec = resolve_spec(task_or_spec, fs)
    name = model_name or spec.name
    defs = _check_featureset(fs, spec, path)
    encoder = TenureModel(booster=None, features=defs)
    feature_names = encoder.feature_names
    cols = _columns(fs, spec)
    label = fs.label_name

    split_cfg = cfg.split
    if split_cfg.kind == "auto" and fs.lineage.get("split") == "random":
        split_cfg = split_cfg.model_copy(update={"kind": "random"})
    split = split_featureset(fs.frame, fs.time_column, label, spec.label.horizon_months, split_cfg, cfg.seed,
                             folds=cfg.cv.folds, time_folds=cfg.cv.time_folds, source=str(path))
    split_desc = split.describe(fs.time_column)
    refit_on = refit_target(cfg, fs)
    # dates only out of time: a random split's rows share one snapshot (1970-01-01 for a table without dates)
    dev_span, test_span = ((f" {split_desc['train']}", f" {split_desc['test']}") if split.kind == "out_of_time"
                           else ("", ""))
    say(f"{name}: {split.kind} split, development rows{dev_span} ({len(split.train):,}) in "
        f"{len(split.folds)} {split_desc['cv'].replace('_', ' ')} folds, test{test_span} "
        f"({len(split.test):,}); the registered model is refitted on {refit_on.replace('_', '-')} rows")

    def encode(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return encoder.encode_frame(rows[feature_names]), rows[label].to_numpy().astype(np.int64)

    X_dev, y_dev = encode(split.train)  # noqa: N806
    X_test, y_test = encode(split.test)  # noqa: N806
    cfg = cfg.for_rows(len(y_dev))  # one LightGBM thread on a small table (configs/train.yaml)
    data = TrainData(X_dev, y_dev, split.folds, feature_names, encoder.categorical_indices,
                     cfg.lightgbm.n_estimators, cfg.lightgbm.early_stopping_rounds)
    base = lightgbm_params(cfg, spec)
    study_name = study_name_for(spec, fs.content_hash, cfg, base, dev_rows=len(y_dev))

    setup_mlflow(settings, name)
    commit = git_commit()
    with mlflow.start_run(run_name=f"{name}-train") as run, \
            StudyRun(settings.optuna_storage_url, study_name, echo=say) as study_run:
        run_id = run.info.run_id
        mlflow.set_tags({
            "tenure.task": spec.name, "tenure.model_name": name, "tenure.featureset_path": str(path),
            "tenure.featureset_hash": fs.content_hash, "tenure.split": json.dumps(split_desc),
            "tenure.git_commit": commit, "tenure.git_dirty": str(git_dirty()).lower(),
            "tenure.seed": str(cfg.seed), "tenure.study": study_name,
            "tenure.columns": json.dumps(cols), "tenure.refit": refit_on,
        })
        mlflow.log_params({
            "task": spec.name, "model_name": name, "seed": cfg.seed, "num_threads": cfg.num_threads,
            "split_kind": split.kind, "gap_months": split.gap_months, "n_features": len(feature_names),
            "cv_folds": len(split.folds), "refit": refit_on,
            "search_space": "small" if cfg.tuning.space_for(len(y_dev)) is not cfg.tuning.search_space else "full",
            "n_trials": cfg.tuning.n_trials, "timeout_seconds": cfg.tuning.timeout_seconds,
            "pruning": cfg.tuning.pruning.pruner if cfg.tuning.pruning.enabled else "off",
            "n_estimators": cfg.lightgbm.n_estimators, "early_stopping_rounds": cfg.lightgbm.early_stopping_rounds,
            "monotone_constraints": int(any(spec.monotone_vector())),
            "monotone_constraints_method": cfg.lightgbm.monotone_constraints_method,
        })
        _log_datasets(split, fs, spec, path)

        # search, then the two candidates judged on the same folds: best trial and default parameters
        say(f"{name}: Optuna study {study_name} in {settings.optuna_storage_url}; watch it with "
            f"`optuna-dashboard {settings.optuna_storage_url}`")
        tuned = tuning.tune(data, base, cfg, settings.optuna_storage_url, study_name, log_trials=True, workers=workers)
        say(f"{name}: {tuned.n_complete} complete and {tuned.n_pruned} pruned trials"
            f" ({tuned.new_trials} new); best CV AUC {tuned.best_value:.4f}" if tuned.best_value is not None
            else f"{name}: no trial completed")
        elsewhere = study_run.finalise_here()
        if elsewhere is not None:  # another `tenure train` of this study run registered the model
            mlflow.set_tags({"tenure.finalised_in": elsewhere["run_id"], "tenure.registered_version": elsewhere["version"]})
            return TrainResult(**elsewhere)
        baseline_cv = cross_validate(base, data)
        # the tuned model: the best trials (`tuning.ensemble_size` / `ensemble_share`), averaged (the same folds and
        # deterministic LightGBM: a trial this process ran keeps its own CV, others are rerun)
        members: list[Member] = [({**base, **params}, tuned.cvs.get(number) or cross_validate({**base, **params}, data))
                                 for number, params, _ in tuned.top]
        tuned_cv = mean_cv([c for _, c in members], y_dev) if members else None
        chosen, se = choose(tuned_cv, baseline_cv, y_dev, cfg.cv.choose_margin_se, cfg.seed)
        baseline = _candidate([(base, baseline_cv)], data, cfg, split.kind)
        final = baseline if chosen == "baseline" else _candidate(members, data, cfg, split.kind)
        if cfg.blend.enabled and len(y_dev) <= cfg.blend.max_rows:
            final = _blended(final, data, defs, spec, cfg)
        final_params, calibration, cv = final.params, final.calibration, final.cv
        ensemble = [{"trial": number, "cv_mean_roc_auc": value, "rounds": c.rounds, "params": params}
                    for (number, params, value), (_, c) in zip(tuned.top, members, strict=True)] \
            if chosen == "tuned" else []
        oof = cv.validated
        probs = {"valid": calibration(cv.oof_raw[oof]), "test": calibration(final.raw_score(X_test))}
        base_probs = {"valid": baseline.calibration(baseline_cv.oof_raw[baseline_cv.validated]),
                      "test": baseline.calibration(baseline.booster.predict(X_test, raw_score=True))}
        y_oof = y_dev[oof]
        metrics = {"valid": _metrics(y_oof, probs["valid"], cfg), "test": _metrics(y_test, probs["test"], cfg),
                   "baseline_valid": _metrics(y_dev[baseline_cv.validated], base_probs["valid"], cfg),
                   "baseline_test": _metrics(y_test, base_probs["test"], cfg)}

        # the test metrics are recorded: refit on every row if asked (same calibration; rounds
        # scaled to the rows as `lightgbm.refit_rounds` says)
        if refit_on == "all":
            X_fit, y_fit = np.vstack([X_dev, X_test]), np.concatenate([y_dev, y_test])  # noqa: N806
            booster = refit_members(final.members, X_fit, y_fit, data, cfg, split.kind)
            linear = None if final.linear is None else fit_linear(X_fit, y_fit, defs, spec.monotone, cfg.blend.c,
                                                                  weight=final.linear.weight)
            trained_rows = pd.concat([split.train, split.test])
        else:
            X_fit, booster, linear, trained_rows = X_dev, final.booster, final.linear, split.train  # noqa: N806
        model = TenureModel(
            booster=booster, features=defs, calibration=calibration, task_spec=spec.model_dump(mode="json"),
            linear=linear, meta={"task": spec.name, "model_name": name, "run_id": run_id, "featureset_path": str(path),
                  "featureset_hash": fs.content_hash, "id_column": fs.id_column, "time_column": fs.time_column,
                  "label": fs.label, "group_columns": cols["groups"], "split": split_desc, "chosen": chosen,
                  "params": final_params, "ensemble": ensemble,
                  "blend_weight": linear.weight if linear is not None else 0.0,
                  "best_iteration": int(booster.best_iteration), "refit": refit_on,
                  "cv_mean_roc_auc": cv.mean, "git_commit": commit,
                  "seed": cfg.seed, "trained_at": pd.Timestamp.now(tz="UTC").isoformat()},
        )
        if spec.monotone:
            sample = X_fit[_sample_index(len(X_fit), 500, cfg.seed)]
            broken = {f: v for f, v in monotone_violations(model.raw_score, sample, feature_names,
                                                           spec.monotone).items() if v > 1e-9}
            if broken:
                raise TrainingError(
                    f"the {chosen} model of {name} breaks its monotone constraints (largest raw-score move "
                    f"against the constraint: {broken}) with lightgbm.monotone_constraints_method "
                    f"{cfg.lightgbm.monotone_constraints_method!r}; use intermediate or basic")
            mlflow.set_tag("tenure.monotone_check", "passed")

        flat = {f"{part}_{m}": v for part, ms in metrics.items() for m, v in ms.items()}
        flat |= {"cv_mean_roc_auc": cv.mean, "cv_std_roc_auc": cv.std, "cv_se_roc_auc": se,
                 "baseline_cv_mean_roc_auc": baseline_cv.mean, "baseline_cv_std_roc_auc": baseline_cv.std,
                 "tuned_cv_mean_roc_auc": tuned_cv.mean if tuned_cv is not None else float("nan"),
                 **{f"fold_{i}_roc_auc": a for i, a in enumerate(cv.fold_aucs)},
                 "best_iteration": float(cv.rounds), "ensemble_size": float(len(final.members)),
                 "refit_rounds": booster.num_trees() / len(final.members),
                 "tuned_best_trial_cv_mean_roc_auc": tuned.best_value if tuned.best_value is not None else float("nan"),
                 "n_trials_complete": float(tuned.n_complete), "n_trials_pruned": float(tuned.n_pruned),
                 "blend_weight": final.blend.weight if final.blend else float("nan"),
                 "trees_cv_mean_roc_auc": final.blend.trees_cv_mean if final.blend else cv.mean,
                 "linear_cv_mean_roc_auc": final.blend.linear_cv_mean if final.blend else float("nan"),
                 "train_rows": float(len(trained_rows)), "train_positive_rate": float(y_dev.mean()),
                 "test_positive_rate": float(y_test.mean()),
                 **{f"calibration_oof_{m}": v for m, v in final.calibration_scores.items()}}
        mlflow.log_metrics(flat)
        if tuned.best_params is not None:
            mlflow.log_params({f"best_{k}": v for k, v in tuned.best_params.items()})
        mlflow.set_tags({"tenure.best_trial": str(tuned.best_trial) if tuned.best_trial is not None else "none",
                         "tenure.chosen": chosen, "tenure.calibration": calibration.method,
                         "tenure.blend_weight": str(linear.weight if linear is not None else 0.0),
                         "tenure.best_params": json.dumps(tuned.best_params or {}),
                         "tenure.ensemble": json.dumps([m["trial"] for m in ensemble])})
        tuned_text = f"{tuned_cv.mean:.4f}" if tuned_cv is not None else "none"
        what = (f"the tuned model (mean of the {len(members)} best trials, {[m['trial'] for m in ensemble]})"
                if chosen == "tuned" and len(members) > 1 else f"the {chosen} parameters")
        blended = (f", blended with a logistic regression at weight {linear.weight:g} (CV AUC trees "
                   f"{final.blend.trees_cv_mean:.4f}, regression {final.blend.linear_cv_mean:.4f}, blend {cv.mean:.4f})"
                   if linear is not None and final.blend is not None else "")
        say(f"{name}: chose {what} (CV AUC tuned {tuned_text} vs baseline {baseline_cv.mean:.4f}, "
            f"SE {se:.4f}), {cv.rounds} rounds{blended}, calibration {calibration.method}; test AUC "
            f"{metrics['test']['roc_auc']:.4f} (baseline {metrics['baseline_test']['roc_auc']:.4f})")

        with tempfile.TemporaryDirectory(prefix="tenure-train-") as tmp_dir:
            tmp = Path(tmp_dir)
            reference = _reference(trained_rows, cols, feature_names, model, encoder, cfg)
            (tmp / "reference").mkdir()
            reference.to_parquet(tmp / "reference" / "reference.parquet", index=False)
            unseen_rows(fs.frame, trained_rows, [cols["id"], cols["time"], *feature_names]).to_parquet(
                tmp / UNSEEN_ROWS_ARTIFACT, index=False)
            (tmp / "evaluation").mkdir()
            _prediction_frame(split.test, cols, probs["test"]).to_parquet(
                tmp / "evaluation" / "test_predictions.parquet", index=False)
            _prediction_frame(split.valid, cols, probs["valid"]).to_parquet(
                tmp / "evaluation" / "valid_predictions.parquet", index=False)
            (tmp / "evaluation" / "metrics.json").write_text(json.dumps({
                **metrics, "chosen": chosen, "calibration": calibration.to_dict(),
                "calibration_oof": final.calibration_scores, "best_trial": tuned.best_trial,
                "best_params": tuned.best_params, "final_params": final_params, "ensemble": ensemble,
                "blend": None if final.blend is None else {
                    "weight": final.blend.weight, "trees_cv_mean_roc_auc": final.blend.trees_cv_mean,
                    "linear_cv_mean_roc_auc": final.blend.linear_cv_mean, "cv_mean_roc_auc": final.blend.cv.mean},
                "cv": {"chosen": _cv_summary(cv), "baseline": _cv_summary(baseline_cv),
                       "tuned": _cv_summary(tuned_cv) if tuned_cv is not None else None, "se": se,
                       "choose_margin_se": cfg.cv.choose_margin_se},
                "refit": refit_on, "refit_rows": len(trained_rows),
                "best_iteration": int(booster.best_iteration), "split": split_desc, "columns": cols,
            }, indent=2, default=_json_default))
            (tmp / "config").mkdir()
            (tmp / "config" / "train_config.json").write_text(json.dumps(
                {"train": cfg.model_dump(mode="json"), "task_spec": spec.model_dump(mode="json"),
                 "lightgbm_fixed_params": base, "featureset": {"path": str(path), "hash": fs.content_hash}},
                indent=2, default=_json_default))
            sample = _sample_index(len(split.test), cfg.evaluation.shap_rows, cfg.seed)
            write_plots(tmp / "plots", y=y_test, probability=probs["test"], baseline_probability=base_probs["test"],
                        contributions=model.contributions(X_test[sample], num_threads=cfg.num_threads),
                        shap_values=X_test[sample], gain=booster.feature_importance("gain"),
                        feature_names=feature_names, title=f"{name} (test)", bins=cfg.evaluation.ece_bins,
                        seed=cfg.seed)
            plot_calibration(y_oof, {"uncalibrated": Calibration()(cv.oof_raw[oof]),
                                     f"calibrated ({calibration.method})": probs["valid"]},
                             tmp / "plots" / OOF_CALIBRATION_PLOT, f"{name} (out of fold)", cfg.evaluation.ece_bins)
            mlflow.log_artifacts(str(tmp))

        info = log_tenure_model(model, reference[feature_names].head(5), registered_model_name=name)
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        client.set_registered_model_alias(name, CHALLENGER, version)
        for key, value in {"tenure.task": spec.name, TAG_RUN_ID: run_id,
                           "tenure.featureset_hash": fs.content_hash, "tenure.featureset_path": str(path),
                           "tenure.chosen": chosen, "tenure.calibration": calibration.method,
                           "tenure.study": study_name}.items():
            client.set_model_version_tag(name, version, key, value)
        mlflow.set_tag("tenure.registered_version", version)
        mlflow.log_metric("train_seconds", time.monotonic() - started)
        result = TrainResult(run_id=run_id, model_name=name, version=version, model_uri=f"models:/{name}/{version}",
                             test_metrics=metrics["test"], baseline_test_metrics=metrics["baseline_test"],
                             best_params=tuned.best_params or {}, chosen=chosen, calibration=calibration.method,
                             best_trial=tuned.best_trial, study_name=study_name, split=split_desc)
        study_run.result = asdict(result)  # what the other workers of this study run report

    say(f"{name}: registered version {version} as {name}@{CHALLENGER} (run {run_id})")
    return result


def _cv_summary(cv: CVResult) -> dict[str, Any]:
    return {"mean_roc_auc": cv.mean, "std_roc_auc": cv.std, "fold_roc_auc": cv.fold_aucs,
            "best_iterations": cv.best_iterations, "rounds": cv.rounds}


def _sample_index(n: int, k: int, seed: int) -> np.ndarray:
    """At most `k` of `n` row positions, drawn with `seed`, in order."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _reference(train: pd.DataFrame, cols: dict[str, Any], feature_names: list[str], model: TenureModel,
               encoder: TenureModel, cfg: TrainConfig) -> pd.DataFrame:
    """Training-period rows for monitoring: raw feature values as in the feature set, plus `probability`."""
    rows = train.iloc[_sample_index(len(train), cfg.evaluation.reference_max_rows, cfg.seed)]
    p = model.predict_proba(encoder.encode_frame(rows[feature_names]), num_threads=cfg.num_threads)
    return _prediction_frame(rows, cols, p, features=feature_names)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path | pd.Timestamp):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")

