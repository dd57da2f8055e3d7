"""How the delivery worker puts a Web Push request on the wire.

:class:`KeepAliveTransport` is what runs: HTTP/1.1 over asyncio with kept-alive connections
per push service and ``httptools`` (the C parser uvicorn uses) reading the answers. A push is
one small POST whose answer is a status and a few headers, so a general client's machinery is
most of its cost: httpx's connection pool spent about 2,100 us of CPU per push at 50 in
flight, aiohttp about 560 us (the storm benchmark, ``docs/benchmarks.md``), and this client
about half of aiohttp's, measured side by side against one local server by
``scripts/bench_push_transport.py`` (68-97 us against 174-204 us per request at load 5.6, the
server's share included; aiohttp, the client before it, is kept there as the yardstick).
:class:`HttpxTransport` serves the tests, which talk to the push-service emulator in-process
through ``httpx.ASGITransport``.

A transport answers ``(status, headers)``; a time-out or a connection that fails raises
:class:`PushTransportError`, which the worker turns into a retry with backoff.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

import httptools
import httpx


class PushTransportError(Exception):
    """No answer: a time-out, a refused or broken connection."""


class PushTransport(Protocol):
    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]: ...

    async def aclose(self) -> None: ...


class HttpxTransport:
    """An ``httpx.AsyncClient`` (for tests: one over ``httpx.ASGITransport``)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        try:
            answer = await self.client.post(
                url, headers=dict(headers), content=body, follow_redirects=False
            )
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise PushTransportError(type(exc).__name__) from exc
        return answer.status_code, dict(answer.headers)

    async def aclose(self) -> None:
        await self.client.aclose()


MAX_HEADER_BYTES = 64 * 1024
"""More header bytes than this in one answer is not a push service's answer."""


class _Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection: one request at a time, its answer parsed as the
    bytes arrive. Interim answers (1xx: 100 Continue, 103 Early Hints) are read and passed
    over; the final one answers the request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[tuple[int, dict[str, str], bool]] | None = None
        self.headers: dict[str, str] = {}
        self.header_name = ""
        self.header_bytes = 0
        self.final_status: int | None = None
        """The status of the final answer once its headers are in (its body may follow)."""
        self.heard = False
        """Any byte of the current request's answer has come."""
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.heard = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(PushTransportError(f"unreadable answer: {type(exc).__name__}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self.answer
        if self.final_status is not None and answer is not None and not answer.done():
            # An answer whose body runs until the connection closes (no length, no chunks).
            answer.set_result((self.final_status, self.headers, False))
        self._fail(PushTransportError("connection closed"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers, self.header_bytes = {}, 0  # a new dict: the last one was handed out

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > MAX_HEADER_BYTES:
            self._fail(PushTransportError("answer headers too large"))
            self.close()
            return
        if name:
            self.header_name = name.decode("latin-1").lower()
            self.headers[self.header_name] = value.decode("latin-1")
        elif self.header_name in self.headers:  # a value that came in two pieces
            self.headers[self.header_name] += value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if not _interim(status):
            self.final_status = status

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if _interim(status):
            return  # the final answer is still to come
        answer = self.answer
        if answer is not None and not answer.done():
            answer.set_result((status, self.headers, self.parser.should_keep_alive()))

    def _fail(self, exc: Exception) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(exc)

    def send(self, request: bytes) -> asyncio.Future[tuple[int, dict[str, str], bool]]:
        assert self.transport is not None
        self.heard, self.final_status = False, None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _interim(status: int) -> bool:
    return 100 <= status < 200 and status != 101


class KeepAliveTransport:
    """HTTP/1.1 POSTs over kept-alive connections, at most ``per_host`` per push service.

    Never follows a redirect: a 3xx is the push service's answer, judged like any other (the
    endpoint was checked against REPPU_PUSH_HOSTS, a Location header was not: a 307 followed
    would repeat the POST anywhere). A
    request whose kept-alive connection turns out to have been closed by the service before
    any answer came is sent again on the next kept-alive connection, or a new one (delivery is
    at least once anyway, and the push's ``Topic`` collapses a repeat); a time-out closes its
    connection.
    """

    def __init__(
        self, *, timeout: float, per_host: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._timeout = timeout
        self._per_host = per_host
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise PushTransportError("not an http(s) URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise PushTransportError("bad port") from exc
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        lines = [f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        head = "".join(lines)
        # Our own headers and a checked endpoint: never a line break, but never trust that.
        if (
            not target.isascii()
            or any(c <= " " or c == "\x7f" for c in target)
            or any("\r" in text or "\n" in text for pair in headers.items() for text in pair)
        ):
            raise PushTransportError("a control character or space in the path or a header")
        try:
            request = head.encode("latin-1") + body
        except UnicodeEncodeError as exc:
            raise PushTransportError("a header that is not latin-1") from exc
        key = (parts.scheme, host, port)
        try:
            async with asyncio.timeout(self._timeout):
                return await self._exchange(key, request)
        except TimeoutError as exc:
            raise PushTransportError("TimeoutError") from exc
        except OSError as exc:
            raise PushTransportError(type(exc).__name__) from exc

    async def _exchange(
        self, key: tuple[str, str, int], request: bytes
    ) -> tuple[int, dict[str, str]]:
        idle = self._idle.setdefault(key, [])
        while idle:
            connection = idle.pop()
            if connection.closed:
                self._open.discard(connection)
                continue
            try:
                return await self._use(key, connection, request)
            except PushTransportError:
                if connection.heard:
                    raise
                # Closed by the service while it sat idle: once more on a new connection.
        return await self._use(key, await self._connect(key), request)

    async def _connect(self, key: tuple[str, str, int]) -> _Connection:
        scheme, host, port = key
        context: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:  # the system's roots, loaded once per transport
                self._ssl = ssl.create_default_context()
            context = self._ssl
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            _Connection, host, port, ssl=context, server_hostname=host if context else None
        )
        self._open.add(connection)
        return connection

    async def _use(
        self, key: tuple[str, str, int], connection: _Connection, request: bytes
    ) -> tuple[int, dict[str, str]]:
        try:
            status, headers, keep = await connection.send(request)
        except BaseException:
            connection.close()
            self._open.discard(connection)
            raise
        idle = self._idle.setdefault(key, [])
        if keep and not connection.closed and len(idle) < self._per_host:
            idle.append(connection)
        else:
            connection.close()
            self._open.discard(connection)
        return status, headers

    async def aclose(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()
