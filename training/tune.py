"""Optuna search over LightGBM parameters: a seeded TPE sampler, fold-level pruning, one nested MLflow run per trial.

Reads encoded development rows and their folds (`training.cv.TrainData`) and the search space of
the training config (`tuning.small_search_space` when the development set has fewer than
`tuning.small_table_rows` rows); writes an Optuna study to the storage URL (SQLite by default,
resumable: the same study name continues where it stopped) and, when an MLflow run is active, one
nested run per trial (searched params, `fold_<i>_roc_auc`, `cv_mean_roc_auc`, `cv_std_roc_auc`,
`best_iteration` (the mean over the folds), tag `tenure.trial_state`).

The objective is the CV mean ROC AUC of `training.cv.cross_validate` with the trial's
parameters; after each fold the running mean is reported to the pruner (step = folds done), so a
weak trial stops after `pruning.warmup_folds` folds instead of running all of them. No training
code lives here. The result names the study's best complete trials (`tuning.ensemble_size`, at
most `tuning.ensemble_share` of them; any worker's) and keeps the out-of-fold scores of those this process ran, so the ensemble of
`training.train` reruns none of them. A new study's first trials are `tuning.start_points` (LightGBM's defaults and a
strongly regularised point, clipped into the searched ranges), so the search starts from
ground at least as good as the defaults on the CV estimate.

Budget: `n_trials` counts the study's finished (complete or pruned) and running trials, including
those of earlier runs and of other workers (`training.study`: the study-wide budget, a seed per
trial, one final model), so a rerun of a finished study adds none and an interrupted one is
completed; `timeout_seconds` bounds this run's search. With `workers` > 1, that many processes
run trials on this machine (this one and `workers - 1` children). With one worker, the same seed,
data, config and `n_trials` (no timeout) give the same trials and the same best parameters: TPE
is seeded per trial and LightGBM is deterministic with fixed threads. A resumed study is not
guaranteed to match an uninterrupted one, nor several workers one worker (which trial sees which
finished ones depends on timing).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from configs import ConfigError
from configs.train import LIGHTGBM_DEFAULTS, ParamRange, PruningConfig, TrainConfig
from training.cv import TrainData, cross_validate, passive_openmp

TRIAL_STATE_TAG = "tenure.trial_state"


@dataclass
class TuneResult:
    study_name: str
    storage_url: str
    n_complete: int
    n_pruned: int
    new_trials: int  # trials run by this call
    # the best complete trials of the study (every worker's; `TuningConfig.ensemble_members`), best first:
    # (trial number, searched parameters, CV mean ROC AUC); empty when no trial completed
    top: list[tuple[int, dict[str, Any], float]] = field(default_factory=list)
    # trial number -> `training.cv.CVResult` of the best trials this process ran (saves a rerun)
    cvs: dict[int, Any] = field(default_factory=dict)

    @property
    def best_trial(self) -> int | None:
        return self.top[0][0] if self.top else None

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The searched parameters of the best trial (None: no trial completed)."""
        return self.top[0][1] if self.top else None

    @property
    def best_value(self) -> float | None:
        """The best trial's CV mean ROC AUC."""
        return self.top[0][2] if self.top else None


def suggest(trial: Any, space: dict[str, ParamRange]) -> dict[str, Any]:
    """The trial's parameters from the YAML search space."""
    params: dict[str, Any] = {}
    for name, rng in space.items():
        if rng.type == "categorical":
            params[name] = trial.suggest_categorical(name, rng.choices)
        elif rng.type == "int":
            params[name] = trial.suggest_int(name, int(rng.low), int(rng.high), log=rng.log,
                                             step=int(rng.step) if rng.step else 1)
        else:
            params[name] = trial.suggest_float(name, float(rng.low), float(rng.high), log=rng.log, step=rng.step)
    return params


