"""Errors as HTTP answers: the one mapping from ``schemas.errors.ErrorCode`` to a status.

Routes and actions raise :class:`ReppuError` with a code; Litestar's own exceptions (bad body,
unknown route, body too large) are translated here into the same catalogue, so a client never
sees an error body of another shape. An unexpected exception becomes ``server.error`` with
the traceback in the log and nothing of the request (no body, no token) in the answer or log.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE, HTTP_415_UNSUPPORTED_MEDIA_TYPE

from schemas.errors import ErrorBody, ErrorCode
from server.plain_words import plain
from sync.calendar import redact_feed_paths

log = logging.getLogger("reppu.errors")

STATUS: dict[ErrorCode, int] = {
    ErrorCode.REQUEST_MALFORMED: 400,
    ErrorCode.REQUEST_INVALID: 422,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.REQUEST_UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.AUTH_REQUIRED: 401,
    ErrorCode.AUTH_INVALID_TOKEN: 401,
    ErrorCode.AUTH_BAD_CREDENTIALS: 401,
    ErrorCode.AUTH_RATE_LIMITED: 429,
    ErrorCode.AUTH_FORBIDDEN: 403,
    ErrorCode.SYNC_BAD_CURSOR: 400,
    ErrorCode.SYNC_UPDATE_REQUIRED: 400,
    ErrorCode.SYNC_VERSION_UNKNOWN: 400,
    ErrorCode.SYNC_CLIENT_MISMATCH: 409,
    ErrorCode.PUSH_ENDPOINT_NOT_ALLOWED: 422,
    ErrorCode.PUSH_INVALID_KEYS: 422,
    ErrorCode.PUSH_NATIVE_UNAVAILABLE: 422,
    ErrorCode.PUSH_UNKNOWN_APP: 422,
    ErrorCode.PUSH_INVALID_DEVICE_TOKEN: 422,
    ErrorCode.CHANNEL_UNSUPPORTED: 422,
    ErrorCode.CHANNEL_INVALID_ADDRESS: 422,
    ErrorCode.ACTIVATION_INVALID: 400,
    ErrorCode.ACTIVATION_USERNAME_TAKEN: 409,
    ErrorCode.ACCOUNT_NOT_FOUND: 404,
    ErrorCode.ACCOUNT_DEVICE_NOT_FOUND: 404,
    ErrorCode.IMPORT_NOT_FOUND: 404,
    ErrorCode.IMPORT_NOT_APPLICABLE: 409,
    ErrorCode.SIGNIN_UNKNOWN_PROVIDER: 404,
    ErrorCode.SIGNIN_REDIRECT_NOT_ALLOWED: 400,
    ErrorCode.SIGNIN_STATE_MISMATCH: 400,
    ErrorCode.SIGNIN_REFUSED: 401,
    ErrorCode.SIGNIN_INVALID_ID_TOKEN: 401,
    ErrorCode.SIGNIN_PROVIDER_UNAVAILABLE: 503,
    ErrorCode.SIGNIN_NO_MATCH: 403,
    ErrorCode.SIGNIN_AMBIGUOUS: 409,
    ErrorCode.SIGNIN_ROLE_NOT_ALLOWED: 403,
    ErrorCode.SIGNIN_HANDOFF_INVALID: 400,
    ErrorCode.SERVER_UNAVAILABLE: 503,
    ErrorCode.SERVER_ERROR: 500,
}


class ReppuError(Exception):
    """An error with a stable code, raised anywhere below a route."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_response(
    code: ErrorCode,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    headers = dict(headers or {})
    if STATUS[code] == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="reppu"')
    return Response(
        content=msgspec.json.encode(ErrorBody(code=code, message=message, field=field)),
        status_code=STATUS[code],
        media_type=MediaType.JSON,
        headers=headers,
    )


def _on_reppu_error(_: Request[Any, Any, Any], exc: ReppuError) -> Response[bytes]:
    return error_response(exc.code, exc.message, field=exc.field, headers=exc.headers)


# msgspec says where a value is wrong as "... - at `$.field`", and names a missing or unknown
# field as "... field `name`"; the two together give the JSON path we report.
_AT_PATH = re.compile(r" - at `(?P<path>[^`]+)`$")
_FIELD_NAME = re.compile(r"(?:unknown|required) field `(?P<name>[^`]+)`")
_MISSING = re.compile(r"Missing required (?P<kind>\w+) parameter '(?P<name>[^']+)'")


