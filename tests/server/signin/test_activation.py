"""Activation codes and an admin's disable and sign-out, over HTTP on both databases."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import httpx
import pytest
import time_machine
from litestar import Litestar
from piccolo.engine.base import Engine

from schemas.core import StaffRoleKind
from server.app import create_app
from server.db.signin_tables import AccountEvent, ActivationCode
from server.db.tables import Account, AuthToken, Person, StaffRole
from server.identity import hash_password
from server.settings import Settings
from tests.city import PASSWORD, City
from tests.conftest import AppMaker, log_in_as

NEW_PASSWORD = "a long new password"


async def _principal_of_school_b(city: City) -> None:
    person = Person(given_name="Paula", family_name="Rehtori")
    await person.save()
    await StaffRole(
        person=person.id,
        organisation=city.school_b,
        role=StaffRoleKind.PRINCIPAL,
        valid_from=city.today - dt.timedelta(days=30),
    ).save()
    await Account(
        person=person.id, username="principal_b", password_hash=hash_password(PASSWORD)
    ).save()


async def _issue(client: httpx.AsyncClient, who: str, person: int) -> httpx.Response:
    return await client.post(
        f"/people/{person}/activation-code", headers=await log_in_as(client, who)
    )


async def _activate(client: httpx.AsyncClient, code: str, username: str) -> httpx.Response:
    return await client.post(
        "/auth/activate",
        json={"code": code, "username": username, "password": NEW_PASSWORD, "device_name": "phone"},
    )


async def _events(kind: str) -> list[dict[str, Any]]:
    return list(await AccountEvent.select().where(AccountEvent.kind == kind))


async def test_a_person_without_an_account_sets_a_password_with_a_code(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    await Account.delete().where(Account.person == fx_city.aino)
    answer = await _issue(fx_client, "principal", fx_city.aino)
    assert answer.status_code == 201, answer.text
    code = answer.json()["code"]
    # Only a keyed hash is stored, never the code.
    rows = await ActivationCode.select()
    assert len(rows) == 1
    assert code not in str(rows)
    assert code.replace("-", "") not in str(rows)

    # Case, spaces and dashes do not matter.
    signed_in = await _activate(fx_client, code.lower().replace("-", " "), "aino.v")
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    assert body["person_id"] == fx_city.aino
    assert body["roles"] == ["pupil"]
    me = await fx_client.get("/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert await log_in_as(fx_client, "aino.v", NEW_PASSWORD)

    again = await _activate(fx_client, code, "aino.w")
    assert again.status_code == 400
    assert again.json()["code"] == "activation.invalid"
    assert not await Account.exists().where(Account.username == "aino.w")
    assert len(await _events("activation.issued")) == 1
    assert len(await _events("activation.redeemed")) == 1
    assert len(await _events("activation.refused")) == 1


async def test_a_person_with_an_account_resets_the_password_and_keeps_the_username(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    code = (await _issue(fx_client, "principal", fx_city.mother)).json()["code"]
    old = await log_in_as(fx_client, "mother")
    # A wrong username gets the refusal of a wrong code: it does not tell the code is valid.
    wrong_name = await _activate(fx_client, code, "someone")
    assert wrong_name.status_code == 400
    assert wrong_name.json()["code"] == "activation.invalid"
    answer = await _activate(fx_client, code, "mother")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert await log_in_as(fx_client, "mother", NEW_PASSWORD)
    # The reset signs every other device out; the token it gave stays good.
    assert (await fx_client.get("/me", headers=old)).status_code == 401
    new = {"Authorization": f"Bearer {answer.json()['token']}"}
    assert (await fx_client.get("/me", headers=new)).status_code == 200
    assert len(await _events("account.signed_out")) == 1


async def test_new_usernames_are_plain_and_unique_whatever_the_case(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    await Account.delete().where(Account.person == fx_city.aino)
    code = (await _issue(fx_client, "principal", fx_city.aino)).json()["code"]
    # "mother" is taken: in capitals too. A Cyrillic a (U+0430) is no "a"; two characters are few.
    taken = await _activate(fx_client, code, "MOTHER")
    assert taken.status_code == 409
    assert taken.json()["code"] == "activation.username_taken"
    for name in ("\u0430ino", "ai", "aino!"):
        refused = await _activate(fx_client, code, name)
        assert refused.status_code == 422, name
        assert refused.json()["field"] == "$.username"
    assert not await Account.exists().where(Account.person == fx_city.aino)
    # A person whose existing username is short (the demo's u1..u9) still redeems.
    await Account.update({Account.username: "u1"}).where(Account.person == fx_city.olli)
    olli = (await _issue(fx_client, "principal", fx_city.olli)).json()["code"]
    assert (await _activate(fx_client, olli, "u1")).status_code == 200
    assert (await _activate(fx_client, code, "aino")).status_code == 200


async def test_a_password_of_spaces_is_refused(fx_client: httpx.AsyncClient, fx_city: City) -> None:
    code = (await _issue(fx_client, "principal", fx_city.olli)).json()["code"]
    spaces = await fx_client.post(
        "/auth/activate",
        json={"code": code, "username": "olli", "password": " " * 12, "device_name": "x"},
    )
    assert spaces.status_code == 422
    assert spaces.json()["field"] == "$.password"
    assert (await _activate(fx_client, code, "olli")).status_code == 200


async def test_tokens_and_codes_are_not_cached(fx_client: httpx.AsyncClient, fx_city: City) -> None:
    login = await fx_client.post(
        "/auth/login", json={"username": "olli", "password": PASSWORD, "device_name": "x"}
    )
    assert login.status_code == 200
    assert login.headers["cache-control"] == "no-store"
    issued = await _issue(fx_client, "principal", fx_city.olli)
    assert issued.headers["cache-control"] == "no-store"


async def test_no_code_is_issued_for_a_disabled_account(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    admin = await log_in_as(fx_client, "admin")
    disabled = await fx_client.post(f"/people/{fx_city.olli}/account/disable", headers=admin)
    assert disabled.status_code == 204
    refused = await _issue(fx_client, "principal", fx_city.olli)
    assert refused.status_code == 403
    assert refused.json()["code"] == "auth.forbidden"
    assert await ActivationCode.count() == 0
    enabled = await fx_client.post(f"/people/{fx_city.olli}/account/enable", headers=admin)
    assert enabled.status_code == 204
    assert (await _issue(fx_client, "principal", fx_city.olli)).status_code == 201


async def test_only_the_persons_principal_or_admin_issues_codes(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    await _principal_of_school_b(fx_city)
    # Aino is at school A: school B's principal, a teacher, a guardian and Aino are refused.
    for who in ("principal_b", "teacher", "mother", "aino"):
        answer = await _issue(fx_client, who, fx_city.aino)
        assert answer.status_code == 403, who
        assert answer.json()["code"] == "auth.forbidden"
    assert await ActivationCode.count() == 0
    # A principal may not issue one for themselves either.
    assert (await _issue(fx_client, "principal", fx_city.principal)).status_code == 403
    # Eero is at school B; his mother has children in both schools.
    assert (await _issue(fx_client, "principal_b", fx_city.eero)).status_code == 201
    assert (await _issue(fx_client, "principal", fx_city.mother)).status_code == 201
    assert (await _issue(fx_client, "admin", fx_city.eero)).status_code == 201
    assert (await _issue(fx_client, "principal", fx_city.eero)).status_code == 403
    assert len(await _events("activation.issued")) == 3


async def test_a_code_expires_and_a_new_one_withdraws_the_old(
    fx_client: httpx.AsyncClient, fx_city: City, fx_frozen_clock: time_machine.Coordinates
) -> None:
    first = (await _issue(fx_client, "principal", fx_city.olli)).json()["code"]
    second = (await _issue(fx_client, "principal", fx_city.olli)).json()["code"]
    assert (await _activate(fx_client, first, "olli")).json()["code"] == "activation.invalid"
    fx_frozen_clock.shift(dt.timedelta(days=3, seconds=1))
    expired = await _activate(fx_client, second, "olli")
    assert expired.status_code == 400
    assert expired.json()["code"] == "activation.invalid"
    # Expired codes go as the next one is issued; the audit trail keeps that they were.
    assert (await _issue(fx_client, "principal", fx_city.olli)).status_code == 201
    assert await ActivationCode.count() == 1
    assert len(await _events("activation.issued")) == 3


async def test_a_taken_username_refuses_and_keeps_the_code(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    await Account.delete().where(Account.person == fx_city.aino)
    code = (await _issue(fx_client, "principal", fx_city.aino)).json()["code"]
    taken = await _activate(fx_client, code, "olli")
    assert taken.status_code == 409
    assert taken.json()["code"] == "activation.username_taken"
    assert not await Account.exists().where(Account.person == fx_city.aino)
    assert (await _activate(fx_client, code, "aino2")).status_code == 200


async def test_a_short_password_is_refused_before_the_code_is_spent(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    code = (await _issue(fx_client, "principal", fx_city.olli)).json()["code"]
    short = await fx_client.post(
        "/auth/activate",
        json={"code": code, "username": "olli", "password": "short", "device_name": "x"},
    )
    assert short.status_code == 422
    assert short.json()["field"] == "$.password"
    assert (await _activate(fx_client, code, "olli")).status_code == 200


async def test_issuing_and_guessing_are_rate_limited(
    fx_client: httpx.AsyncClient, fx_city: City, fx_settings: Settings
) -> None:
    headers = await log_in_as(fx_client, "principal")
    for _ in range(30):
        answer = await fx_client.post(f"/people/{fx_city.olli}/activation-code", headers=headers)
        assert answer.status_code == 201
    refused = await fx_client.post(f"/people/{fx_city.olli}/activation-code", headers=headers)
    assert refused.status_code == 429
    assert refused.json()["code"] == "auth.rate_limited"
    assert await ActivationCode.count() == 30

    for _ in range(fx_settings.login_failures_per_address):
        assert (await _activate(fx_client, "AAAA-BBBB-CCCC", "xyz")).status_code == 400
    limited = await _activate(fx_client, "AAAA-BBBB-CCCC", "xyz")
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers


async def _token_works(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    answer = await client.get("/me", headers=headers)
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


async def test_disabling_signs_out_every_device_in_every_process(
    fx_settings: Settings, fx_db: Engine[Any], fx_city: City, fx_make_app: AppMaker
) -> None:
    # Two apps on one database stand for two server processes. The one that disables keeps
    # access lookups for a minute: it must forget the account's tokens at once all the same.
    acting = fx_make_app(dataclasses.replace(fx_settings, access_cache_seconds=60), fx_db)
    other = fx_make_app(fx_settings, fx_db)
    async with _client(acting) as a, _client(other) as b:
        phone = await log_in_as(a, "teacher")
        laptop = await log_in_as(b, "teacher")
        assert await _token_works(a, phone)
        assert await _token_works(b, laptop)
        assert (
            await a.post(
                f"/people/{fx_city.teacher}/account/disable",
                headers=await log_in_as(a, "principal"),
            )
        ).status_code == 403
        admin = await log_in_as(a, "admin")
        answer = await a.post(f"/people/{fx_city.teacher}/account/disable", headers=admin)
        assert answer.status_code == 204, answer.text
        for client, headers in ((a, phone), (a, laptop), (b, phone), (b, laptop)):
            assert not await _token_works(client, headers)
        refused = await b.post(
            "/auth/login", json={"username": "teacher", "password": PASSWORD, "device_name": "x"}
        )
        assert refused.status_code == 401
        # No code lets a disabled person back in.
        code = (await a.post(f"/people/{fx_city.teacher}/activation-code", headers=admin)).json()
        assert (await _activate(b, code["code"], "teacher")).status_code == 400

        assert (
            await a.post(f"/people/{fx_city.teacher}/account/enable", headers=admin)
        ).status_code == 204
        assert await log_in_as(b, "teacher")
        assert not await _token_works(b, phone)
    account = await Account.select(Account.id).where(Account.person == fx_city.teacher).first()
    assert account is not None
    live = AuthToken.revoked_at.is_null() & (AuthToken.account == account["id"])
    assert await AuthToken.count().where(live) == 1
    assert [e["actor"] for e in await _events("account.disabled")] == [fx_city.admin]
    assert len(await _events("account.enabled")) == 1


async def test_an_admin_signs_a_lost_phone_out_everywhere(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    first, second = await log_in_as(fx_client, "mother"), await log_in_as(fx_client, "mother")
    admin = await log_in_as(fx_client, "admin")
    answer = await fx_client.post(f"/people/{fx_city.mother}/account/sign-out", headers=admin)
    assert answer.status_code == 204
    assert not await _token_works(fx_client, first)
    assert not await _token_works(fx_client, second)
    assert await log_in_as(fx_client, "mother")
    assert len(await _events("account.signed_out")) == 1
    # A person without an account: a clear 404.
    await Account.delete().where(Account.person == fx_city.olli)
    none = await fx_client.post(f"/people/{fx_city.olli}/account/sign-out", headers=admin)
    assert none.status_code == 404
    assert none.json()["code"] == "account.not_found"


def _client(app: Litestar) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://reppu.test")


async def _refused_soon(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    """Whether the token stops working within ten seconds: another process hears of a
    revocation through the database (a NOTIFY on PostgreSQL, the polled audit trail on
    SQLite), not at once. A bounded wait, not a timing."""
    for _ in range(100):
        if not await _token_works(client, headers):
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.parametrize("act", ["disable", "sign-out"])
async def test_every_process_that_keeps_tokens_forgets_a_disabled_account(
    fx_settings: Settings, fx_db: Engine[Any], fx_city: City, act: str
) -> None:
    # Two apps on one database stand for two server processes, both keeping access lookups
    # for a minute. The other one has the teacher's token in hand when the admin acts.
    keeping = dataclasses.replace(fx_settings, access_cache_seconds=60)
    acting, other = create_app(keeping, engine=fx_db), create_app(keeping, engine=fx_db)
    try:
        async with _client(acting) as a, _client(other) as b:
            phone = await log_in_as(b, "teacher")
            assert await _token_works(b, phone)
            admin = await log_in_as(a, "admin")
            answer = await a.post(f"/people/{fx_city.teacher}/account/{act}", headers=admin)
            assert answer.status_code == 204, answer.text
            assert await _refused_soon(b, phone)
            assert await _token_works(b, admin)  # only the account acted on is refused
    finally:
        for app in (acting, other):
            await app.state["reppu"].live.stop()
