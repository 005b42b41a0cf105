"""Starting the service: pin the champions once, then load them in every worker.

`preflight` runs in the `bentoml serve` main process before any worker starts: it resolves each
task's alias (and the shadow aliases) to a version, downloads that version's artefact to the
shared state folder, loads it once to prove it can be served, and opens the prediction log; any
problem stops the server with one clear message (no half-loaded service). The pinned versions
and their local copies go to the workers in `TENURE_SERVE_PINNED` (the folder in
`TENURE_SERVE_STATE`), so every worker serves the same versions (even if an alias moves while
they start) and loads them without touching the registry. `start_worker` is what each worker
runs; its `Reloader` then follows the aliases (serving.reload). Reads the MLflow registry and artefacts; writes the
local copies and creates the prediction log if it does not exist.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from configs import TenureError
from configs.serve import ServeConfig
from configs.settings import Settings
from features.definitions import FEATURES
from serving.prediction_log import PredictionLog, PredictionLogWriter
from serving.registry import ChampionRef, refs_from_json, refs_to_json
from serving.reload import STATE_ENV, Refs, Reloader, download_served, load_served, resolve_served
from serving.schemas import feature_info
from serving.scoring import Scorer

PINNED_ENV = "TENURE_SERVE_PINNED"
logger = logging.getLogger("bentoml.serve.tenure")

ACCEPTED = {f.name: f.to_dict() for f in FEATURES}


def api_key_from_env(config: ServeConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The API key, or None when `config.api_key_env` is unset or empty (then no key is required)."""
    env = os.environ if environ is None else environ
    return env.get(config.api_key_env) or None


def open_prediction_log(target: str | Path, *, busy_timeout_ms: int = 5000, synchronous: str = "NORMAL",
                        background_checkpoints: bool = False) -> PredictionLogWriter:
    """The log the service writes, chosen by `target` (`settings.prediction_log_target`): a
    `postgresql://` URL opens `serving.prediction_log_pg.PostgresPredictionLog` (the busy timeout
    bounds each write there too), anything else is the SQLite file `PredictionLog`."""
    from configs.settings import is_postgres_url

    if is_postgres_url(target):
        from serving.prediction_log_pg import (
            PostgresPredictionLog,  # psycopg only when PostgreSQL is used
        )

        return PostgresPredictionLog(str(target), timeout_ms=busy_timeout_ms)
    return PredictionLog(target, busy_timeout_ms=busy_timeout_ms, synchronous=synchronous,
                         background_checkpoints=background_checkpoints)


def open_log(config: ServeConfig, settings: Settings, background_checkpoints: bool = False) -> PredictionLogWriter:
    return open_prediction_log(settings.prediction_log_target, busy_timeout_ms=config.prediction_log.busy_timeout_ms,
                               synchronous=config.prediction_log.synchronous,
                               background_checkpoints=background_checkpoints)


def preflight(config: ServeConfig, settings: Settings, state_dir: Path) -> Refs:
    """Resolve, download, load and check every served model (champions and shadow challengers) and
    open the prediction log.

    Returns the pinned versions with their local copies under `state_dir`, which must outlive the
    workers (they load from there without touching the registry, and share it for hot reloads).
    """
    refs = download_served(settings.tracking_uri, resolve_served(config, settings.tracking_uri), state_dir)
    models, shadows = load_served(config, refs, ACCEPTED)
    for served in [*models.values(), *(s for ss in shadows.values() for s in ss)]:
        served.predictor.close()
    open_log(config, settings).close()
    return refs


def pin(refs: Mapping[str, ChampionRef], state_dir: Path | None = None,
        environ: MutableMapping[str, str] | None = None) -> None:
    """Hand the pinned versions and the shared state folder to the workers (they inherit the environment)."""
    env = os.environ if environ is None else environ
    env[PINNED_ENV] = refs_to_json(refs)
    if state_dir is not None:
        env[STATE_ENV] = str(state_dir)


