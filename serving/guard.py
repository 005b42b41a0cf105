"""The service's front door (ASGI middleware): API key, content type and body size, before parsing.

On the protected paths (scoring and model info; health, metrics and docs stay open):
- when an API key is configured, a request without the right key (`X-API-Key: <key>` or
  `Authorization: Bearer <key>`, compared in constant time) gets 401;
- a POST body must be JSON (`Content-Type: application/json`, or none): anything else gets 415,
  because BentoML would otherwise parse forms and multipart bodies its own way;
- a body larger than the limit gets 413 before it is parsed (declared `Content-Length` or counted
  while reading a chunked body); the body is then handed on unchanged.
Errors have the service's error shape: `{"error": ..., "detail": [{"loc", "msg", "type"}]}`.
Reads and writes nothing.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_TYPES = (b"", b"application/json")


def error_body(message: str, loc: list[Any] | None = None, kind: str = "error") -> bytes:
    detail = [{"loc": loc, "msg": message, "type": kind}] if loc is not None else []
    return json.dumps({"error": message, "detail": detail}).encode()


class RequestGuard:
    """Checks API key, content type and body size on `protected` paths; passes everything else through."""

    def __init__(self, app: ASGIApp, *, protected: Iterable[str], api_key: str | None, max_body_bytes: int):
        self.app = app
        self.protected = frozenset(protected)
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = int(max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.protected:
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers") or []:
            headers.setdefault(name.lower(), value)
        if self.api_key is not None and not self._authorized(headers):
            await _respond(send, 401, error_body(
                "missing or wrong API key: send it in the X-API-Key header (or Authorization: Bearer <key>)",
                ["header", "X-API-Key"], "unauthorized"), [(b"www-authenticate", b"Bearer")])
            return
        if scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if media not in JSON_TYPES:
            shown = media.decode("latin-1")
            await _respond(send, 415, error_body(
                f"Content-Type {shown!r} is not supported: send the body as JSON with Content-Type: application/json",
                ["header", "Content-Type"], "unsupported_media_type"))
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        assert self.api_key is not None
        given = headers.get(b"x-api-key")
        if given is None:
            auth = headers.get(b"authorization", b"")
            scheme, _, token = auth.partition(b" ")
            if scheme.lower() == b"bearer":
                given = token.strip()
        return given is not None and hmac.compare_digest(given, self.api_key)

    async def _too_large(self, send: Send) -> None:
        await _respond(send, 413, error_body(f"request body is larger than {self.max_body_bytes} bytes; send fewer "
                                             "customers per request", ["body"], "too_large"))


async def _respond(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})
