"""Optuna search over LightGBM parameters: a seeded TPE sampler, pruning, one nested MLflow run per trial.

Reads encoded training data (`training.train.TrainData`) and the search space of the training
config; writes an Optuna study to the storage URL (SQLite by default, resumable: the same study
name continues where it stopped) and, when an MLflow run is active, one nested run per trial
(searched params, `valid_roc_auc`, `best_iteration`, tag `tenure.trial_state`).

The objective is `training.train.train_and_score` with the trial's parameters plus a pruning
callback (`optuna_integration.LightGBMPruningCallback`, reporting the validation AUC every
`pruning.report_every` rounds); no training code lives here.

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
from dataclasses import dataclass
from typing import Any

from configs.train import ParamRange, PruningConfig, TrainConfig
from training.train import TrainData, passive_openmp, train_and_score

TRIAL_STATE_TAG = "tenure.trial_state"


@dataclass
class TuneResult:
    study_name: str
    storage_url: str
    best_params: dict[str, Any] | None  # the searched parameters of the best trial (None: no trial completed)
    best_value: float | None  # its validation ROC AUC
    best_trial: int | None
    n_complete: int
    n_pruned: int
    new_trials: int  # trials run by this call


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


def make_pruner(cfg: PruningConfig, n_estimators: int) -> Any:
    import optuna

    if not cfg.enabled:
        return optuna.pruners.NopPruner()
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(cfg.report_every, cfg.warmup_steps, 1),
                                              max_resource=n_estimators, reduction_factor=3)
    return optuna.pruners.MedianPruner(n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.warmup_steps)


def open_study(cfg: TrainConfig, storage_url: str, study_name: str, worker: str | None = None) -> Any:
    """Create or load the study with the study-wide budget (`training.study`): a TPE sampler seeded
    per trial (constant liar, for parallel workers) and the configured pruner."""
    import optuna

    from training.study import open_study as open_shared

    def sampler(seed: int) -> Any:
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=cfg.tuning.sampler_startup_trials,
                                          constant_liar=True)

    return open_shared(storage_url, study_name, n_trials=cfg.tuning.n_trials, seed=cfg.seed, make_sampler=sampler,
                       pruner=make_pruner(cfg.tuning.pruning, cfg.lightgbm.n_estimators), worker=worker)


def _finished(study: Any) -> tuple[int, int]:
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    return states.count(TrialState.COMPLETE), states.count(TrialState.PRUNED)


def tune(data: TrainData, base_params: dict[str, Any], cfg: TrainConfig, storage_url: str, study_name: str, *,
         log_trials: bool = True, workers: int = 1, parent_run_id: str | None = None,
         worker_index: int = 0) -> TuneResult:
    """Run (or resume) the study within the budget; return the best trial's parameters.

    `parent_run_id`: the MLflow run the trial runs nest under (default: the active run);
    `worker_index` names a child worker (`training.study`)."""
    passive_openmp()  # optuna_integration imports lightgbm
    import optuna
    from optuna_integration import LightGBMPruningCallback

    from training import study as shared

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(cfg, storage_url, study_name, worker=shared.worker_name(worker_index))
    pruning = cfg.tuning.pruning
    # an active run needs mlflow imported already; not importing it otherwise keeps this fast
    mlflow: Any = sys.modules.get("mlflow") if log_trials else None
    if mlflow is not None and parent_run_id is None and mlflow.active_run() is not None:
        parent_run_id = mlflow.active_run().info.run_id
    log_trials = mlflow is not None and parent_run_id is not None

    def objective(trial: optuna.Trial) -> float:
        params = {**base_params, **suggest(trial, cfg.tuning.search_space)}
        rounds = {"done": 0}

        def count(env: Any) -> None:
            rounds["done"] = env.iteration + 1

        callbacks = [count]
        if pruning.enabled:
            callbacks.append(LightGBMPruningCallback(trial, "auc", valid_name="valid",
                                                     report_interval=pruning.report_every))
        if not log_trials:
            return train_and_score(params, data, callbacks)[1]
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True, parent_run_id=parent_run_id) as run:
            trial.set_user_attr("mlflow_run_id", run.info.run_id)
            mlflow.log_params({**trial.params, "trial_number": trial.number})
            try:
                booster, score = train_and_score(params, data, callbacks)
            except optuna.TrialPruned:
                mlflow.set_tag(TRIAL_STATE_TAG, "pruned")
                mlflow.log_metric("pruned_at_iteration", float(rounds["done"]))
                pruned = True
            else:
                pruned = False
                mlflow.log_metrics({"valid_roc_auc": score, "best_iteration": float(booster.best_iteration)})
                mlflow.set_tag(TRIAL_STATE_TAG, "complete")
                trial.set_user_attr("best_iteration", int(booster.best_iteration))
        if pruned:
            raise optuna.TrialPruned()
        return score

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
    try:
        best = study.best_trial
    except ValueError:
        best = None
    return TuneResult(
        study_name=study_name, storage_url=storage_url,
        best_params=dict(best.params) if best is not None else None,
        best_value=float(best.value) if best is not None else None,
        best_trial=best.number if best is not None else None,
        n_complete=complete, n_pruned=pruned_n, new_trials=complete + pruned_n - before,
    )
