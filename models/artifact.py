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
- `tenure_model.json`: features (definitions with categories), calibration, task spec, metadata.

Encoding: numeric features as float64 (missing -> NaN); categorical features as the index of the
value in the definition's `categories` (unknown or missing -> NaN, which LightGBM routes as
missing). Probabilities are `calibrate(raw_score)`; SHAP contributions are TreeSHAP on the raw
(log-odds) score via LightGBM's `pred_contrib`, so per row they sum with the base value to the
raw score.
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

ARTIFACT_VERSION = 1
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
class TenureModel:
    booster: Any  # lightgbm.Booster
    features: list[dict[str, Any]]
    calibration: Calibration = field(default_factory=Calibration)
    task_spec: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.feature_names: list[str] = [f["name"] for f in self.features]
        self._index = {n: i for i, n in enumerate(self.feature_names)}
        self._codes: dict[str, dict[str, float]] = {
            f["name"]: {str(c): float(i) for i, c in enumerate(f["categories"])}
            for f in self.features
            if f["kind"] == "categorical"
        }
        self.categorical_indices: list[int] = [self._index[n] for n in self._codes]

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
        return self.booster.predict(X, raw_score=True, num_threads=num_threads)

    def predict_proba(self, X: np.ndarray, num_threads: int = 0) -> np.ndarray:  # noqa: N803
        """Probability of the positive class, calibrated as chosen at training time."""
        return self.calibration(self.raw_score(X, num_threads=num_threads))

    def contributions(self, X: np.ndarray, num_threads: int = 0) -> np.ndarray:  # noqa: N803
        """TreeSHAP contributions on the raw score: (n, n_features + 1), last column the base value."""
        return self.booster.predict(X, pred_contrib=True, num_threads=num_threads)

    # ---- persistence ----------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / BOOSTER_FILE))
        payload = {
            "artifact_version": ARTIFACT_VERSION,
            "features": self.features,
            "calibration": self.calibration.to_dict(),
            "task_spec": self.task_spec,
            "meta": self.meta,
        }
        (directory / META_FILE).write_text(json.dumps(payload, indent=2, default=_json_default))
        return directory

    @classmethod
    def load(cls, directory: Path) -> TenureModel:
        import lightgbm as lgb

        directory = Path(directory)
        payload = json.loads((directory / META_FILE).read_text())
        if payload.get("artifact_version") != ARTIFACT_VERSION:
            raise TenureError(
                f"model artefact in {directory} has version {payload.get('artifact_version')}, "
                f"this Tenure reads version {ARTIFACT_VERSION}"
            )
        booster = lgb.Booster(model_file=str(directory / BOOSTER_FILE))
        return cls(
            booster=booster,
            features=payload["features"],
            calibration=Calibration(**payload["calibration"]),
            task_spec=payload["task_spec"],
            meta=payload["meta"],
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
