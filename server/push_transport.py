"""How the delivery worker puts a Web Push request on the wire.

:class:`AiohttpTransport` is what runs: one shared ``aiohttp`` session per worker. It replaced
``httpx`` after the storm benchmark (``docs/benchmarks.md``, "Storm bulletin"): with 50
requests in flight per push service, httpx's connection pool spent 83 % of a worker's busy
time choosing connections (about 2,100 us of CPU per push); aiohttp sends the same pushes
for about 560 us each, 3.9 times less. :class:`HttpxTransport` serves the tests, which talk to
the push-service emulator in-process through ``httpx.ASGITransport``.

A transport answers ``(status, headers)``; a time-out or a connection that fails raises
:class:`PushTransportError`, which the worker turns into a retry with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import aiohttp
import httpx


class PushTransportError(Exception):
    """No answer: a time-out, a refused or broken connection."""


class PushTransport(Protocol):
    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """One aiohttp session, made on first use inside the worker's event loop."""

    def __init__(self, *, timeout: float, per_host: int) -> None:
        self._timeout = timeout
        self._per_host = per_host
        self._session: aiohttp.ClientSession | None = None

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=self._per_host),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                auto_decompress=False,
            )
        try:
            # Never follow a redirect: the endpoint was checked against REPPU_PUSH_HOSTS, a
            # Location header was not (a 307 would repeat the POST anywhere, SSRF). A 3xx is
            # the push service's answer, judged like any other 4xx/3xx: not retried.
            async with self._session.post(
                url, headers=dict(headers), data=body, allow_redirects=False
            ) as answer:
                await answer.read()
                return answer.status, dict(answer.headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise PushTransportError(type(exc).__name__) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


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
