"""The OpenAPI document (``/schema/openapi.json``), completed so that it says what the server does.

Litestar builds the document from the route handlers. Three things it cannot see, and this
module adds as the document is served:

1. Bodies a route decodes and encodes by hand. The sync routes read JSON or MessagePack
   (``server/wire.py``), so Litestar sees no body and an answer of type ``Any``. Such a route
   names its types with ``wire_request=`` and ``wire_answer=`` in its decorator (they land in
   the handler's ``opt``); their schemas come from msgspec, the codec that reads them, and the
   document offers both media types. A Server-Sent Events stream (``/sync/live``) names the
   schema of one event with ``event_schema=``.
2. Error answers. Litestar documents its own error shape (``{status_code, detail}``) as a 400
   of every route with a body or parameters; ours is ``ErrorBody`` with the codes of
   ``schemas/errors.py``, at the status ``server/errors.py`` gives each code. Litestar's are
   dropped, and each operation gets the answers it can give: 401 where a token is needed; 400,
   413, 415 and 422 where there is a body; 422 where there are parameters; 404 where a path
   parameter must be a number (a path that does not parse is no route); 500 and 503
   everywhere. A route adds the codes particular to it with ``error_codes=[...]``.
3. Public routes (``exclude_from_auth``) say that they need no token (``security: []``).
4. The sync contract in full (``server/contract.py``): field descriptions, the fields left
   out when they hold their default, how datetimes travel, the ``Record`` union and every
   mutation's arguments (``Mutation``), so that a native app's types can be written from the
   document alone.

Only the served JSON is completed: ``app.openapi_schema`` stays Litestar's own object.

``tests/server/test_fuzz.py`` holds the server to this document: schemathesis generates
requests from it and checks every answer's status, media type and body against it.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute

from schemas.errors import ErrorBody, ErrorCode
from schemas.sync import MutationIn
from server.contract import describe, mutation_args_types, mutation_components, name_the_unions
from server.errors import STATUS

JSON = "application/json"
MSGPACK = "application/x-msgpack"
EVENT_STREAM = "text/event-stream"

COMPONENTS = "#/components/schemas/{name}"

AUTH_ERRORS = (ErrorCode.AUTH_REQUIRED, ErrorCode.AUTH_INVALID_TOKEN)
BODY_ERRORS = (
    ErrorCode.REQUEST_MALFORMED,
    ErrorCode.REQUEST_TOO_LARGE,
    ErrorCode.REQUEST_UNSUPPORTED_MEDIA_TYPE,
    ErrorCode.REQUEST_INVALID,
)
PARAMETER_ERRORS = (ErrorCode.REQUEST_INVALID,)
PATH_ERRORS = (ErrorCode.NOT_FOUND,)
SERVER_ERRORS = (ErrorCode.SERVER_ERROR, ErrorCode.SERVER_UNAVAILABLE)
"""Every route can meet a bug or a database out of reach."""

_METHODS = ("get", "put", "post", "delete", "patch")


def _any_value(kind: type) -> dict[str, Any]:
    """msgspec's schema hook: ``object`` (a mutation's arguments) is any JSON value."""
    if kind is object:
        return {"description": "Any JSON value."}
    raise NotImplementedError


def _error_answer(codes: Iterable[ErrorCode]) -> dict[str, Any]:
    listed = ", ".join(f"`{code.value}`" for code in sorted(set(codes)))
    return {
        "description": f"An error of the catalogue (docs/errors.md): {listed}.",
        "content": {JSON: {"schema": {"$ref": COMPONENTS.format(name="ErrorBody")}}},
    }


def _handlers(app: Litestar) -> dict[tuple[str, str], Any]:
    """Each documented operation's route handler, by (path, method)."""
    found: dict[tuple[str, str], Any] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                found[(route.path_format or "/", method.lower())] = handler
    return found


def _is_litestar_error(answer: dict[str, Any]) -> bool:
    schema = answer.get("content", {}).get(JSON, {}).get("schema", {})
    return isinstance(schema, dict) and schema.get("required") == ["detail", "status_code"]


def _with_both_media_types(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}, MSGPACK: {"schema": schema}}


def _error_codes(operation: dict[str, Any], opt: dict[str, Any], security: Any) -> list[ErrorCode]:
    """Every code the operation can answer with: its own and those of its kind."""
    codes = [*opt.get("error_codes", ()), *SERVER_ERRORS]
    if operation.get("security", security):
        codes += AUTH_ERRORS
    if "requestBody" in operation:
        codes += BODY_ERRORS
    parameters = operation.get("parameters", [])
    if parameters:
        codes += PARAMETER_ERRORS
    if any(p["in"] == "path" and p["schema"].get("type") == "integer" for p in parameters):
        codes += PATH_ERRORS
    return codes


def _complete_operation(
    operation: dict[str, Any], handler: Any, ref_of: dict[type, Any], security: Any
) -> None:
    opt = handler.opt
    answers: dict[str, Any] = operation.setdefault("responses", {})
    success = answers[str(handler.status_code)]
    if "wire_request" in opt:
        body = _with_both_media_types(ref_of[opt["wire_request"]])
        operation["requestBody"] = {"required": True, "content": body}
    if "wire_answer" in opt:
        success["content"] = _with_both_media_types(ref_of[opt["wire_answer"]])
    if "event_schema" in opt:
        success["content"] = {EVENT_STREAM: {"schema": opt["event_schema"]}}
    if opt.get("exclude_from_auth"):
        operation["security"] = []
    for status in [s for s, answer in answers.items() if _is_litestar_error(answer)]:
        del answers[status]
    by_status: dict[int, list[ErrorCode]] = defaultdict(list)
    for code in _error_codes(operation, opt, security):
        by_status[STATUS[code]].append(code)
    for status_code, codes in sorted(by_status.items()):
        answers[str(status_code)] = _error_answer(codes)


def complete_document(document: dict[str, Any], app: Litestar) -> dict[str, Any]:
    """``document`` (Litestar's, as a dict; changed in place) with the additions above."""
    handlers = _handlers(app)
    sent: list[type] = [ErrorBody]
    received: list[type] = [MutationIn, *mutation_args_types()]
    for handler in handlers.values():
        sent += [handler.opt["wire_answer"]] if "wire_answer" in handler.opt else []
        received += [handler.opt["wire_request"]] if "wire_request" in handler.opt else []
    wire_types = [*sent, *received]
    refs, components = msgspec.json.schema_components(
        wire_types, schema_hook=_any_value, ref_template=COMPONENTS
    )
    ref_of = dict(zip(wire_types, refs, strict=True))
    describe(components, sent=sent, received=received)
    name_the_unions(components, COMPONENTS)
    components.update(mutation_components(ref_of))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in components.items():
        schemas.setdefault(name, schema)  # a type Litestar described already keeps its entry
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item and (handler := handlers.get((path, method))) is not None:
                _complete_operation(item[method], handler, ref_of, document.get("security"))
    return document


class CompletedOpenAPIJson(JsonRenderPlugin):
    """Serves ``/schema/openapi.json`` as :func:`complete_document` makes it (built once)."""

    def __init__(self, *, path: str | Sequence[str] = "/openapi.json") -> None:
        super().__init__(path=path)
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            document = complete_document(copy.deepcopy(openapi_schema), request.app)
            self._rendered = self.render_json(request, document)
        return self._rendered
