"""The opaque pull cursor: the client's position in each partition it holds, signed.

A client never looks inside a cursor; it stores it and sends it back. The signature lets the
server trust the positions without storing them per device, and turns a forged or damaged
cursor into a clean refusal. A cursor holds two maps, ``{partition: position}`` and
``{partition: floor}`` (floors: see ``sync/pull.py``), and nothing else.

**Format 2** (made since 2026-12-08) is ``base64url(payload) + base64url(tag)``, with no
separator: the tag is always the last 16 characters. ``payload`` is the byte ``0x02`` followed
by a MessagePack array (:class:`_State`), smaller than format 1's map of names because a
"nothing new" pull's request is mostly its cursor (issue 16):

- a partition named ``kind:id`` is a kind code (one byte, :data:`KIND_CODES`) and an integer
  id, not a string. The partitions are sorted by (id, kind) and each id is sent as its
  difference from the one before: a person's ``inbox`` and ``person`` partitions, or a
  group's ``group`` and ``group-guardians``, share an id, which then costs one byte;
- the kind codes of all partitions are one MessagePack ``bin`` (a byte each), the id
  differences and the positions two arrays of integers, in that order;
- floors, usually none, follow the same way and are left out when there are none; so are
  the names that are not ``kind:id`` of a known kind with a plain decimal id, which go
  as they are in a map of their own (none today: a future kind works before it has a code).

Positions stay absolute: in id order their differences are no smaller. Sorting by position
instead (differences of positions, whole ids) came out within a few bytes either way on
cursors shaped like a pupil's and a guardian's in small and large cities, smaller for some
and larger for others, so the order that also shrinks the ids stayed. A code, once given to a
kind, is never given to another: cursors in the field name their partitions by it.

``tag`` is the first 12 bytes of the HMAC-SHA-256 of the payload's base64url text under the
cursor key (so any change to the text, even one that decodes to the same bytes, is refused).
Twelve bytes, not sixteen, because nothing but the forger's own copy rests on it: what a
person may read is decided by the policy on every pull, never by the cursor (a partition it
names that the person may not read is announced ``removed``), so a forged cursor can at worst
make the server resend or skip changes the person may read anyway. Guessing a 96-bit tag
online, with no way to check a guess but a request, at a billion requests a second, succeeds
once in about 2.5 trillion years; the key never leaves the server and changes with the epoch.

**Format 1** (before 2026-12-08, still held by devices in the field, still read) is
``<payload>.<signature>``: the payload base64url of the MessagePack array
``[1, {partition: position}, {partition: floor}]``, the signature base64url of the first 16
bytes of the HMAC-SHA-256 of the payload's text. A format-1 cursor is answered with a
format-2 one as soon as the cursor moves; until then the device keeps the one it has.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
from collections.abc import Mapping
from itertools import accumulate, pairwise

import msgspec

from schemas.core import PartitionKind

CURSOR_FORMAT = 2
"""The format :func:`encode_cursor` makes; :func:`decode_cursor` also reads format 1."""

KIND_CODES: dict[str, int] = {
    kind.value: code
    for code, kind in enumerate(
        (
            PartitionKind.PERSON,
            PartitionKind.GROUP,
            PartitionKind.GROUP_STAFF,
            PartitionKind.SCHOOL,
            PartitionKind.SCHOOL_STAFF,
            PartitionKind.MUNICIPALITY,
            PartitionKind.GROUP_GUARDIANS,
            PartitionKind.SCHOOL_GUARDIANS,
            PartitionKind.MUNICIPALITY_GUARDIANS,
            PartitionKind.INBOX,
        )
    )
}
"""A partition kind's code in a format-2 cursor. Append only: never renumber or reuse."""

_PREFIXES = tuple(f"{kind}:" for kind in KIND_CODES)
_TAG_BYTES = 12
_TAG_CHARS = 16  # base64url of 12 bytes, which needs no padding
_MAX_ID_DIGITS = 18  # below 2**63: any larger id goes by its name


class CursorError(ValueError):
    """The cursor was not made by this server (or was damaged on the way)."""


