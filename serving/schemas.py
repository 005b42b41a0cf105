"""Request and response schemas of the Tenure service: the public API, documented in OpenAPI.

The customer record is generated from the feature definitions (`features.definitions`), so the
API, the models and the reasons cannot disagree about a feature: numeric features are
`float | None` bounded by the definition's min/max (finite numbers only, no strings or booleans),
categorical features `Literal[<categories>] | None`. A missing or null feature is scored as
missing. `customer_id` is a pseudonymous reference (never a name, phone or id-card number) and
unknown fields are refused, so personal data (`name`, `phone`, `national_id`, `address`) never
enters the service. Responses are plain Pydantic models; nothing here reads or writes files.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from features.definitions import FeatureDef

# bump when a response or request field changes meaning or disappears
SCHEMA_VERSION = "1"
CUSTOMER_REF_MAX = 128
# `\Z`, not `$`: Python's `$` also matches before a trailing line feed ("C-1\n" would pass)
_CUSTOMER_REF = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.:\-]*\Z")
# the same rule in the OpenAPI document (ECMA-262 regex: `$` is the end of the text there)
_CUSTOMER_REF_JSON = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"
_REF_RULE = (f"a non-negative integer or a string of 1 to {CUSTOMER_REF_MAX} letters, digits, '_', '.', ':' "
             "or '-' starting with a letter or digit")


def _customer_ref(value: Any) -> str:
    """A pseudonymous customer reference as text; refuses anything that is not an id-like token."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PydanticCustomError("customer_ref_type", "customer_id must be {rule}", {"rule": _REF_RULE})
    if isinstance(value, int):
        if value < 0 or value >= 10**CUSTOMER_REF_MAX:
            raise PydanticCustomError("customer_ref_range", "customer_id must be {rule}", {"rule": _REF_RULE})
        return str(value)
    if not value or len(value) > CUSTOMER_REF_MAX or not _CUSTOMER_REF.match(value):
        raise PydanticCustomError("customer_ref_format", "customer_id must be {rule}", {"rule": _REF_RULE})
    return value


CustomerRef = Annotated[
    str,
    PlainValidator(_customer_ref),
    WithJsonSchema({
        "anyOf": [
            {"type": "string", "minLength": 1, "maxLength": CUSTOMER_REF_MAX, "pattern": _CUSTOMER_REF_JSON},
            {"type": "integer", "minimum": 0},
        ],
        "description": "Pseudonymous customer reference (" + _REF_RULE + "); echoed and logged as text.",
        "examples": ["C-000123"],
    }),
]


def _date_as_text(value: Any) -> Any:
    """`as_of` is a date sent as text (or null): a number would otherwise pass as days since 1970."""
    if isinstance(value, int | float | bool):
        raise PydanticCustomError("date_type", "as_of must be a date as text, e.g. 2025-03-01, or null")
    return value


AsOf = Annotated[dt.date | None, BeforeValidator(_date_as_text)]


def _describe(defn: FeatureDef) -> str:
    unit = f" ({defn.unit})" if defn.unit else ""
    return f"{defn.description[:1].upper()}{defn.description[1:]}{unit}. {defn.description_zh}。"


def _example(defn: FeatureDef) -> Any:
    if defn.kind == "categorical":
        return (defn.categories or ("",))[0]
    lo = defn.min if defn.min is not None else 0.0
    hi = defn.max if defn.max is not None else lo + 10.0
    return round(lo + (min(hi, lo + 100.0) - lo) / 4, 2)


def feature_field(defn: FeatureDef) -> tuple[Any, Any]:
    """The (annotation, FieldInfo) of one feature: optional, typed and bounded as its definition says."""
    desc = _describe(defn)
    if defn.kind == "categorical":
        if not defn.categories:
            raise ValueError(f"categorical feature {defn.name!r} has no categories")
        return (Literal[tuple(defn.categories)] | None,  # type: ignore[valid-type]
                Field(default=None, description=desc, examples=[_example(defn)]))
    number = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=defn.min, le=defn.max)]
    return number | None, Field(default=None, description=desc, examples=[_example(defn)])


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _request_base(base: type[BaseModel]) -> type[BaseModel]:
    """`base` with unknown fields refused (BentoML passes its IODescriptor here)."""
    if base is BaseModel:
        return _Request
    return type(f"{base.__name__}Request", (base,), {"model_config": ConfigDict(extra="forbid"),
                                                     "__module__": __name__})


