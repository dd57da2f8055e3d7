"""The live streams' access checks: many streams in one lookup, each answered as if alone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from piccolo.engine.base import Engine

from server.access import load_access_facts
from server.clock import school_today, utc_now
from server.db.engine import write_transaction
from server.db.tables import Account, AuthToken
from server.identity import issue_token, token_digest
from server.live_access import StreamAccess
from server.settings import Settings
from sync.policy import AccessFacts, readable_partitions
from tests.city import City


async def _expected(person: int) -> frozenset[str]:
    facts = (await load_access_facts([person])).get(person, AccessFacts(person))
    return frozenset(str(p) for p in readable_partitions(facts, school_today()))


async def _digest(settings: Settings, engine: Engine[Any], person: int) -> str:
    account = await Account.select(Account.id).where(Account.person == person).first()
    assert account is not None
    async with write_transaction(engine):
        issued = await issue_token(
            settings, account_id=int(account["id"]), person_id=person, device_name="test"
        )
    return token_digest(settings, issued.token)


async def test_streams_opening_together_share_a_lookup_each_with_its_own_partitions(
    fx_city: City, fx_db: Engine[Any]
) -> None:
    access = StreamAccess(lambda: fx_db)
    people = [fx_city.aino, fx_city.eero, fx_city.teacher, fx_city.mother, fx_city.aino]
    found = await asyncio.gather(*(access.readable(p) for p in people))
    assert found == [await _expected(p) for p in people]
    assert len({*found}) == 4
    assert all(found)
    assert access.lookups == 1


async def test_a_recheck_denies_a_revoked_unknown_or_borrowed_token(
    fx_city: City, fx_db: Engine[Any], fx_settings: Settings
) -> None:
    access = StreamAccess(lambda: fx_db)
    aino = await _digest(fx_settings, fx_db, fx_city.aino)
    eero = await _digest(fx_settings, fx_db, fx_city.eero)
    revoked = await _digest(fx_settings, fx_db, fx_city.teacher)
    async with write_transaction(fx_db):
        await AuthToken.update({AuthToken.revoked_at: utc_now()}).where(
            AuthToken.token_hash == revoked
        )
    answers = await asyncio.gather(
        access.still_readable(fx_city.aino, aino),
        access.still_readable(fx_city.eero, eero),
        access.still_readable(fx_city.eero, aino),  # Aino's token is not Eero's
        access.still_readable(fx_city.teacher, revoked),
        access.still_readable(fx_city.aino, "no such digest"),
    )
    assert answers == [
        await _expected(fx_city.aino),
        await _expected(fx_city.eero),
        None,
        None,
        None,
    ]
    assert access.lookups == 1
    # Nothing is kept: the next lookup reads afresh (the token revoked meanwhile is denied).
    async with write_transaction(fx_db):
        await AuthToken.update({AuthToken.revoked_at: utc_now()}).where(
            AuthToken.token_hash == aino
        )
    assert await access.still_readable(fx_city.aino, aino) is None
    assert access.lookups == 2


async def test_tokens_of_streams_opening_together_are_looked_up_together(
    fx_city: City, fx_db: Engine[Any], fx_settings: Settings
) -> None:
    access = StreamAccess(lambda: fx_db)
    aino = await _digest(fx_settings, fx_db, fx_city.aino)
    revoked = await _digest(fx_settings, fx_db, fx_city.teacher)
    async with write_transaction(fx_db):
        await AuthToken.update({AuthToken.revoked_at: utc_now()}).where(
            AuthToken.token_hash == revoked
        )
    found = await asyncio.gather(
        access.principal(aino), access.principal(revoked), access.principal("unknown")
    )
    assert found[0] is not None
    assert found[0].person_id == fx_city.aino
    assert found[1:] == [None, None]
    assert access.lookups == 1


async def test_a_stream_is_refused_without_a_live_token(
    fx_city: City, fx_db: Engine[Any], fx_settings: Settings, fx_client: httpx.AsyncClient
) -> None:
    account = await Account.select(Account.id).where(Account.person == fx_city.aino).first()
    assert account is not None
    async with write_transaction(fx_db):
        issued = await issue_token(
            fx_settings, account_id=int(account["id"]), person_id=fx_city.aino, device_name="t"
        )
        await AuthToken.update({AuthToken.revoked_at: utc_now()}).where(
            AuthToken.token_hash == token_digest(fx_settings, issued.token)
        )
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": f"Bearer {issued.token}"},
    ):
        answer = await fx_client.get("/sync/live", headers=headers)
        assert answer.status_code == 401, headers