class _State(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """A format-2 cursor's payload after its format byte (see the module's docstring); the
    fields at the end that are empty are left out."""

    kinds: bytes
    ids: list[int]
    """Each id's difference from the one before (the first from 0)."""
    positions: list[int]
    floor_kinds: bytes = b""
    floor_ids: list[int] = []
    floors: list[int] = []
    other_positions: dict[str, int] = {}
    """Positions of partitions whose names are not ``kind:id`` of a known kind."""
    other_floors: dict[str, int] = {}


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_State)
_V1_TYPE = tuple[int, dict[str, int], dict[str, int]]


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    padded = text.encode("ascii") + b"=" * (-len(text) % 4)
    return binascii.a2b_base64(padded.translate(_FROM_URLSAFE))


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC-SHA-256's inner and outer hashes with the key already absorbed (RFC 2104):
    copying them skips the key's two blocks on every cursor, and hashlib's copies are
    cheaper than ``hmac.HMAC.copy``."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def _mac(key: bytes, text: str) -> bytes:
    """HMAC-SHA-256 of ``text`` (ASCII) under ``key``."""
    keyed_inner, keyed_outer = _keyed(key)
    inner, outer = keyed_inner.copy(), keyed_outer.copy()
    inner.update(text.encode("ascii"))
    outer.update(inner.digest())
    return outer.digest()


def _split(names: Mapping[str, int]) -> tuple[bytes, list[int], list[int], dict[str, int]]:
    """Kind codes, id differences and values, sorted by (id, kind); and the other names."""
    coded: list[tuple[int, int, int]] = []
    other: dict[str, int] = {}
    for name, value in names.items():
        kind, _, ident = name.rpartition(":")
        code = KIND_CODES.get(kind)
        if (
            code is None
            or not (ident.isascii() and ident.isdigit())
            or (len(ident) > 1 and ident[0] == "0")  # "007" would come back as "7"
            or len(ident) > _MAX_ID_DIGITS
        ):
            other[name] = value
        else:
            coded.append((int(ident), code, value))
    coded.sort()
    ids = [ident for ident, _, _ in coded]
    deltas = [ident - before for before, ident in pairwise([0, *ids])]
    return bytes(code for _, code, _ in coded), deltas, [value for *_, value in coded], other


def _names(kinds: bytes, ids: list[int], values: list[int]) -> dict[str, int]:
    return {
        _PREFIXES[code] + str(ident): value
        for code, ident, value in zip(kinds, accumulate(ids), values, strict=True)
    }


def encode_cursor(key: bytes, positions: Mapping[str, int], floors: Mapping[str, int]) -> str:
    """A format-2 cursor of ``positions`` and ``floors``, signed with ``key``."""
    kinds, ids, values, other = _split(positions)
    floor_kinds, floor_ids, floor_values, other_floors = _split(floors)
    # The fields of _State, without the empty ones at the end (msgspec reads them as such).
    state: list[object] = [kinds, ids, values, floor_kinds, floor_ids, floor_values]
    state += [other, other_floors]
    while len(state) > 3 and not state[-1]:
        state.pop()
    payload = _b64(bytes((CURSOR_FORMAT,)) + _ENCODER.encode(state))
    return payload + _b64(_mac(key, payload)[:_TAG_BYTES])


def decode_cursor(key: bytes, cursor: str) -> tuple[dict[str, int], dict[str, int]]:
    """The positions and floors in ``cursor`` (format 2 or 1); :class:`CursorError` if it is
    not ours."""
    if not cursor.isascii():
        raise CursorError("a cursor is base64url")
    if "." in cursor:
        return _decode_format_1(key, cursor)
    payload, tag = cursor[:-_TAG_CHARS], cursor[-_TAG_CHARS:]
    if not payload or not hmac.compare_digest(tag, _b64(_mac(key, payload)[:_TAG_BYTES])):
        raise CursorError("the cursor's signature does not match")
    try:
        raw = _unb64(payload)
        if raw[:1] != bytes((CURSOR_FORMAT,)):
            raise CursorError(f"cursor format {raw[:1].hex() or 'none'} is not known")
        state = _DECODER.decode(memoryview(raw)[1:])
        positions = _names(state.kinds, state.ids, state.positions)
        floors = (
            _names(state.floor_kinds, state.floor_ids, state.floors)
            if state.floor_kinds or state.floor_ids or state.floors
            else {}
        )
    except (msgspec.DecodeError, ValueError, IndexError, binascii.Error) as exc:
        raise CursorError(f"the cursor cannot be read: {exc}") from exc
    if state.other_positions:
        positions.update(state.other_positions)
    if state.other_floors:
        floors.update(state.other_floors)
    return positions, floors


def _decode_format_1(key: bytes, cursor: str) -> tuple[dict[str, int], dict[str, int]]:
    payload, _, signature = cursor.partition(".")
    if not hmac.compare_digest(signature, _b64(_mac(key, payload)[:16])):
        raise CursorError("the cursor's signature does not match")
    try:
        fmt, positions, floors = msgspec.msgpack.decode(_unb64(payload), type=_V1_TYPE)
    except (msgspec.DecodeError, ValueError, binascii.Error) as exc:
        raise CursorError(f"the cursor cannot be read: {exc}") from exc
    if fmt != 1:
        raise CursorError(f"cursor format {fmt} is not 1")
    return positions, floors
