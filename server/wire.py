"""JSON or MessagePack, chosen by the request: Content-Type for the body, Accept for the answer.

Litestar decodes a body by the route's declared media type only, so the sync routes read
their bodies here. Bodies that cannot be read get the error catalogue's codes, like any other.

Whatever the bytes, decoding ends in an answer from the catalogue, never in ``server.error``:
msgspec raises ``DecodeError`` for broken syntax, but ``UnicodeDecodeError`` for a string that
is not UTF-8 and ``RecursionError`` for a body nested deeper than the interpreter's recursion
limit allows (some hundreds of levels; no body of ours nests more than a few). All three are
``request.malformed``. :class:`BoundedRequest` gives the bodies Litestar decodes for the other
routes the same treatment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import InternalServerException

from schemas.errors import ErrorCode
from server.errors import ReppuError
from server.plain_words import plain

MSGPACK = "application/x-msgpack"
JSON = "application/json"
_MSGPACK_ALIASES = (MSGPACK, "application/msgpack", "application/vnd.msgpack")

UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
"""What msgspec raises for bytes it cannot read at all (``ValidationError`` is a subclass of
``DecodeError``: catch it first where a wrong value means something else)."""

T = TypeVar("T")


def _field(exc: msgspec.ValidationError) -> tuple[str, str | None]:
    message, _, path = str(exc).partition(" - at `")
    field = path.rstrip("`") or None
    if field is None and "field `" in message:
        field = "$." + message.split("field `", 1)[1].split("`", 1)[0]
    return plain(message), field


def malformed(exc: BaseException) -> ReppuError:
    """``request.malformed`` for bytes that cannot be read, saying why in plain words."""
    if isinstance(exc, RecursionError):
        return ReppuError(ErrorCode.REQUEST_MALFORMED, "The body is nested too deeply.")
    if isinstance(exc, UnicodeDecodeError):
        return ReppuError(ErrorCode.REQUEST_MALFORMED, "The body holds text that is not UTF-8.")
    return ReppuError(ErrorCode.REQUEST_MALFORMED, "The body cannot be read.")


@dataclass(frozen=True, slots=True)
class Body:
    """A request body's bytes and the format they are in."""

    data: bytes
    msgpack: bool = False

    def decode(self, kind: type[T]) -> T:
        """The body as ``kind``; ``request.invalid`` or ``request.malformed`` if it is not."""
        try:
            return self.decode_raw(kind)
        except msgspec.ValidationError as exc:
            message, field = _field(exc)
            raise ReppuError(ErrorCode.REQUEST_INVALID, message, field=field) from exc
        except UNREADABLE as exc:
            raise malformed(exc) from exc

    def decode_raw(self, kind: type[T]) -> T:
        """The body as ``kind``, letting msgspec's own errors (and :data:`UNREADABLE`) out."""
        if self.msgpack:
            return msgspec.msgpack.decode(self.data, type=kind)
        return msgspec.json.decode(self.data, type=kind)

    def part(self, raw: msgspec.Raw) -> Body:
        """A piece of this body kept undecoded (``msgspec.Raw``), to decode on its own."""
        return Body(bytes(memoryview(raw)), self.msgpack)


def _media_type(request: Request[Any, Any, Any]) -> str | None:
    """The body's media type without parameters, lower case; None if the request names none."""
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower() or None


async def read_body(request: Request[Any, Any, Any]) -> Body:
    """The request's body, in JSON or MessagePack by its Content-Type (JSON if none)."""
    media = _media_type(request) or JSON
    if media != JSON and media not in _MSGPACK_ALIASES:
        raise ReppuError(ErrorCode.REQUEST_UNSUPPORTED_MEDIA_TYPE, "Send JSON or MessagePack.")
    try:
        data = await request.body()
    except InternalServerException as exc:
        # The client went away while sending: nobody is left to answer, and it is no bug.
        raise ReppuError(ErrorCode.REQUEST_MALFORMED, "The body did not arrive whole.") from exc
    return Body(data, msgpack=media != JSON)


async def decode_body(request: Request[Any, Any, Any], kind: type[T]) -> T:
    """The body as ``kind``, from JSON or MessagePack by its Content-Type."""
    return (await read_body(request)).decode(kind)


class BoundedRequest(Request[Any, Any, Any]):
    """Litestar's request, whose body decoding ends in the catalogue whatever the bytes.

    Litestar turns msgspec's ``DecodeError`` into a 400 of its own, but lets
    ``UnicodeDecodeError`` and ``RecursionError`` through as if they were bugs. And it decodes
    a body by the route's declared media type whatever the request's Content-Type says, so
    ``text/plain`` holding ``{}`` was taken as JSON and MessagePack was answered as broken JSON:
    here a body named as anything but JSON is ``415 request.unsupported_media_type`` before it
    is read. A body that names no type is read as JSON, as a hand-made request without the
    header means it. Only the sync routes take MessagePack (:func:`read_body`).
    """

    async def json(self) -> Any:
        media = _media_type(self)
        if media is not None and media != JSON:
            raise ReppuError(
                ErrorCode.REQUEST_UNSUPPORTED_MEDIA_TYPE,
                "Send JSON (Content-Type: application/json); only the sync routes also take "
                "MessagePack.",
            )
        try:
            return await super().json()
        except (UnicodeDecodeError, RecursionError) as exc:
            raise malformed(exc) from exc

    async def msgpack(self) -> Any:
        if _media_type(self) not in _MSGPACK_ALIASES:
            raise ReppuError(ErrorCode.REQUEST_UNSUPPORTED_MEDIA_TYPE, "Send MessagePack.")
        try:
            return await super().msgpack()
        except (UnicodeDecodeError, RecursionError) as exc:
            raise malformed(exc) from exc


def wants_msgpack(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return "msgpack" in accept and JSON not in accept.split(",")[0]


def encode_answer(request: Request[Any, Any, Any], answer: object) -> Response[bytes]:
    """``answer`` as MessagePack when the client asks for it, JSON otherwise."""
    if wants_msgpack(request):
        return Response(content=msgspec.msgpack.encode(answer), media_type=MSGPACK)
    return Response(content=msgspec.json.encode(answer), media_type=JSON)
