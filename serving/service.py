"""The Tenure BentoML service: `bentoml serve serving.service:Tenure` (or `tenure serve`).

Endpoints (OpenAPI document at /docs.json, Swagger UI at / and /docs):
- `POST /score`: one customer -> every served model's probability, tier, action and top reasons;
- `POST /score_batch`: many customers (reasons optional);
- `POST /predict_default_risk`, `/predict_churn`, `/predict_upsell`: one model, no reasons (fast);
- `GET` or `POST /model_info`: served models, versions, run ids, the feature schema, limits;
- `GET /healthz`, `/livez` (process up) and `/readyz` (models loaded): always open.

- `POST /admin/reload` (admin key in `X-Admin-Key`): follow the registry's aliases now.

At start (main process, before workers) the address is checked (a busy port: one line, exit 2;
a non-loopback address without an API key: a warning), each task's champion (and shadow
challenger) is resolved in the MLflow registry, copied to a temporary folder and checked; if one
is missing or the registry is unreachable the server exits with code 2 and one line saying what
to do. Every worker then loads those pinned copies (without touching the registry) and follows
the aliases afterwards (hot reload, serving.reload); the folder is removed when the server
stops. The bind address defaults to 127.0.0.1 however the server is started. Settings come from the environment
(`MLFLOW_TRACKING_URI`, `TENURE_PREDICTION_LOG`, `TENURE_HOME`, see configs.settings) and the
serving config from `configs/serve.yaml` (+ `TENURE_SERVE_CONFIG`, `TENURE_SERVE_OVERRIDES`).
Writes every prediction to the prediction log before answering: on the event loop when the log is
free (the fast path), in a thread when another writer holds it, so a locked log never blocks the
worker's other requests (`/livez` included).
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import bentoml
from pydantic import BaseModel, ValidationError, create_model
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from configs import TenureError
from configs.serve import serve_config_from_env
from configs.settings import load_settings
from features.definitions import FEATURES
from models import load_spec, task_names
from serving import schemas
from serving.guard import RequestGuard, error_body
from serving.openapi import OpenAPIDocument, conform
from serving.prediction_log import LogRow, PredictionLogError
from serving.reload import Reloader
from serving.schemas import build_batch_model, build_customer_model
from serving.scoring import Scorer, ScoringError
from serving.startup import (
    api_key_from_env,
    bind_address,
    check_port_free,
    is_loopback,
    pin,
    preflight,
    start_worker,
)

logger = logging.getLogger("bentoml.serve.tenure")


def _io(model: type[BaseModel]) -> type[BaseModel]:
    """`model` as a BentoML IO descriptor under its own name (clean OpenAPI component and error titles)."""
    return create_model(model.__name__, __base__=(bentoml.IODescriptor, model), __module__=model.__module__,
                        __doc__=model.__doc__)


CONFIG = serve_config_from_env()
CustomerRecord = build_customer_model(FEATURES, base=bentoml.IODescriptor)
ScoreBatchRequest = build_batch_model(CustomerRecord, CONFIG.max_batch_size, base=bentoml.IODescriptor)
ScoreResponse = _io(schemas.ScoreResponse)
BatchResponse = _io(schemas.BatchResponse)
PredictResponse = _io(schemas.PredictResponse)
ModelInfoResponse = _io(schemas.ModelInfoResponse)

# one fast-path route per task spec in models/ (`/predict_<task>`): a new task is a new spec file
PREDICT_ROUTES = {task: f"/predict_{task}" for task in task_names()}
SCORING = ("/score", "/score_batch", *PREDICT_ROUTES.values())
PROTECTED = (*SCORING, "/model_info")
ADMIN = ("/admin/reload",)


class _QuietValidationErrors(logging.Filter):
    """BentoML logs every 400 as an ERROR with a traceback; a client's bad input is one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            where = record.getMessage().removeprefix("Exception on ")
            record.msg, record.args = "invalid input on %s: answered 400 (%d problem(s))", (where, exc.error_count())
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _error(status: int, message: str, loc: list[Any] | None = None, kind: str = "error") -> Response:
    return Response(error_body(message, loc, kind), status_code=status, media_type="application/json")


def _log_failure(exc: PredictionLogError) -> Response:
    logger.error("prediction log write failed, answering 503: %s", exc)
    return _error(503, "the prediction could not be recorded in the prediction log, so it is not returned; "
                       "retry later", ["prediction_log"], "log_unavailable")


