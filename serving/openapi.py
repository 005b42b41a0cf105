"""The OpenAPI document the service publishes at /docs.json, made to match what it answers.

BentoML generates the document from the API signatures; `conform` then fixes where the service
answers differently (checked by Schemathesis in the test suite):
- every 4xx/5xx answer has the service's error shape `ErrorResponse` (`detail` is a list of
  `{loc, msg, type}`, as the guard sends it), not BentoML's string;
- fields that may be null (`as_of: null`, a missing feature) are `nullable: true` (OpenAPI 3.0
  has no null type; BentoML drops JSON Schema's `{"type": "null"}` alternative);
- request bodies of the scoring endpoints are required, and an inlined one keeps its fields'
  alternatives (`customer_id`: text or a non-negative integer), which BentoML cuts to the first;
- `GET /model_info` and `POST /admin/reload` are documented.
`OpenAPIDocument` is the ASGI middleware answering GET /docs.json with the fixed document (built once).
Reads and writes nothing.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from typing import Any

from serving.guard import ASGIApp, Receive, Scope, Send, error_body, respond

logger = logging.getLogger("bentoml.serve.tenure")

ERROR_SCHEMA: dict[str, Any] = {
    "title": "ErrorResponse",
    "type": "object",
    "description": "The body of every error the service answers.",
    "properties": {
        "error": {"type": "string", "description": "What went wrong, in one line."},
        "detail": {"type": "array", "description": "The problems, at most 20, each with where it is.",
                   "items": {"type": "object", "properties": {
                       "loc": {"type": "array", "minItems": 1, "items": {"anyOf": [{"type": "string"},
                                                                                  {"type": "integer"}]}},
                       "msg": {"type": "string"},
                       "type": {"type": "string"}}, "required": ["loc", "msg", "type"]}},
    },
    "required": ["error"],
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
ERROR_STATUSES = {"400": "Invalid input (the detail names each problem)", "401": "Missing or wrong key",
                  "403": "Admin endpoints disabled", "404": "Not found", "405": "Method not allowed",
                  "413": "Request body too large", "415": "Unsupported content type",
                  "500": "Unexpected server error", "503": "Prediction log unavailable, or not ready",
                  "504": "Timed out"}


def _error_responses(statuses: tuple[str, ...]) -> dict[str, Any]:
    return {code: {"description": ERROR_STATUSES[code], "content": {"application/json": {"schema": _ERROR_REF}}}
            for code in statuses}


def _nullable(node: Any) -> Any:
    """`anyOf: [X, {type: null}]` -> X with `nullable: true` (OpenAPI 3.0 has no null type), recursively."""
    if isinstance(node, list):
        return [_nullable(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and any(o == {"type": "null"} for o in options):
            rest = [o for o in options if o != {"type": "null"}]
            del node[key]
            merged = {**rest[0], **node} if len(rest) == 1 else {**node, key: rest}
            merged["nullable"] = True
            node = merged
    if "default" in node and node["default"] is None and ("type" in node or "$ref" in node or "allOf" in node):
        node["nullable"] = True  # BentoML drops the null alternative of an optional field; it is sent as null
    # after the merge above, so that `anyOf: [{enum}, {type: null}]` gets null in its enum too
    if node.get("nullable") and isinstance(node.get("enum"), list) and None not in node["enum"]:
        node["enum"] = [*node["enum"], None]  # an enum is checked before `nullable` by JSON Schema validators
    return node


def _restore_inlined_fields(body: dict[str, Any], components: dict[str, Any]) -> None:
    """BentoML inlines a request body's model and keeps only the first alternative of each field's
    `anyOf` (for `customer_id` the text form, though the service also takes a non-negative
    integer): give every field of an inlined body the definition in the component of its title."""
    for content in (body.get("content") or {}).values():
        schema = content.get("schema") or {}
        fields = (components.get(schema.get("title")) or {}).get("properties")
        props = schema.get("properties")
        if isinstance(props, dict) and isinstance(fields, dict):
            for name in props.keys() & fields.keys():
                props[name] = copy.deepcopy(fields[name])


def conform(spec: dict[str, Any], *, scoring_paths: tuple[str, ...], model_info_schema: str = "ModelInfoResponse",
            admin_path: str | None = "/admin/reload") -> dict[str, Any]:
    """The BentoML document `spec` fixed to what the service answers (see the module docstring)."""
    spec = copy.deepcopy(spec)
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorResponse"] = ERROR_SCHEMA
    paths = spec.setdefault("paths", {})
    for path, item in paths.items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            for code in [c for c in responses if str(c)[0] in "45"]:
                del responses[code]
            statuses = ("400", "401", "404", "413", "415", "500", "503", "504") if path in scoring_paths else ("500",)
            if path == "/model_info":  # POST reads (and validates) a body, GET does not
                statuses = ("400", "401", "413", "415", "500") if method == "post" else ("401", "500")
            responses.update(_error_responses(statuses))
            body = op.get("requestBody")
            if isinstance(body, dict) and path in scoring_paths:
                body["required"] = True
                _restore_inlined_fields(body, components)
    if "/model_info" in paths and "post" in paths["/model_info"]:
        post = paths["/model_info"]["post"]
        get = {k: copy.deepcopy(v) for k, v in post.items() if k != "requestBody"}
        get["operationId"] = f"{post.get('operationId', 'model_info')}_get"
        get["responses"] = {c: r for c, r in get["responses"].items() if str(c) in ("200", "401", "500")}
        paths["/model_info"]["get"] = get
    if admin_path:
        paths[admin_path] = {"post": {
            "tags": ["Infrastructure"], "operationId": "admin_reload",
            "description": "Check the registry now: load, check and swap every model whose alias moved, and wait "
                           "until every worker serves the result. Needs the admin key (X-Admin-Key); 403 when "
                           "none is configured.",
            "responses": {"200": {"description": "What every worker serves now",
                                  "content": {"application/json": {"schema": {"type": "object"}}}},
                          **_error_responses(("401", "403", "500", "503"))}}}
    spec["components"]["schemas"] = _nullable(components)
    spec["paths"] = _nullable(paths)
    return spec


class OpenAPIDocument:
    """Answers GET /docs.json with `build()` (called once); everything else passes through."""

    def __init__(self, app: ASGIApp, *, build: Callable[[], dict[str, Any]]):
        self.app = app
        self.build = build
        self._body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/docs.json" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if self._body is None:
            try:
                self._body = json.dumps(self.build()).encode()
            except Exception:  # answer now and say why; the next request tries again
                # (an exception escaping here left the request without an answer until BentoML's
                # 60 s traffic timeout, which then could not cancel it: a hang, then a bare 500)
                logger.exception("GET /docs.json: building the OpenAPI document failed")
                await respond(send, 500, error_body("the OpenAPI document could not be built; see the server log"))
                return
        await respond(send, 200, self._body)
