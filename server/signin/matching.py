"""Which roster person a signed-in identity is: the provider's claims, as the operator
configured them (``match``), looked up where the roster keeps them.

- ``oppijanumero``: the national learner number, kept by the OneRoster import as an
  ``external_ref`` of the source ``fi.oppijanumero`` (``docs/oneroster.md``).
- ``national_id`` and ``staff_id``: kept only as ``HMAC-SHA-256(identity key, ...)`` in
  ``person_identifier``; the value a provider sends is hashed the same way and compared. A
  rule with a ``qualifier`` looks up ``<qualifier's value>/<value>`` (a staff identifier
  within its school).

Every configured claim the token carries is looked up, and together they must name exactly
one person: none is ``signin.no_match``, two or more ``signin.ambiguous`` (the roster needs
mending; guessing would sign someone in as another). Then the person's roles today must be
among those the provider may serve.
"""

from __future__ import annotations

from typing import Any

from schemas.core import Role
from schemas.errors import ErrorCode
from server.access import load_access_facts
from server.clock import school_today
from server.db.oneroster_tables import ExternalRef
from server.db.signin_tables import PersonIdentifier
from server.errors import ReppuError
from server.signin.config import OidcProvider, SigninSettings
from server.signin.secrets import keyed_digest
from sync.policy import AccessFacts, roles_on

LEARNER_NUMBER_SOURCE = "fi.oppijanumero"
"""The ``external_ref`` source the OneRoster import keeps oppijanumerot under."""


def normalise_identifier(scheme: str, value: str) -> str:
    """One spelling per identifier: a national identity number's check letter and century
    sign in upper case, no spaces anywhere."""
    value = "".join(value.split())
    return value.upper() if scheme == "national_id" else value


def identifier_digest(settings: SigninSettings, scheme: str, value: str) -> str:
    """What ``person_identifier.digest`` holds for ``value`` of ``scheme``."""
    return keyed_digest(settings, f"identifier:{scheme}", normalise_identifier(scheme, value))


async def _people_with(settings: SigninSettings, scheme: str, value: str) -> set[int]:
    if scheme == "oppijanumero":
        rows = await ExternalRef.select(ExternalRef.local_id).where(
            (ExternalRef.source == LEARNER_NUMBER_SOURCE)
            & (ExternalRef.source_id == value.strip())
            & (ExternalRef.ended.eq(False))
        )
        return {int(r["local_id"]) for r in rows if r["local_id"] is not None}
    rows = await PersonIdentifier.select(PersonIdentifier.person).where(
        (PersonIdentifier.scheme == scheme)
        & (PersonIdentifier.digest == identifier_digest(settings, scheme, value))
    )
    return {int(r["person"]) for r in rows}


async def match_person(
    settings: SigninSettings, provider: OidcProvider, claims: dict[str, Any]
) -> int:
    """The one person the claims name, allowed to use ``provider``; raises otherwise."""
    found: set[int] = set()
    for rule in provider.matches:
        value = claims.get(rule.claim)
        if not isinstance(value, str) or not value.strip():
            continue
        if rule.qualifier:
            scope = claims.get(rule.qualifier)
            if not isinstance(scope, str) or not scope.strip():
                continue  # an identifier without its school names nobody for certain
            value = f"{scope.strip()}/{value.strip()}"
        found |= await _people_with(settings, rule.scheme, value)
    if not found:
        raise ReppuError(
            ErrorCode.SIGNIN_NO_MATCH,
            "You signed in, but the school's records do not know you. Ask the school's office "
            "to check your details.",
        )
    if len(found) > 1:
        raise ReppuError(
            ErrorCode.SIGNIN_AMBIGUOUS,
            "You signed in, but the school's records hold you more than once. Ask the "
            "school's office to mend them.",
        )
    (person,) = found
    if provider.roles:
        facts = (await load_access_facts([person])).get(person, AccessFacts(person))
        roles = roles_on(facts, school_today())
        if not roles & {Role(r) for r in provider.roles}:
            raise ReppuError(
                ErrorCode.SIGNIN_ROLE_NOT_ALLOWED,
                f"You cannot sign in with {provider.title}. Use another way to sign in.",
            )
    return person
