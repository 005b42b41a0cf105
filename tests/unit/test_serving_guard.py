"""The request guard (ASGI middleware) in front of the service: API key, content type, body size."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from serving.guard import RequestGuard

KEY = "s3cret-key"


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A stand-in app that answers 200 with the body it received."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def call(guard: RequestGuard, path: str, headers: dict[str, str] | None = None, chunks: tuple[bytes, ...] = (b"{}",),
         method: str = "POST", declare_length: bool = True) -> tuple[int, bytes, dict[bytes, bytes]]:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if declare_length:
        raw.append((b"content-length", str(sum(map(len, chunks))).encode()))
    scope = {"type": "http", "method": method, "path": path, "headers": raw}
    pending = list(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            body = pending.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    start = sent[0]
    return start["status"], b"".join(m.get("body", b"") for m in sent[1:]), dict(start["headers"])


@pytest.fixture()
def guard() -> RequestGuard:
    return RequestGuard(echo, protected=("/score", "/model_info"), api_key=KEY, max_body_bytes=100)


def test_api_key_is_required_on_protected_paths_only(guard):
    status, body, headers = call(guard, "/score")
    assert status == 401 and headers[b"www-authenticate"] == b"Bearer"
    assert json.loads(body)["detail"][0]["loc"] == ["header", "X-API-Key"]
    assert call(guard, "/score", {"X-API-Key": "wrong"})[0] == 401
    assert call(guard, "/score", {"X-API-Key": KEY[:-1]})[0] == 401
    assert call(guard, "/score", {"Authorization": f"Basic {KEY}"})[0] == 401
    assert call(guard, "/score", {"X-API-Key": KEY})[0] == 200
    assert call(guard, "/score", {"Authorization": f"Bearer {KEY}"})[0] == 200
    assert call(guard, "/score", {"authorization": f"bearer {KEY}"})[0] == 200
    assert call(guard, "/model_info", method="GET", chunks=(b"",))[0] == 401
    assert call(guard, "/model_info", {"X-API-Key": KEY}, method="GET", chunks=(b"",))[0] == 200
    for open_path in ("/healthz", "/livez", "/readyz", "/docs.json", "/metrics"):
        assert call(guard, open_path, method="GET", chunks=(b"",))[0] == 200


def test_no_key_configured_means_open(guard):
    open_guard = RequestGuard(echo, protected=("/score",), api_key=None, max_body_bytes=100)
    assert call(open_guard, "/score")[0] == 200
    assert RequestGuard(echo, protected=("/score",), api_key="", max_body_bytes=100).api_key is None


def test_only_json_bodies_are_accepted(guard):
    ok = {"X-API-Key": KEY}
    assert call(guard, "/score", {**ok, "Content-Type": "application/json"})[0] == 200
    assert call(guard, "/score", {**ok, "Content-Type": "application/json; charset=utf-8"})[0] == 200
    for media in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                  "application/vnd.bentoml+pickle", "text/plain"):
        status, body, _ = call(guard, "/score", {**ok, "Content-Type": media})
        assert status == 415
        assert json.loads(body)["detail"][0]["loc"] == ["header", "Content-Type"]


def test_large_bodies_are_refused_before_parsing_and_small_ones_pass_intact(guard):
    ok = {"X-API-Key": KEY}
    status, body, _ = call(guard, "/score", ok, chunks=(b"x" * 101,))
    assert status == 413 and "100 bytes" in json.loads(body)["error"]
    status, _, _ = call(guard, "/score", ok, chunks=(b"x" * 60, b"y" * 60), declare_length=False)  # chunked
    assert status == 413
    status, body, _ = call(guard, "/score", ok, chunks=(b'{"a":', b" 1}"), declare_length=False)
    assert (status, body) == (200, b'{"a": 1}')
    status, body, _ = call(guard, "/score", ok, chunks=(b"z" * 100,))
    assert (status, body) == (200, b"z" * 100)
    assert call(guard, "/other", chunks=(b"x" * 500,))[0] == 200  # not a protected path: not its business


async def many_errors(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """BentoML's 400 for 10,000 unknown keys (its shape: pydantic's errors as `detail`)."""
    detail = [{"type": "extra_forbidden", "loc": [f"k{i}"], "msg": "Extra inputs are not permitted",
               "url": "https://errors.pydantic.dev/2/v/extra_forbidden"} for i in range(10_000)]
    body = json.dumps({"error": "10000 validation errors for CustomerRecord", "detail": detail}).encode()
    await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json"),
                                                                          (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def empty_loc(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """BentoML's 400 for a body it cannot parse as JSON (a number with too many digits): `loc` is empty."""
    body = json.dumps({"error": "1 validation error for CustomerRecord",
                       "detail": [{"type": "json_invalid", "loc": [], "msg": "Invalid JSON: number too large"}]})
    await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body.encode()})


def test_a_flood_of_validation_errors_gets_a_small_capped_answer():
    guard = RequestGuard(many_errors, protected=("/score",), api_key=None, max_body_bytes=10_000)
    status, body, headers = call(guard, "/score")
    assert status == 400
    assert len(body) < 5_000 and int(headers[b"content-length"]) == len(body)
    data = json.loads(body)
    assert len(data["detail"]) == 20 and "10000 problems" in data["error"]
    assert data["detail"][0] == {"loc": ["k0"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}


def test_an_error_without_a_location_is_located_at_the_body():
    guard = RequestGuard(empty_loc, protected=("/score",), api_key=None, max_body_bytes=10_000)
    status, body, _ = call(guard, "/score")
    assert status == 400
    assert json.loads(body)["detail"][0]["loc"] == ["body"]


def test_admin_paths_need_the_admin_key_and_are_closed_without_one():
    closed = RequestGuard(echo, protected=("/score",), api_key=KEY, max_body_bytes=100, admin=("/admin/reload",))
    assert call(closed, "/admin/reload", {"X-Admin-Key": "anything"})[0] == 403
    guard = RequestGuard(echo, protected=("/score",), api_key=KEY, max_body_bytes=100, admin=("/admin/reload",),
                         admin_key="adm1n")
    assert call(guard, "/admin/reload")[0] == 401
    assert call(guard, "/admin/reload", {"X-Admin-Key": KEY})[0] == 401  # the API key is not the admin key
    assert call(guard, "/admin/reload", {"X-Admin-Key": "adm1n"})[0] == 200
