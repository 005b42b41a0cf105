"""Scoring: validated customer records -> probabilities, tiers, actions, reasons, and log rows.

The per-request path uses no pandas: record dict -> `TenureModel.encode_record` -> LightGBM's
single-row C API (`LGBM_BoosterPredictForMatSingleRowFast`, one thread, set up once per model)
for the raw score and, when reasons are asked for, the TreeSHAP contributions -> the model's
calibration -> the task spec's tier. The results are those of `Booster.predict` on the same row
(the same C++ predictor underneath). Batches go through `TenureModel` on the whole matrix.

Every scored customer and task is appended to the prediction log before a result is returned
(`PredictionLog.write` raises if it cannot, and nothing is returned); the service uses the
`*_unlogged` methods to write the rows itself (on the event loop when the log is free, else in a
thread). Shadow challengers (`shadows`) score the same records afterwards in one background
thread and log with shadow = 1; they never change, delay or fail an answer. Reads nothing else.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from configs import TenureError
from models import TaskSpec, load_spec
from models.artifact import LinearPart, TenureModel
from serving.prediction_log import LogRow, PredictionLogWriter, features_json, utc_now_iso
from serving.reasons import ReasonWriter
from serving.schemas import (
    SCHEMA_VERSION,
    BatchResponse,
    CustomerScores,
    FeatureInfo,
    ModelInfoResponse,
    ModelRef,
    PredictResponse,
    ReloadInfo,
    ScoreResponse,
    ServedModelInfo,
    TaskScore,
    TierInfo,
    feature_info,
)

logger = logging.getLogger("tenure.serving")


class ScoringError(TenureError, ValueError):
    """A request that is well-formed but cannot be served (unknown task, batch too large to explain)."""


class SingleRowPredictor:
    """LightGBM's single-row fast path for one booster: raw score and TreeSHAP contributions.

    `FastInit` parses the prediction config once; each call then only runs the trees. Results
    equal `Booster.predict(row, raw_score=True / pred_contrib=True, num_threads=1)`; if the C
    API is unavailable this falls back to exactly that call. With a model's `linear` part the
    results are blended with it as `TenureModel.raw_score` / `contributions` do.
    """

    def __init__(self, booster: Any, num_features: int, linear: LinearPart | None = None):
        self.booster = booster
        self.num_features = num_features
        self.linear = linear
        # what Booster.predict does with num_iteration=None and start_iteration=0
        self.num_iteration = int(booster.best_iteration)
        self._handles: dict[str, ctypes.c_void_p] = {}
        try:
            from lightgbm.basic import (
                _C_API_DTYPE_FLOAT64,
                _C_API_PREDICT_CONTRIB,
                _C_API_PREDICT_RAW_SCORE,
                _LIB,
            )

            self._lib = _LIB
            for kind, predict_type in (("raw", _C_API_PREDICT_RAW_SCORE), ("contrib", _C_API_PREDICT_CONTRIB)):
                handle = ctypes.c_void_p()
                rc = _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                    booster._handle, ctypes.c_int(predict_type), ctypes.c_int(0),
                    ctypes.c_int(self.num_iteration), ctypes.c_int(_C_API_DTYPE_FLOAT64),
                    ctypes.c_int32(num_features), ctypes.c_char_p(b"num_threads=1"), ctypes.byref(handle))
                if rc != 0:
                    raise RuntimeError(_LIB.LGBM_GetLastError().decode(errors="replace"))
                self._handles[kind] = handle
            self.fast = True
        except Exception as exc:  # noqa: BLE001 - any problem with the private C API: use the public one
            logger.warning("LightGBM single-row fast path unavailable (%s); using Booster.predict", exc)
            self.close()
            self.fast = False

    def _run(self, kind: str, row: np.ndarray, out: np.ndarray) -> np.ndarray:
        out_len = ctypes.c_int64(0)
        rc = self._lib.LGBM_BoosterPredictForMatSingleRowFast(
            self._handles[kind], row.ctypes.data_as(ctypes.c_void_p), ctypes.byref(out_len),
            out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
        if rc != 0:
            raise RuntimeError("LightGBM prediction failed: " + self._lib.LGBM_GetLastError().decode(errors="replace"))
        return out

    def raw_score(self, x: np.ndarray) -> float:
        """Raw score (log-odds) of one encoded row, shape (1, n_features) or (n_features,)."""
        row = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        if not self.fast:
            trees = float(self.booster.predict(row.reshape(1, -1), raw_score=True, num_threads=1)[0])
        else:
            trees = float(self._run("raw", row, np.empty(1, dtype=np.float64))[0])
        return trees if self.linear is None else float(self.linear.blend(np.array([trees]), row.reshape(1, -1))[0])

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """SHAP contributions of one row (TreeSHAP, blended with the linear part's when there is one):
        n_features values, then the base value."""
        row = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        if not self.fast:
            trees = np.asarray(self.booster.predict(row.reshape(1, -1), pred_contrib=True, num_threads=1))[0]
        else:
            trees = self._run("contrib", row, np.empty(self.num_features + 1, dtype=np.float64))
        return trees if self.linear is None else self.linear.blend_contributions(trees, row.reshape(1, -1))[0]

    def close(self) -> None:
        lib = getattr(self, "_lib", None)
        for handle in self._handles.values():
            if lib is not None and handle:
                lib.LGBM_FastConfigFree(handle)
        self._handles = {}

    def __del__(self) -> None:  # pragma: no cover - interpreter teardown
        with contextlib.suppress(Exception):
            self.close()


@dataclass
class ServedModel:
    """One task's loaded model with everything the request path needs, prepared once."""

    task: str
    model_name: str
    version: str
    run_id: str
    alias: str
    model: TenureModel
    spec: TaskSpec
    reasons: ReasonWriter
    predictor: SingleRowPredictor
    ref: ModelRef = field(init=False)
    _tiers: list[dict[str, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.ref = ModelRef(name=self.model_name, version=self.version, run_id=self.run_id)
        self._tiers = [{"tier": t.name, "action": t.action, "action_en": t.action_en, "action_zh": t.action_zh,
                        "params": dict(t.params)} for t in self.spec.tiers]
        self._bounds = [t.max_probability for t in self.spec.tiers]

    @classmethod
    def build(cls, *, task: str, model_name: str, version: str, run_id: str, alias: str,
              model: TenureModel) -> ServedModel:
        from features.definitions import FEATURES_BY_NAME

        spec = TaskSpec.model_validate(model.task_spec)
        writer = ReasonWriter.build(model.features, spec.positive_means, _outcome_zh(spec), FEATURES_BY_NAME)
        predictor = SingleRowPredictor(model.booster, len(model.feature_names), model.linear)
        return cls(task=task, model_name=model_name, version=version, run_id=run_id, alias=alias, model=model,
                   spec=spec, reasons=writer, predictor=predictor)

    def tier_index(self, probability: float) -> int:
        """Index of `spec.tier_for(probability)` (upper bounds exclusive, the last inclusive)."""
        for i, bound in enumerate(self._bounds):
            if probability < bound:
                return i
        return len(self._bounds) - 1

    def decision(self, probability: float) -> dict[str, Any]:
        return self._tiers[self.tier_index(probability)]

    def probability_of(self, raw: float) -> float:
        return float(self.model.calibration(np.array([raw], dtype=np.float64))[0])

    def features_of(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The model's features as scored (validated values; None = missing), for the log."""
        return {name: record.get(name) for name in self.model.feature_names}

    def info(self) -> ServedModelInfo:
        return ServedModelInfo(
            task=self.task, model_name=self.model_name, version=self.version, run_id=self.run_id, alias=self.alias,
            calibration=self.model.calibration.method, features=list(self.model.feature_names),
            tiers=[TierInfo(name=t.name, max_probability=t.max_probability, action=t.action, action_en=t.action_en,
                            action_zh=t.action_zh, params=dict(t.params)) for t in self.spec.tiers])


def _outcome_zh(spec: TaskSpec) -> str | None:
    """The Chinese outcome of the reason sentences: the model's spec, else the task's current spec (a
    model logged before specs carried `outcome_zh`)."""
    if spec.outcome_zh:
        return spec.outcome_zh
    try:
        return load_spec(spec.name).outcome_zh
    except TenureError:  # a task whose spec file is not here (own data): the generic wording
        return None


def _as_of_text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


class Scorer:
    """Scores validated records with the served models and logs every prediction.

    `models` (task -> champion) and `shadows` (task -> challengers scored off the answer path) are
    replaced as a whole by `swap` (hot reload): a request reads them once, so it is scored and
    logged by one version per task, and its answer names that version.
    """

    def __init__(self, models: Mapping[str, ServedModel], log: PredictionLogWriter, *, top_reasons: int = 3,
                 max_explained_batch_size: int = 100, max_batch_size: int = 1000, api_key_required: bool = False,
                 features: Sequence[FeatureInfo] | None = None,
                 shadows: Mapping[str, Sequence[ServedModel]] | None = None, shadow_queue: int = 10_000):
        if not models:
            raise ValueError("a Scorer needs at least one served model")
        self.models: dict[str, ServedModel] = dict(models)
        self.shadows: dict[str, tuple[ServedModel, ...]] = {t: tuple(s) for t, s in (shadows or {}).items() if s}
        self.log = log
        self.top_reasons = top_reasons
        self.max_batch_size = max_batch_size
        self.max_explained_batch_size = max_explained_batch_size
        self.api_key_required = api_key_required
        self._features = list(features) if features is not None else self._model_features()
        self.reload_status: dict[str, Any] = {"state": "loaded", "at": utc_now_iso(), "error": None}
        self._shadow = ShadowWorker(self, shadow_queue)

    def _model_features(self) -> list[FeatureInfo]:
        seen: dict[str, FeatureInfo] = {}
        for served in self.models.values():
            for f in served.model.features:
                seen.setdefault(f["name"], feature_info(f))
        return list(seen.values())

    def served(self, task: str) -> ServedModel:
        try:
            return self.models[task]
        except KeyError:
            raise ScoringError(f"task {task!r} is not served here; served tasks: {', '.join(self.models)}") from None

    def swap(self, models: Mapping[str, ServedModel], shadows: Mapping[str, Sequence[ServedModel]]) -> None:
        """Serve `models` and `shadows` from the next request on (one assignment each: atomic for requests)."""
        if set(models) != set(self.models):
            raise ValueError(f"a swap must serve the same tasks ({sorted(self.models)}), got {sorted(models)}")
        self.shadows = {t: tuple(s) for t, s in shadows.items() if s}
        self.models = dict(models)

    # ---- one customer ---------------------------------------------------------------------
    def _score_task(self, served: ServedModel, record: Mapping[str, Any], explain: bool) -> TaskScore:
        x = served.model.encode_record(record)
        raw = served.predictor.raw_score(x)
        probability = served.probability_of(raw)
        explanation = None
        if explain:
            contrib = served.predictor.contributions(x)
            explanation = served.reasons.explain(contrib, raw, record, self.top_reasons)
        return TaskScore(probability=probability, **served.decision(probability), model=served.ref,
                         explanation=explanation)

    @staticmethod
    def _row(request_id: str, scored_at: str, served: ServedModel, record: Mapping[str, Any], probability: float,
             tier: str, action: str, shadow: int = 0) -> LogRow:
        return (request_id, scored_at, served.task, served.model_name, served.version, served.run_id,
                str(record["customer_id"]), _as_of_text(record.get("as_of")),
                features_json(served.features_of(record)), probability, tier, action, shadow)

    def score_unlogged(self, record: Mapping[str, Any], *, explain: bool = True) -> tuple[ScoreResponse, list[LogRow]]:
        """Every served task for one customer, with the top reasons, and the log rows to write first."""
        models = self.models
        request_id, scored_at = str(uuid.uuid4()), utc_now_iso()
        scores = {task: self._score_task(served, record, explain) for task, served in models.items()}
        rows = [self._row(request_id, scored_at, models[t], record, s.probability, s.tier, s.action)
                for t, s in scores.items()]
        return ScoreResponse(request_id=request_id, scored_at=scored_at, customer_id=str(record["customer_id"]),
                             as_of=record.get("as_of"), scores=scores), rows

    def predict_unlogged(self, task: str, record: Mapping[str, Any]) -> tuple[PredictResponse, list[LogRow]]:
        """One task for one customer, no reasons (the fast path), and the log row to write first."""
        served = self.served(task)
        request_id, scored_at = str(uuid.uuid4()), utc_now_iso()
        score = self._score_task(served, record, explain=False)
        row = self._row(request_id, scored_at, served, record, score.probability, score.tier, score.action)
        return PredictResponse(request_id=request_id, scored_at=scored_at, task=task,
                               customer_id=str(record["customer_id"]), as_of=record.get("as_of"),
                               probability=score.probability, tier=score.tier, action=score.action,
                               action_en=score.action_en, action_zh=score.action_zh, params=score.params,
                               model=score.model), [row]

    def score(self, record: Mapping[str, Any], *, explain: bool = True) -> ScoreResponse:
        """Every served task for one customer, with the top reasons; logged before returning."""
        response, rows = self.score_unlogged(record, explain=explain)
        self.log.write(rows)
        self.shadow_later(rows, [record])
        return response

    def predict(self, task: str, record: Mapping[str, Any]) -> PredictResponse:
        """One task for one customer, no reasons (the fast path); logged before returning."""
        response, rows = self.predict_unlogged(task, record)
        self.log.write(rows)
        self.shadow_later(rows, [record])
        return response

    # ---- many customers -------------------------------------------------------------------
    def score_batch(self, records: Sequence[Mapping[str, Any]], *, explain: bool = False) -> BatchResponse:
        """Every served task for every record (in order); one log transaction for the whole batch."""
        if not records:
            raise ScoringError("customers: the batch is empty; send 1 or more customers")
        if len(records) > self.max_batch_size:
            raise ScoringError(f"customers: {len(records)} customers, at most {self.max_batch_size} per request")
        if explain and len(records) > self.max_explained_batch_size:
            raise ScoringError(f"customers: {len(records)} customers with explain=true, at most "
                               f"{self.max_explained_batch_size} per request (or send explain=false)")
        models = self.models
        request_id, scored_at = str(uuid.uuid4()), utc_now_iso()
        per_task: dict[str, list[TaskScore]] = {}
        for task, served in models.items():
            X = served.model.encode_records(records)  # noqa: N806
            raw = served.model.raw_score(X, num_threads=1)
            probs = served.model.calibration(raw)
            contrib = served.model.contributions(X, num_threads=1) if explain else None
            out = []
            for i, record in enumerate(records):
                p = float(probs[i])
                explanation = (served.reasons.explain(contrib[i], float(raw[i]), record, self.top_reasons)
                               if contrib is not None else None)
                out.append(TaskScore(probability=p, **served.decision(p), model=served.ref, explanation=explanation))
            per_task[task] = out
        rows = [self._row(request_id, scored_at, models[task], record, s[i].probability, s[i].tier, s[i].action)
                for i, record in enumerate(records) for task, s in per_task.items()]
        self.log.write(rows)
        self.shadow_later(rows, records)
        results = [CustomerScores(customer_id=str(record["customer_id"]), as_of=record.get("as_of"),
                                  scores={task: scores[i] for task, scores in per_task.items()})
                   for i, record in enumerate(records)]
        return BatchResponse(request_id=request_id, scored_at=scored_at, count=len(results), results=results)

    # ---- shadow challengers (off the answer path) -------------------------------------------
    def shadow_later(self, rows: Sequence[LogRow], records: Sequence[Mapping[str, Any]]) -> None:
        """Queue the shadow scoring of the tasks `rows` answered for `records` (no-op without shadows)."""
        if self.shadows:
            self._shadow.submit(rows[0][0], list(dict.fromkeys(r[2] for r in rows)), records)

    def shadow_rows(self, request_id: str, tasks: Sequence[str], records: Sequence[Mapping[str, Any]]) -> list[LogRow]:
        """The shadow challengers' log rows (shadow = 1) for `records` scored by `tasks`."""
        shadows, scored_at, rows = self.shadows, utc_now_iso(), []
        for task in tasks:
            for served in shadows.get(task, ()):
                X = served.model.encode_records(records)  # noqa: N806
                probs = served.model.calibration(served.model.raw_score(X, num_threads=1))
                for record, p in zip(records, probs, strict=True):
                    d = served.decision(float(p))
                    rows.append(self._row(request_id, scored_at, served, record, float(p), d["tier"], d["action"], 1))
        return rows

    def close(self) -> None:
        """Stop the shadow worker (it finishes what is queued) and close the log."""
        self._shadow.close()
        self.log.close()

    # ---- metadata -------------------------------------------------------------------------
    def model_info(self) -> ModelInfoResponse:
        return ModelInfoResponse(
            schema_version=SCHEMA_VERSION, api_key_required=self.api_key_required,
            max_batch_size=self.max_batch_size, max_explained_batch_size=self.max_explained_batch_size,
            top_reasons=self.top_reasons, models=[m.info() for m in self.models.values()],
            shadow=[m.info() for ss in self.shadows.values() for m in ss],
            reload=ReloadInfo(**self.reload_status, shadow_dropped=self._shadow.dropped), features=self._features)


class ShadowWorker:
    """One thread that scores queued requests with the shadow challengers and logs them (shadow = 1).

    The queue is bounded: when the challengers fall behind, requests are left unscored and counted
    in `dropped` (shown by /model_info) rather than holding memory or the answers."""

    def __init__(self, scorer: Scorer, maxsize: int):
        import queue

        self.scorer = scorer
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
        self.dropped = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, request_id: str, tasks: list[str], records: Sequence[Mapping[str, Any]]) -> None:
        import queue

        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tenure-shadow", daemon=True)
                self._thread.start()
        try:
            self.queue.put_nowait((request_id, tasks, list(records)))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            try:
                rows = self.scorer.shadow_rows(*item)
                if rows:
                    self.scorer.log.write(rows)
            except Exception as exc:  # noqa: BLE001 - a challenger's failure never reaches an answer
                logger.warning("shadow scoring of request %s failed: %s", item[0], exc)

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self.queue.put(None)
            self._thread.join(timeout)
            self._thread = None
