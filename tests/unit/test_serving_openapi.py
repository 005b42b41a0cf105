"""The published OpenAPI document (`serving.openapi`): what `conform` fixes, and how the middleware
answers when the document cannot be built."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from serving.openapi import OpenAPIDocument, _nullable, conform


def test_a_nullable_enum_also_lists_null_when_bentoml_gives_an_any_of() -> None:
    # pydantic's Optional[Literal[...]] = None, as BentoML passes it on
    field = {"anyOf": [{"enum": ["short_term", "long_term"], "type": "string"}, {"type": "null"}], "default": None}
    assert _nullable(field) == {"enum": ["short_term", "long_term", None], "type": "string", "default": None,
                                "nullable": True}
    typed = {"type": "string", "enum": ["a"], "default": None}
    assert _nullable(typed)["enum"] == ["a", None]
    assert _nullable({"type": "string", "enum": ["a"]}) == {"type": "string", "enum": ["a"]}  # required: no null


def test_an_inlined_request_body_keeps_both_forms_of_customer_id() -> None:
    ref = {"anyOf": [{"type": "string", "pattern": "^[A-Za-z0-9]+$"}, {"type": "integer", "minimum": 0}]}
    spec = {"components": {"schemas": {"CustomerRecord": {"type": "object", "properties": {"customer_id": ref}}}},
            "paths": {"/score": {"post": {"requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "title": "CustomerRecord",  # BentoML inlines the model under its title
                "properties": {"customer_id": {"type": "string", "pattern": "^[A-Za-z0-9]+$"}}}}}},
                "responses": {"200": {"description": "ok"}}}}}}
    out = conform(spec, scoring_paths=("/score",), admin_path=None)
    body = out["paths"]["/score"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"]["properties"]["customer_id"] == ref


def _get(app: OpenAPIDocument) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "path": "/docs.json", "method": "GET"}, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_a_document_that_cannot_be_built_is_a_logged_500_at_once_and_the_next_request_tries_again(
        caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def build() -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:  # what a half-imported module did to BentoML's generator
            raise AttributeError("partially initialized module 'fastapi' has no attribute 'FastAPI'")
        return {"openapi": "3.0.2"}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("GET /docs.json must not reach the service")

    app = OpenAPIDocument(inner, build=build)
    with caplog.at_level(logging.ERROR, logger="bentoml.serve.tenure"):
        status, body = _get(app)
    assert status == 500 and "could not be built" in body["error"]
    assert "partially initialized module" in caplog.text
    assert _get(app) == (200, {"openapi": "3.0.2"})
    assert _get(app) == (200, {"openapi": "3.0.2"}) and len(calls) == 2  # built once, then served from memory
