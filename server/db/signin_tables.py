"""Sign-in beyond passwords: activation codes, OpenID Connect round trips, hand-offs, the
identifiers that link a signed-in identity to a roster person, and the audit trail of it all.

``docs/identity.md`` explains each one. Every secret here (an activation code, an OIDC
``state``, a hand-off code, a national identity number) is stored only as an HMAC-SHA-256
under a server key, never in clear. Only ``server/signin/`` writes these tables.
"""

from __future__ import annotations

from piccolo.columns import ForeignKey, OnDelete, Serial, Timestamptz, Varchar
from piccolo.table import Table

from server.db.tables import Account, AuthToken, Person


class ActivationCode(Table, tablename="activation_code"):
    """A one-time code a principal or admin gave a person, to set a password with.

    Single use (``used_at``), short-lived (``expires_at``); issuing a new one for a person
    withdraws the older ones (their ``used_at`` is set).
    """

    id = Serial(primary_key=True)

    person: ForeignKey[Person] = ForeignKey(
        references=Person, null=False, on_delete=OnDelete.restrict, index=True
    )
    issued_by: ForeignKey[Person] = ForeignKey(
        references=Person, null=False, on_delete=OnDelete.restrict, index=True
    )
    code_hash = Varchar(length=64, unique=True, index=True)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class OidcRequest(Table, tablename="oidc_request"):
    """A sign-in sent to a provider and not yet back: its state (hashed), nonce and PKCE
    verifier. Kept in the database because the callback may reach another server process."""

    id = Serial(primary_key=True)

    state_hash = Varchar(length=64, unique=True, index=True)
    provider = Varchar(length=40)
    nonce = Varchar(length=100)
    code_verifier = Varchar(length=128)
    handoff_challenge = Varchar(length=64)
    """The S256 challenge of the app's ``handoff_verifier``: only the app that started the
    sign-in can redeem its hand-off (``docs/identity.md``)."""
    return_to = Varchar(length=400)
    device_name = Varchar(length=100)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class SigninHandoff(Table, tablename="signin_handoff"):
    """A short-lived one-time code the callback hands to the app, which exchanges it by POST
    for a device token (so that no bearer token ever travels in a URL)."""

    id = Serial(primary_key=True)

    handoff_hash = Varchar(length=64, unique=True, index=True)
    account: ForeignKey[Account] = ForeignKey(
        references=Account, null=False, on_delete=OnDelete.restrict, index=True
    )
    provider = Varchar(length=40)
    device_name = Varchar(length=100)
    handoff_challenge = Varchar(length=64)
    """The sign-in's ``handoff_challenge``, which the redeeming verifier must match."""
    created_at = Timestamptz()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class SigninSession(Table, tablename="signin_session"):
    """Which provider a device token came from, for the provider's logout."""

    id = Serial(primary_key=True)

    token: ForeignKey[AuthToken] = ForeignKey(
        references=AuthToken, null=False, on_delete=OnDelete.restrict, unique=True, index=True
    )
    provider = Varchar(length=40)


class PersonIdentifier(Table, tablename="person_identifier"):
    """An identifier a provider may assert about a person (a national identity number, a
    staff identifier), kept only as ``HMAC-SHA-256(identity key, scheme ":" value)``.

    Not unique: if two people are imported with one identifier, a sign-in with it is refused
    as ambiguous rather than given to either of them.
    """

    id = Serial(primary_key=True)

    person: ForeignKey[Person] = ForeignKey(
        references=Person, null=False, on_delete=OnDelete.restrict, index=True
    )
    scheme = Varchar(length=32)
    digest = Varchar(length=64, index=True)


class AccountEvent(Table, tablename="account_event"):
    """The audit trail of accounts: codes issued and redeemed, sign-ins and refusals,
    disables and sign-outs. ``detail`` never holds a secret or a national identity number."""

    id = Serial(primary_key=True)

    at = Timestamptz()
    kind = Varchar(length=40)
    person: ForeignKey[Person] = ForeignKey(
        references=Person, null=True, on_delete=OnDelete.restrict, index=True
    )
    actor: ForeignKey[Person] = ForeignKey(
        references=Person, null=True, on_delete=OnDelete.restrict, index=True
    )
    provider = Varchar(length=40, default="")
    address = Varchar(length=64, default="")
    detail = Varchar(length=300, default="")


SIGNIN_TABLES: tuple[type[Table], ...] = (
    ActivationCode,
    OidcRequest,
    SigninHandoff,
    SigninSession,
    PersonIdentifier,
    AccountEvent,
)
