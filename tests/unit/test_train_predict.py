"""Reading rows to score: values parsed as the builder does, every bad value reported, nothing guessed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.predict import PredictError, prepare, read_input, rejected_path_for

FEATURES = [
    {"name": "rent", "kind": "numeric", "categories": None},
    {"name": "autopay", "kind": "numeric", "categories": None},
    {"name": "plan", "kind": "categorical", "categories": ["basic", "plus"]},
    {"name": "branch", "kind": "categorical", "categories": ["1", "2"]},
]


def test_missing_values_stay_missing_and_text_is_parsed_like_the_builder(tmp_path: Path) -> None:
    src = tmp_path / "rows.csv"
    src.write_text("id,rent,autopay,plan,branch\n"
                   "a,0.1000000000000000055511151231257827,true,basic,1\n"
                   "b,,FALSE, plus ,2.0\n"
                   "c, 12.5 ,,,\n"
                   "d,NA,1,basic,2\n")
    frame = read_input(src)
    values, report = prepare(frame, FEATURES)
    assert report.empty
    assert values["rent"].iloc[0] == float("0.1000000000000000055511151231257827")  # exact
    assert np.isnan(values["rent"].iloc[1]) and values["rent"].iloc[2] == 12.5 and np.isnan(values["rent"].iloc[3])
    assert list(values["autopay"].iloc[[0, 1, 3]]) == [1.0, 0.0, 1.0] and np.isnan(values["autopay"].iloc[2])
    assert list(values["plan"]) == ["basic", "plus", None, "basic"]
    assert list(values["branch"]) == ["1", "2", None, "2"]


def test_every_bad_value_is_reported_with_row_field_and_reason() -> None:
    frame = pd.DataFrame({
        "rent": ["1", "lots", "3", "inf", "5"],
        "autopay": [1, 0, 1, 1, 0],
        "plan": ["basic", "gold", "plus", "basic", "platinum"],
        "branch": [1, 2, 3.0, 2.0, None],
    })
    values, report = prepare(frame, FEATURES)
    got = {(r, f, reason.split(";")[0]) for r, f, _, reason in report.itertuples(index=False)}
    assert got == {(1, "rent", "not a number"), (3, "rent", "infinite value"), (1, "plan", "unknown category"),
                   (4, "plan", "unknown category"), (2, "branch", "unknown category")}
    assert list(report["row"]) == sorted(report["row"])
    assert "allowed: ['basic', 'plus']" in report.loc[report["field"] == "plan", "reason"].iloc[0]
    assert np.isnan(values["rent"].iloc[1]) and values["plan"].iloc[1] is None  # never silently kept


def test_missing_feature_columns_fail_naming_them() -> None:
    with pytest.raises(PredictError, match=r"missing required feature columns \['plan', 'branch'\]"):
        prepare(pd.DataFrame({"rent": [1.0], "autopay": [1]}), FEATURES)


def test_file_kinds_and_rejected_file_name(tmp_path: Path) -> None:
    with pytest.raises(PredictError, match="CSV"):
        read_input(tmp_path / "rows.xlsx")
    with pytest.raises(PredictError, match="does not exist"):
        read_input(tmp_path / "absent.csv")
    assert rejected_path_for(Path("/x/scores.csv")) == Path("/x/scores.rejected.csv")
    assert rejected_path_for(Path("/x/scores.parquet")) == Path("/x/scores.rejected.csv")
    assert rejected_path_for(Path("/x/scores.csv.gz")) == Path("/x/scores.rejected.csv")


def test_out_of_range_values_are_refused_like_the_api_refuses_them() -> None:
    """credit_score=99999 and debt_ratio=-7 got a 400 from the API but a score from `tenure predict`."""
    from pydantic import ValidationError

    from features.definitions import FEATURES_BY_NAME
    from serving.schemas import build_customer_model

    names = ["credit_score", "debt_ratio", "monthly_rent_total", "months_to_lease_end"]
    defs = [FEATURES_BY_NAME[n] for n in names]
    # the model's stored definitions carry no bounds here: the catalogue's are the rule
    features = [{"name": n, "kind": "numeric", "categories": None} for n in names]
    probes = {"credit_score": [99999, 300, 850, 299.5, 850.01, None],
              "debt_ratio": [-7, 0, 5, 5.5, 2.5, None],
              "monthly_rent_total": [1e12, 0, -0.01, 10, 3, None],
              "months_to_lease_end": [-120, -121, 120, 121, 0, None]}
    frame = pd.DataFrame({n: [None if v is None else str(v) for v in vs] for n, vs in probes.items()})
    _, report = prepare(frame, features)
    flagged = {(int(r), f) for r, f in zip(report["row"], report["field"], strict=True)}
    record = build_customer_model(defs)
    refused = set()
    for i in range(len(frame)):
        for n in names:
            try:
                record.model_validate({"customer_id": "C1", n: probes[n][i]})
            except ValidationError:
                refused.add((i, n))
    assert flagged == refused
    assert {(0, "credit_score"), (0, "debt_ratio")} <= flagged and (1, "credit_score") not in flagged
    reason = report.loc[(report["row"] == 0) & (report["field"] == "credit_score"), "reason"].item()
    assert reason.startswith("out of range: must be between 300 and 850")


def test_out_of_range_rows_stop_the_run_naming_file_row_and_column(tmp_path: Path) -> None:
    from training.predict import _format

    src = tmp_path / "rows.csv"
    src.write_text("customer_id,credit_score,debt_ratio\nC1,700,0.5\nC2,99999,0.5\nC3,700,-7\n")
    _, report = prepare(read_input(src), [{"name": "credit_score", "kind": "numeric", "categories": None},
                                          {"name": "debt_ratio", "kind": "numeric", "categories": None}])
    message = _format(report, str(src))
    assert message.startswith(f"{src}: 2 row(s)")
    assert "row 2: credit_score: out of range: must be between 300 and 850" in message
    assert "row 3: debt_ratio: out of range: must be between 0 and 5" in message and "(got '-7')" in message
