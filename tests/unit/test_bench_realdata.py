"""`benchmarks.bench_realdata.summarise`: the pass criteria per table and on the mean, and the paired
difference to the Optuna reference over the same (table, seed) runs."""

from __future__ import annotations

import math

import pytest

from benchmarks.bench_realdata import markdown, summarise


def _row(table: str, seed: int, lr: float, lgbm: float, optuna: float, tenure: float) -> dict:
    return {"table": table, "seed": seed, "train_rows": 1000, "positive_rate": 0.1, "logistic_regression": lr,
            "default_lightgbm": lgbm, "optuna_cv5": optuna, "optuna_seconds": 10.0, "tenure": tenure,
            "tenure_info": {"train_seconds": 5.0, "chosen": "tuned", "calibration": "none", "cv_auc": 0.8,
                            "trials": 25}, "load_average": [1.0, 1.0, 1.0]}


ROWS = [_row("a", 0, 0.80, 0.79, 0.82, 0.83), _row("b", 0, 0.70, 0.72, 0.74, 0.73),
        _row("a", 1, 0.81, 0.80, 0.83, 0.81), _row("b", 1, 0.71, 0.73, 0.75, 0.71)]


def test_the_criteria_are_judged_on_the_means_over_seeds() -> None:
    s = summarise(ROWS)
    # a: Tenure 0.82 against max(LR 0.805, LGBM 0.795) - 0.005; b: 0.72 against max(0.705, 0.725) - 0.005
    assert s["tables"]["a"]["passes"] and s["tables"]["a"]["bar"] == pytest.approx(0.80)
    assert s["tables"]["b"]["passes"] and s["tables"]["b"]["bar"] == pytest.approx(0.72)
    assert s["mean_tenure"] == pytest.approx(0.77) and s["mean_optuna_cv5"] == pytest.approx(0.785)
    assert not s["mean_at_least_optuna"] and s["every_table_passes"]


def test_the_paired_difference_counts_wins_and_its_standard_error() -> None:
    pair = summarise(ROWS)["paired"]
    diffs = [0.01, -0.01, -0.02, -0.04]
    mean = sum(diffs) / 4
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 3)
    assert pair["runs"] == 4 and pair["mean_difference"] == pytest.approx(mean, abs=1e-4)
    assert pair["se"] == pytest.approx(sd / 2, abs=1e-4)
    assert (pair["tenure_better"], pair["optuna_better"]) == (1, 3)
    per_seed = summarise(ROWS)["per_seed"]
    assert per_seed[0] == {"tenure": 0.78, "optuna_cv5": 0.78, "tables": 2}
    assert per_seed[1]["tenure"] == pytest.approx(0.76)


def test_without_the_reference_there_is_no_paired_line() -> None:
    rows = [{**r, "optuna_cv5": float("nan")} for r in ROWS]
    s = summarise(rows)
    assert s["paired"] == {"runs": 0}
    assert "Paired on the same runs" not in markdown(s, rows, 4, 4)
    assert "Paired on the same runs, Tenure minus the Optuna reference: -0.0150" in markdown(
        summarise(ROWS), ROWS, 4, 4)