def _is_malformed(exc: BaseException) -> bool:
    """True when msgspec could not parse the body at all (as opposed to a wrong value in it).

    Litestar wraps msgspec's error twice (SerializationException, then ClientException); the
    original is found at the end of the ``__cause__`` chain.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, msgspec.DecodeError) and not isinstance(
            cause, msgspec.ValidationError
        ):
            return True
        cause = cause.__cause__
    return False


def _sent_name(request: Request[Any, Any, Any], key: str) -> str:
    """A parameter by the name the client sends (``from``), not the handler's (``from_date``)."""
    handler = request.scope.get("route_handler")
    parameter = handler.parsed_fn_signature.parameters.get(key) if handler else None
    definition = getattr(parameter, "kwarg_definition", None)
    # ParameterKwarg names it query/header/cookie; the newer QueryParameter and its kin, name.
    for attribute in ("name", "query", "header", "cookie"):
        if isinstance(sent := getattr(definition, attribute, None), str) and sent:
            return sent
    return key


def _on_validation(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if _is_malformed(exc):
        return error_response(ErrorCode.REQUEST_MALFORMED, "The body is not valid JSON.")
    extra = exc.extra
    first = extra[0] if isinstance(extra, list) and extra and isinstance(extra[0], dict) else {}
    message = str(first.get("message") or exc.detail or "Invalid request.")
    field = None
    if match := _MISSING.search(message):
        # Litestar's sentence echoes the path and query as sent: name the parameter only.
        kind, name = match.group("kind"), match.group("name")
        return error_response(
            ErrorCode.REQUEST_INVALID, f"The {kind} parameter '{name}' is required.", field=name
        )
    if match := _AT_PATH.search(message):
        field = match.group("path")
        message = message[: match.start()]
    if match := _FIELD_NAME.search(message):
        field = f"{field or '$'}.{match.group('name')}"
    elif field is None and first.get("key") not in (None, "data"):
        key = str(first["key"])
        # A body field as a JSON path; a query or path parameter by the name the client sent.
        field = f"$.{key}" if first.get("source") == "body" else _sent_name(request, key)
    return error_response(ErrorCode.REQUEST_INVALID, plain(message), field=field)


def _on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if isinstance(exc, NotFoundException):
        return error_response(ErrorCode.NOT_FOUND, "Not found.")
    if isinstance(exc, MethodNotAllowedException):
        # Litestar's router names the route's methods in ``allow``; RFC 9110 says a 405
        # must carry them in an ``Allow`` header.
        allow = (exc.headers or {}).get("allow")
        return error_response(
            ErrorCode.METHOD_NOT_ALLOWED,
            "Method not allowed here.",
            headers={"Allow": allow} if allow else None,
        )
    if isinstance(exc, NotAuthorizedException):
        return error_response(ErrorCode.AUTH_REQUIRED, "A bearer token is required.")
    if isinstance(exc, PermissionDeniedException):
        return error_response(ErrorCode.AUTH_FORBIDDEN, "You may not do this.")
    if exc.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        return error_response(ErrorCode.REQUEST_TOO_LARGE, "The request body is too large.")
    if exc.status_code == HTTP_415_UNSUPPORTED_MEDIA_TYPE:
        return error_response(
            ErrorCode.REQUEST_UNSUPPORTED_MEDIA_TYPE,
            "Send the body as JSON (MessagePack is taken by the sync routes only).",
        )
    if 400 <= exc.status_code < 500:
        # Litestar raises a plain 400 ClientException for a body it cannot parse.
        return _on_validation(request, exc)
    log.error("HTTP exception %s", exc.status_code, exc_info=exc)
    return error_response(ErrorCode.SERVER_ERROR, "Something went wrong on our side.")


# The database busy (SQLite's lock outlasting its timeout) or out of reach: a moment's
# trouble, not a bug. The client is told to try again.
_UNAVAILABLE = (
    sqlite3.OperationalError,
    asyncpg.PostgresConnectionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.DeadlockDetectedError,  # still losing after server.push's retries
    asyncpg.SerializationError,
    ConnectionError,
    TimeoutError,
)


def _path(request: Request[Any, Any, Any]) -> str:
    """The request's path for a log line: a calendar feed's secret token left out."""
    return redact_feed_paths(request.url.path)


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # The path and method only: a body or header could hold a password or a token.
    if isinstance(exc, _UNAVAILABLE):
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            _path(request),
            type(exc).__name__,
        )
        return error_response(
            ErrorCode.SERVER_UNAVAILABLE,
            "The database is busy or out of reach; try again in a moment.",
            headers={"Retry-After": "5"},
        )
    log.error("unexpected error on %s %s", request.method, _path(request), exc_info=exc)
    return error_response(ErrorCode.SERVER_ERROR, "Something went wrong on our side.")


ExceptionHandler = Callable[[Request[Any, Any, Any], Any], Response[Any]]

EXCEPTION_HANDLERS: dict[int | type[Exception], ExceptionHandler] = {
    ReppuError: _on_reppu_error,
    ValidationException: _on_validation,
    HTTPException: _on_http_exception,
    Exception: _on_unexpected,
}
