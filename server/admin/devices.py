"""A person's signed-in devices, and an admin's sign-out of one of them.

A device is one live token (``auth_token``: neither revoked nor expired). What an admin sees
of it is its id, the name it gave, when it signed in, when it expires and the provider it
came through; never the token or its hash. No time of last use is shown: none is recorded
(recording it would be a write on every request).

Signing a device out revokes its token as a logout does (its push subscription goes too) and,
as a disable does, records an ``account_event`` with the actor and announces the revocation,
so every server process stops honouring the token (``server/live.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from piccolo.engine.base import Engine

from schemas.admin import Device, Devices
from schemas.errors import ErrorCode
from server.clock import utc_now
from server.db.engine import write_transaction
from server.db.notify_tables import NativeDevice, PushSubscription
from server.db.signin_tables import SigninSession
from server.db.tables import Account, AuthToken
from server.errors import ReppuError
from server.fanout import delete_native_devices, delete_subscriptions
from server.live import announce_revocation
from server.signin.audit import EventKind, record_event


@dataclass(frozen=True, slots=True)
class SignedOut:
    token_hash: str
    """For the acting process to forget the token at once (``RecentLookups``)."""


async def _account_of(person: int) -> int:
    row = await Account.select(Account.id).where(Account.person == person).first()
    if row is None:
        raise ReppuError(ErrorCode.ACCOUNT_NOT_FOUND, "This person has no account.")
    return int(row["id"])


def _live(account_id: int) -> Any:
    return (
        (AuthToken.account == account_id)
        & AuthToken.revoked_at.is_null()
        & (AuthToken.expires_at > utc_now())
    )


async def list_devices(person: int) -> Devices:
    """The person's live tokens as devices, newest first; ``account.not_found`` without an
    account. Access is checked by the caller."""
    account_id = await _account_of(person)
    tokens = (
        await AuthToken.select(
            AuthToken.id, AuthToken.device_name, AuthToken.created_at, AuthToken.expires_at
        )
        .where(_live(account_id))
        .order_by(AuthToken.id, ascending=False)
    )
    ids = [int(t["id"]) for t in tokens]
    providers = (
        {
            int(r["token"]): str(r["provider"])
            for r in await SigninSession.select(SigninSession.token, SigninSession.provider).where(
                SigninSession.token.is_in(ids)
            )
        }
        if ids
        else {}
    )
    return Devices(
        person_id=person,
        devices=[
            Device(
                id=int(t["id"]),
                name=t["device_name"],
                created_at=t["created_at"],
                expires_at=t["expires_at"],
                provider=providers.get(int(t["id"])),
            )
            for t in tokens
        ],
    )


async def sign_out_device(
    engine: Engine[Any], *, actor: int, person: int, device: int
) -> SignedOut:
    """Revoke one live token of the person's account; ``account.not_found`` without an
    account, ``account.device_not_found`` for a token that is not a live one of it."""
    account_id = await _account_of(person)
    async with write_transaction(engine):
        # Conditional on being live: of two sign-outs at once, one revokes and one is told
        # the device is not found, and only one event is written.
        revoked = await (
            AuthToken.update({AuthToken.revoked_at: utc_now()})
            .where(_live(account_id) & (AuthToken.id == device))
            .returning(AuthToken.token_hash, AuthToken.device_name)
        )
        if not revoked:
            raise ReppuError(
                ErrorCode.ACCOUNT_DEVICE_NOT_FOUND,
                "This person has no such signed-in device.",
            )
        await delete_subscriptions(PushSubscription.device == device)
        await delete_native_devices(NativeDevice.device == device)
        await record_event(
            EventKind.DEVICE_SIGNED_OUT,
            person=person,
            actor=actor,
            detail=f"device {device} ({revoked[0]['device_name']})",
        )
        await announce_revocation(engine)
    return SignedOut(token_hash=str(revoked[0]["token_hash"]))
