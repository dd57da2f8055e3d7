"""Nothing a person sends chooses where the server connects (Reppu issue 14, item 6).

A channel is an e-mail address or a phone number; the mail server and the SMS gateway are the
operator's (``REPPU_SMTP_URL``, ``REPPU_SMS_URL``). A push subscription's endpoint is held to
``REPPU_PUSH_HOSTS`` as the HTTP client itself parses it, and redirects are not followed.
Tests that prove a refusal only check the refusal; the only traffic is to loopback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp.web
import httpx
import pytest
from aiohttp.test_utils import TestServer
from litestar import Litestar
from piccolo.apps.migrations.commands.backwards import run_backwards
from piccolo.apps.migrations.tables import Migration
from piccolo.engine.base import Engine

from notifications.channels import normalise_email, normalise_phone
from server.clock import utc_now
from server.db.migrate import migrate
from server.db.migrations.reppu_2026_12_07t01_10_00_000000 import ID, legacy_email
from server.db.notify_tables import NotifyChannel, PushSubscription
from server.push_endpoints import endpoint_allowed
from server.push_transport import KeepAliveTransport
from server.settings import (
    DEFAULT_PUSH_HOSTS,
    Settings,
    SettingsError,
    generate_vapid_keys,
    load_settings,
)
from tests.city import City
from tests.conftest import AppMaker
from tests.devices import change, device
from tests.notify_world import PUSH_ORIGIN, deliveries, make_worker, subscribed_device
from tests.push_service import PushService

SCHOOL_DAY_MORNING = "2026-11-24T10:15:00+02:00"
"""Tests that deliver run on a school day in school hours, outside the default quiet hours."""

# Every way of naming a host a person might try, as an e-mail address.
REFUSED_EMAILS = [
    "mother@127.0.0.1",
    "mother@[127.0.0.1]",
    "mother@localhost",
    "mother@10.0.0.1",
    "mother@172.16.0.1",
    "mother@172.31.255.254",
    "mother@192.168.1.1",
    "mother@169.254.169.254",
    "mother@[fe80::1]",
    "mother@[::1]",
    "mother@[IPv6:::1]",
    "mother@0x7f000001",
    "mother@koti.fi:25",
    "mother@koti.fi.",
    "user:pw@koti.fi",
    "mother@koti.fi,evil@koti.fi",
    "mother@koti.fi;evil@koti.fi",
    "mother@koti.fi evil@koti.fi",
    "mother@koti.fi?to=evil@koti.fi",
    "mother@koti.fi/extra",
    "mother%40koti.fi@koti.fi",
    "a@b.fi@koti.fi",
    "o'brien@koti.fi",
    '"mother"@koti.fi',
    "Mother <mother@koti.fi>",
    "mother@koti.fi#x",
    "mother@-koti.fi",
    "mother@ko_ti.fi",
    "mother",
    "@koti.fi",
    "a" * 65 + "@koti.fi",
    "mailto:mother@koti.fi",
    "mailto://mother:pw@127.0.0.1:25/",
    "mailtos://mother:pw@smtp.koti.fi:465?to=mother@koti.fi",
    "json://127.0.0.1:9/hook",
    "http://169.254.169.254/latest/meta-data",
    "https://fcm.googleapis.com/x",
]
INVALID = "channel.invalid_address"
REFUSED_PHONES = [
    "0401234567",
    "+358 40 123 4567",
    "+358-40-1234567",
    "+3584012345678901",
    "+012345678",
    "+35840",
    "tel:+358401234567",
    "+358401234567@127.0.0.1",
    "+358401234567/../../admin",
    "+358401234567?to=x",
    "json://127.0.0.1:9/sms",
    "twilio://a:b@+358401111111/+358402222222",
]


def test_an_address_is_one_plain_address_and_nothing_else() -> None:
    for text in REFUSED_EMAILS:
        assert normalise_email(text) is None, text
    for text in REFUSED_PHONES:
        assert normalise_phone(text) is None, text
    assert normalise_email(" Aino.Aiti+koulu@Koti.FI ") == "Aino.Aiti+koulu@koti.fi"
    assert normalise_email("x@xn--80ak6aa92e.com") == "x@xn--80ak6aa92e.com"
    longest = "a" * 64 + "@" + ".".join(["b" * 61, "b" * 61, "b" * 62]) + ".fi"
    assert len(longest) == 254
    assert normalise_email(longest) == longest
    assert normalise_email("a" + longest) is None
    assert normalise_phone("+358401234567") == "+358401234567"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REPPU_APPRISE_SCHEMES", "mailto,json"),
        ("REPPU_SMTP_URL", "json://127.0.0.1:9/hook"),
        ("REPPU_SMTP_URL", "mailto://smtp.koti.fi?to=someone@koti.fi"),
        ("REPPU_SMTP_URL", "mailto://smtp.koti.fi?from=a@koti.fi&BCC=b@koti.fi"),
        ("REPPU_SMTP_URL", "mailto://smtp.koti.fi/someone@koti.fi"),
        ("REPPU_SMTP_URL", "mailto://smtp.koti.fi:port"),
        ("REPPU_SMS_URL", "json://gateway.koti.fi/sms"),
        ("REPPU_SMS_URL", "json://gateway.koti.fi/{phone}/{phone}"),
        ("REPPU_SMS_URL", "gateway.koti.fi/{phone}"),
    ],
)
def test_the_operators_servers_are_checked_at_start_up(
    tmp_path: Path, variable: str, value: str
) -> None:
    env = {"REPPU_DATA_DIR": str(tmp_path), variable: value}
    with pytest.raises(SettingsError) as refused:
        load_settings(env)
    assert refused.value.variable == variable


def test_an_old_mailto_channel_keeps_only_its_address() -> None:
    assert legacy_email("mailto://aino:secret@gmail.com") == "aino@gmail.com"
    # The host it named is dropped: the address goes through the operator's server from now.
    assert legacy_email("mailtos://u:p@127.0.0.1:25?from=a@b.fi&to=Aiti@Koti.fi") == (
        "Aiti@koti.fi"
    )
    assert legacy_email("mailto://smtp.koti.fi?from=a@b.fi&to=x@koti.fi,y@koti.fi") is None
    assert legacy_email("json://127.0.0.1:9/hook") is None
    assert legacy_email("mailto://") is None


async def test_a_channel_naming_a_host_is_refused_and_nothing_is_stored(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    mother = await device(fx_client, "mother")
    refusals: list[tuple[dict[str, Any], int, str]] = [
        *(({"kind": "email", "address": a}, 422, INVALID) for a in REFUSED_EMAILS),
        *(({"kind": "sms", "address": a}, 422, INVALID) for a in REFUSED_PHONES),
        # A URL of any kind, as the old API took it, is not a field any more.
        ({"url": "json://127.0.0.1:9/hook"}, 422, "request.invalid"),
        ({"url": "mailto://mother:pw@10.0.0.1:25"}, 422, "request.invalid"),
        (
            {"kind": "email", "address": "mother@koti.fi", "url": "json://127.0.0.1:9/"},
            422,
            "request.invalid",
        ),
        # Kinds and schemes the server has no settings for.
        ({"kind": "json", "address": "+358401234567"}, 422, "request.invalid"),
        ({"kind": "mailto", "address": "mother@koti.fi"}, 422, "request.invalid"),
        ({"kind": "email", "address": "a" * 255}, 422, "request.invalid"),
    ]
    for body, status, code in refusals:
        answer = await fx_client.post("/me/channels", json=body, headers=mother.headers)
        assert (answer.status_code, answer.json()["code"]) == (status, code), body
    assert await NotifyChannel.count() == 0
    answer = await fx_client.get("/me/channels", headers=mother.headers)
    assert answer.json() == []


async def test_a_channel_of_a_kind_the_operator_did_not_set_up_is_refused(
    fx_settings: Settings, fx_db: Engine[Any], fx_city: City, fx_make_app: AppMaker
) -> None:
    bare = dataclasses.replace(fx_settings, smtp_url="", sms_url="")
    app: Litestar = fx_make_app(bare, fx_db)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://reppu.test") as client:
        mother = await device(client, "mother")
        for body in (
            {"kind": "email", "address": "mother@koti.fi"},
            {"kind": "sms", "address": "+358401234567"},
        ):
            answer = await client.post("/me/channels", json=body, headers=mother.headers)
            assert (answer.status_code, answer.json()["code"], answer.json()["field"]) == (
                422,
                "channel.unsupported",
                "$.kind",
            )
    assert await NotifyChannel.count() == 0


async def test_a_channel_answers_with_its_kind_and_address_only(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    mother = await device(fx_client, "mother")
    body = {"kind": "email", "address": "Aino.Aiti@Koti.FI", "label": "koti"}
    answer = await fx_client.post("/me/channels", json=body, headers=mother.headers)
    assert answer.status_code == 201, answer.text
    channel = answer.json()
    assert channel == {
        "id": channel["id"],
        "scheme": "mailto",
        "label": "koti",
        "kind": "email",
        "address": "Aino.Aiti@koti.fi",
    }
    answer = await fx_client.get("/me/channels", headers=mother.headers)
    assert answer.json() == [channel]
    (row,) = await NotifyChannel.select(NotifyChannel.kind, NotifyChannel.address)
    assert row == {"kind": "email", "address": "Aino.Aiti@koti.fi"}


@pytest.fixture
def fx_push() -> PushService:
    return PushService(PUSH_ORIGIN)


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: it keeps each envelope (sender, recipients)."""

    def handle(self) -> None:
        envelopes: list[dict[str, Any]] = self.server.envelopes  # type: ignore[attr-defined]
        envelope: dict[str, Any] = {"rcpt": [], "data": b""}
        self.wfile.write(b"220 smtp.reppu.test ESMTP\r\n")
        in_data = False
        while line := self.rfile.readline():
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    envelopes.append(envelope)
                    envelope = {"rcpt": [], "data": b""}
                    self.wfile.write(b"250 queued\r\n")
                else:
                    envelope["data"] += line
                continue
            verb = line[:4].upper()
            if verb == b"MAIL":
                envelope["from"] = line.decode().strip()
            elif verb == b"RCPT":
                envelope["rcpt"].append(line.decode().strip())
            if verb == b"DATA":
                in_data = True
                self.wfile.write(b"354 go on\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def fx_smtp() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """An SMTP server on loopback standing in for the operator's; (port, envelopes)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.daemon_threads = True
    server.envelopes = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server.envelopes  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.now(SCHOOL_DAY_MORNING)  # it delivers at once: outside quiet hours
async def test_an_email_goes_through_the_operators_mail_server_to_that_address(
    fx_client: httpx.AsyncClient,
    fx_city: City,
    fx_db: Engine[Any],
    fx_settings: Settings,
    fx_push: PushService,
    fx_smtp: tuple[int, list[dict[str, Any]]],
) -> None:
    port, envelopes = fx_smtp
    mother = await device(fx_client, "mother")
    body = {"kind": "email", "address": "aino.aiti@koti.fi"}
    answer = await fx_client.post("/me/channels", json=body, headers=mother.headers)
    assert answer.status_code == 201, answer.text
    teacher = await device(fx_client, "teacher")
    await change(
        teacher,
        "bulletin.send",
        audience="group",
        audience_id=fx_city.class_5b,
        title="Vanhempainilta",
        body="Torstaina klo 18.",
    )
    operator = dataclasses.replace(
        fx_settings, smtp_url=f"mailto://127.0.0.1:{port}?from=reppu@reppu.test"
    )
    await make_worker(fx_db, operator, fx_push).drain()
    (envelope,) = envelopes
    assert envelope["from"].lower().startswith("mail from:<reppu@reppu.test>")
    assert [r.lower() for r in envelope["rcpt"]] == ["rcpt to:<aino.aiti@koti.fi>"]
    assert b"Torstaina klo 18." in envelope["data"]
    (row,) = await deliveries(person=fx_city.mother, channel="apprise")
    assert row["status"] == "sent"


# -- Web Push endpoints --------------------------------------------------------------------


def _push_settings() -> Settings:
    """The browser vendors' services, and the emulator over http on its one port."""
    env = {
        "REPPU_DATA_DIR": "/nonexistent",
        "REPPU_SECRET_KEY": "k" * 32,
        "REPPU_VAPID_PRIVATE_KEY": generate_vapid_keys()[0],
        "REPPU_PUSH_HOSTS": ",".join((*DEFAULT_PUSH_HOSTS, "http://push.test:8443")),
    }
    return load_settings(env)


REFUSED_ENDPOINTS = [
    "https://user@fcm.googleapis.com/fcm/send/x",
    "https://user:pw@fcm.googleapis.com/fcm/send/x",
    "https://fcm.googleapis.com@169.254.169.254/x",
    "https://fcm.googleapis.com:443@127.0.0.1/x",
    "https://fcm.googleapis.com./fcm/send/x",
    "https://fcm.googleapis.com:8443/fcm/send/x",
    "https://fcm.googleapis.com:0/x",
    "https://fcm.googleapis.com:99999/x",
    "http://fcm.googleapis.com/fcm/send/x",
    "ftp://fcm.googleapis.com/x",
    "https://127.0.0.1/x",
    "https://10.0.0.1/x",
    "https://172.16.0.1/x",
    "https://192.168.1.1/x",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/x",
    "https://[fe80::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://2130706433/x",
    "https://localhost/x",
    "https://fcm.googleapis.com.evil.example/x",
    "https://evilpush.apple.com/x",
    "https://push.apple.com/x",
    "https://evil.example\\.web.push.apple.com/x",
    "https://evil.example%2eweb.push.apple.com/x",
    "https://evil.example\u3002web.push.apple.com/x",
    "https://\uff46cm.googleapis.com/x",
    "https://xn--fcm-gg0a.googleapis.com/x",
    "https://fcm.googleapis.com\\@evil.example/x",
    "https://fcm.googleapis.com\t/x",
    "http://push.test/x",
    "http://push.test:8444/x",
    "https://push.test:8443/x",
]


@pytest.mark.parametrize("endpoint", REFUSED_ENDPOINTS)
def test_a_push_endpoint_off_the_operators_list_is_refused(endpoint: str) -> None:
    settings = _push_settings()
    assert not endpoint_allowed(settings, endpoint)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc",
        "https://FCM.googleapis.com:443/fcm/send/abc",
        "https://updates.push.services.mozilla.com/wpush/v2/abc",
        "https://web.push.apple.com/abc",
        "http://push.test:8443/abc",
    ],
)
def test_a_push_endpoint_on_the_operators_list_is_taken(endpoint: str) -> None:
    settings = _push_settings()
    assert endpoint_allowed(settings, endpoint)


