"""The account audit trail (``account_event``): who issued, redeemed, signed in, was refused,
disabled or signed out, and when. ``detail`` is for people reading the trail; it never holds
a code, a token, a password or a national identity number."""

from __future__ import annotations

from enum import StrEnum

from server.clock import utc_now
from server.db.signin_tables import AccountEvent


class EventKind(StrEnum):
    ACTIVATION_ISSUED = "activation.issued"
    ACTIVATION_REDEEMED = "activation.redeemed"
    ACTIVATION_REFUSED = "activation.refused"
    ACCOUNT_DISABLED = "account.disabled"
    ACCOUNT_ENABLED = "account.enabled"
    ACCOUNT_SIGNED_OUT = "account.signed_out"
    DEVICE_SIGNED_OUT = "account.device_signed_out"
    """An admin signed one device out (``detail``: the device's id and name)."""
    ADMIN_PEOPLE_LISTED = "admin.people_listed"
    """An admin read a page of a school's people (``detail``: school, role, cursor)."""
    ADMIN_DEVICES_LISTED = "admin.devices_listed"
    """An admin read a person's devices."""
    SIGNIN_SUCCEEDED = "signin.succeeded"
    SIGNIN_REFUSED = "signin.refused"


async def record_event(
    kind: EventKind,
    *,
    person: int | None = None,
    actor: int | None = None,
    provider: str = "",
    address: str = "",
    detail: str = "",
) -> None:
    """Append one event; call inside the transaction of what it records, where there is one."""
    await AccountEvent.insert(
        AccountEvent(
            at=utc_now(),
            kind=kind.value,
            person=person,
            actor=actor,
            provider=provider,
            address=address[:64],
            detail=detail[:300],
        )
    )
