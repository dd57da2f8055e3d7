"""Matching a signed-in identity to one roster person: the oppijanumero, a national identity
number kept only as a keyed hash (imported from OneRoster's ``metadata.fi.henkilotunnus``),
the provider's roles and accepted ``acr``; no match and two matches are refused."""

from __future__ import annotations

import csv
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
from piccolo.engine.base import Engine

from server.clock import school_today
from server.db.schema import EVERY_TABLE
from server.db.signin_tables import AccountEvent, PersonIdentifier, SigninHandoff
from server.db.tables import Account, Person
from server.oneroster import ImportRefused, import_oneroster, parse_files, read_files
from server.settings import Settings
from server.signin.config import ClaimMatch
from server.signin.matching import identifier_digest
from tests.server.signin.conftest import (
    NATIONAL_ID_CLAIM,
    fake_provider_config,
    signin_client,
    signin_settings,
)
from tests.server.signin.fake_provider import FakeProvider
from tests.server.signin.steps import VERIFIER, claims, sign_in

FIXTURES = Path(__file__).parent.parent.parent / "fixtures" / "oneroster"
MARIA = "131052-308T"
"""A well-formed henkilötunnus (the check character holds), for Maria, a guardian."""
LOA3 = "http://ftn.ficora.fi/2017/loa3"
LOA2 = "http://ftn.ficora.fi/2017/loa2"