async def test_a_refused_push_endpoint_stores_nothing(
    fx_client: httpx.AsyncClient, fx_city: City, fx_push: PushService
) -> None:
    mother = await device(fx_client, "mother")
    subscription = fx_push.subscribe().to_json()
    for endpoint in REFUSED_ENDPOINTS:
        body = {**subscription, "endpoint": endpoint}
        answer = await fx_client.post("/push/subscriptions", json=body, headers=mother.headers)
        assert (answer.status_code, answer.json()["code"]) == (
            422,
            "push.endpoint_not_allowed",
        ), endpoint
    assert await PushSubscription.count() == 0


@pytest.mark.now(SCHOOL_DAY_MORNING)  # it delivers at once: outside quiet hours
async def test_the_worker_pushes_only_to_services_on_the_list_now(
    fx_client: httpx.AsyncClient,
    fx_city: City,
    fx_db: Engine[Any],
    fx_settings: Settings,
    fx_push: PushService,
) -> None:
    """A subscription stored before the operator narrowed REPPU_PUSH_HOSTS (or under an older
    check) is not pushed to: its delivery fails without a request."""
    _, token = await subscribed_device(fx_client, fx_push, "mother")
    await PushSubscription.update(
        {PushSubscription.endpoint: f"http://metadata.test:8443/push/{token}"}
    ).where(PushSubscription.person == fx_city.mother)
    teacher = await device(fx_client, "teacher")
    await change(
        teacher,
        "bulletin.send",
        audience="group",
        audience_id=fx_city.class_5b,
        title="t",
        body="b",
    )
    await make_worker(fx_db, fx_settings, fx_push).drain()
    (row,) = await deliveries(person=fx_city.mother, channel="webpush")
    assert (row["status"], row["detail"]) == ("failed", "push service not on REPPU_PUSH_HOSTS")
    assert fx_push.received == []
    assert await PushSubscription.count() == 1  # the operator may put the service back


