"""The request schema generated from the feature definitions, and the serving config."""

from __future__ import annotations

import json
import typing

import pytest
from pydantic import ValidationError

from configs import ConfigError
from configs.serve import (
    SERVE_CONFIG_ENV,
    SERVE_OVERRIDES_ENV,
    load_serve_config,
    serve_config_from_env,
)
from configs.settings import Settings
from features.definitions import FEATURES, FEATURES_BY_NAME
from features.schema import PERSONAL_DATA_COLUMNS
from models import load_spec, task_names
from serving.commands import server_command, server_environment
from serving.schemas import build_customer_model

Customer = build_customer_model(FEATURES)


def _errors(body: str | dict) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as err:
        if isinstance(body, str):
            Customer.model_validate_json(body)
        else:
            Customer.model_validate(body)
    return [(e["loc"], e["msg"]) for e in err.value.errors()]


def test_every_feature_is_an_optional_typed_bounded_field():
    fields = Customer.model_fields
    assert set(fields) == {"customer_id", "as_of"} | {f.name for f in FEATURES}
    assert fields["customer_id"].is_required()
    schema = Customer.model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["customer_id"]
    for f in FEATURES:
        assert not fields[f.name].is_required()
        prop = schema["properties"][f.name]
        options = [o for o in prop["anyOf"] if o.get("type") != "null"]
        assert len(options) == 1
        if f.kind == "categorical":
            assert options[0]["enum"] == list(f.categories)
        else:
            assert options[0]["type"] == "number"
            assert options[0].get("minimum") == f.min and options[0].get("maximum") == f.max
        assert f.description_zh in prop["description"]


def test_a_valid_customer_keeps_its_values_and_missing_ones_are_none():
    c = Customer.model_validate_json(json.dumps({"customer_id": "C-1", "as_of": "2025-03-01", "dpd_current": 45,
                                                 "industry": "retail", "credit_score": None}))
    assert (c.customer_id, str(c.as_of), c.dpd_current, c.industry, c.credit_score, c.debt_ratio) == (
        "C-1", "2025-03-01", 45.0, "retail", None, None)
    assert Customer.model_validate({"customer_id": 123}).customer_id == "123"


@pytest.mark.parametrize(("body", "field", "fragment"), [
    ('{"customer_id": "C", "nickname": "x"}', "nickname", "Extra inputs"),
    ('{"customer_id": "C", "credit_score": 200}', "credit_score", "greater than or equal to 300"),
    ('{"customer_id": "C", "debt_ratio": 6}', "debt_ratio", "less than or equal to 5"),
    ('{"customer_id": "C", "dpd_current": "45"}', "dpd_current", "valid number"),
    ('{"customer_id": "C", "dpd_current": true}', "dpd_current", "valid number"),
    ('{"customer_id": "C", "dpd_current": NaN}', "dpd_current", "finite number"),
    ('{"customer_id": "C", "tickets_6m": Infinity}', "tickets_6m", "finite number"),
    ('{"customer_id": "C", "tickets_6m": -Infinity}', "tickets_6m", "finite number"),
    ('{"customer_id": "C", "loyalty_points": 1e400}', "loyalty_points", "finite number"),
    ('{"customer_id": "C", "loyalty_points": 1' + "0" * 400 + "}", "loyalty_points", "finite number"),
    ('{"customer_id": "C", "dpd_current": {"value": 4}}', "dpd_current", "valid number"),
    ('{"customer_id": "C", "dpd_current": [4]}', "dpd_current", "valid number"),
    ('{"customer_id": "C", "industry": "mining"}', "industry", "'medical'"),
    ('{"customer_id": "C", "industry": 3}', "industry", "'medical'"),
    ('{"customer_id": "C", "as_of": "2025-13-01"}', "as_of", "valid date"),
    ('{"customer_id": "C", "as_of": 0}', "as_of", "date as text"),  # was 1970-01-01
    ('{"dpd_current": 4}', "customer_id", "Field required"),
    ('{"customer_id": ""}', "customer_id", "customer_id must be"),
    ('{"customer_id": "Zhang San"}', "customer_id", "customer_id must be"),
    ('{"customer_id": "a@b.com"}', "customer_id", "customer_id must be"),
    ('{"customer_id": true}', "customer_id", "customer_id must be"),
    ('{"customer_id": 1.5}', "customer_id", "customer_id must be"),
    ('{"customer_id": -3}', "customer_id", "customer_id must be"),
    ('{"customer_id": "' + "x" * 129 + '"}', "customer_id", "customer_id must be"),
    ('{"customer_id": {"id": 1}}', "customer_id", "customer_id must be"),
    ('{"customer_id": "C-1\\n"}', "customer_id", "customer_id must be"),  # `$` let a trailing line feed through
])
def test_bad_values_are_refused_naming_the_field(body, field, fragment):
    errors = _errors(body)
    assert errors[0][0] == (field,)
    assert fragment in errors[0][1]


