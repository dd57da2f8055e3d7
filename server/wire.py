"""JSON or MessagePack, chosen by the request: Content-Type for the body, Accept for the answer.

Litestar decodes a body by the route's declared media type only, so the sync routes read
their bodies here. Bodies that cannot be read get the error catalogue's codes, like any other.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import InternalServerException

from schemas.errors import ErrorCode
from server.errors import ReppuError

MSGPACK = "application/x-msgpack"
JSON = "application/json"

T = TypeVar("T")


def _field(exc: msgspec.ValidationError) -> tuple[str, str | None]:
    message, _, path = str(exc).partition(" - at `")
    return message, (path.rstrip("`") or None)


async def decode_body(request: Request[Any, Any, Any], kind: type[T]) -> T:
    """The body as ``kind``, from JSON or MessagePack by its Content-Type."""
    media = (request.headers.get("content-type") or JSON).split(";")[0].strip().lower()
    if media not in (JSON, MSGPACK, "application/msgpack", "application/vnd.msgpack"):
        raise ReppuError(ErrorCode.REQUEST_UNSUPPORTED_MEDIA_TYPE, "Send JSON or MessagePack.")
    try:
        body = await request.body()
    except InternalServerException as exc:
        # The client went away while sending: nobody is left to answer, and it is no bug.
        raise ReppuError(ErrorCode.REQUEST_MALFORMED, "The body did not arrive whole.") from exc
    try:
        if media == JSON:
            return msgspec.json.decode(body, type=kind)
        return msgspec.msgpack.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        message, field = _field(exc)
        if field is None and "field `" in message:
            field = "$." + message.split("field `", 1)[1].split("`", 1)[0]
        raise ReppuError(ErrorCode.REQUEST_INVALID, message, field=field) from exc
    except msgspec.DecodeError as exc:
        raise ReppuError(ErrorCode.REQUEST_MALFORMED, "The body cannot be read.") from exc


def wants_msgpack(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return "msgpack" in accept and JSON not in accept.split(",")[0]


def encode_answer(request: Request[Any, Any, Any], answer: object) -> Response[bytes]:
    """``answer`` as MessagePack when the client asks for it, JSON otherwise."""
    if wants_msgpack(request):
        return Response(content=msgspec.msgpack.encode(answer), media_type=MSGPACK)
    return Response(content=msgspec.json.encode(answer), media_type=JSON)