def _predict_api(task: str, route: str) -> Any:
    """The fast-path API of one task (`POST /predict_<task>`), documented from its spec."""
    spec = load_spec(task)

    async def predict(self: Any, customer: CustomerRecord, /) -> schemas.PredictResponse | Response:  # type: ignore[valid-type]
        return await self._predict(task, customer)

    predict.__name__ = predict.__qualname__ = f"predict_{task}"
    predict.__doc__ = (f"{spec.title} only: probability, tier and action for one customer; no reasons. "
                       f"The fast path. {spec.question}")
    return bentoml.api(route=route, output_spec=PredictResponse)(predict)


@bentoml.service(
    name="Tenure",
    workers=CONFIG.workers,
    traffic={"timeout": CONFIG.timeout_seconds},
    http={"host": CONFIG.host, "port": CONFIG.port},  # `bentoml serve` without --host binds these too
    labels={"project": "tenure"},
    **({} if CONFIG.trace_requests else {"tracing": {"excluded_urls": list(PROTECTED)}}),
)
class Tenure:
    """Tenure scores leasing customers for default risk, churn and upsell, with a decision (tier and
    action, in English and Chinese) and the reasons behind it (exact SHAP contributions in plain
    words). Send one customer to `/score`, many to `/score_batch`, or one model's fast path to
    `/predict_<task>`. Features are optional (missing values are scored as missing); unknown
    fields, personal data included, are refused with 400 naming the field. When an API key is
    configured, send it as `X-API-Key` or `Authorization: Bearer`."""

    @bentoml.on_deployment
    def pin_champions() -> None:  # type: ignore[misc]  # BentoML calls deployment hooks without self
        """Main process, before any worker: check the address, resolve and check every model, or refuse to start."""
        cache = Path(tempfile.mkdtemp(prefix="tenure-serve-"))
        try:
            host, port = bind_address(CONFIG, sys.argv, os.environ)
            if not is_loopback(host) and api_key_from_env(CONFIG) is None:
                print(f"warning: Tenure binds {host}:{port}, reachable from other machines, and "
                      f"{CONFIG.api_key_env} is not set, so the scoring endpoints need no API key",
                      file=sys.stderr, flush=True)
            check_port_free(host, port)
            refs = preflight(CONFIG, load_settings(), cache)
        except TenureError as exc:
            shutil.rmtree(cache, ignore_errors=True)
            print(f"error: Tenure cannot start: {' '.join(str(exc).split())}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        atexit.register(shutil.rmtree, cache, ignore_errors=True)  # the workers load from it while the server runs
        pin(refs, cache)
        for ref in refs.values():
            shadow = "" if ref.alias == CONFIG.alias else f" (shadow, alias {ref.alias})"
            print(f"Tenure: {ref.task} -> {ref.model_name} version {ref.version} (run {ref.run_id}){shadow}",
                  file=sys.stderr, flush=True)

    def __init__(self) -> None:
        from bentoml._internal.context import server_context

        self.scorer: Scorer | None = None
        self.reloader: Reloader | None = None
        logging.getLogger("bentoml._internal.server.http_app").addFilter(_QuietValidationErrors())
        self.scorer, self.reloader = start_worker(CONFIG, load_settings(), worker=server_context.worker_index or 1)
        try:  # before the reload thread starts: BentoML's generator looks at `sys.modules["fastapi"]`,
            # which that thread's first registry call may be importing (then the document failed,
            # "partially initialized module 'fastapi'", and GET /docs.json hung 60 s)
            _openapi()
        except Exception:
            logger.exception("the OpenAPI document could not be built at start; GET /docs.json will try again")
        self.reloader.start()

    def __is_ready__(self) -> bool:
        """Ready when every served model is loaded."""
        return self.scorer is not None and set(self.scorer.models) == set(CONFIG.tasks)

    @bentoml.on_shutdown
    def close(self) -> None:
        if self.reloader is not None:
            self.reloader.stop()
        if self.scorer is not None:
            self.scorer.close()

    def _scorer(self) -> Scorer:
        assert self.scorer is not None, "the service is not started"
        return self.scorer

    @bentoml.api(route="/score", output_spec=ScoreResponse)
    async def score(self, customer: CustomerRecord, /) -> schemas.ScoreResponse | Response:  # type: ignore[valid-type]
        """Score one customer with every served model: probability, tier, action (EN/ZH) and parameters,
        the top reasons (feature, value, SHAP contribution, direction, a sentence in English and
        Chinese), the model name, version and run id, a request id and the time. Logged before it is
        returned; 503 when the prediction log cannot be written."""
        scorer = self._scorer()
        record = customer.__dict__
        response, rows = scorer.score_unlogged(record)
        return await _logged(scorer, response, rows, [record])

    @bentoml.api(route="/score_batch", output_spec=BatchResponse)
    def score_batch(self, request: ScoreBatchRequest, /) -> schemas.BatchResponse | Response:  # type: ignore[valid-type]
        """Score many customers (1 to max_batch_size, see /model_info) with every served model, in
        request order; with `explain: true` (fewer customers allowed) each score carries its reasons.
        All rows of the batch are logged in one transaction before the answer."""
        try:
            return self._scorer().score_batch([c.__dict__ for c in request.customers], explain=request.explain)
        except ScoringError as exc:
            return _error(400, str(exc), ["customers"], "batch_limit")
        except PredictionLogError as exc:
            return _log_failure(exc)

    async def _predict(self, task: str, customer: Any) -> schemas.PredictResponse | Response:
        scorer = self._scorer()
        if task not in scorer.models:
            return _error(404, f"task {task!r} is not served here; served tasks: {', '.join(scorer.models)}",
                          ["path"], "not_served")
        record = customer.__dict__
        response, rows = scorer.predict_unlogged(task, record)
        return await _logged(scorer, response, rows, [record])

    for _task, _route in PREDICT_ROUTES.items():  # the class namespace takes one API per task
        locals()[f"predict_{_task}"] = _predict_api(_task, _route)
    del _task, _route

    @bentoml.api(route="/model_info", output_spec=ModelInfoResponse)
    async def model_info(self) -> schemas.ModelInfoResponse:
        """The served models (task, registered name, version, run id, alias, calibration, inputs, tiers),
        every accepted feature (kind, unit, range, categories, descriptions) and the request limits.
        Also answers GET."""
        return self._scorer().model_info()


async def _logged(scorer: Scorer, response: Any, rows: Sequence[LogRow], records: Sequence[Mapping[str, Any]]
                  ) -> Any:
    """`response` once `rows` are committed to the prediction log (503 when they cannot be).

    The fast path writes on the event loop, which never waits: when another writer holds the
    log's lock, the write (with its busy timeout) moves to a thread and the loop serves others."""
    try:
        if not scorer.log.try_write(rows):
            await anyio.to_thread.run_sync(scorer.log.write, rows)
    except PredictionLogError as exc:
        return _log_failure(exc)
    scorer.shadow_later(rows, records)
    return response


async def _admin_reload(request: Request) -> Response:
    """POST /admin/reload (admin key checked by the guard): check the registry now, swap what moved,
    and answer once every worker serves the result (or after reload.admin_wait_seconds)."""
    service = bentoml.get_current_service()
    reloader: Reloader = service.reloader
    status = await anyio.to_thread.run_sync(reloader.check)
    workers = await anyio.to_thread.run_sync(reloader.wait_for_workers, CONFIG.reload.admin_wait_seconds)
    behind = sorted(i for i, g in workers.items() if g < reloader.generation)
    missing = sorted(set(range(1, CONFIG.workers + 1)) - set(workers))
    body = {**status, "workers": {str(i): g for i, g in sorted(workers.items())},
            "all_workers_current": not behind and not missing}
    code = 200 if status.get("state") != "failed" else 503
    return JSONResponse(body, status_code=code)


async def _model_info_get(request: Request) -> Response:
    """GET /model_info: the same answer as the POST API (BentoML APIs are POST only)."""
    service = bentoml.get_current_service()
    return JSONResponse(service._scorer().model_info().model_dump(mode="json"))


async def _docs(request: Request) -> Response:
    """GET /docs: BentoML's Swagger UI lives at / (the OpenAPI document at /docs.json)."""
    return RedirectResponse(url="/", status_code=307)


@functools.cache
def _openapi() -> dict[str, Any]:
    """The published OpenAPI document (built once per worker: the routes do not change at run time)."""
    return conform(Tenure.openapi_spec.asdict(), scoring_paths=SCORING, admin_path=ADMIN[0])


Tenure.mount_asgi_app(Starlette(routes=[Route("/model_info", _model_info_get, methods=["GET"]),
                                        Route("/docs", _docs, methods=["GET"]),
                                        Route(ADMIN[0], _admin_reload, methods=["POST"])]), path="/")
Tenure.add_asgi_middleware(RequestGuard, protected=PROTECTED, api_key=api_key_from_env(CONFIG),
                           max_body_bytes=CONFIG.max_body_bytes, admin=ADMIN,
                           admin_key=os.environ.get(CONFIG.reload.admin_key_env) or None)
Tenure.add_asgi_middleware(OpenAPIDocument, build=_openapi)