@pytest.mark.parametrize("explain", ['"yes"', "0", "1", '"true"', "null"])
def test_explain_is_strictly_a_boolean(explain):
    from serving.schemas import build_batch_model

    batch = build_batch_model(Customer, 10)
    with pytest.raises(ValidationError) as info:
        batch.model_validate_json('{"customers": [{"customer_id": "C"}], "explain": ' + explain + "}")
    assert info.value.errors()[0]["loc"] == ("explain",)
    assert batch.model_validate_json('{"customers": [{"customer_id": "C"}], "explain": true}').explain is True


@pytest.mark.parametrize("personal", sorted(PERSONAL_DATA_COLUMNS))
def test_personal_data_is_refused_as_an_unknown_field(personal):
    assert _errors({"customer_id": "C", personal: "something"}) == [((personal,), "Extra inputs are not permitted")]


@pytest.mark.parametrize("body", ["", "nope", "[]", "[1, 2]", '"x"', "null", "{", '{"customer_id": "C",}'])
def test_bodies_that_are_not_a_json_object_are_refused(body):
    assert _errors(body)


def test_literal_annotations_are_generated_from_the_categories():
    ann = Customer.model_fields["credit_class"].annotation
    literal = next(a for a in typing.get_args(ann) if a is not type(None))
    assert typing.get_args(literal) == FEATURES_BY_NAME["credit_class"].categories


# ---- config -----------------------------------------------------------------------------------
def test_shipped_serve_config_is_valid():
    cfg = load_serve_config()
    assert cfg.tasks == list(task_names())  # `tasks: all`: every spec file
    assert {"default_risk", "churn", "upsell", "early_termination"} <= set(cfg.tasks)
    assert (cfg.alias, cfg.host, cfg.top_reasons, cfg.max_batch_size, cfg.api_key_env) == (
        "champion", "127.0.0.1", 3, 1000, "TENURE_API_KEY")
    assert all(load_spec(t).outcome_zh for t in cfg.tasks)


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"tasks": ["fraud"]}, "unknown tasks"),
    ({"tasks": []}, "tasks"),
    ({"tasks": ["churn", "churn"]}, "twice"),
    ({"top_reasons": 0}, "top_reasons"),
    ({"api_key_env": "MY KEY"}, "environment variable name"),
    ({"max_explained_batch_size": 5000}, "exceeds max_batch_size"),
    ({"workers": 0}, "workers"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_serve_config_names_the_field(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_serve_config(overrides=overrides)


def test_the_service_reads_its_config_from_the_environment(tmp_path):
    user = tmp_path / "serve.yaml"
    user.write_text("top_reasons: 5\nworkers: 3\n")
    cfg = serve_config_from_env({SERVE_CONFIG_ENV: str(user), SERVE_OVERRIDES_ENV: '{"workers": 4}'})
    assert (cfg.top_reasons, cfg.workers) == (5, 4)
    with pytest.raises(ConfigError, match=SERVE_OVERRIDES_ENV):
        serve_config_from_env({SERVE_OVERRIDES_ENV: "{not json"})


def test_server_environment_carries_resolved_settings(tmp_path):
    settings = Settings(home=tmp_path / "ws")
    env = server_environment(settings, None, {"workers": 3, "port": None}, base={"PATH": "/bin", SERVE_CONFIG_ENV: "x"})
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{(tmp_path / 'ws' / 'mlflow.db').resolve()}"
    assert env["TENURE_PREDICTION_LOG"] == str((tmp_path / "ws" / "predictions.db").resolve())
    assert json.loads(env[SERVE_OVERRIDES_ENV]) == {"workers": 3}
    assert SERVE_CONFIG_ENV not in env and env["PATH"] == "/bin"
    assert env["BENTOML_DO_NOT_TRACK"] == "True"
    assert server_command("127.0.0.1", 3001)[2:] == ["bentoml", "serve", "serving.service:Tenure", "--host",
                                                     "127.0.0.1", "--port", "3001"]


def test_request_records_are_what_the_service_accepts() -> None:
    """A scoring frame's rows as request records: NaN as null, the id as text, as_of the snapshot,
    group columns left out; each validates against the service's customer schema."""
    import numpy as np
    import pandas as pd

    from serving.schemas import request_records

    frame = pd.DataFrame({
        "customer_id": np.array([17, 4082], dtype=np.int64),
        "snapshot_date": pd.to_datetime(["2026-01-01", "2026-01-01"]),
        "complaints_6m": [2.0, np.nan],
        "industry": ["retail", None],
        "age_band": ["30-39", "40-49"],
        "city_tier": ["tier1", "tier2"],
    })
    records = request_records(frame)
    assert records == [
        {"complaints_6m": 2.0, "industry": "retail", "customer_id": "17", "as_of": "2026-01-01"},
        {"complaints_6m": None, "industry": None, "customer_id": "4082", "as_of": "2026-01-01"},
    ]
    model = build_customer_model(FEATURES)
    for rec in records:
        model.model_validate(rec)
