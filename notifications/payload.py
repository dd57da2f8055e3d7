"""What a push says: "pull now", what it is about, and a short text to show.

The app's service worker shows ``title`` and ``body`` as the notification and then pulls the
rest over the sync protocol, so a push never has to carry the item itself, and one that is
lost or cut short costs nothing but the preview. The JSON is compact; its fields are those
of :class:`schemas.notifications.PushPayload`, the wire contract the service worker reads.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import msgspec

from notifications.webpush import MAX_PLAINTEXT, Kind
from schemas.notifications import PushPayload

ELLIPSIS = "\N{HORIZONTAL ELLIPSIS}"
_ZWJ = "\N{ZERO WIDTH JOINER}"


_encoder = msgspec.json.Encoder()


def encode_payload(
    kind: Kind,
    *,
    item_id: int | None,
    title: str,
    body: str,
    count: int = 1,
    limit: int = MAX_PLAINTEXT,
) -> bytes:
    """The push payload as compact JSON of at most ``limit`` bytes.

    When the whole text does not fit, the body is cut first, then (with the body gone) the
    title, each at a character boundary with "…" added, never between a letter and its
    combining mark or inside a ZWJ emoji sequence. The encoded length is what is measured, so
    JSON escapes and multi-byte UTF-8 are accounted for. Raises ValueError if not even the ids
    fit in ``limit``.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    # NFC first: a decomposed "ä" from some keyboards is two characters and three bytes, the
    # composed one one character and two bytes; the text reads the same either way.
    title = unicodedata.normalize("NFC", title)
    body = unicodedata.normalize("NFC", body)
    shown_count = count if kind is Kind.DIGEST or count != 1 else None

    def encode(shown_title: str, shown_body: str) -> bytes:
        return _encoder.encode(
            PushPayload(
                pull=1,
                kind=kind,
                id=item_id,
                count=shown_count,
                title=shown_title,
                body=shown_body,
            )
        )

    whole = encode(title, body)
    if len(whole) <= limit:
        return whole
    cut = _longest_fitting(body, lambda text: encode(title, text), limit)
    if cut is not None:
        return cut
    no_body = encode(title, "")
    if len(no_body) <= limit:
        return no_body
    cut = _longest_fitting(title, lambda text: encode(text, ""), limit)
    if cut is not None:
        return cut
    ids_only = encode("", "")
    if len(ids_only) <= limit:
        return ids_only
    raise ValueError(f"limit {limit} is too small even for {ids_only!r}")


def shorter(payload: bytes) -> bytes:
    """``payload`` with its text removed, ids only: the resend after a 413."""
    decoded = msgspec.json.decode(payload, type=PushPayload)
    return _encoder.encode(msgspec.structs.replace(decoded, title="", body=""))


def _clip(text: str, keep: int) -> str:
    return text[:keep].rstrip() + ELLIPSIS


def _longest_fitting(text: str, encode: Callable[[str], bytes], limit: int) -> bytes | None:
    """The encoding of the longest clipped prefix of ``text`` (shorter than it) that fits.

    The encoded length never shrinks as the prefix grows, so a binary search finds the
    longest prefix in a dozen encodes even for a long text.
    """
    if len(encode(_clip(text, 1))) > limit:
        return None
    low, high = 1, len(text) - 1  # low always fits; a keep of len(text) is the whole text
    while low < high:
        middle = (low + high + 1) // 2
        if len(encode(_clip(text, middle))) <= limit:
            low = middle
        else:
            high = middle - 1
    keep = _grapheme_safe(text, low)
    return encode(_clip(text, keep))


def _grapheme_safe(text: str, keep: int) -> int:
    """Move a cut at ``keep`` back so it does not split a character from what joins onto it.

    Covers combining marks (a decomposed letter that NFC cannot compose), variation selectors
    and emoji skin tones, and zero-width-joiner sequences; moving back only shortens, so the
    result still fits.
    """
    while 0 < keep < len(text) and _joins_previous(text[keep], text[keep - 1]):
        keep -= 1
    return keep


def _joins_previous(char: str, previous: str) -> bool:
    return (
        unicodedata.combining(char) != 0
        or char == _ZWJ
        or previous == _ZWJ
        or "\ufe00" <= char <= "\ufe0f"  # variation selectors
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # emoji skin-tone modifiers
    )