def start_point(point: dict[str, Any], space: dict[str, ParamRange]) -> dict[str, Any]:
    """A start point as searched values: missing parameters take LightGBM's default, every value
    is clipped into its range (ints rounded); parameters not searched are left out."""
    out: dict[str, Any] = {}
    for name, rng in space.items():
        value = point.get(name, LIGHTGBM_DEFAULTS.get(name))
        if value is None:
            raise ConfigError(f"tuning.start_points: {name} is searched and has no LightGBM default here; "
                              "give it in every start point")
        if rng.type == "categorical":
            out[name] = value if value in (rng.choices or []) else (rng.choices or [None])[0]
            continue
        value = min(max(float(value), float(rng.low)), float(rng.high))  # type: ignore[arg-type]
        out[name] = int(round(value)) if rng.type == "int" else value
    return out


def make_pruner(cfg: PruningConfig, n_folds: int) -> Any:
    """A pruner over folds: step = folds done, value = the running CV mean AUC."""
    import optuna

    if not cfg.enabled or n_folds < 2:
        return optuna.pruners.NopPruner()
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(cfg.warmup_folds, 1), max_resource=n_folds,
                                              reduction_factor=3)
    return optuna.pruners.MedianPruner(n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.warmup_folds)


def open_study(cfg: TrainConfig, storage_url: str, study_name: str, worker: str | None = None,
               n_folds: int = 5) -> Any:
    """Create or load the study with the study-wide budget (`training.study`): a TPE sampler seeded
    per trial (constant liar, for parallel workers) and the configured pruner."""
    import optuna

    from training.study import open_study as open_shared

    def sampler(seed: int) -> Any:
        # Optuna 5's TPE is multivariate by default for one objective (`multivariate=True` changes nothing)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=cfg.tuning.sampler_startup_trials,
                                          constant_liar=True)

    return open_shared(storage_url, study_name, n_trials=cfg.tuning.n_trials, seed=cfg.seed, make_sampler=sampler,
                       pruner=make_pruner(cfg.tuning.pruning, n_folds), worker=worker)


def enqueue_start_points(study: Any, points: list[dict[str, Any]]) -> None:
    """Queue the start points as the first trials of a study that has none (once across workers)."""
    with study.lock():
        if study.get_trials(deepcopy=False):
            return
        for point in points:
            study.enqueue_trial(point, skip_if_exists=True)


def _finished(study: Any) -> tuple[int, int]:
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    return states.count(TrialState.COMPLETE), states.count(TrialState.PRUNED)


