"""Starting the service: pin the champions once, then load them in every worker.

`preflight` runs in the `bentoml serve` main process before any worker starts: it resolves each
task's alias to a version, downloads that version's artefact to a local folder, loads it once to
prove it can be served, and opens the prediction log; any problem stops the server with one
clear message (no half-loaded service). The pinned versions and their local copies go to the
workers in `TENURE_SERVE_PINNED`, so every worker serves the same versions (even if an alias
moves while they start) and loads them without touching the registry or importing MLflow.
`start_scorer` is what each worker runs. Reads the MLflow registry and artefacts; writes the
local copies and creates the prediction log if it does not exist.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from configs.serve import ServeConfig
from configs.settings import Settings
from features.definitions import FEATURES
from serving.prediction_log import PredictionLogWriter, open_prediction_log
from serving.registry import (
    ChampionRef,
    download_models,
    load_models,
    refs_from_json,
    refs_to_json,
    resolve_champions,
)
from serving.schemas import feature_info
from serving.scoring import Scorer

PINNED_ENV = "TENURE_SERVE_PINNED"
logger = logging.getLogger("bentoml.serve.tenure")

ACCEPTED = {f.name: f.to_dict() for f in FEATURES}


def api_key_from_env(config: ServeConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The API key, or None when `config.api_key_env` is unset or empty (then no key is required)."""
    env = os.environ if environ is None else environ
    return env.get(config.api_key_env) or None


def open_log(config: ServeConfig, settings: Settings) -> PredictionLogWriter:
    return open_prediction_log(settings.prediction_log_target, busy_timeout_ms=config.prediction_log.busy_timeout_ms,
                               synchronous=config.prediction_log.synchronous)


def preflight(config: ServeConfig, settings: Settings, cache_dir: Path) -> dict[str, ChampionRef]:
    """Resolve, download, load and check every champion and open the prediction log.

    Returns the pinned versions with their local copies under `cache_dir`, which must outlive the
    workers (they load from there without touching the registry).
    """
    refs = resolve_champions(settings.tracking_uri, config.tasks, config.alias)
    refs = download_models(settings.tracking_uri, refs, cache_dir)
    for served in load_models(refs, ACCEPTED, config.outcome_zh).values():
        served.predictor.close()
    open_log(config, settings).close()
    return refs


def pin(refs: Mapping[str, ChampionRef], environ: MutableMapping[str, str] | None = None) -> None:
    """Hand the pinned versions to the workers (they inherit the environment)."""
    (os.environ if environ is None else environ)[PINNED_ENV] = refs_to_json(refs)


def _pinned(config: ServeConfig, env: Mapping[str, str]) -> dict[str, ChampionRef] | None:
    text = env.get(PINNED_ENV)
    if not text:
        return None
    refs = refs_from_json(text)
    if set(refs) != set(config.tasks) or not all(r.path and Path(r.path).is_dir() for r in refs.values()):
        logger.warning("%s does not match the served tasks or its files are gone; reading the registry", PINNED_ENV)
        return None
    return {t: refs[t] for t in config.tasks}


def start_scorer(config: ServeConfig, settings: Settings, environ: Mapping[str, str] | None = None) -> Scorer:
    """A worker's scorer: the pinned local copies (or, started without `preflight`, the registry's champions)."""
    env = os.environ if environ is None else environ
    refs = _pinned(config, env)
    if refs is not None:
        models = load_models(refs, ACCEPTED, config.outcome_zh)
    else:
        resolved = resolve_champions(settings.tracking_uri, config.tasks, config.alias)
        with tempfile.TemporaryDirectory(prefix="tenure-serve-") as tmp:  # loaded into memory, then removed
            models = load_models(download_models(settings.tracking_uri, resolved, Path(tmp)), ACCEPTED,
                                 config.outcome_zh)
    log = open_log(config, settings)
    scorer = Scorer(models, log, top_reasons=config.top_reasons, max_batch_size=config.max_batch_size,
                    max_explained_batch_size=config.max_explained_batch_size,
                    api_key_required=api_key_from_env(config, env) is not None,
                    features=[feature_info(f) for f in FEATURES])
    for served in models.values():
        logger.info("serving %s: %s version %s (run %s, alias %s)", served.task, served.model_name,
                    served.version, served.run_id, served.alias)
    return scorer
