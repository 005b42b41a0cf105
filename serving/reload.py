"""Hot reload: a running service follows the registry's aliases without a restart or a failed request.

Each worker runs one background thread (`Reloader.start`) that
- every `reload.poll_seconds` resolves the served aliases (`alias` and the `shadow` aliases) in the
  MLflow registry, and when a version moved downloads it, loads it beside the served one, checks
  it (servable inputs, task spec, a probe row scores to a finite probability) and only then swaps
  (`Scorer.swap`: one assignment, so a request is scored by the old or the new version, never
  half of each, and its answer and log rows name that version);
- every `reload.follow_seconds` reads the shared state file and loads what another worker has
  already checked (local copies, no registry call), so all workers serve the same versions.
`POST /admin/reload` runs the same check at once and waits until every worker serves the result.

The workers share a folder (`TENURE_SERVE_STATE`, made by the server's main process): the
local copies `models/<model>-v<version>/`, `current.json` (generation, the checked references),
`worker-<index>.json` (the generation each worker serves) and `reload.lock` (one check at a
time across workers). A failed load or check keeps the old models, logs the error and shows it in
/model_info (`reload.state = failed`); so does an unreachable registry. A restarted worker loads
`current.json` when it exists (the latest checked versions), else the versions pinned at start.
Reads the registry and the model artefacts; writes only inside the state folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from configs import TenureError
from configs.serve import ServeConfig
from serving.prediction_log import utc_now_iso
from serving.registry import (
    ChampionRef,
    RegistryError,
    download_models,
    load_models,
    refs_from_json,
    refs_to_json,
)
from serving.scoring import Scorer, ServedModel

STATE_ENV = "TENURE_SERVE_STATE"
logger = logging.getLogger("bentoml.serve.tenure")

Refs = dict[str, ChampionRef]  # key "<task>@<alias>"


def ref_key(ref: ChampionRef) -> str:
    return f"{ref.task}@{ref.alias}"


def _atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def probe(served: ServedModel) -> None:
    """Score one row with every feature missing through the request path; raises if the result is not a probability."""
    record = {"customer_id": "probe"}
    x = served.model.encode_record(record)
    p = served.probability_of(served.predictor.raw_score(x))
    if not (math.isfinite(p) and 0.0 <= p <= 1.0):
        raise RegistryError(f"{served.model_name} version {served.version}: a probe row scored {p!r}, not a probability")
    served.decision(p)


def resolve_served(config: ServeConfig, tracking_uri: str) -> Refs:
    """The versions the registry's aliases point at now: every task's `alias` (required) and its
    shadow aliases (a task without such a version is simply not shadowed)."""
    from serving.registry import resolve_champions

    refs = {ref_key(r): r for r in resolve_champions(tracking_uri, config.tasks, config.alias).values()}
    for alias, tasks in config.shadow_by_alias().items():
        for task in tasks:
            try:
                found = resolve_champions(tracking_uri, [task], alias)
            except RegistryError:
                continue
            refs.update({ref_key(r): r for r in found.values()})
    return refs


def download_served(tracking_uri: str, refs: Refs, state_dir: Path) -> Refs:
    """Local copies under `state_dir/models/<model>-v<version>/` (reused when another worker made them)."""
    out = {}
    (Path(state_dir) / "models").mkdir(parents=True, exist_ok=True)
    for key, ref in refs.items():
        home = Path(state_dir) / "models" / f"{ref.model_name}-v{ref.version}"
        done = home / "ready"
        if not done.exists():
            part = Path(state_dir) / "models" / f".{ref.model_name}-v{ref.version}.{os.getpid()}"
            got = download_models(tracking_uri, {ref.task: ref}, part)[ref.task]
            Path(part / "ready").write_text(str(Path(got.path).relative_to(part)))
            try:
                os.rename(part, home)
            except OSError:  # another worker finished first: keep its copy
                shutil.rmtree(part, ignore_errors=True)
        out[key] = replace(ref, path=str(home / done.read_text()))
    return out


def load_served(config: ServeConfig, refs: Refs, accepted: Mapping[str, Mapping[str, Any]]
                ) -> tuple[dict[str, ServedModel], dict[str, list[ServedModel]]]:
    """Load and check every ref (local copies): (task -> served model, task -> shadow challengers).
    Raises RegistryError (and frees what it loaded) on any problem."""
    loaded = load_models(refs, accepted)  # keyed like refs
    try:
        for served in loaded.values():
            probe(served)
    except Exception:
        for served in loaded.values():
            served.predictor.close()
        raise
    models = {refs[k].task: m for k, m in loaded.items() if refs[k].alias == config.alias}
    shadows: dict[str, list[ServedModel]] = {}
    for k, m in loaded.items():
        if refs[k].alias != config.alias:
            shadows.setdefault(refs[k].task, []).append(m)
    if set(models) != set(config.tasks):
        raise RegistryError(f"no {config.alias!r} model for {sorted(set(config.tasks) - set(models))}")
    return models, shadows


class Reloader:
    """Follows the registry for one worker's `scorer`; see the module docstring."""

    def __init__(self, config: ServeConfig, tracking_uri: str, scorer: Scorer, state_dir: Path,
                 refs: Refs, accepted: Mapping[str, Mapping[str, Any]], worker: int = 1):
        self.config = config
        self.tracking_uri = tracking_uri
        self.scorer = scorer
        self.state_dir = Path(state_dir)
        (self.state_dir / "models").mkdir(parents=True, exist_ok=True)
        self.refs = dict(refs)  # what this worker serves now
        self.accepted = accepted
        self.worker = worker
        self.generation = 0
        self.owned_dir: Path | None = None  # a state folder of its own, removed by `stop`
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._check_lock = threading.Lock()
        current = self.read_state()
        if current is not None:
            self.generation = current[0]
        self._ack()

    # ---- shared state -----------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.state_dir / "current.json"

    def read_state(self) -> tuple[int, Refs] | None:
        try:
            data = json.loads(self.state_file.read_text())
            return int(data["generation"]), refs_from_json(json.dumps(data["refs"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, TenureError) as exc:
            logger.warning("hot reload: ignoring the unreadable state file %s: %s", self.state_file, exc)
            return None

    def _ack(self) -> None:
        with contextlib.suppress(OSError):
            _atomic_json(self.state_dir / f"worker-{self.worker}.json",
                         {"generation": self.generation, "pid": os.getpid(),
                          "versions": {k: r.version for k, r in self.refs.items()}})

    def worker_generations(self) -> dict[int, int]:
        out = {}
        for i in range(1, self.config.workers + 1):
            with contextlib.suppress(OSError, ValueError, KeyError):
                out[i] = int(json.loads((self.state_dir / f"worker-{i}.json").read_text())["generation"])
        return out

    # ---- resolving, loading, swapping -------------------------------------------------------
    def _swap(self, refs: Refs, generation: int, state: str) -> None:
        models, shadows = load_served(self.config, refs, self.accepted)
        self.scorer.swap(models, shadows)
        self.refs, self.generation = dict(refs), generation
        self.scorer.reload_status = {"state": state, "at": utc_now_iso(), "error": None}
        self._ack()
        for m in [*models.values(), *(s for ss in shadows.values() for s in ss)]:
            logger.info("hot reload: serving %s %s version %s (alias %s)", m.task, m.model_name, m.version, m.alias)

    def _failed(self, exc: Exception) -> dict[str, Any]:
        message = " ".join(str(exc).split())
        repeated = self.scorer.reload_status.get("error") == message
        self.scorer.reload_status = {"state": "failed", "at": utc_now_iso(), "error": message}
        (logger.debug if repeated else logger.error)("hot reload failed, still serving %s: %s",
                     ", ".join(f"{k} v{r.version}" for k, r in sorted(self.refs.items())), message)
        return self.status()

    def check(self) -> dict[str, Any]:
        """Resolve the aliases; load, check and swap what moved (or what another worker already
        checked). Never raises: a failure keeps the served models and is reported in the status."""
        import fcntl

        try:
            wanted = resolve_served(self.config, self.tracking_uri)  # outside the lock: the registry may be slow
        except Exception as exc:  # noqa: BLE001 - an unreachable registry keeps the served models
            return self._failed(exc)
        with self._check_lock, open(self.state_dir / "reload.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one worker downloads at a time; the others then follow its result
            try:
                current = self.read_state()
                generation = current[0] if current else self.generation
                known = current[1] if current else self.refs
                if _versions(wanted) == _versions(known):
                    if _versions(known) != _versions(self.refs) or generation > self.generation:
                        self._swap(known, generation, "reloaded")
                    elif self.scorer.reload_status.get("state") == "failed":
                        self.scorer.reload_status = {"state": "unchanged", "at": utc_now_iso(), "error": None}
                    return self.status()
                local = download_served(self.tracking_uri, wanted, self.state_dir)
                self._swap(local, generation + 1, "reloaded")
                _atomic_json(self.state_file, {"generation": self.generation,
                                               "refs": json.loads(refs_to_json(self.refs))})
            except Exception as exc:  # noqa: BLE001 - whatever failed, the served models stay
                return self._failed(exc)
        return self.status()

    def follow(self) -> None:
        """Load what another worker checked, when the shared generation is newer than ours."""
        current = self.read_state()
        if current is None or current[0] <= self.generation:
            return
        with self._check_lock:
            if current[0] <= self.generation:
                return
            try:
                self._swap(current[1], current[0], "reloaded")
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)

    def status(self) -> dict[str, Any]:
        return {**self.scorer.reload_status, "generation": self.generation,
                "served": {k: r.version for k, r in sorted(self.refs.items())}}

    def wait_for_workers(self, timeout: float) -> dict[int, int]:
        """Wait until every worker serves this worker's generation (or `timeout` s); their generations."""
        deadline = time.monotonic() + timeout
        while True:
            gens = self.worker_generations()
            if len(gens) >= self.config.workers and all(g >= self.generation for g in gens.values()):
                return gens
            if time.monotonic() > deadline:
                return gens
            time.sleep(0.05)

    # ---- the background thread --------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tenure-reload", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            import mlflow  # noqa: F401 - import it now, not on the first check (seconds on a busy machine)
        import gc

        gc.collect()
        gc.freeze()  # what start-up loaded (models, libraries) is never scanned again by a full collection
        poll = self.config.reload.poll_seconds
        next_poll = time.monotonic() + poll if poll > 0 else math.inf
        while not self._stop.wait(self.config.reload.follow_seconds):
            try:
                self.scorer.log.checkpoint()  # the log's WAL checkpoint (and its fsync) off the request path
                self.follow()
                if time.monotonic() >= next_poll:
                    self.check()
                    next_poll = time.monotonic() + poll
            except Exception as exc:  # noqa: BLE001 - the thread must survive anything
                logger.error("hot reload thread: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.owned_dir is not None:
            shutil.rmtree(self.owned_dir, ignore_errors=True)


def _versions(refs: Refs) -> dict[str, str]:
    return {k: r.version for k, r in refs.items()}
