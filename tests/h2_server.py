"""A minimal HTTP/2 server for an ASGI app, on loopback: cleartext (prior knowledge) or TLS.

Enough for the APNs emulator: each stream's request is collected, handed to the app with
``http_version`` "2", and its answer framed back. Built on ``h2``, the same library httpx's
HTTP/2 uses on the client side, so the tests prove both ends speak HTTP/2 frames. With
``tls`` (:func:`loopback_tls`: a certificate authority and a certificate for 127.0.0.1, made
afresh) it serves over TLS and offers the given ALPN protocols, ``h2`` as Apple does, or
others to play a server that does not speak HTTP/2. ``scripts/bench_storm.py`` runs it as a
process (``python -m tests.h2_server``) to serve the APNs emulator to the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


@dataclass(frozen=True, slots=True)
class LoopbackTls:
    """A certificate authority of the test's own and a certificate it signed for 127.0.0.1."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def server_context(self, alpn: Sequence[str] = ("h2",)) -> ssl.SSLContext:
        """The server's side, offering ``alpn`` (empty: no ALPN at all)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as folder:  # load_cert_chain reads files only
            cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
            cert.write_bytes(self.cert_pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        if alpn:
            context.set_alpn_protocols(list(alpn))
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client's side that trusts this authority (and nothing else)."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


_VALID = (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
"""OpenSSL checks validity against the machine's real clock, which tests freeze only for
Python: a window that holds whatever instant a test plays."""


def loopback_tls() -> LoopbackTls:
    """Make a certificate authority and a server certificate for 127.0.0.1 (ECDSA P-256)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _VALID
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Reppu test CA"))
        .issuer_name(_name("Reppu test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return LoopbackTls(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@contextlib.asynccontextmanager
async def serve_h2(
    app: App, tls: ssl.SSLContext | None = None, port: int = 0
) -> AsyncIterator[str]:
    """Serve ``app`` over HTTP/2 on 127.0.0.1 (``port``, 0: a free one), over TLS with the
    ``tls`` server context if given; yields its origin."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(app), "127.0.0.1", port, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()
