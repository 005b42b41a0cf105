"""Config of training (`tenure train`): split, CV, refit, LightGBM, Optuna search space, calibration, evaluation.

Defaults live in `configs/train.yaml`; `load_train_config` validates a user file and CLI flags on
top of them. The search space is data, not code: each entry names a LightGBM parameter and its
range, and bad entries (unknown parameter, `low >= high`, a log scale through zero) are rejected
on load with the file and the field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from configs import ShippedConfig, StrictModel, load_config

# LightGBM parameters a user may search over or fix (canonical names and common aliases).
TUNABLE_PARAMS: frozenset[str] = frozenset({
    "num_leaves", "learning_rate", "min_child_samples", "min_data_in_leaf", "min_child_weight",
    "min_sum_hessian_in_leaf", "feature_fraction", "colsample_bytree", "feature_fraction_bynode",
    "bagging_fraction", "subsample", "bagging_freq", "subsample_freq", "lambda_l1", "reg_alpha",
    "lambda_l2", "reg_lambda", "min_split_gain", "min_gain_to_split", "max_depth", "max_bin",
    "min_data_in_bin", "path_smooth", "cat_smooth", "cat_l2", "max_cat_threshold",
    "max_cat_to_onehot", "min_data_per_group", "extra_trees", "scale_pos_weight",
    "is_unbalance", "max_delta_step", "linear_lambda",
})

# LightGBM's own defaults of searchable parameters (a start point's missing values); a parameter
# not listed here must be given in every start point that searches it.
LIGHTGBM_DEFAULTS: dict[str, float] = {
    "num_leaves": 31, "learning_rate": 0.1, "min_child_samples": 20, "min_data_in_leaf": 20,
    "min_sum_hessian_in_leaf": 1e-3, "min_child_weight": 1e-3, "feature_fraction": 1.0, "colsample_bytree": 1.0,
    "feature_fraction_bynode": 1.0, "bagging_fraction": 1.0, "subsample": 1.0, "lambda_l1": 0.0, "reg_alpha": 0.0,
    "lambda_l2": 0.0, "reg_lambda": 0.0, "min_split_gain": 0.0, "min_gain_to_split": 0.0, "max_depth": -1,
    "path_smooth": 0.0, "cat_smooth": 10.0, "cat_l2": 10.0, "max_bin": 255, "min_data_in_bin": 3,
    "max_cat_threshold": 32, "max_cat_to_onehot": 4, "min_data_per_group": 100, "scale_pos_weight": 1.0,
    "max_delta_step": 0.0, "linear_lambda": 0.0,
}

# Set by Tenure itself (objective, reproducibility, constraints); never searched or overridden.
CONTROLLED_PARAMS: frozenset[str] = frozenset({
    "objective", "metric", "seed", "random_state", "num_threads", "n_jobs", "deterministic",
    "force_col_wise", "force_row_wise", "verbosity", "verbose", "monotone_constraints",
    "monotone_constraints_method", "num_iterations", "n_estimators", "num_boost_round",
    "early_stopping_rounds", "feature_pre_filter", "categorical_feature",
})


def _check_param_names(names: list[str], where: str) -> None:
    controlled = sorted(n for n in names if n in CONTROLLED_PARAMS)
    if controlled:
        raise ValueError(f"{where}: {controlled} are set by Tenure and cannot be changed here "
                         "(use seed, num_threads, lightgbm.n_estimators, ... instead)")
    unknown = sorted(n for n in names if n not in TUNABLE_PARAMS)
    if unknown:
        raise ValueError(f"{where}: unknown LightGBM parameter(s) {unknown}; "
                         f"allowed: {', '.join(sorted(TUNABLE_PARAMS))}")


class ParamRange(StrictModel):
    """One searched parameter: an int or float range (optionally log-scaled) or a list of choices."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    choices: list[bool | int | float | str] | None = None

    @model_validator(mode="after")
    def _check(self) -> ParamRange:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty `choices` list")
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("a categorical parameter takes `choices`, not low/high/log")
            return self
        if self.choices is not None:
            raise ValueError(f"an {self.type} parameter takes low/high, not `choices`")
        if self.low is None or self.high is None:
            raise ValueError(f"an {self.type} parameter needs both `low` and `high`")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("low and high must be finite numbers")
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be smaller than high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scaled range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("`step` cannot be combined with `log: true`")
        if self.type == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError(f"an int parameter needs integer bounds, got {self.low}..{self.high}")
        return self


