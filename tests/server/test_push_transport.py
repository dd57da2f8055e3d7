"""The worker's HTTP client for Web Push (server/push_transport.KeepAliveTransport), against
small servers on loopback that answer the way push services can."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.push_transport import KeepAliveTransport, PushTransportError

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]
CREATED = b"HTTP/1.1 201 Created\r\nLocation: /m/1\r\nContent-Length: 0\r\n\r\n"


class Service:
    """A push service on loopback: reads each request whole, lets ``answer`` reply."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.requests.append(head + await reader.readexactly(length))
                await self.answer(head, writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def start(self, context: ssl.SSLContext | None = None) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=context)
        self.port = self.server.sockets[0].getsockname()[1]
        scheme = "https" if context else "http"
        return f"{scheme}://127.0.0.1:{self.port}/push/abc"


@pytest.fixture
async def fx_service() -> AsyncIterator[Callable[[Answer], Awaitable[tuple[Service, str]]]]:
    started: list[Service] = []

    async def start(answer: Answer) -> tuple[Service, str]:
        service = Service(answer)
        started.append(service)
        return service, await service.start()

    yield start
    for service in started:
        assert service.server is not None
        service.server.close()


async def created(_: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(CREATED)


HEADERS = {"TTL": "60", "Content-Encoding": "aes128gcm", "Authorization": "vapid t=x, k=y"}


async def test_requests_go_over_one_kept_alive_connection(fx_service: Any) -> None:
    service, url = await fx_service(created)
    transport = KeepAliveTransport(timeout=5, per_host=4)
    for i in range(10):
        status, headers = await transport.post(url, HEADERS, b"body %d" % i)
        assert (status, headers["location"]) == (201, "/m/1")
    await transport.aclose()
    assert service.connections == 1
    first = service.requests[0]
    assert first.startswith(b"POST /push/abc HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:%d\r\n" % service.port in first
    assert b"\r\nTTL: 60\r\n" in first
    assert first.endswith(b"\r\n\r\nbody 0")


async def test_as_many_connections_as_requests_at_once(fx_service: Any) -> None:
    async def slow(_: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.05)
        writer.write(CREATED)

    service, url = await fx_service(slow)
    transport = KeepAliveTransport(timeout=5, per_host=3)
    answers = await asyncio.gather(*(transport.post(url, HEADERS, b"x") for _ in range(3)))
    assert [status for status, _ in answers] == [201] * 3
    await asyncio.gather(*(transport.post(url, HEADERS, b"x") for _ in range(3)))
    await transport.aclose()
    assert service.connections == 3


async def test_a_chunked_refusal_is_read_whole_and_the_connection_kept(fx_service: Any) -> None:
    async def refuse(_: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\n"
            b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
            b'7\r\n{"code"\r\n9\r\n: 429 }  \r\n0\r\n\r\n'
        )

    service, url = await fx_service(refuse)
    transport = KeepAliveTransport(timeout=5, per_host=1)
    for _ in range(2):
        status, headers = await transport.post(url, HEADERS, b"x")
        assert (status, headers["retry-after"]) == (429, "30")
    await transport.aclose()
    assert service.connections == 1


async def test_a_redirect_is_an_answer_never_followed(fx_service: Any) -> None:
    async def redirect(_: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://10.0.0.1/\r\n"
            b"Content-Length: 0\r\n\r\n"
        )

    service, url = await fx_service(redirect)
    transport = KeepAliveTransport(timeout=5, per_host=1)
    status, headers = await transport.post(url, HEADERS, b"x")
    await transport.aclose()
    assert (status, headers["location"], len(service.requests)) == (307, "http://10.0.0.1/", 1)


async def test_connection_close_is_obeyed(fx_service: Any) -> None:
    async def once(_: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")

    service, url = await fx_service(once)
    transport = KeepAliveTransport(timeout=5, per_host=1)
    for _ in range(3):
        assert (await transport.post(url, HEADERS, b"x"))[0] == 201
    await transport.aclose()
    assert service.connections == 3


async def test_a_kept_alive_connection_the_service_closed_is_replaced(fx_service: Any) -> None:
    """The service answers the first request of each connection and hangs up, unanswered,
    on the second: as when its idle time-out and our next request cross on the wire."""
    seen: set[int] = set()

    async def one_per_connection(_: bytes, writer: asyncio.StreamWriter) -> None:
        if id(writer) in seen:
            writer.close()
            return
        seen.add(id(writer))
        writer.write(CREATED)

    service, url = await fx_service(one_per_connection)
    transport = KeepAliveTransport(timeout=5, per_host=1)
    for _ in range(3):
        assert (await transport.post(url, HEADERS, b"x"))[0] == 201
    await transport.aclose()
    assert service.connections == 3


async def test_no_answer_is_a_transport_error_and_the_connection_is_dropped(
    fx_service: Any,
) -> None:
    calls = 0

    async def hang_first(_: bytes, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(10)
        writer.write(CREATED)

    service, url = await fx_service(hang_first)
    transport = KeepAliveTransport(timeout=0.3, per_host=1)
    with pytest.raises(PushTransportError, match="Timeout"):
        await transport.post(url, HEADERS, b"x")
    assert (await transport.post(url, HEADERS, b"x"))[0] == 201
    await transport.aclose()
    assert service.connections == 2


async def test_nobody_listening_is_a_transport_error(fx_service: Any) -> None:
    service, url = await fx_service(created)
    assert service.server is not None
    service.server.close()
    await service.server.wait_closed()
    transport = KeepAliveTransport(timeout=5, per_host=1)
    with pytest.raises(PushTransportError):
        await transport.post(url, HEADERS, b"x")


async def test_a_line_break_in_a_header_or_the_path_sends_nothing(fx_service: Any) -> None:
    service, url = await fx_service(created)
    transport = KeepAliveTransport(timeout=5, per_host=1)
    with pytest.raises(PushTransportError):
        await transport.post(url, {"Topic": "a\r\nX-Injected: 1"}, b"x")
    with pytest.raises(PushTransportError):
        await transport.post(url + "/a b", HEADERS, b"x")
    with pytest.raises(PushTransportError):
        await transport.post(url + "/\u00e4", HEADERS, b"x")
    await transport.aclose()
    assert service.requests == []


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "push.localhost")])
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # valid whatever the clock says
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * 60))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_is_verified(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    service = Service(created)
    url = await service.start(server_context)
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        transport = KeepAliveTransport(timeout=5, per_host=1, ssl_context=trusting)
        for _ in range(2):
            assert (await transport.post(url, HEADERS, b"x"))[0] == 201
        await transport.aclose()
        assert service.connections == 1
        stranger = KeepAliveTransport(timeout=5, per_host=1)  # the system's roots only
        with pytest.raises(PushTransportError):
            await stranger.post(url, HEADERS, b"x")
        await stranger.aclose()
    finally:
        assert service.server is not None
        service.server.close()


async def test_interim_answers_are_passed_over(fx_service: Any) -> None:
    """A 103 Early Hints (or 100 Continue) before the final answer belongs to the same
    request: it must never be taken for the answer, or the next request on the connection
    would get this one's (a 410 meant for one device deleting another's subscription)."""
    statuses = iter([201, 410])

    async def hints_first(_: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        status = next(statuses)
        writer.write(
            b"HTTP/1.1 %d Whatever\r\nX-N: %d\r\nContent-Length: 0\r\n\r\n" % (status, status)
        )

    service, url = await fx_service(hints_first)
    transport = KeepAliveTransport(timeout=5, per_host=1)
    first = await transport.post(url, HEADERS, b"x")
    second = await transport.post(url, HEADERS, b"x")
    await transport.aclose()
    assert (first[0], first[1].get("x-n"), "link" in first[1]) == (201, "201", False)
    assert (second[0], second[1].get("x-n")) == (410, "410")
    assert service.connections == 1


async def test_an_answer_whose_body_ends_with_the_connection_is_an_answer(
    fx_service: Any,
) -> None:
    async def until_close(_: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 201 Created\r\nConnection: close\r\n\r\nthe rest")
        await writer.drain()
        writer.close()

    service, url = await fx_service(until_close)
    transport = KeepAliveTransport(timeout=5, per_host=1)
    status, headers = await transport.post(url, HEADERS, b"x")
    assert (status, headers["connection"]) == (201, "close")
    assert (await transport.post(url, HEADERS, b"x"))[0] == 201
    await transport.aclose()
    assert len(service.requests) == 2, "accepted once each: not sent again"
