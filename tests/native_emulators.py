"""The FCM or the APNs emulator as a process of its own, for ``scripts/bench_storm.py``.

``python -m tests.native_emulators --service fcm|apns --port P --state FILE`` serves one
emulator on 127.0.0.1:P: FCM under uvicorn (HTTP/1.1, which Reppu's FCM client falls back to
in cleartext), APNs over HTTP/2 with prior knowledge (``tests/h2_server.py``; Reppu's APNs
client speaks nothing else). ``FILE`` is JSON written by the benchmark: the service's private
key (the FCM service account's RSA key, or the APNs team's P-256 key), as PEM, and the device
tokens to install, so that both processes hold the same keys and devices.

Besides the emulator's own routes, ``GET /_admin/stats`` answers the counters the benchmark
polls, in the shape ``tests/push_service.py`` answers them: ``accepted`` (sends answered 200),
``distinct_tokens_accepted``, ``refused`` (by status), and ``first_accept_at`` and
``last_accept_at`` on ``time.monotonic()`` (the machine's clock, the same in every process).
The emulators keep no payloads here: 100,000 pushes would only fill memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.apns_service import ApnsService
from tests.emulator_http import Receive, Scope, Send, answer_json
from tests.fcm_service import FcmService
from tests.h2_server import App, serve_h2


@dataclass(slots=True)
class Counters:
    """What the benchmark polls, counted around the emulator's own answers."""

    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    first: float | None = None
    last: float | None = None
    tokens: set[str] = field(default_factory=set)

    def stats(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "distinct_tokens_accepted": len(self.tokens),
            "refused": self.refused,
            "first_accept_at": self.first,
            "last_accept_at": self.last,
        }


def counting(app: Any, counters: Counters, token_of: Any, send_path: str) -> Any:
    """``app`` with ``GET /_admin/stats`` and its sends (paths under ``send_path``) counted;
    ``token_of(scope, body)`` names a send's device."""

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/_admin/stats":
            await answer_json(send, 200, counters.stats())
            return
        if not scope["path"].startswith(send_path):
            await app(scope, receive, send)
            return
        body = bytearray()

        async def replay() -> Any:
            message = await receive()
            body.extend(message.get("body", b""))
            return message

        async def observe(message: Any) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status == 200:
                    now = time.monotonic()
                    counters.accepted += 1
                    counters.first = now if counters.first is None else counters.first
                    counters.last = now
                    counters.tokens.add(token_of(scope, bytes(body)))
                else:
                    counters.refused[str(status)] = counters.refused.get(str(status), 0) + 1
            await send(message)

        await app(scope, replay, observe)

    return counted


def _fcm_token(_scope: Scope, body: bytes) -> str:
    return str(json.loads(body)["message"]["token"])


def _apns_token(scope: Scope, _body: bytes) -> str:
    return str(scope["path"]).removeprefix("/3/device/")


def build(service: str, origin: str, state: dict[str, Any]) -> tuple[App, Counters]:
    """The emulator named by ``service``, holding ``state``'s key and devices, counted."""
    key = serialization.load_pem_private_key(state["private_key"].encode(), password=None)
    counters = Counters()
    if service == "fcm":
        assert isinstance(key, rsa.RSAPrivateKey)
        fcm = FcmService(origin=origin, _key=key, keep_received=False)
        for token in state["tokens"]:
            fcm.install(token)
        return counting(fcm.app, counters, _fcm_token, "/v1/projects/"), counters
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    apns = ApnsService(origin=origin, _key=key, require_http2=True, keep_received=False)
    for token in state["tokens"]:
        apns.install(token)
    return counting(apns.app, counters, _apns_token, "/3/device/"), counters


async def _serve_apns(app: App, port: int) -> None:
    async with serve_h2(app, port=port) as origin:
        print(f"APNs emulator on {origin}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--service", choices=("fcm", "apns"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args(argv)
    origin = f"http://127.0.0.1:{args.port}"
    app, _ = build(args.service, origin, json.loads(args.state.read_text()))
    if args.service == "apns":
        asyncio.run(_serve_apns(app, args.port))
        return
    print(f"FCM emulator on {origin}", flush=True)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, interface="asgi3", log_level="warning",
        access_log=False,
    )  # fmt: skip


if __name__ == "__main__":
    main()
