"""The service's front door (ASGI middleware): API key, content type and body size, before parsing.

On the protected paths (scoring and model info; health, metrics and docs stay open):
- when an API key is configured, a request without the right key (`X-API-Key: <key>` or
  `Authorization: Bearer <key>`, compared in constant time) gets 401;
- a POST body must be JSON (`Content-Type: application/json`, or none): anything else gets 415,
  because BentoML would otherwise parse forms and multipart bodies its own way;
- a body larger than the limit gets 413 before it is parsed (declared `Content-Length` or counted
  while reading a chunked body); the body is then handed on unchanged.
- `admin` paths (POST /admin/reload) need the admin key (`X-Admin-Key`), and answer 403 when no
  admin key is configured;
- a 400 answer (BentoML's validation errors) is pinned to the documented shape and capped: at most
  `MAX_ERRORS` problems of `{"loc", "msg", "type"}` (a `loc` is never empty: a body that is not
  valid JSON, such as a number with too many digits, is `["body"]`), each message shortened, so
  10,000 unknown keys give a small answer naming the first ones and the count.
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
MAX_ERRORS = 20
MAX_MESSAGE_CHARS = 300


def cap_validation_body(body: bytes) -> bytes:
    """BentoML's 400 body `{"error", "detail": [pydantic errors]}` in the service's pinned shape, capped."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    errors = data.get("detail") if isinstance(data, dict) else None
    message = str(data.get("error") or "invalid request") if isinstance(data, dict) else "invalid request"
    if not isinstance(errors, list) or not errors:
        return error_body(message[:MAX_MESSAGE_CHARS], ["body"], "invalid")
    detail = []
    for err in errors[:MAX_ERRORS]:
        err = err if isinstance(err, dict) else {"msg": str(err)}
        loc = [x if isinstance(x, int | str) else str(x) for x in (err.get("loc") or [])] or ["body"]
        detail.append({"loc": loc, "msg": str(err.get("msg", ""))[:MAX_MESSAGE_CHARS],
                       "type": str(err.get("type", "invalid"))})
    error = message[:MAX_MESSAGE_CHARS]
    if len(errors) > MAX_ERRORS:
        error += f" ({len(errors)} problems; the first {MAX_ERRORS} are listed)"
    return json.dumps({"error": error, "detail": detail}).encode()


def error_body(message: str, loc: list[Any] | None = None, kind: str = "error") -> bytes:
    detail = [{"loc": loc, "msg": message, "type": kind}] if loc is not None else []
    return json.dumps({"error": message, "detail": detail}).encode()


class RequestGuard:
    """Checks API key, content type and body size on `protected` paths; passes everything else through."""

    def __init__(self, app: ASGIApp, *, protected: Iterable[str], api_key: str | None, max_body_bytes: int,
                 admin: Iterable[str] = (), admin_key: str | None = None):
        self.app = app
        self.protected = frozenset(protected)
        self.admin = frozenset(admin)
        self.api_key = api_key.encode() if api_key else None
        self.admin_key = admin_key.encode() if admin_key else None
        self.max_body_bytes = int(max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or (path not in self.protected and path not in self.admin):
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers") or []:
            headers.setdefault(name.lower(), value)
        if path in self.admin:
            await self._admin(scope, receive, send, headers)
            return
        send = _pinned_errors(send)
        if self.api_key is not None and not self._authorized(headers):
            await respond(send, 401, error_body(
                "missing or wrong API key: send it in the X-API-Key header (or Authorization: Bearer <key>)",
                ["header", "X-API-Key"], "unauthorized"), [(b"www-authenticate", b"Bearer")])
            return
        if scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if media not in JSON_TYPES:
            shown = media.decode("latin-1")
            await respond(send, 415, error_body(
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

    async def _admin(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        if self.admin_key is None:
            await respond(send, 403, error_body("the admin endpoints are disabled: set the admin key's environment "
                                                 "variable (reload.admin_key_env, default TENURE_ADMIN_KEY) and "
                                                 "restart", ["header", "X-Admin-Key"], "forbidden"))
            return
        given = headers.get(b"x-admin-key")
        if given is None or not hmac.compare_digest(given, self.admin_key):
            await respond(send, 401, error_body("missing or wrong admin key: send it in the X-Admin-Key header",
                                                 ["header", "X-Admin-Key"], "unauthorized"))
            return
        await self.app(scope, receive, send)

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
        await respond(send, 413, error_body(f"request body is larger than {self.max_body_bytes} bytes; send fewer "
                                             "customers per request", ["body"], "too_large"))


async def respond(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


def _pinned_errors(send: Send) -> Send:
    """`send` that rewrites a 400 answer's body with `cap_validation_body` (other answers pass untouched)."""
    state: dict[str, Any] = {"start": None, "body": bytearray()}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            if message.get("status") == 400:
                state["start"] = message
                return
            await send(message)
            return
        if message["type"] == "http.response.body" and state["start"] is not None:
            state["body"] += message.get("body", b"")
            if message.get("more_body", False):
                return
            body = cap_validation_body(bytes(state["body"]))
            start = state["start"]
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length",
                                                                                       b"content-type")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return wrapped