def _roster(tmp_path: Path, numbers: dict[str, str]) -> Path:
    """The bulk OneRoster set with a henkilötunnus column on users.csv."""
    target = tmp_path / "set"
    shutil.copytree(FIXTURES / "bulk", target, dirs_exist_ok=True)
    with (FIXTURES / "bulk" / "users.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows[0].append("metadata.fi.henkilotunnus")
    for row in rows[1:]:
        row.append(numbers.get(row[0], ""))
    with (target / "users.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return target


async def _import(engine: Engine[Any], path: Path) -> None:
    batch = parse_files(read_files(path))
    await import_oneroster(engine, batch, today=school_today(), identity=signin_settings())


def _suomifi(fake: FakeProvider) -> Any:
    return fake_provider_config(
        fake,
        name="suomifi",
        title="Suomi.fi",
        matches=(ClaimMatch(NATIONAL_ID_CLAIM, "national_id"),),
        roles=("guardian",),
        acr_values=(LOA3,),
    )


async def _maria(username: str = "maria.virtanen") -> int:
    account = await Account.select(Account.person).where(Account.username == username).first()
    assert account is not None
    return int(account["person"])


async def _every_stored_text() -> str:
    parts = []
    for table in EVERY_TABLE:
        parts.append(str(await table.select()))
    return "\n".join(parts)


async def test_a_guardian_signs_in_with_a_hashed_national_id_and_strong_identification(
    tmp_path: Path, fx_settings: Settings, fx_db: Engine[Any], fx_fake: FakeProvider
) -> None:
    settings = dataclasses.replace(fx_settings, signin=signin_settings())
    await _import(fx_db, _roster(tmp_path, {"u-maria": MARIA}))
    maria = await _maria()
    # Stored only as a keyed hash: the number appears in no table, in no spelling.
    stored = await _every_stored_text()
    assert MARIA not in stored
    assert MARIA.replace("-", "") not in stored
    rows = await PersonIdentifier.select()
    assert [(r["person"], r["scheme"]) for r in rows] == [(maria, "national_id")]
    assert rows[0]["digest"] == identifier_digest(settings.signin, "national_id", MARIA.lower())

    async with signin_client(fx_settings, fx_db, _suomifi(fx_fake)) as client:
        weak = await sign_in(
            client,
            fx_fake,
            lambda r: fx_fake.sign(
                claims(fx_fake, r, **{NATIONAL_ID_CLAIM: MARIA, "acr": LOA2}), fx_fake.keys[0]
            ),
            "suomifi",
        )
        assert weak.endswith("signin_error=signin.invalid_id_token")
        no_acr = await sign_in(
            client,
            fx_fake,
            lambda r: fx_fake.sign(
                claims(fx_fake, r, **{NATIONAL_ID_CLAIM: MARIA}), fx_fake.keys[0]
            ),
            "suomifi",
        )
        assert no_acr.endswith("signin_error=signin.invalid_id_token")
        assert await SigninHandoff.count() == 0
        strong = await sign_in(
            client,
            fx_fake,
            lambda r: fx_fake.sign(
                claims(fx_fake, r, **{NATIONAL_ID_CLAIM: MARIA, "acr": LOA3}), fx_fake.keys[0]
            ),
            "suomifi",
        )
        assert "handoff=" in strong
        handoff = strong.split("handoff=")[1]
        answer = await client.post(
            "/auth/oidc/handoff", json={"handoff": handoff, "handoff_verifier": VERIFIER}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["person_id"] == maria
        assert answer.json()["roles"] == ["guardian"]
    # The audit trail says who and how, never the number.
    events = await AccountEvent.select()
    assert MARIA not in str(events)
    assert [e["kind"] for e in events if e["person"] == maria] == ["signin.succeeded"]


async def test_a_malformed_national_id_refuses_the_import_without_repeating_it(
    tmp_path: Path, fx_settings: Settings, fx_db: Engine[Any]
) -> None:
    wrong = "131052-308A"
    with pytest.raises(ImportRefused) as refused:
        await _import(fx_db, _roster(tmp_path, {"u-maria": wrong}))
    assert [p.column for p in refused.value.problems] == ["metadata.fi.henkilotunnus"]
    assert wrong not in str(refused.value.problems)
    assert await Person.count() == 0


async def test_a_corrected_national_id_replaces_the_old_one(
    tmp_path: Path, fx_settings: Settings, fx_db: Engine[Any]
) -> None:
    await _import(fx_db, _roster(tmp_path, {"u-maria": MARIA}))
    corrected = "010101A123N"
    await _import(fx_db, _roster(tmp_path, {"u-maria": corrected}))
    rows = await PersonIdentifier.select()
    assert len(rows) == 1
    assert rows[0]["digest"] == identifier_digest(signin_settings(), "national_id", corrected)


async def test_no_match_two_matches_and_a_wrong_role_are_refused_and_audited(
    fx_settings: Settings, fx_db: Engine[Any], fx_fake: FakeProvider, fx_city: Any
) -> None:
    signin = signin_settings()
    digest = identifier_digest(signin, "national_id", MARIA)
    await PersonIdentifier.insert(
        PersonIdentifier(person=fx_city.mother, scheme="national_id", digest=digest),
        PersonIdentifier(person=fx_city.father, scheme="national_id", digest=digest),
    )
    aino_number = identifier_digest(signin, "national_id", "010101A123N")
    await PersonIdentifier(person=fx_city.aino, scheme="national_id", digest=aino_number).save()
    accounts = await Account.count()

    async def attempt(number: str) -> str:
        return await sign_in(
            client,
            fx_fake,
            lambda r: fx_fake.sign(
                claims(fx_fake, r, **{NATIONAL_ID_CLAIM: number, "acr": LOA3}), fx_fake.keys[0]
            ),
            "suomifi",
        )

    async with signin_client(fx_settings, fx_db, _suomifi(fx_fake)) as client:
        assert (await attempt("311299-999E")).endswith("signin_error=signin.no_match")
        assert (await attempt(MARIA)).endswith("signin_error=signin.ambiguous")
        # Aino is a pupil: the guardians' provider does not serve her.
        assert (await attempt("010101A123N")).endswith("signin_error=signin.role_not_allowed")
    assert await SigninHandoff.count() == 0
    assert await Account.count() == accounts
    refused = (
        await AccountEvent.select()
        .where(AccountEvent.kind == "signin.refused")
        .order_by(AccountEvent.id)  # PostgreSQL gives rows in any order without it
    )
    assert [e["detail"] for e in refused] == [
        "signin.no_match",
        "signin.ambiguous",
        "signin.role_not_allowed",
    ]


async def test_a_person_without_an_account_gets_one_without_a_password(
    fx_settings: Settings, fx_db: Engine[Any], fx_fake: FakeProvider, fx_city: Any
) -> None:
    await Account.delete().where(Account.person == fx_city.mother)
    digest = identifier_digest(signin_settings(), "national_id", MARIA)
    await PersonIdentifier(person=fx_city.mother, scheme="national_id", digest=digest).save()
    async with signin_client(fx_settings, fx_db, _suomifi(fx_fake)) as client:
        location = await sign_in(
            client,
            fx_fake,
            lambda r: fx_fake.sign(
                claims(fx_fake, r, **{NATIONAL_ID_CLAIM: MARIA, "acr": LOA3}), fx_fake.keys[0]
            ),
            "suomifi",
        )
        handoff = location.split("handoff=")[1]
        answer = await client.post(
            "/auth/oidc/handoff", json={"handoff": handoff, "handoff_verifier": VERIFIER}
        )
        assert answer.status_code == 200
        account = await Account.select().where(Account.person == fx_city.mother).first()
        assert account is not None
        # No password opens it.
        login = await client.post(
            "/auth/login",
            json={"username": account["username"], "password": "!signin-only", "device_name": "x"},
        )
        assert login.status_code == 401
