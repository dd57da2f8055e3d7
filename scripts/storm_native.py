"""The storm benchmark's native devices: a mix of Web Push, FCM and APNs (``--mix``).

``scripts/bench_storm.py`` gives every guardian one or two devices; with ``--mix`` each device
is a Web Push subscription, an Android app registered for FCM or an iPhone app registered for
APNs, in the proportions asked (``webpush=1,fcm=1,apns=1``: a third each; drawn with the
seed, exact to one device). For the native shares this module:

1. makes the services' credentials and the devices' tokens in this process (the FCM service
   account's RSA key and the APNs team's P-256 key, through the emulators' own classes) and
   writes what Reppu reads (``REPPU_FCM_SERVICE_ACCOUNT``, ``REPPU_APNS_KEY_FILE`` and the
   rest, into the environment of ``reppu serve`` and ``reppu worker``) and what each emulator
   process reads (its key and the tokens to install);
2. inserts one ``auth_token`` and one ``native_device`` row per device, through the bulk path,
   as ``POST /push/devices`` would have stored them (APNs tokens in lower-case hex);
3. starts the emulators (``tests/native_emulators.py``): FCM under uvicorn, APNs over HTTP/2
   (prior knowledge, as Reppu's APNs client speaks only HTTP/2); each checks what Google or
   Apple checks (the OAuth assertion and bearer, the ES256 provider token on every request);
4. polls all the emulators as one (:class:`Emulators`): the storm is over when the pushes
   accepted by the three add up to the pushes expected.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from benchlib import BenchError, Cleanup

from server.db.bulk import Rows, bulk_insert
from server.db.engine import open_database
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests/ is not installed
    sys.path.insert(0, str(ROOT))
from tests.apns_service import ApnsService  # noqa: E402
from tests.fcm_service import FcmService  # noqa: E402

CHANNELS = ("webpush", "fcm", "apns")
UP_WITHIN = 60.0
ANDROID_APP = "fi.reppu.bench"
"""The Android package the bench's FCM devices registered with (``REPPU_FCM_APP_ID``)."""


def parse_mix(text: str) -> dict[str, float]:
    """``webpush=1,fcm=1,apns=1`` -> weights; a channel left out weighs 0."""
    weights = dict.fromkeys(CHANNELS, 0.0)
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        if name not in weights or not weight:
            raise ValueError(f"--mix: {part!r} is not CHANNEL=WEIGHT ({', '.join(CHANNELS)})")
        weights[name] = float(weight)
    if sum(weights.values()) <= 0 or min(weights.values()) < 0:
        raise ValueError("--mix: the weights must be positive and add up to more than 0")
    return weights


def describe_mix(weights: dict[str, float]) -> str:
    """As given on the command line, channels with no weight left out."""
    return ",".join(f"{name}={weights[name]:g}" for name in CHANNELS if weights[name])


def assign_channels(devices: int, weights: dict[str, float], seed: int) -> list[str]:
    """A channel per device: each channel's share of ``devices`` (rounded, the last takes the
    rest), in an order shuffled with ``seed``, so that no city gets one channel only."""
    total = sum(weights.values())
    counts = {name: round(devices * weights[name] / total) for name in CHANNELS}
    last = [name for name in CHANNELS if weights[name]][-1]
    counts[last] = devices - sum(n for name, n in counts.items() if name != last)
    channels = [name for name in CHANNELS for _ in range(counts[name])]
    random.Random(f"reppu-bench-storm-mix:{seed}").shuffle(channels)  # noqa: S311
    return channels


