"""One Optuna study shared by several workers: one trial budget, distinct trials, one final model.

`tenure train --workers N` runs N trial workers on one machine (this process and N-1 child
processes, `python -m training.tune`); several `tenure train` processes on several machines
join the same study when they share `TENURE_OPTUNA_STORAGE` (PostgreSQL) and the same feature
set and config (the study name hashes them). Everything they coordinate through lives in that
storage, which every worker reaches:

- **Schema once.** The storage is opened under a lock (`storage_lock`), so the first worker
  creates Optuna's tables while the others wait (Optuna's own race: `UniqueViolation` when two
  processes create them at once).
- **A study-wide budget.** `CoordinatedStudy.ask` takes the study's lock, counts the study's
  finished and running trials (all workers, earlier runs included) and creates a trial only while
  that count is below `n_trials`; the lock makes count-and-create one step, so N workers run
  exactly `n_trials` trials between them, not N times the trials left when each started.
  Heartbeats (`HEARTBEAT_SECONDS`) mark a dead worker's trial failed after `GRACE_SECONDS`, so it
  stops holding a place in the budget.
- **Distinct trials.** Each trial's TPE sampler is seeded with the run seed and the trial's
  ordinal in the study, so no two workers draw the same points (one seed for all draws the same
  startup trials in every worker), and TPE's constant liar keeps a worker away from the points
  the others are running. One worker with one seed still gives the same trials every time.
- **One final model per study run.** Workers only run trials. The finishing step (fit, evaluate,
  log, register) runs once: the first `tenure train` process that runs out of budget claims it
  (`StudyRun.finalise_here`, a record in the study's user attributes written under the lock),
  waits until no trial of the study is running, and fits and registers; its heartbeat keeps the
  claim. Every other `tenure train` of that study run, on any machine, waits for it and reports
  the same registered version. A claim whose process died (no heartbeat for `GRACE_SECONDS`) is
  taken over. A `tenure train` started after the study run was finalised starts a new one (as
  a rerun always did: no trial left, a model fitted and registered again).

Locks: on PostgreSQL a session advisory lock (any machine), on SQLite a file lock next to the
database (one machine). Other storages get a lock that only one process sees, so several workers
need PostgreSQL or SQLite.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from configs import TenureError
from configs.settings import is_postgres_url, redact_url

HEARTBEAT_SECONDS = 15
GRACE_SECONDS = 120
FINAL_ATTR = "tenure.final"
WORKER_ATTR = "tenure.worker"
POLL_SECONDS = 1.0
READY_ENV = "TENURE_TRIAL_WORKER_READY"  # a child worker touches this file once its study is open
START_SECONDS = 600  # how long the children may take to start (imports, data) before it is an error


class StudyError(TenureError):
    """The shared study cannot be opened or coordinated; names the storage and what to do."""


class BudgetReached(Exception):  # noqa: N818 - a signal, not a failure
    """No more trials for this study run: the budget is used or the study run is being finalised."""


# ---- locks ------------------------------------------------------------------------------------

class _PostgresLock:
    """A PostgreSQL session advisory lock on its own connection (never inside Optuna's sessions)."""

    def __init__(self, url: str, key: str):
        self.url, self.key = url, int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        self._con: Any = None
        self._local = threading.Lock()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        import psycopg

        with self._local:
            if self._con is None or self._con.closed:
                scheme, sep, rest = self.url.partition("://")
                self._con = psycopg.connect(f"{scheme.split('+')[0]}{sep}{rest}", autocommit=True, connect_timeout=20,
                                            application_name="tenure-study-lock")
            self._con.execute("SELECT pg_advisory_lock(%s)", (self.key,))
            try:
                yield
            finally:
                self._con.execute("SELECT pg_advisory_unlock(%s)", (self.key,))

    def close(self) -> None:
        if self._con is not None:
            with contextlib.suppress(Exception):
                self._con.close()


class _FileLock:
    """flock on a file next to the SQLite database: every process on this machine."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.Lock()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        import fcntl

        with self._local, open(self.path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def close(self) -> None:
        pass


class _ProcessLock:
    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            yield

    def close(self) -> None:
        pass


def storage_lock(url: str, key: str) -> Any:
    """A lock shared by every worker of `url` (see the module docstring); `key` names what it guards."""
    if is_postgres_url(url):
        return _PostgresLock(url, key)
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        return _FileLock(db.with_name(f"{db.name}.lock"))
    return _ProcessLock()


def shares_across_processes(url: str) -> bool:
    return is_postgres_url(url) or url.startswith("sqlite:///")


def open_storage(url: str) -> Any:
    """Optuna's RDB storage at `url` with heartbeats; its tables created once, under the lock."""
    import optuna

    kwargs: dict[str, Any] = {"heartbeat_interval": HEARTBEAT_SECONDS, "grace_period": GRACE_SECONDS}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    lock = storage_lock(url, "tenure-optuna-schema")
    try:
        with lock(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats
            return optuna.storages.RDBStorage(url, **kwargs)
    except Exception as exc:  # driver errors, unreachable servers, bad URLs
        raise StudyError(f"cannot open the Optuna storage {redact_url(url)}: {' '.join(str(exc).split())[:500]}") \
            from exc
    finally:
        lock.close()


# ---- the study ----------------------------------------------------------------------------------

def trial_seed(seed: int, ordinal: int) -> int:
    """The sampler seed of the study's `ordinal`-th trial."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{ordinal}".encode()).digest()[:4], "big") % (2**31 - 1)


def _study_class() -> type:
    import optuna
    from optuna.trial import TrialState

    class CoordinatedStudy(optuna.Study):
        """An Optuna study whose `ask` keeps the study-wide budget and seeds each trial's sampler."""

        def __init__(self, study_name: str, storage: Any, *, lock: Any, n_trials: int | None, seed: int,
                     make_sampler: Callable[[int], Any], pruner: Any, worker: str):
            super().__init__(study_name=study_name, storage=storage, sampler=make_sampler(seed), pruner=pruner)
            self.lock, self.n_trials, self.seed, self.make_sampler, self.worker = lock, n_trials, seed, make_sampler, worker

        def ask(self, fixed_distributions: Any = None) -> Any:
            with self.lock():
                trials = self._storage.get_all_trials(self._study_id, deepcopy=False)
                final = self._storage.get_study_user_attrs(self._study_id).get(FINAL_ATTR) or {}
                if final.get("state") == "running" and _fresh(final):
                    raise BudgetReached("the study run is being finalised")
                held = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
                           for t in trials)
                if self.n_trials is not None and held >= self.n_trials:
                    raise BudgetReached(f"{held} of {self.n_trials} trials")
                self.sampler = self.make_sampler(trial_seed(self.seed, len(trials)))
                trial = super().ask(fixed_distributions)
            trial.set_user_attr(WORKER_ATTR, self.worker)
            return trial

    return CoordinatedStudy


def worker_name(index: int = 0) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{index}"


def open_study(storage_url: str, study_name: str, *, n_trials: int | None, seed: int,
               make_sampler: Callable[[int], Any], pruner: Any, worker: str | None = None) -> Any:
    """Create or load the study (maximising), as a `CoordinatedStudy` with the study-wide budget."""
    import optuna

    storage = open_storage(storage_url)
    lock = storage_lock(storage_url, f"tenure-study:{study_name}")
    with lock():
        optuna.create_study(study_name=study_name, storage=storage, sampler=make_sampler(seed), pruner=pruner,
                            direction="maximize", load_if_exists=True)
    study = _study_class()(study_name, storage, lock=lock, n_trials=n_trials, seed=seed, make_sampler=make_sampler,
                           pruner=pruner, worker=worker or worker_name())
    if os.environ.get(READY_ENV):
        Path(os.environ[READY_ENV]).touch()
    return study


def run_trials(study: Any, objective: Callable[[Any], float], timeout: float | None) -> None:
    """Run trials until the study-wide budget is used (by any worker) or `timeout` seconds pass."""
    with contextlib.suppress(BudgetReached):
        study.optimize(objective, n_trials=None, timeout=timeout, gc_after_trial=False)


# ---- trial workers on this machine ------------------------------------------------------------------

@dataclass
class WorkerJob:
    """What a child worker needs to run trials: the encoded data and the search, pickled to a file."""

    data: Any
    base_params: dict[str, Any]
    cfg: Any
    storage_url: str
    study_name: str
    tracking_uri: str | None
    experiment_id: str | None
    parent_run_id: str | None


class TrialWorkers:
    """`count` child processes running `python -m training.tune JOB INDEX` (trials of `job`, nested under its
    MLflow run); stopped by PID if the block fails."""

    def __init__(self, job: WorkerJob, count: int):
        self.job, self.count = job, count
        self.procs: list[tuple[subprocess.Popen, Path]] = []
        self._dir: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> TrialWorkers:
        if self.count <= 0:
            return self
        if not shares_across_processes(self.job.storage_url):
            raise StudyError(f"--workers needs an Optuna storage that processes share (PostgreSQL or SQLite), not "
                             f"{redact_url(self.job.storage_url)}")
        self._dir = tempfile.TemporaryDirectory(prefix="tenure-workers-")
        path = Path(self._dir.name) / "job.pkl"
        with open(path, "wb") as fh:
            pickle.dump(self.job, fh, protocol=pickle.HIGHEST_PROTOCOL)
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
        ready = []
        for index in range(1, self.count + 1):
            log = Path(self._dir.name) / f"worker-{index}.log"
            ready.append(Path(self._dir.name) / f"worker-{index}.ready")
            with open(log, "wb") as out:
                proc = subprocess.Popen([sys.executable, "-m", "training.tune", str(path), str(index)],
                                        env={**env, READY_ENV: str(ready[-1])}, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            self.procs.append((proc, log))
        # start together: the children load the libraries and the data, then all workers ask for trials
        deadline = time.monotonic() + START_SECONDS
        try:
            while not all(r.exists() for r in ready):
                if any(proc.poll() is not None for proc, _ in self.procs) or time.monotonic() > deadline:
                    self.wait()
                    raise StudyError(f"trial workers did not start within {START_SECONDS} s")
                time.sleep(0.2)
        except BaseException:
            self.__exit__(None, None, None)  # the with statement does not when __enter__ fails
            raise
        return self

    def wait(self) -> None:
        """Wait for every child; a failed one is an error naming its last output."""
        failed = []
        for index, (proc, log) in enumerate(self.procs, start=1):
            if proc.wait() != 0:
                tail = log.read_text(errors="replace").strip().splitlines()[-15:]
                failed.append(f"worker {index} exited {proc.returncode}: " + " | ".join(tail))
        if failed:
            raise StudyError("trial workers failed: " + "; ".join(failed))

    def __exit__(self, *exc: Any) -> None:
        import signal

        for proc, _ in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        if self._dir is not None:
            self._dir.cleanup()


# ---- one final model per study run -----------------------------------------------------------------

def _fresh(record: dict[str, Any]) -> bool:
    return time.time() - float(record.get("heartbeat", 0)) < GRACE_SECONDS


class StudyRun:
    """The finishing step of a study run, done once across every `tenure train` of the study.

    Used around the MLflow parent run of `training.train.train_task`: `finalise_here()` after the
    trials returns None when this process fits and registers (it holds the claim until the block
    ends), or the other process's registered result; the claim is marked done when the block
    ends without an error and released (another may take over) when it fails.
    """

    def __init__(self, storage_url: str, study_name: str, echo: Callable[[str], None] | None = None):
        self.storage_url, self.study_name = storage_url, study_name
        self.say = echo or (lambda _msg: None)
        self.owner = f"{worker_name()}:{uuid.uuid4().hex[:8]}"
        self.started = time.time()
        self._mine = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._storage: Any = None
        self._study_id: int | None = None
        self._lock: Any = None
        self.result: dict[str, Any] | None = None  # set by the caller before the block ends

    def __enter__(self) -> StudyRun:
        return self

    def _open(self) -> None:
        if self._storage is None:
            self._storage = open_storage(self.storage_url)
            self._study_id = self._storage.get_study_id_from_name(self.study_name)
            self._lock = storage_lock(self.storage_url, f"tenure-study:{self.study_name}")

    def _record(self) -> dict[str, Any]:
        return dict(self._storage.get_study_user_attrs(self._study_id).get(FINAL_ATTR) or {})

    def _write(self, record: dict[str, Any]) -> None:
        self._storage.set_study_user_attr(self._study_id, FINAL_ATTR, record)

    def _counts(self) -> tuple[int, int]:
        import optuna
        from optuna.trial import TrialState

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(optuna.load_study(study_name=self.study_name, storage=self._storage))
        states = [t.state for t in self._storage.get_all_trials(self._study_id, deepcopy=False)]
        return (sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states),
                sum(s == TrialState.RUNNING for s in states))  # a queued (WAITING) trial nobody runs must not block

    def finalise_here(self) -> dict[str, Any] | None:
        """None: this process finalises (every trial of the study has ended); else the result
        (`run_id`, `version`, ...) another process registered for this study run."""
        self._open()
        waiting_for = None
        while True:
            with self._lock():
                finished, running = self._counts()
                record = self._record()
                state = record.get("state")
                if state == "done" and float(record.get("finished_at", 0)) >= self.started:
                    self.say(f"{self.study_name}: finalised by {record.get('owner')} (run {record['result']['run_id']})")
                    return dict(record["result"])
                if state != "running" or not _fresh(record) or record.get("owner") == self.owner:
                    if record.get("owner") != self.owner:
                        self._write({"state": "running", "owner": self.owner, "heartbeat": time.time(),
                                     "claimed_at": time.time()})
                        self._mine = True
                        self._start_heartbeat()
                    if running == 0:
                        self.say(f"{self.study_name}: {finished} trials finished; this process fits and registers "
                                 "the model")
                        return None
                    waiting = f"{running} trial(s) of other workers to end"
                else:
                    waiting = f"{record.get('owner')} to register the model"
            if waiting != waiting_for:
                self.say(f"{self.study_name}: waiting for {waiting}")
                waiting_for = waiting
            time.sleep(POLL_SECONDS)

    def _start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                with contextlib.suppress(Exception), self._lock():
                    record = self._record()
                    if record.get("owner") == self.owner and record.get("state") == "running":
                        self._write({**record, "heartbeat": time.time()})

        self._beat = threading.Thread(target=beat, name="tenure-final-heartbeat", daemon=True)
        self._beat.start()

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=30)
        if self._mine:
            with self._lock():
                record = self._record()
                if record.get("owner") == self.owner:
                    if exc_type is None and self.result is not None:
                        self._write({"state": "done", "owner": self.owner, "finished_at": time.time(),
                                     "result": json.loads(json.dumps(self.result, default=str))})
                    else:
                        self._write({"state": "released", "owner": self.owner, "released_at": time.time()})
        if self._lock is not None:
            self._lock.close()
