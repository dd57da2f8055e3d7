"""A minimal HTTP/2 server (cleartext, prior knowledge) for an ASGI app, on loopback.

Enough for the APNs emulator: each stream's request is collected, handed to the app with
``http_version`` "2", and its answer framed back. Built on ``h2``, the same library httpx's
HTTP/2 uses on the client side, so the test proves both ends speak HTTP/2 frames; TLS and
ALPN (how a real client picks HTTP/2 with Apple) are not part of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import h2.config
import h2.connection
import h2.events

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class _Connection(asyncio.Protocol):
    def __init__(self, app: App) -> None:
        self.app = app
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, tuple[list[tuple[bytes, bytes]], bytearray]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.h2.initiate_connection()
        transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.transport.write(self.h2.data_to_send())
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self.streams[event.stream_id] = (list(event.headers), bytearray())
            elif isinstance(event, h2.events.DataReceived):
                self.streams[event.stream_id][1].extend(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                task = asyncio.ensure_future(self._answer(event.stream_id))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        self.transport.write(self.h2.data_to_send())

    async def _answer(self, stream_id: int) -> None:
        raw_headers, body = self.streams.pop(stream_id)
        pseudo = {k: v for k, v in raw_headers if k.startswith(b":")}
        scope = {
            "type": "http",
            "http_version": "2",
            "method": pseudo[b":method"].decode(),
            "path": pseudo[b":path"].decode().split("?")[0],
            "headers": [(k, v) for k, v in raw_headers if not k.startswith(b":")],
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        answer: dict[str, Any] = {}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"
                ]
            else:
                data = message.get("body", b"")
                headers = [(b":status", str(answer["status"]).encode()), *answer["headers"]]
                headers.append((b"content-length", str(len(data)).encode()))
                self.h2.send_headers(stream_id, headers)
                self.h2.send_data(stream_id, data, end_stream=True)
                assert self.transport is not None
                self.transport.write(self.h2.data_to_send())

        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def serve_h2(app: App) -> AsyncIterator[str]:
    """Serve ``app`` over HTTP/2 on 127.0.0.1 (a free port); yields its origin."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(app), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()
