"""Reading a push's body: the envelope strictly, each mutation on its own.

A push is one client's outbox, in order; a mutation the server cannot use must cost only its
own rejection, never the push (``docs/sync-protocol.md``: a rejected mutation never blocks
the ones after it). So the envelope (``schema_version``, ``client_id``, a list of at most
500) is decoded as a whole, and a fault there fails the push with a 4xx; but the list's items
are kept undecoded (``msgspec.Raw``) and each is read alone:

1. an item that fits :class:`MutationIn`, with an ``occurred_at`` that is a real instant
   (``0001-01-01T00:00:00+14:00`` is valid RFC 3339 but falls before year 1 in UTC), is a
   :class:`MutationIn` with its time in UTC;
2. an item that does not fit, but whose ``id`` is an id, is :class:`Refused`: it takes its
   place in the client's sequence and is recorded as rejected like any other, so the ones
   after it are applied;
3. an item without a usable ``id`` cannot take a place: it is :class:`Unplaced`, answered as
   rejected (with its id as sent if that is an integer, else 0) and not recorded; the
   client's next id is still the one it was.

The id is read on its own, skipping every other field, and the name on its own after it:
msgspec skips a string without checking that it is UTF-8 (in JSON and MessagePack alike), so
text that is not UTF-8 in the name, the args or the time costs the mutation its rejection but
never its place.

One fault msgspec will not skip: a JSON string escape of a lone UTF-16 surrogate
(``"\\udc00"``), which RFC 8259's grammar allows but which is no character. msgspec refuses
the whole body for it, which would fail every push of that outbox for ever. So when (and only
when) the envelope cannot be read and holds one, :func:`unpair_surrogates` turns each lone surrogate
escape into a byte that is not UTF-8, and the mutations that held one are rejected as
unreadable in their places, the others applied. Such text is not stored with a replacement
character: the app sent something it did not mean.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated

import msgspec

from schemas.sync import MAX_PUSH_MUTATIONS, ClientId, MutationIn
from server.rejections import Reason, invalid_value
from server.wire import UNREADABLE, Body, malformed

MAX_MUTATION_ID = 2**62
"""As ``MutationIn.id`` says; ``sync_mutation.mutation_id`` is a 64-bit column."""
_MAX_ECHOED = 2**63 - 1


class PushEnvelope(msgspec.Struct, forbid_unknown_fields=True):
    """``PushRequest`` with its mutations left undecoded."""

    schema_version: int
    client_id: ClientId
    mutations: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=MAX_PUSH_MUTATIONS)]


class _IdOnly(msgspec.Struct):
    id: object = None


class _NameOnly(msgspec.Struct):
    name: object = None


@dataclass(frozen=True, slots=True)
class Refused:
    """A mutation with an id but nothing else usable: rejected in its place."""

    id: int
    name: str
    """Its name if that was a usable name, else empty (it is recorded with the result)."""
    reason: Reason
    field: str | None


@dataclass(frozen=True, slots=True)
class Unplaced:
    """An item without an id: answered as rejected, never recorded."""

    echo: int
    """The id as sent if it was an integer a client can match, else 0."""
    reason: Reason
    field: str | None


Item = MutationIn | Refused | Unplaced


def utc_instant(moment: dt.datetime) -> dt.datetime | None:
    """``moment`` in UTC (UTC assumed if it has no zone), or None if that is not a datetime
    (before year 1 or after year 9999 once in UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None


def _is_id(value: object) -> bool:
    return type(value) is int and 1 <= value <= MAX_MUTATION_ID


def _usable_name(value: object) -> str:
    if isinstance(value, str) and 0 < len(value) <= 60 and "\x00" not in value:
        return value
    return ""


def read_mutation(item: Body) -> Item:
    """One item of a push's list, read as the module's docstring says."""
    try:
        mutation = item.decode_raw(MutationIn)
    except msgspec.ValidationError as exc:
        reason, field = invalid_value(exc)
        if reason in (Reason.MISSING, Reason.UNKNOWN_FIELD) and field not in ("$.id", "$.name"):
            reason = Reason.UNREADABLE  # the mutation's own shape, not its args: an app bug
        return _place(item, Reason.UNREADABLE if field is None else reason, field)
    except UNREADABLE:
        return _place(item, Reason.UNREADABLE, None)
    occurred_at = utc_instant(mutation.occurred_at)
    if occurred_at is None:
        return Refused(mutation.id, mutation.name, Reason.BAD_TIME, "$.occurred_at")
    return msgspec.structs.replace(mutation, occurred_at=occurred_at)


def _place(item: Body, reason: Reason, field: str | None) -> Refused | Unplaced:
    try:
        found = item.decode_raw(_IdOnly)
    except (*UNREADABLE, msgspec.ValidationError):
        return Unplaced(0, reason, field)
    if _is_id(found.id):
        assert isinstance(found.id, int)
        return Refused(found.id, _name(item), reason, field)
    echo = found.id if type(found.id) is int and -_MAX_ECHOED <= found.id <= _MAX_ECHOED else 0
    return Unplaced(echo, Reason.UNREADABLE, "$.id")


def _name(item: Body) -> str:
    """The item's name if it is a usable name, else empty (also if it cannot be read)."""
    try:
        return _usable_name(item.decode_raw(_NameOnly).name)
    except (*UNREADABLE, msgspec.ValidationError):
        return ""


# A JSON string escape, one at a time from the left, so that the backslash of an escaped
# backslash (``\\udc00``) is never read as the start of a ``\u`` escape.
_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)
_NOT_UTF8 = b"\xff"
"""A byte that never appears in UTF-8: a string that holds it cannot be decoded."""


