#!/usr/bin/env python3
"""CPU per Web Push request of the worker's HTTP clients, side by side in one process.

Each client sends the same POSTs (a storm push's headers and a 300-byte body, 50 in flight)
to one minimal HTTP/1.1 server on loopback in the same process; the figure is this process's
CPU per request, the server's share included (the same for every client), so compare the
clients by their difference and ratio, not by the absolute figure.

Run: ``.venv/bin/python scripts/bench_push_transport.py [--requests 6000] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Mapping

import aiohttp

from server.push_transport import KeepAliveTransport, PushTransport, PushTransportError

HEADERS = {
    "Authorization": "vapid t=" + "x" * 300 + ", k=" + "y" * 87,
    "TTL": "43200",
    "Urgency": "high",
    "Content-Encoding": "aes128gcm",
    "Content-Type": "application/octet-stream",
    "Topic": "b1",
}


class AiohttpTransport:
    """The worker's transport before ``KeepAliveTransport``: one aiohttp session, made on
    first use inside the event loop; kept here as the yardstick."""

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


ANSWER = b"HTTP/1.1 201 Created\r\nLocation: /m/1\r\nTTL: 43200\r\nContent-Length: 0\r\n\r\n"


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _measure(transport: PushTransport, url: str, requests: int, at_once: int) -> float:
    gate = asyncio.Semaphore(at_once)

    async def one() -> None:
        async with gate:
            status, _ = await transport.post(url, HEADERS, b"z" * 300)
            assert status == 201

    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(requests)))
    return (time.process_time() - started) / requests * 1e6


async def main(requests: int, rounds: int, at_once: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/push/abc"
    makers: dict[str, Callable[[], PushTransport]] = {
        "aiohttp": lambda: AiohttpTransport(timeout=10, per_host=at_once),
        "keep-alive (httptools)": lambda: KeepAliveTransport(timeout=10, per_host=at_once),
    }
    figures: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(rounds):
        for name, make in makers.items():
            transport = make()
            await _measure(transport, url, 200, at_once)  # connections opened, warmed up
            figures[name].append(await _measure(transport, url, requests, at_once))
            await transport.aclose()
    server.close()
    await server.wait_closed()
    load = os.getloadavg()[0]
    print(f"load average {load:.2f}; {requests} requests x {rounds} rounds, {at_once} at once")
    best = {name: min(values) for name, values in figures.items()}
    for name, values in figures.items():
        print(
            f"{name:24} CPU per request (server's share included): "
            f"{', '.join(f'{v:.0f}' for v in values)} us; best {best[name]:.0f} us"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--at-once", type=int, default=50)
    options = parser.parse_args()
    asyncio.run(main(options.requests, options.rounds, options.at_once))