@dataclass(slots=True)
class Native:
    """The native services of one storm: where they listen and what they hold."""

    folder: Path
    origins: dict[str, str] = field(default_factory=dict)
    """``fcm`` / ``apns`` -> the emulator's origin, for the channels in the mix."""
    tokens: dict[str, list[str]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    """What ``reppu serve`` and ``reppu worker`` need on top of their environment."""
    states: dict[str, Path] = field(default_factory=dict)
    app_ids: dict[str, str] = field(default_factory=dict)
    """The Android package and the iOS bundle id the devices registered with."""
    procs: list[Any] = field(default_factory=list)


def prepare_native(folder: Path, counts: dict[str, int], ports: dict[str, int]) -> Native:
    """Credentials, tokens and the files for ``counts`` FCM and APNs devices (step 1)."""
    native = Native(folder)
    if counts.get("fcm"):
        origin = f"http://127.0.0.1:{ports['fcm']}"
        fcm = FcmService(origin=origin, keep_received=False)
        account = folder / "fcm-service-account.json"
        account.write_text(json.dumps(fcm.service_account()))
        native.tokens["fcm"] = [fcm.install() for _ in range(counts["fcm"])]
        native.origins["fcm"] = origin
        native.app_ids["fcm"] = ANDROID_APP
        native.env.update(
            REPPU_FCM_SERVICE_ACCOUNT=str(account),
            REPPU_FCM_APP_ID=ANDROID_APP,
            REPPU_FCM_URL=origin,
        )
        key = fcm.service_account()["private_key"]
        native.states["fcm"] = _state(folder, "fcm", key, native.tokens["fcm"])
    if counts.get("apns"):
        origin = f"http://127.0.0.1:{ports['apns']}"
        apns = ApnsService(origin=origin, keep_received=False)
        p8 = folder / "apns-key.p8"
        p8.write_text(apns.key_pem())
        native.tokens["apns"] = [apns.install() for _ in range(counts["apns"])]
        native.origins["apns"] = origin
        native.app_ids["apns"] = apns.topic
        native.env.update(
            REPPU_APNS_KEY_FILE=str(p8),
            REPPU_APNS_KEY_ID=apns.key_id,
            REPPU_APNS_TEAM_ID=apns.team_id,
            REPPU_APNS_TOPIC=apns.topic,
            REPPU_APNS_URL=origin,
        )
        native.states["apns"] = _state(folder, "apns", apns.key_pem(), native.tokens["apns"])
    return native


def _state(folder: Path, service: str, key: str, tokens: list[str]) -> Path:
    path = folder / f"{service}-state.json"
    path.write_text(json.dumps({"private_key": key, "tokens": tokens}))
    return path


async def insert_native_devices(
    settings: Settings, db: Any, owners: dict[str, Sequence[int]], native: Native
) -> None:
    """One auth token and one ``native_device`` row per FCM or APNs device (step 2)."""
    accounts = dict(await db.rows("SELECT person, id FROM account"))
    next_token = int(await db.value("SELECT COALESCE(MAX(id), 0) FROM auth_token")) + 1
    next_device = int(await db.value("SELECT COALESCE(MAX(id), 0) FROM native_device")) + 1
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp: Any = now
    until: Any = now + dt.timedelta(days=30)
    if settings.is_sqlite:  # the text form Piccolo's SQLite engine stores (see demo/load.py)
        stamp, until = str(stamp), str(until)
    tokens: list[tuple[Any, ...]] = []
    devices: list[tuple[Any, ...]] = []
    for platform, people in owners.items():
        app_id = native.app_ids.get(platform, "")
        for person, token in zip(people, native.tokens.get(platform, []), strict=True):
            digest = hashlib.sha256(f"bench-storm-native-{next_token}".encode()).hexdigest()
            name = f"bench {platform} phone {next_device}"
            tokens.append((next_token, accounts[person], digest, name, stamp, until, None))
            devices.append((next_device, person, next_token, platform, token, app_id, stamp))
            next_token += 1
            next_device += 1
    if not devices:
        return
    async with open_database(settings) as engine:
        await bulk_insert(
            engine,
            [
                Rows(
                    "auth_token",
                    (
                        "id",
                        "account",
                        "token_hash",
                        "device_name",
                        "created_at",
                        "expires_at",
                        "revoked_at",
                    ),
                    tokens,
                ),
                Rows(
                    "native_device",
                    ("id", "person", "device", "platform", "token", "app_id", "created_at"),
                    devices,
                ),
            ],
        )


async def start_native(cleanup: Cleanup, native: Native) -> None:
    """Start each native emulator in a process of its own and wait for it (step 3)."""
    for service, origin in native.origins.items():
        log = native.folder / f"emulator-{service}.log"
        port = origin.rsplit(":", 1)[1]
        cmd = [
            sys.executable, "-m", "tests.native_emulators", "--service", service,
            "--port", port, "--state", str(native.states[service]),
        ]  # fmt: skip
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
        proc = cleanup.start(cmd, env=env, log=log)
        native.procs.append(proc)
        async with Emulators({service: origin}) as one:
            deadline = time.monotonic() + UP_WITHIN
            while True:
                if proc.poll() is not None:
                    raise BenchError(f"the {service} emulator exited; see {log}")
                with contextlib.suppress(httpx.HTTPError):
                    await one.stats()
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"the {service} emulator did not answer; see {log}")
                await asyncio.sleep(0.2)


class Emulators:
    """All the storm's emulators polled as one (step 4): ``stats()`` adds up their counters;
    ``by_channel`` keeps each one's."""

    def __init__(self, origins: dict[str, str]) -> None:
        self.origins = origins
        self._http1 = httpx.AsyncClient(timeout=10.0)
        self._http2 = httpx.AsyncClient(timeout=10.0, http1=False, http2=True)
        self.by_channel: dict[str, dict[str, Any]] = {}

    async def __aenter__(self) -> Emulators:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http1.aclose()
        await self._http2.aclose()

    def client(self, channel: str) -> httpx.AsyncClient:
        """APNs' emulator speaks only HTTP/2, its stats included."""
        return self._http2 if channel == "apns" else self._http1

    async def stats(self) -> dict[str, Any]:
        merged: dict[str, Any] = {
            "accepted": 0,
            "distinct_tokens_accepted": 0,
            "refused": {},
            "first_accept_at": None,
            "last_accept_at": None,
        }
        for channel, origin in self.origins.items():
            answer = await self.client(channel).get(f"{origin}/_admin/stats")
            if answer.status_code != 200:
                raise BenchError(f"the {channel} emulator's stats: HTTP {answer.status_code}")
            one: dict[str, Any] = answer.json()
            self.by_channel[channel] = one
            merged["accepted"] += int(one["accepted"])
            merged["distinct_tokens_accepted"] += int(one["distinct_tokens_accepted"])
            for status, n in (one.get("refused") or {}).items():
                key = status if channel == "webpush" else f"{channel} {status}"
                merged["refused"][key] = merged["refused"].get(key, 0) + int(n)
            for name, pick in (("first_accept_at", min), ("last_accept_at", max)):
                if one.get(name) is not None:
                    now = float(one[name])
                    merged[name] = now if merged[name] is None else pick(merged[name], now)
        return merged