def _pinned(config: ServeConfig, env: Mapping[str, str]) -> Refs | None:
    text = env.get(PINNED_ENV)
    if not text:
        return None
    refs = refs_from_json(text)
    tasks = {r.task for r in refs.values() if r.alias == config.alias}
    if tasks != set(config.tasks) or not all(r.path and Path(r.path).is_dir() for r in refs.values()):
        logger.warning("%s does not match the served tasks or its files are gone; reading the registry", PINNED_ENV)
        return None
    return refs


def start_worker(config: ServeConfig, settings: Settings, environ: Mapping[str, str] | None = None,
                 worker: int = 1, background_checkpoints: bool = True) -> tuple[Scorer, Reloader]:
    """A worker's scorer and its hot reloader (not started): the latest versions checked by a hot
    reload, else the pinned local copies, else (started without `preflight`) the registry's."""
    env = os.environ if environ is None else environ
    state = env.get(STATE_ENV)
    state_dir = Path(state) if state else Path(tempfile.mkdtemp(prefix="tenure-serve-"))
    refs = None
    if state and (state_dir / "current.json").exists():
        with contextlib.suppress(OSError, ValueError, KeyError, TenureError):
            data = json.loads((state_dir / "current.json").read_text())
            refs = refs_from_json(json.dumps(data["refs"]))
    if refs is None:
        refs = _pinned(config, env)
    if refs is None:
        refs = download_served(settings.tracking_uri, resolve_served(config, settings.tracking_uri), state_dir)
    models, shadows = load_served(config, refs, ACCEPTED)
    # the reloader's thread checkpoints the log's WAL (so a request never waits for that fsync)
    log = open_log(config, settings, background_checkpoints=background_checkpoints)
    scorer = Scorer(models, log, top_reasons=config.top_reasons, max_batch_size=config.max_batch_size,
                    max_explained_batch_size=config.max_explained_batch_size,
                    api_key_required=api_key_from_env(config, env) is not None,
                    features=[feature_info(f) for f in FEATURES], shadows=shadows, shadow_queue=config.shadow_queue)
    for served in [*models.values(), *(s for ss in shadows.values() for s in ss)]:
        logger.info("serving %s: %s version %s (run %s, alias %s%s)", served.task, served.model_name,
                    served.version, served.run_id, served.alias, ", shadow" if served.alias != config.alias else "")
    reloader = Reloader(config, settings.tracking_uri, scorer, state_dir, refs, ACCEPTED, worker=worker)
    if not state:
        reloader.owned_dir = state_dir  # removed by `close` (a worker of `tenure serve` shares the server's)
    return scorer, reloader


def start_scorer(config: ServeConfig, settings: Settings, environ: Mapping[str, str] | None = None) -> Scorer:
    """A worker's scorer without hot reload (notebooks, tests)."""
    return start_worker(config, settings, environ, background_checkpoints=False)[0]


def bind_address(config: ServeConfig, argv: list[str], environ: Mapping[str, str]) -> tuple[str, int]:
    """The address `bentoml serve` will bind, however it was started: `--host/--port` (or `-p`) on its
    command line, else `BENTOML_HOST`/`BENTOML_PORT`, else the serving config (127.0.0.1:3000 shipped)."""
    found: dict[str, str] = {}
    for i, arg in enumerate(argv):
        for flag, key in (("--host", "host"), ("--port", "port"), ("-p", "port")):
            if arg == flag and i + 1 < len(argv):
                found[key] = argv[i + 1]
            elif arg.startswith(flag + "="):
                found[key] = arg.split("=", 1)[1]
    host = found.get("host") or environ.get("BENTOML_HOST") or config.host
    port_text = found.get("port") or environ.get("BENTOML_PORT") or str(config.port)
    try:
        port = int(port_text)
    except ValueError:
        raise TenureError(f"port {port_text!r} is not a number") from None
    return host, port


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port_free(host: str, port: int) -> None:
    """Raise TenureError (one line) when `host:port` cannot be bound, e.g. another server listens there."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise TenureError(f"port {port} on {host} is already in use (another server?); stop it or choose "
                                  "another port with --port") from None
            raise TenureError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
