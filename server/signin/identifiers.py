"""Identifiers a provider may assert about a person, as the roster delivers them: kept only
as keyed hashes in ``person_identifier`` (``server/signin/matching.py`` reads them)."""

from __future__ import annotations

from collections.abc import Iterable

from server.db.signin_tables import PersonIdentifier
from server.signin.config import SigninSettings
from server.signin.matching import identifier_digest


async def replace_identifiers(
    settings: SigninSettings, scheme: str, values: Iterable[tuple[int, str | None]]
) -> None:
    """Set each person's identifier of ``scheme`` to the value given (None: none); call
    inside the write transaction of the import that delivered them."""
    pairs = list(values)
    people = [person for person, _ in pairs]
    for first in range(0, len(people), 500):
        chunk = people[first : first + 500]
        await PersonIdentifier.delete().where(
            (PersonIdentifier.scheme == scheme) & PersonIdentifier.person.is_in(chunk)
        )
    rows = [
        PersonIdentifier(
            person=person, scheme=scheme, digest=identifier_digest(settings, scheme, value)
        )
        for person, value in pairs
        if value
    ]
    for first in range(0, len(rows), 500):
        await PersonIdentifier.insert(*rows[first : first + 500])
