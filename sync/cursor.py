"""The opaque pull cursor: the client's position in each partition it holds, signed.

On the wire a cursor is ``<payload>.<signature>``: the payload is base64url of the MessagePack
array ``[format, {partition: position}, {partition: floor}]`` (floors: see ``sync/pull.py``)
and the signature the first 16 bytes of its HMAC-SHA-256 under the server's secret key,
base64url. A client never looks inside; it stores
the cursor and sends it back. The signature lets the server trust the positions without
storing them per device, and turns a forged or damaged cursor into a clean refusal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import msgspec

CURSOR_FORMAT = 1


class CursorError(ValueError):
    """The cursor was not made by this server (or was damaged on the way)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()[:16])


def encode_cursor(key: bytes, positions: dict[str, int], floors: dict[str, int]) -> str:
    state = [CURSOR_FORMAT, dict(sorted(positions.items())), dict(sorted(floors.items()))]
    payload = _b64(msgspec.msgpack.encode(state))
    return f"{payload}.{_sign(key, payload)}"


def decode_cursor(key: bytes, cursor: str) -> tuple[dict[str, int], dict[str, int]]:
    """The positions and floors in ``cursor``; :class:`CursorError` if it is not ours."""
    payload, sep, signature = cursor.partition(".")
    if not sep or not payload.isascii() or not signature.isascii():
        raise CursorError("a cursor is two parts of base64url")
    if not hmac.compare_digest(signature, _sign(key, payload)):
        raise CursorError("the cursor's signature does not match")
    try:
        fmt, positions, floors = msgspec.msgpack.decode(
            _unb64(payload), type=tuple[int, dict[str, int], dict[str, int]]
        )
    except (msgspec.DecodeError, ValueError, binascii.Error) as exc:
        raise CursorError(f"the cursor cannot be read: {exc}") from exc
    if fmt != CURSOR_FORMAT:
        raise CursorError(f"cursor format {fmt} is not {CURSOR_FORMAT}")
    return positions, floors