# Every model below takes the keys left out from its mapping in configs/train.yaml (`yaml_path`):
# the defaults are written there only.

class SplitConfig(ShippedConfig):
    yaml_path = ("train", "split")

    kind: Literal["auto", "out_of_time", "random"]
    test_snapshots: int = Field(ge=1)
    # out of time: the snapshots in each cross-validation block
    valid_snapshots: int = Field(ge=1)
    gap_months: int | None = Field(ge=0, le=60)
    test_fraction: float = Field(gt=0, lt=1)


class CVConfig(ShippedConfig):
    yaml_path = ("train", "cv")

    # stratified folds (random split) and expanding-window folds (out of time)
    folds: int = Field(ge=2, le=20)
    time_folds: int = Field(ge=1, le=20)
    # the tuned model replaces the defaults when its CV mean AUC exceeds theirs plus this many
    # standard errors (negative: unless the defaults lead by more than that many)
    choose_margin_se: float = Field(ge=-5, le=5)


class LightGBMConfig(ShippedConfig):
    yaml_path = ("train", "lightgbm")

    n_estimators: int = Field(ge=1, le=100_000)
    early_stopping_rounds: int = Field(ge=1)
    monotone_constraints_method: Literal["basic", "intermediate", "advanced"]
    # boosting rounds of the refit: `mean` best iteration over the folds, `scaled` by the rows the
    # refit sees over the rows a fold trained on, `auto`: scaled for a random split, mean out of time
    refit_rounds: Literal["auto", "mean", "scaled"]
    params: dict[str, bool | int | float | str]

    @model_validator(mode="after")
    def _check(self) -> LightGBMConfig:
        _check_param_names(list(self.params), "params")
        return self


class PruningConfig(ShippedConfig):
    yaml_path = ("train", "tuning", "pruning")

    enabled: bool
    pruner: Literal["median", "hyperband"]
    startup_trials: int = Field(ge=0)
    # folds a trial finishes before it can be pruned (the pruner sees the running CV mean per fold)
    warmup_folds: int = Field(ge=0)


class TuningConfig(ShippedConfig):
    yaml_path = ("train", "tuning")

    n_trials: int | None = Field(gt=0)
    timeout_seconds: float | None = Field(gt=0)
    sampler_startup_trials: int = Field(ge=0)
    pruning: PruningConfig
    search_space: dict[str, ParamRange]
    # development sets with fewer rows than this search `small_search_space` instead
    small_table_rows: int = Field(ge=0)
    small_search_space: dict[str, ParamRange]
    # the first trials of a new study: LightGBM's defaults ({}) and other start points; a
    # parameter a point leaves out takes LightGBM's default, clipped into the searched range
    start_points: list[dict[str, bool | int | float | str]]
    # the tuned model averages the raw scores of this many best trials' models (1: the best alone),
    # never more than `ensemble_share` of the finished (complete or pruned) trials, at least one
    ensemble_size: int = Field(ge=1, le=50)
    ensemble_share: float = Field(gt=0, le=1)

    def ensemble_members(self, finished: int) -> int:
        """How many of the best trials the tuned model averages when `finished` trials ran."""
        return max(1, min(self.ensemble_size, int(finished * self.ensemble_share)))

    @model_validator(mode="after")
    def _check(self) -> TuningConfig:
        if self.n_trials is None and self.timeout_seconds is None:
            raise ValueError("set n_trials or timeout_seconds (or both): the search needs a budget")
        _check_param_names(list(self.search_space), "search_space")
        _check_param_names(list(self.small_search_space), "small_search_space")
        for i, point in enumerate(self.start_points):
            _check_param_names(list(point), f"start_points[{i}]")
        return self

    def is_small(self, rows: int) -> bool:
        """A development set of `rows` rows is a small table (smaller space, `small_table_threads`)."""
        return rows < self.small_table_rows

    def space_for(self, rows: int) -> dict[str, ParamRange]:
        """The search space for a development set of `rows` rows."""
        if self.is_small(rows) and self.small_search_space:
            return self.small_search_space
        return self.search_space


