"""Choosing a response's compression from ``Accept-Encoding`` as RFC 9110 (12.5.3) reads it.

Litestar's own middleware looks for the substring ``br`` or ``gzip`` in the header, so
``br;q=0, gzip`` (brotli refused) still got brotli, and ``gzip;q=0`` still got gzip. Here each
coding's weight is its own entry's ``q``, else that of ``*``, else 0 (not acceptable); names
are case-insensitive, whitespace around ``,``, ``;`` and ``=`` is allowed, ``x-gzip`` is
gzip. Of brotli and gzip the one with the higher weight wins, brotli on a tie (it is a third
smaller on our JSON); with neither acceptable the answer goes uncompressed. ``identity;q=0``
with nothing else acceptable still gets identity: answering 406 would help nobody.
"""

from __future__ import annotations

from litestar.datastructures import Headers
from litestar.enums import CompressionEncoding
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import Receive, Scope, Send

PREFERENCE = ("br", "gzip")
"""The codings this server sends, in the order it prefers them on equal weights."""


def _weight(params: list[str]) -> float | None:
    """The ``q`` of one entry's parameters (1 when absent), None if it is malformed."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() != "q":
            continue
        value = value.strip()
        try:
            weight = float(value)
        except ValueError:
            return None
        # RFC 9110's qvalue: 0 to 1 with at most three decimals; anything else is malformed.
        if not 0 <= weight <= 1 or not value.replace(".", "", 1).isdigit():
            return None
        return weight
    return 1.0


def accepted_weights(header: str) -> dict[str, float]:
    """Each coding named in an ``Accept-Encoding`` value with its weight (lower case).

    A malformed entry is ignored; a coding named twice keeps its last weight.
    """
    weights: dict[str, float] = {}
    for entry in header.split(","):
        name, *params = entry.split(";")
        name = name.strip().lower()
        if not name:
            continue
        weight = _weight(params)
        if weight is None:
            continue
        weights["gzip" if name == "x-gzip" else name] = weight
    return weights


def choose_encoding(header: str, offered: tuple[str, ...] = PREFERENCE) -> str | None:
    """The coding of ``offered`` to answer with, or None for no compression."""
    weights = accepted_weights(header)
    wildcard = weights.get("*", 0.0)
    best, best_weight = None, 0.0
    for coding in offered:
        weight = weights.get(coding, wildcard)
        if weight > best_weight:
            best, best_weight = coding, weight
    return best


class NegotiatedCompression(CompressionMiddleware):
    """Litestar's compression, with the coding chosen by :func:`choose_encoding`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.config
        offered = tuple(
            coding
            for coding in PREFERENCE
            if coding == config.compression_facade.encoding
            or (coding == "gzip" and config.gzip_fallback)
        )
        chosen = choose_encoding(Headers.from_scope(scope).get("accept-encoding", ""), offered)
        if chosen is None:
            await self.app(scope, receive, send)
            return
        encoding = CompressionEncoding.GZIP if chosen == "gzip" else chosen
        wrapped = self.create_compression_send_wrapper(
            send=send, compression_encoding=encoding, scope=scope
        )
        await self.app(scope, receive, wrapped)