def tune(data: TrainData, base_params: dict[str, Any], cfg: TrainConfig, storage_url: str, study_name: str, *,
         log_trials: bool = True, workers: int = 1, parent_run_id: str | None = None,
         worker_index: int = 0) -> TuneResult:
    """Run (or resume) the study within the budget; return the best trial's searched parameters.

    `parent_run_id`: the MLflow run the trial runs nest under (default: the active run);
    `worker_index` names a child worker (`training.study`)."""
    passive_openmp()
    import optuna

    from training import study as shared

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(cfg, storage_url, study_name, worker=shared.worker_name(worker_index), n_folds=len(data.folds))
    space = cfg.tuning.space_for(len(data.y))
    # never more start points than the budget: a queued trial beyond it would never run
    enqueue_start_points(study, [start_point(p, space) for p in cfg.tuning.start_points][:cfg.tuning.n_trials])
    pruning = cfg.tuning.pruning
    # an active run needs mlflow imported already; not importing it otherwise keeps this fast
    mlflow: Any = sys.modules.get("mlflow") if log_trials else None
    if mlflow is not None and parent_run_id is None and mlflow.active_run() is not None:
        parent_run_id = mlflow.active_run().info.run_id
    log_trials = mlflow is not None and parent_run_id is not None

    # the best trials this process ran, with their out-of-fold scores: trial number -> CVResult
    keep = cfg.tuning.ensemble_size
    best_here: dict[int, Any] = {}

    def objective(trial: optuna.Trial) -> float:
        params = {**base_params, **suggest(trial, space)}
        folds_done: list[float] = []

        def report(i: int, aucs: list[float]) -> None:
            folds_done[:] = aucs
            if pruning.enabled:
                trial.report(float(np.mean(aucs)), step=i + 1)
                if i + 1 < len(data.folds) and trial.should_prune():
                    raise optuna.TrialPruned()

        def run() -> Any:
            cv = cross_validate(params, data, after_fold=report)
            trial.set_user_attr("fold_roc_auc", cv.fold_aucs)
            trial.set_user_attr("best_iteration", cv.rounds)
            best_here[trial.number] = cv
            if len(best_here) > keep:
                del best_here[min(best_here, key=lambda n: (best_here[n].mean, -n))]
            return cv

        if not log_trials:
            return run().mean
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True, parent_run_id=parent_run_id) as mrun:
            trial.set_user_attr("mlflow_run_id", mrun.info.run_id)
            mlflow.log_params({**trial.params, "trial_number": trial.number})
            try:
                cv = run()
            except optuna.TrialPruned:
                mlflow.set_tag(TRIAL_STATE_TAG, "pruned")
                mlflow.log_metrics({f"fold_{i}_roc_auc": a for i, a in enumerate(folds_done)}
                                   | {"pruned_after_folds": float(len(folds_done))})
                pruned = True
            else:
                pruned = False
                mlflow.log_metrics({f"fold_{i}_roc_auc": a for i, a in enumerate(cv.fold_aucs)}
                                   | {"cv_mean_roc_auc": cv.mean, "cv_std_roc_auc": cv.std,
                                      "best_iteration": float(cv.rounds)})
                mlflow.set_tag(TRIAL_STATE_TAG, "complete")
        if pruned:
            raise optuna.TrialPruned()
        return cv.mean

    complete, pruned_n = _finished(study)
    before = complete + pruned_n
    job = shared.WorkerJob(data=data, base_params=base_params, cfg=cfg, storage_url=storage_url, study_name=study_name,
                           tracking_uri=mlflow.get_tracking_uri() if log_trials else None,
                           experiment_id=mlflow.active_run().info.experiment_id if log_trials and mlflow.active_run()
                           else None, parent_run_id=parent_run_id if log_trials else None)
    with shared.TrialWorkers(job, workers - 1) as children:
        shared.run_trials(study, objective, cfg.tuning.timeout_seconds)
        children.wait()
    complete, pruned_n = _finished(study)
    top = _top_trials(study, cfg.tuning.ensemble_members(complete + pruned_n))
    return TuneResult(
        study_name=study_name, storage_url=storage_url,
        n_complete=complete, n_pruned=pruned_n, new_trials=complete + pruned_n - before,
        top=top, cvs={n: best_here[n] for n, _, _ in top if n in best_here},
    )


def _top_trials(study: Any, k: int) -> list[tuple[int, dict[str, Any], float]]:
    """The `k` complete trials with the highest CV mean (earlier trial first on a tie), best first."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    done.sort(key=lambda t: (-float(t.value), t.number))
    return [(t.number, dict(t.params), float(t.value)) for t in done[:k]]


# ---- a child trial worker (`training.study.TrialWorkers` starts `python -m training.tune JOB INDEX`) ----

def worker_main(job_path: str, index: int) -> None:
    """A child worker: trials only, logged as nested runs of the coordinator's MLflow run."""
    import pickle

    passive_openmp()
    with open(job_path, "rb") as fh:
        job = pickle.load(fh)  # written by the parent process for this child
    if job.tracking_uri and job.parent_run_id:
        import mlflow

        mlflow.set_tracking_uri(job.tracking_uri)
        mlflow.set_registry_uri(job.tracking_uri)
        if job.experiment_id:
            mlflow.set_experiment(experiment_id=job.experiment_id)
    tune(job.data, job.base_params, job.cfg, job.storage_url, job.study_name,
         log_trials=job.parent_run_id is not None, parent_run_id=job.parent_run_id, worker_index=index)


if __name__ == "__main__":
    worker_main(sys.argv[1], int(sys.argv[2]))
