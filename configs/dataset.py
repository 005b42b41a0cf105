"""Config of a user's own table (`tenure features from-config`, later `tenure train --dataset-config`).

A dataset config is a small YAML file a user writes next to their CSV or Parquet extract: where
the table is, which column is the target and which value of it means 1, which columns identify
a row, carry time, are categories, must never be used, or are kept only for fairness audits.
See `configs/examples/own_table.yaml` for every key with comments.

This module reads the YAML only; the checks against the actual table (columns exist, the target
has two classes, ids are unique, ...) run when the feature set is built
(`features.own_data.featureset_from_frame`), because only then is the table read.

Decisions worth knowing:

- `categorical: null` (or `[]`) means inferred: text, `category` and mixed columns are
  categorical; booleans become numeric 0/1; integer columns stay numeric however few distinct
  values they have, unless listed in `categorical` (a code like `region_id: 1..5` must be
  listed, a count like `children: 0..4` must not).
- Column names that look like personal data (`PERSONAL_DATA_NAMES`, compared case-insensitively
  after turning spaces, dots and dashes into `_`) are dropped automatically and reported; other
  personal data must be listed in `drop`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from configs import ConfigError, StrictModel, format_validation_error, read_yaml

# Column names treated as personal data: dropped from every own-data feature set. Exact names
# after normalisation (lower case, runs of non-alphanumerics -> "_"), so that `phone_service`
# or `email_opens` (behaviour, not identity) stay usable while `Phone`, `E-mail` and
# `Customer Name` go.
PERSONAL_DATA_NAMES: frozenset[str] = frozenset({
    # names
    "name", "first_name", "last_name", "full_name", "surname", "given_name", "family_name",
    "customer_name", "client_name", "contact_name", "tenant_name",
    # phones
    "phone", "phone_number", "phone_no", "telephone", "telephone_number", "tel", "mobile",
    "mobile_phone", "mobile_number", "cell_phone", "cellphone",
    # national ids
    "national_id", "national_id_number", "id_number", "id_card", "id_card_number", "ssn",
    "social_security_number", "passport", "passport_number",
    # addresses
    "address", "street", "street_address", "home_address", "postal_address", "address_line_1",
    "address_line_2", "address1", "address2",
    # e-mail
    "email", "e_mail", "email_address",
})

_SAFE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"


def normalise_column_name(column: str) -> str:
    """`Customer Name` -> `customer_name`: the form personal-data names are compared in."""
    return re.sub(r"[^0-9a-z]+", "_", str(column).lower()).strip("_")


def is_personal_column(column: str) -> bool:
    return normalise_column_name(column) in PERSONAL_DATA_NAMES


class DatasetConfig(StrictModel):
    """One user table turned into one binary-classification feature set."""

    # the MLflow registered model name and the feature-set file name
    name: str = Field(pattern=_SAFE_NAME, max_length=100)
    # CSV (.csv, .csv.gz) or Parquet (.parquet, .pq); relative to the YAML file's folder
    path: Path
    target: str = Field(min_length=1)
    # the value of `target` meaning 1; compared robustly ("1" == 1, True == "true" == "Yes")
    positive_label: bool | int | str
    # unique per row (per row and time when `time_column` is set); null: a row number `row_id`
    id_column: str | None = None
    # dates; each distinct date becomes one snapshot (enables an out-of-time split)
    time_column: str | None = None
    # with `time_column`: how many months ahead the target looks (3 for "within the next 3
    # months"); the out-of-time split leaves that many months between training and the later
    # periods, whose labels were not known yet when they began. null: 1 month
    label_horizon_months: int | None = Field(default=None, ge=1, le=120)
    # null: inferred (see the module docstring); a list adds numeric columns as categories
    categorical: list[str] | None = None
    # columns never used (leakage, free text, personal data not caught by name)
    drop: list[str] = Field(default_factory=list)
    # kept in the feature set for fairness audits, never used as features
    group_columns: list[str] = Field(default_factory=list)
    description: str = ""

    # where the config was read from (None for configs built in code); used in messages
    _source: Path | None = PrivateAttr(default=None)

    @field_validator("drop", "group_columns", "categorical")
    @classmethod
    def _no_duplicates(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            dup = sorted({c for c in value if value.count(c) > 1})
            if dup:
                raise ValueError(f"lists {dup} more than once")
        return value

    @model_validator(mode="after")
    def _roles_do_not_clash(self) -> DatasetConfig:
        roles: dict[str, list[str]] = {}
        for role, cols in (("target", [self.target]), ("id_column", [self.id_column]),
                           ("time_column", [self.time_column]), ("categorical", self.categorical or []),
                           ("drop", self.drop), ("group_columns", self.group_columns)):
            for col in cols:
                if col is not None:
                    roles.setdefault(col, []).append(role)
        clashes = {c: r for c, r in roles.items() if len(r) > 1}
        if clashes:
            shown = "; ".join(f"{c!r} is in {' and '.join(r)}" for c, r in clashes.items())
            raise ValueError(f"a column can have only one role: {shown}")
        for field_name, col in (("id_column", self.id_column), *(("group_columns", g) for g in self.group_columns)):
            if col is not None and is_personal_column(col):
                raise ValueError(f"{field_name} {col!r} looks like personal data; use a pseudonymous "
                                 "key or a coarse band instead")
        if self.label_horizon_months is not None and self.time_column is None:
            raise ValueError("label_horizon_months needs a time_column: without dates the split is random "
                             "and has no gap to size")
        return self

    @property
    def source(self) -> Path | None:
        """The YAML file this config came from, if any."""
        return self._source

    @property
    def where(self) -> str:
        """How messages name this config: `dataset config <file>` or `dataset config <name>`."""
        return f"dataset config {self._source}" if self._source else f"dataset config {self.name!r}"

    def with_source(self, source: Path | None) -> DatasetConfig:
        self._source = source
        return self


def load_dataset_config(path: Path | str) -> DatasetConfig:
    """Read and validate a dataset config; `path` inside it resolves against the YAML's folder."""
    path = Path(path)
    raw: dict[str, Any] = read_yaml(path)
    try:
        cfg = DatasetConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"dataset config {path}")) from exc
    if not cfg.path.is_absolute():
        cfg.path = (path.parent / cfg.path).resolve()
    return cfg.with_source(path)