async def test_the_push_client_does_not_follow_a_redirect() -> None:
    """A push service answering 307 elsewhere gets its 3xx judged, and elsewhere gets nothing."""
    elsewhere: list[str] = []

    async def target(request: aiohttp.web.Request) -> aiohttp.web.Response:
        elsewhere.append(request.path)
        return aiohttp.web.Response(status=201)

    inner = aiohttp.web.Application()
    inner.router.add_post("/{tail:.*}", target)
    async with TestServer(inner, host="127.0.0.1") as other:

        async def redirect(request: aiohttp.web.Request) -> aiohttp.web.Response:
            raise aiohttp.web.HTTPTemporaryRedirect(str(other.make_url("/metadata")))

        outer = aiohttp.web.Application()
        outer.router.add_post("/{tail:.*}", redirect)
        async with TestServer(outer, host="127.0.0.1") as service:
            transport = KeepAliveTransport(timeout=5, per_host=2)  # the worker's own
            try:
                status, _ = await transport.post(str(service.make_url("/push/x")), {}, b"x")
            finally:
                await transport.aclose()
    assert status == 307
    assert elsewhere == []


# -- Channels stored before this change ----------------------------------------------------


async def _keep_migration_order() -> None:
    """Piccolo reverses migrations in the order of ``ran_on``; the ones this test applied
    again ran under the frozen test clock, before the session's first run. Put them back
    after the others, in their order, so a later full rollback goes the right way round."""
    rows = await Migration.select(Migration.id, Migration.name, Migration.ran_on).where(
        Migration.app_name == "reppu"
    )
    last = max(r["ran_on"] for r in rows if r["name"] < ID)
    again = sorted((r for r in rows if r["name"] >= ID), key=lambda r: r["name"])
    for step, row in enumerate(again, start=1):
        ran_on = last + dt.timedelta(seconds=step)
        await Migration.update({Migration.ran_on: ran_on}).where(Migration.id == row["id"])


async def test_the_migration_keeps_addresses_and_drops_person_chosen_hosts(
    fx_db: Engine[Any], fx_city: City
) -> None:
    await run_backwards(app_name="reppu", migration_id=ID, auto_agree=True)
    try:
        for url in (
            "mailto://aino:secret@gmail.com",
            "mailtos://u:p@10.0.0.1:25?from=a@koti.fi&to=isa@koti.fi",
            "json://169.254.169.254/latest",
            "mailto://smtp.koti.fi?from=a@koti.fi&to=x@koti.fi,y@koti.fi",
        ):
            await NotifyChannel.raw(
                "INSERT INTO notify_channel (person, url, label, created_at) "
                "VALUES ({}, {}, '', {})",
                fx_city.mother,
                url,
                utc_now(),
            )
    finally:
        await migrate(quiet=True)
        await _keep_migration_order()
    rows = await NotifyChannel.select(NotifyChannel.kind, NotifyChannel.address).order_by(
        NotifyChannel.id
    )
    assert rows == [
        {"kind": "email", "address": "aino@gmail.com"},
        {"kind": "email", "address": "isa@koti.fi"},
    ]