def _surrogate(match: re.Match[bytes] | None, low: bool) -> bool:
    if match is None or match.group(1) is None:
        return False
    unit = int(match.group(1), 16)
    return 0xDC00 <= unit <= 0xDFFF if low else 0xD800 <= unit <= 0xDBFF


def unpair_surrogates(data: bytes) -> bytes:
    """``data`` (JSON) with each escape of a UTF-16 surrogate that is not half of a pair
    replaced by a byte that is not UTF-8; pairs and every other escape are kept."""
    escapes = list(_ESCAPE.finditer(data))
    out: list[bytes] = []
    kept = 0
    paired = False  # the escape before was a high surrogate with its low one: this is that
    for i, match in enumerate(escapes):
        if paired:
            paired = False
            continue
        following = escapes[i + 1] if i + 1 < len(escapes) else None
        if _surrogate(match, low=False):
            if following is not None and following.start() == match.end():
                paired = _surrogate(following, low=True)
            if paired:
                continue
        elif not _surrogate(match, low=True):
            continue
        out.append(data[kept : match.start()])
        out.append(_NOT_UTF8)
        kept = match.end()
    out.append(data[kept:])
    return b"".join(out)


def _envelope(body: Body) -> tuple[PushEnvelope, Body]:
    """The envelope and the body its mutations are read from: ``body``, or ``body`` with its
    lone surrogate escapes unpaired if that is the one fault that fails it."""
    try:
        return body.decode_raw(PushEnvelope), body
    except msgspec.ValidationError:
        pass  # decoded again below, to be answered as the catalogue says
    except msgspec.DecodeError as exc:
        # msgspec words it in several ways (a bad pair, a hex escape ended early), so look.
        repaired = Body(body.data if body.msgpack else unpair_surrogates(body.data))
        if repaired.data == body.data:
            raise malformed(exc) from exc
        try:
            return repaired.decode_raw(PushEnvelope), repaired
        except UNREADABLE:
            raise malformed(exc) from exc  # the envelope itself, or something else as well
        except msgspec.ValidationError:
            return repaired.decode(PushEnvelope), repaired
    except UNREADABLE as exc:
        raise malformed(exc) from exc
    return body.decode(PushEnvelope), body


def read_push(body: Body) -> tuple[PushEnvelope, list[Item]]:
    """The push's envelope (``request.invalid``/``request.malformed`` if it does not fit),
    and each of its mutations as read by :func:`read_mutation`."""
    envelope, read_from = _envelope(body)
    return envelope, [read_mutation(read_from.part(raw)) for raw in envelope.mutations]
