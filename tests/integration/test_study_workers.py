"""Several worker processes on one Optuna study (`training.study`), on SQLite and on PostgreSQL:
exactly the study-wide budget, no trial twice, one finalising process per study run."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

BUDGET, WORKERS = 12, 3


def _sampler(seed: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4, constant_liar=True)


def _trials(url: str, study_name: str, index: int, start: Any) -> None:
    import optuna

    from training.study import open_study, run_trials

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start.wait()  # every worker opens the storage at the same moment: the schema is created once
    study = open_study(url, study_name, n_trials=BUDGET, seed=7, make_sampler=_sampler,
                       pruner=optuna.pruners.NopPruner(), worker=f"w{index}")
    start.wait()  # and all ask for trials together, as `tenure train --workers` starts them

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", -10, 10)
        time.sleep(0.3)
        return -((x - 2) ** 2)

    run_trials(study, objective, timeout=120)


def _finalise(url: str, study_name: str, start: Any, out: Any) -> None:
    from training.study import StudyRun

    start.wait()
    with StudyRun(url, study_name) as run:
        other = run.finalise_here()
        if other is None:
            time.sleep(2)  # fitting and registering
            run.result = {"run_id": f"run-of-{run.owner}", "version": "7"}
            out.put(("finalised", run.result))
        else:
            out.put(("reported", other))


def _processes(target: Any, args: tuple, count: int) -> list[Any]:
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(count)
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, *([i] if target is _trials else []), start,
                                                *([out] if target is _finalise else [])))
             for i in range(count)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0, f"worker exited {p.exitcode}"
    return [out.get(timeout=10) for _ in range(count)] if target is _finalise else []


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'optuna.db'}"
    return request.getfixturevalue("postgres_db")


def test_workers_share_one_budget_and_never_repeat_a_trial(storage_url: str) -> None:
    import optuna

    _processes(_trials, (storage_url, "s"), WORKERS)
    trials = optuna.load_study(study_name="s", storage=storage_url).get_trials(deepcopy=False)
    assert len(trials) == BUDGET and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    xs = [t.params["x"] for t in trials]
    assert len(set(xs)) == BUDGET  # one seed for every worker would draw the startup trials three times
    assert {t.user_attrs["tenure.worker"] for t in trials} == {f"w{i}" for i in range(WORKERS)}
    # a rerun of the finished study runs no trial
    _processes(_trials, (storage_url, "s"), 1)
    assert len(optuna.load_study(study_name="s", storage=storage_url).get_trials(deepcopy=False)) == BUDGET


def test_one_process_finalises_the_others_report_its_model(storage_url: str) -> None:
    import optuna

    from training.study import FINAL_ATTR, StudyRun

    optuna.create_study(study_name="f", storage=storage_url)
    results = _processes(_finalise, (storage_url, "f"), WORKERS)
    kinds = sorted(k for k, _ in results)
    assert kinds == ["finalised"] + ["reported"] * (WORKERS - 1), results
    [model] = [r for k, r in results if k == "finalised"]
    assert all(r == model for _, r in results)
    assert optuna.load_study(study_name="f", storage=storage_url).user_attrs[FINAL_ATTR]["state"] == "done"
    # a later `tenure train` starts a new study run: it finalises again
    with StudyRun(storage_url, "f") as run:
        assert run.finalise_here() is None
        run.result = {"run_id": "later", "version": "8"}


def test_a_dead_finalisers_claim_is_taken_over(tmp_path: Path) -> None:
    import optuna

    from training.study import FINAL_ATTR, GRACE_SECONDS, StudyRun

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="d", storage=url)
    study.set_user_attr(FINAL_ATTR, {"state": "running", "owner": "gone:1:0:x", "heartbeat": time.time() - GRACE_SECONDS - 1})
    with StudyRun(url, "d") as run:
        assert run.finalise_here() is None
        assert optuna.load_study(study_name="d", storage=url).user_attrs[FINAL_ATTR]["owner"] == run.owner
    # failed without a result: released, so another process may finalise
    assert optuna.load_study(study_name="d", storage=url).user_attrs[FINAL_ATTR]["state"] == "released"