def build_customer_model(features: Sequence[FeatureDef], *, name: str = "CustomerRecord",
                         base: type[BaseModel] = BaseModel) -> type[BaseModel]:
    """One customer as the service accepts it: `customer_id`, optional `as_of`, every feature optional.

    Unknown fields are refused (`extra="forbid"`), which also keeps personal data out.
    """
    fields: dict[str, Any] = {
        "customer_id": (CustomerRef, Field(description="Pseudonymous customer reference; required.")),
        "as_of": (AsOf, Field(default=None, description=(
            "Date the feature values describe (ISO 8601, e.g. 2025-03-01); logged with the prediction."))),
    }
    for defn in features:
        if defn.name in fields:
            raise ValueError(f"feature {defn.name!r} clashes with a reserved request field")
        fields[defn.name] = feature_field(defn)
    doc = ("One customer: a pseudonymous `customer_id`, an optional `as_of` date and the feature values "
           "(each optional; missing values are scored as missing). Unknown fields, personal data included, "
           "are refused.")
    return create_model(name, __base__=_request_base(base), __doc__=doc, __module__=__name__, **fields)


def build_batch_model(customer: type[BaseModel], max_batch_size: int, *, name: str = "ScoreBatchRequest",
                      base: type[BaseModel] = BaseModel) -> type[BaseModel]:
    """Many customers in one request: 1 to `max_batch_size` records and whether to explain them."""
    fields: dict[str, Any] = {
        "customers": (list[customer], Field(min_length=1, max_length=max_batch_size,  # type: ignore[valid-type]
                                            description=f"1 to {max_batch_size} customers.")),
        "explain": (bool, Field(default=False, strict=True, description=(
            "Also return the top reasons (SHAP) per customer and task; slower, and limited to fewer "
            "customers per request (see /model_info)."))),
    }
    doc = "A batch of customers to score with every served model."
    return create_model(name, __base__=_request_base(base), __doc__=doc, __module__=__name__, **fields)


# ---- responses -------------------------------------------------------------------------------
class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ModelRef(_Out):
    """The registered model version that produced a score."""

    name: str = Field(description="Registered model name (the task).")
    version: str = Field(description="Registered model version.")
    run_id: str = Field(description="MLflow run that trained it.")


class Reason(_Out):
    """One feature that pushed the score, with its exact SHAP contribution on the log-odds scale."""

    feature: str
    value: float | str | None = Field(description="The value as scored; null when missing.")
    contribution: float = Field(description="SHAP contribution to the raw score (log-odds): TreeSHAP of the trees, "
                                            "blended with the exact SHAP value of the model's linear part when it "
                                            "has one.")
    direction: Literal["raised", "lowered"] = Field(description="Whether it raised or lowered the score.")
    text_en: str = Field(description="The reason in plain English.")
    text_zh: str = Field(description="The reason in plain Chinese.")


class Explanation(_Out):
    """Why: `base_value + sum(reasons.contribution) + other_contribution == raw_score` (exactly, up to rounding)."""

    raw_score: float = Field(description="The model's raw score (log-odds) before calibration.")
    base_value: float = Field(description="The expected raw score over the training data (SHAP base value).")
    reasons: list[Reason] = Field(description="Top features by absolute contribution, largest first.")
    other_contribution: float = Field(description="Sum of the contributions of all features not listed.")


class Decision(_Out):
    """One model's score for one customer and the decision attached to it."""

    probability: float = Field(ge=0, le=1, description="Calibrated probability of the positive outcome.")
    tier: str = Field(description="Tier of the task spec the probability falls in.")
    action: str = Field(description="Action code of the tier.")
    action_en: str
    action_zh: str
    params: dict[str, float | int | str] = Field(description="Decision parameters of the tier (deposit ratio, "
                                                             "max term, priority, offer, ...).")
    model: ModelRef


