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