class CalibrationConfig(ShippedConfig):
    yaml_path = ("train", "calibration")

    methods: list[Literal["platt", "isotonic"]]
    # isotonic is a candidate only with at least this many out-of-fold rows (below it, its steps
    # make plateaus of equal probability that throw ranking away)
    isotonic_min_rows: int = Field(ge=0)
    # a calibration that lowers the out-of-fold ROC AUC by more than this is not used
    max_auc_loss: float = Field(ge=0)


class BlendConfig(ShippedConfig):
    yaml_path = ("train", "blend")

    enabled: bool
    # the linear part's weight is chosen out of fold among 0, weight_step, ..., 1
    weight_step: float = Field(gt=0, le=1)
    # inverse L2 strength of the logistic regression on standardised features (scikit-learn's C)
    c: float = Field(gt=0)
    # development sets with more rows than this are not blended
    max_rows: int = Field(ge=0)


class EvaluationConfig(ShippedConfig):
    yaml_path = ("train", "evaluation")

    ece_bins: int = Field(ge=2, le=100)
    top_fraction: float = Field(gt=0, lt=1)
    reference_max_rows: int = Field(ge=100)
    shap_rows: int = Field(ge=10)


class TrainConfig(ShippedConfig):
    yaml_path = ("train",)

    seed: int = Field(ge=0)
    num_threads: int = Field(ge=1, le=256)
    # LightGBM threads on development sets smaller than `tuning.small_table_rows`
    small_table_threads: int = Field(ge=1, le=256)
    split: SplitConfig
    cv: CVConfig
    # what the registered model is refitted on once the test metrics are recorded: non_test (every
    # development row), all (the test rows too), auto (all for own tables, non_test otherwise)
    refit: Literal["auto", "non_test", "all"]
    lightgbm: LightGBMConfig
    tuning: TuningConfig
    calibration: CalibrationConfig
    blend: BlendConfig
    evaluation: EvaluationConfig

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        both = sorted(set(self.lightgbm.params) & (set(self.tuning.search_space) | set(self.tuning.small_search_space)))
        if both:
            raise ValueError(f"{both} are both fixed in lightgbm.params and searched in "
                             "tuning.search_space; keep one")
        return self

    def for_rows(self, rows: int) -> TrainConfig:
        """This config with the LightGBM threads for a development set of `rows` rows."""
        threads = self.small_table_threads if self.tuning.is_small(rows) else self.num_threads
        return self if threads == self.num_threads else self.model_copy(update={"num_threads": threads})


def load_train_config(path: Path | str | None = None, *, trials: int | None = None,
                      timeout: float | None = None, seed: int | None = None) -> TrainConfig:
    """The training config: shipped defaults, then `path`, then CLI flags.

    `--trials` alone means "exactly this many trials": it also lifts the time budget, so a
    command-line run is reproducible; pass `--timeout` too to keep one.
    """
    overrides: dict[str, Any] = {"seed": seed}
    tuning: dict[str, Any] = {}
    if trials is not None:
        tuning["n_trials"] = trials
        if timeout is None:
            tuning["timeout_seconds"] = None
    if timeout is not None:
        tuning["timeout_seconds"] = timeout
    if tuning:
        overrides["tuning"] = tuning
    return load_config(TrainConfig, "train", path, overrides)