class TaskScore(Decision):
    """A decision with, when asked for, the reasons behind it."""

    explanation: Explanation | None = Field(default=None, description="Present when reasons were asked for.")


class CustomerScores(_Out):
    customer_id: str
    as_of: dt.date | None = None
    scores: dict[str, TaskScore] = Field(description="One entry per served task.")


class ScoreResponse(CustomerScores):
    """Every served model's score, decision and reasons for one customer."""

    request_id: str = Field(description="UUID4 of this request; the prediction log rows carry it.")
    scored_at: str = Field(description="When it was scored (ISO 8601, UTC).")


class BatchResponse(_Out):
    """Scores for every customer of a batch, in request order."""

    request_id: str
    scored_at: str
    count: int
    results: list[CustomerScores]


class PredictResponse(Decision):
    """One model's score and decision for one customer (no reasons: the fast path)."""

    request_id: str
    scored_at: str
    task: str
    customer_id: str
    as_of: dt.date | None = None


class FeatureInfo(_Out):
    name: str
    kind: Literal["numeric", "categorical"]
    unit: str = ""
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    description: str
    description_zh: str


class TierInfo(_Out):
    name: str
    max_probability: float
    action: str
    action_en: str
    action_zh: str
    params: dict[str, float | int | str]


class ServedModelInfo(_Out):
    task: str
    model_name: str
    version: str
    run_id: str
    alias: str
    calibration: str
    features: list[str] = Field(description="Model inputs, in model order.")
    tiers: list[TierInfo]


class ReloadInfo(_Out):
    """The last hot reload (registry poll or POST /admin/reload): what is served since when, or why
    a new version was refused (the previous models are still served then)."""

    state: Literal["loaded", "reloaded", "unchanged", "failed"]
    at: str = Field(description="When the state was reached (ISO 8601, UTC).")
    error: str | None = Field(default=None, description="Why the last reload failed (the old models serve).")
    shadow_dropped: int = Field(default=0, description="Requests left unscored by the shadow challengers "
                                                       "because they fell behind.")


class ModelInfoResponse(_Out):
    """What the service serves: models, versions, run ids, the feature schema and the limits."""

    schema_version: str
    api_key_required: bool
    max_batch_size: int
    max_explained_batch_size: int
    top_reasons: int
    models: list[ServedModelInfo]
    shadow: list[ServedModelInfo] = Field(default_factory=list, description=(
        "Shadow challengers: scored on the same requests off the answer path and logged with shadow = 1, "
        "never answered."))
    reload: ReloadInfo | None = Field(default=None, description="The last hot reload of the served models.")
    features: list[FeatureInfo] = Field(description="Every feature the request accepts.")



def feature_info(defn: FeatureDef | Mapping[str, Any]) -> FeatureInfo:
    d = defn.to_dict() if isinstance(defn, FeatureDef) else dict(defn)
    return FeatureInfo(name=d["name"], kind=d["kind"], unit=d.get("unit") or "", min=d.get("min"),
                       max=d.get("max"), categories=list(d["categories"]) if d.get("categories") else None,
                       description=d.get("description", ""), description_zh=d.get("description_zh", ""))


def request_records(frame: Any, id_column: str = "customer_id", time_column: str = "snapshot_date") -> list[dict]:
    """Rows of a scoring frame (`features.build.scoring_frame`) as the customer records the service
    accepts: the catalogue's features the frame has (NaN as null), the id as text, `as_of` the
    row's snapshot date. Group columns (age band, city tier) are left out: the service refuses them."""
    import numpy as np
    import pandas as pd

    from features.definitions import FEATURES

    names = [f.name for f in FEATURES if f.name in frame.columns]
    as_of = pd.to_datetime(frame[time_column]).dt.strftime("%Y-%m-%d").to_numpy()
    ids = frame[id_column].to_numpy()
    out = []
    for i, row in enumerate(frame[names].to_dict("records")):
        rec = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        rec[id_column] = str(int(ids[i])) if isinstance(ids[i], int | np.integer) else str(ids[i])
        rec["as_of"] = str(as_of[i])
        out.append(rec)
    return out
