"""The trained model as one self-describing artefact: booster, input layout, category codes, calibration.

`TenureModel` is what training logs (inside one MLflow pyfunc model), what `tenure predict`
scores with, and what the BentoML service loads. The tensor layout (feature order) and the
category codes are fixed at training time and saved with the booster, so training and serving
cannot disagree.

Each logged model also carries a copy of this file as its code (`code/tenure_artifact.py`, see
`training/pyfunc_model.py`), so it imports only numpy, lightgbm and pandas (and Tenure's error
class when it is there).

On disk (a folder, logged as the pyfunc artefact `tenure_model`):
- `booster.txt`: LightGBM model (trained on the float matrix this class builds),
- `tenure_model.json`: features (definitions with categories), calibration, task spec, metadata,
  and the linear part when there is one (artefact version 2; version 1 has none).

Encoding: numeric features as float64 (missing -> NaN); categorical features as the index of the
value in the definition's `categories` (unknown or missing -> NaN, which LightGBM routes as
missing). Probabilities are `calibrate(raw_score)`; SHAP contributions are TreeSHAP on the raw
(log-odds) score via LightGBM's `pred_contrib`, so per row they sum with the base value to the
raw score.

A model may also carry a linear part (`LinearPart`: a logistic regression on the same encoded
row, chosen by training when it helps out of fold); the raw score is then
`(1 - weight) * trees + weight * linear`. The contributions blend the same way: the linear part's
exact SHAP values (each feature's term minus its training mean, the base its intercept plus those
means), so they still sum with the base value to the raw score.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

try:
    from configs import TenureError
except ImportError:  # a logged model's own copy of this file, loaded outside Tenure (training/pyfunc_model.py)
    class TenureError(Exception):  # type: ignore[no-redef]
        """Stands in for configs.TenureError where Tenure is not installed."""

if TYPE_CHECKING:  # pandas is only needed by the batch path; serving workers never import it
    import pandas as pd

ARTIFACT_VERSION = 2  # written when the model has a linear part; 1 (no linear part) otherwise
READABLE_VERSIONS = (1, 2)
BOOSTER_FILE = "booster.txt"
META_FILE = "tenure_model.json"


class ModelInputError(TenureError, ValueError):
    """Input rows that cannot be scored; `problems` lists (row, field, message)."""

    def __init__(self, problems: list[tuple[int, str, str]]):
        self.problems = problems
        shown = "; ".join(f"row {r}: {f}: {m}" for r, f, m in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{len(problems)} invalid values: {shown}{more}")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Calibration:
    """Maps the booster's raw score (log-odds) to a probability.

    `none`: sigmoid(raw); `platt`: sigmoid(a * raw + b); `isotonic`: a monotone step function
    of sigmoid(raw), stored as the fitted thresholds `x` and values `y` (linear between them).
    """

    method: str = "none"
    a: float = 1.0
    b: float = 0.0
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "none":
            return _sigmoid(raw)
        if self.method == "platt":
            return _sigmoid(self.a * raw + self.b)
        if self.method == "isotonic":
            return np.interp(_sigmoid(raw), self.x, self.y)
        raise ValueError(f"unknown calibration method {self.method!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": self.a, "b": self.b, "x": self.x, "y": self.y}


@dataclass
class LinearPart:
    """A logistic-regression score on the encoded row, blended into the trees' raw score.

    `terms` holds one entry per feature, in the model's feature order. Numeric:
    `coef * (clip(x, low, high) - mean) / scale`, a missing value counted as `fill` plus
    `missing_coef`. Categorical (x is the category's code): `coefs[code]`, `missing_coef` for a
    missing or unknown value. Each term's `centre` is its mean over the training rows: a feature's
    SHAP value is its term minus its centre, and the base value is `intercept` plus the centres.
    """

    weight: float
    intercept: float
    terms: list[dict[str, Any]]

    def __post_init__(self) -> None:
        num = [(i, t) for i, t in enumerate(self.terms) if t["kind"] == "numeric"]
        self._num = np.array([i for i, _ in num], dtype=np.int64)
        col = {k: np.array([t[k] for _, t in num], dtype=np.float64)
               for k in ("low", "high", "fill", "mean", "scale", "coef", "missing_coef")}
        self._low, self._high, self._fill = col["low"], col["high"], col["fill"]
        self._mean, self._scale, self._coef, self._missing = col["mean"], col["scale"], col["coef"], col["missing_coef"]
        # categorical lookup tables: the codes' coefficients, then the missing/unknown one
        self._cat = [(i, np.array([*t["coefs"], t["missing_coef"]], dtype=np.float64))
                     for i, t in enumerate(self.terms) if t["kind"] == "categorical"]
        self._centre = np.array([t["centre"] for t in self.terms], dtype=np.float64)

    def terms_of(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Each feature's term for each row of the encoded matrix, (n, n_features), centres not removed."""
        X = np.asarray(X, dtype=np.float64)  # noqa: N806
        out = np.zeros(X.shape, dtype=np.float64)
        if len(self._num):
            vals = X[:, self._num]
            missing = ~np.isfinite(vals)
            filled = np.clip(np.where(missing, self._fill, vals), self._low, self._high)
            out[:, self._num] = self._coef * (filled - self._mean) / self._scale + missing * self._missing
        for i, table in self._cat:
            codes = X[:, i]
            known = np.isfinite(codes) & (codes >= 0) & (codes < len(table) - 1)
            out[:, i] = table[np.where(known, codes, len(table) - 1).astype(np.int64)]
        return out

    def raw_score(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.intercept + self.terms_of(X).sum(axis=1)

    def contributions(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Exact SHAP values of the linear score: (n, n_features + 1), last column the base value."""
        terms = self.terms_of(X) - self._centre
        base = np.full((len(terms), 1), self.intercept + float(self._centre.sum()))
        return np.hstack([terms, base])

    def blend(self, trees: np.ndarray, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """The model's raw score from the trees' raw score of the same rows."""
        return (1.0 - self.weight) * np.asarray(trees) + self.weight * self.raw_score(X)

    def blend_contributions(self, trees: np.ndarray, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """The model's contributions from the trees' (TreeSHAP, base value last) of the same rows."""
        return (1.0 - self.weight) * np.asarray(trees) + self.weight * self.contributions(X)

    def to_dict(self) -> dict[str, Any]:
        return {"weight": self.weight, "intercept": self.intercept, "terms": self.terms}


@dataclass
class TenureModel:
    booster: Any  # lightgbm.Booster
    features: list[dict[str, Any]]
    calibration: Calibration = field(default_factory=Calibration)
    task_spec: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    linear: LinearPart | None = None  # blended into the booster's raw score when set

    def __post_init__(self) -> None:
        self.feature_names: list[str] = [f["name"] for f in self.features]
        self._index = {n: i for i, n in enumerate(self.feature_names)}
        self._codes: dict[str, dict[str, float]] = {
            f["name"]: {str(c): float(i) for i, c in enumerate(f["categories"])}
            for f in self.features
            if f["kind"] == "categorical"
        }
        self.categorical_indices: list[int] = [self._index[n] for n in self._codes]
        if self.linear is not None:
            terms = [t.get("kind") for t in self.linear.terms]
            kinds = [f["kind"] for f in self.features]
            if terms != kinds:
                raise TenureError(f"the model's linear part has terms {terms} for features of kinds {kinds}")
            for f, t in zip(self.features, self.linear.terms, strict=True):
                if f["kind"] == "categorical" and len(t["coefs"]) != len(f["categories"]):
                    raise TenureError(f"the model's linear part has {len(t['coefs'])} coefficients for "
                                      f"{f['name']!r}, which has {len(f['categories'])} categories")

    # ---- encoding -------------------------------------------------------------------------
    def encode_record(self, record: Mapping[str, Any]) -> np.ndarray:
        """One row as a (1, n_features) float matrix; keys not in the model are ignored.

        The fast path of serving: no pandas. Values must already be validated (numbers are
        numbers, categories are strings); unknown categories and missing values become NaN.
        """
        row = np.full((1, len(self.feature_names)), np.nan)
        codes = self._codes
        for i, name in enumerate(self.feature_names):
            value = record.get(name)
            if value is None:
                continue
            mapping = codes.get(name)
            if mapping is not None:
                row[0, i] = mapping.get(str(value), np.nan)
            else:
                row[0, i] = float(value)
        return row

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if not records:
            return np.empty((0, len(self.feature_names)))
        return np.vstack([self.encode_record(r) for r in records])

    def encode_frame(self, frame: pd.DataFrame, *, strict: bool = True) -> np.ndarray:
        """A frame's feature columns as the model's float matrix.

        With `strict`, a missing feature column or a value that is neither a number (numeric
        features) nor a known category raises `ModelInputError` listing every bad row and field;
        otherwise such values become NaN.
        """
        import pandas as pd

        missing = [n for n in self.feature_names if n not in frame.columns]
        if missing:
            raise ModelInputError([(-1, n, "column is missing") for n in missing])
        out = np.empty((len(frame), len(self.feature_names)))
        problems: list[tuple[int, str, str]] = []
        for i, name in enumerate(self.feature_names):
            col = frame[name]
            if name in self._codes:
                as_str = col.astype("object").where(col.notna(), None)
                coded = as_str.map(lambda v, m=self._codes[name]: np.nan if v is None else m.get(str(v), -1.0))
                vals = coded.to_numpy(dtype=np.float64)
                bad = vals == -1.0
                if strict and bad.any():
                    cats = list(self._codes[name])
                    for r in np.flatnonzero(bad)[:50]:
                        problems.append((int(r), name, f"unknown category {col.iloc[r]!r}; allowed {cats}"))
                vals[bad] = np.nan
            else:
                vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
                bad = np.isnan(vals) & col.notna().to_numpy()
                if strict and bad.any():
                    for r in np.flatnonzero(bad)[:50]:
                        problems.append((int(r), name, f"not a number: {col.iloc[r]!r}"))
                infinite = np.isinf(vals)
                if strict and infinite.any():
                    for r in np.flatnonzero(infinite)[:50]:
                        problems.append((int(r), name, "infinite value"))
                vals[infinite] = np.nan
            out[:, i] = vals
        if problems:
            raise ModelInputError(problems)
        return out

    # ---- scoring --------------------------------------------------------------------------
    def raw_score(self, X: np.ndarray, num_threads: int = 0) -> np.ndarray:  # noqa: N803
        trees = self.booster.predict(X, raw_score=True, num_threads=num_threads)
        return trees if self.linear is None else self.linear.blend(trees, X)

    def predict_proba(self, X: np.ndarray, num_threads: int = 0) -> np.ndarray:  # noqa: N803
        """Probability of the positive class, calibrated as chosen at training time."""
        return self.calibration(self.raw_score(X, num_threads=num_threads))

    def contributions(self, X: np.ndarray, num_threads: int = 0) -> np.ndarray:  # noqa: N803
        """SHAP contributions on the raw score: (n, n_features + 1), last column the base value
        (TreeSHAP of the booster, blended with the linear part's exact values when there is one)."""
        trees = self.booster.predict(X, pred_contrib=True, num_threads=num_threads)
        return trees if self.linear is None else self.linear.blend_contributions(trees, X)

    # ---- persistence ----------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / BOOSTER_FILE))
        payload = {
            "artifact_version": ARTIFACT_VERSION if self.linear is not None else 1,
            "features": self.features,
            "calibration": self.calibration.to_dict(),
            "task_spec": self.task_spec,
            "meta": self.meta,
        }
        if self.linear is not None:
            payload["linear"] = self.linear.to_dict()
        (directory / META_FILE).write_text(json.dumps(payload, indent=2, default=_json_default))
        return directory

    @classmethod
    def load(cls, directory: Path) -> TenureModel:
        import lightgbm as lgb

        directory = Path(directory)
        payload = json.loads((directory / META_FILE).read_text())
        if payload.get("artifact_version") not in READABLE_VERSIONS:
            raise TenureError(
                f"model artefact in {directory} has version {payload.get('artifact_version')}, "
                f"this Tenure reads versions {', '.join(map(str, READABLE_VERSIONS))}"
            )
        booster = lgb.Booster(model_file=str(directory / BOOSTER_FILE))
        try:
            linear = LinearPart(**payload["linear"]) if payload.get("linear") else None
        except (KeyError, TypeError, ValueError) as exc:
            raise TenureError(f"model artefact in {directory}: its linear part is malformed ({exc!r})") from exc
        return cls(
            booster=booster,
            features=payload["features"],
            calibration=Calibration(**payload["calibration"]),
            task_spec=payload["task_spec"],
            meta=payload["meta"],
            linear=linear,
        )


def _json_default(value: Any) -> Any:
    import pandas as pd

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp | Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
