"""Accounts without the provider: one-time activation codes, and an admin's disable, enable
and sign-out of every device.

Who may do what is the policy's (``sync/policy.py``) answer, composed here:
- issuing a code for a person is managing one of the person's schools (``school.manage``:
  the school's principal or the city's admin); a guardian belongs to the schools of their
  children. Nobody issues a code for themselves.
- disabling, enabling or signing out a person is managing the person's city
  (``municipality.manage``: the city's admins).

A disabled account loses every token in the same transaction (``revoked_at``); every server
process sees that in the database at its next look-up of the token, which is at once where
``REPPU_ACCESS_CACHE_SECONDS`` is 0 and within those seconds otherwise (``server/recent.py``);
the process that disabled the account forgets its tokens at once.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from piccolo.columns.combination import WhereRaw
from piccolo.engine.base import Engine

from schemas.errors import ErrorCode
from server.access import load_access_facts
from server.clock import school_today, utc_now
from server.db.engine import write_transaction
from server.db.notify_tables import NativeDevice, PushSubscription
from server.db.signin_tables import ActivationCode
from server.db.tables import Account, AuthToken, LoginFailure
from server.errors import ReppuError
from server.fanout import delete_native_devices, delete_subscriptions
from server.identity import IssuedToken, hash_password, issue_token
from server.live import announce_revocation
from server.settings import Settings
from server.signin.audit import EventKind, record_event
from server.signin.secrets import keyed_digest, new_activation_code, normalise_activation_code
from sync.policy import AccessFacts, Action, CityRef, SchoolRef, decide

CODES_PER_ISSUER_PER_HOUR = 30
"""A principal hands out codes to a class at a time; more than this in an hour is a mistake
or a stolen session."""
MIN_PASSWORD_LENGTH = 10
MIN_NEW_USERNAME_LENGTH = 3
"""For a username chosen at activation; a person's existing username redeems at any length."""
_PLAIN_USERNAME = re.compile(r"[A-Za-z0-9._-]+")
"""A new username, after NFKC: ASCII letters, digits, ``.``, ``_``, ``-`` (no look-alikes)."""

_FORBIDDEN = "You may not manage this person's account."


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    expires_at: dt.datetime


def _schools_of(target: AccessFacts, day: dt.date) -> set[tuple[int, int]]:
    """(school, municipality) of every school the person belongs to today, as pupil, staff or
    guardian of a pupil."""
    found = {(g.school_id, g.municipality_id) for g in target.groups_on(day)}
    found.update(
        (s.organisation_id, s.municipality_id)
        for s in target.staff_on(day)
        if s.organisation_id != s.municipality_id
    )
    for ward in target.wards_on(day):
        found.update(
            (g.school_id, g.municipality_id) for g in ward.pupil_groups if g.validity.holds_on(day)
        )
    return found


async def _facts(viewer_id: int, target_id: int) -> tuple[AccessFacts, AccessFacts]:
    facts = await load_access_facts([viewer_id, target_id])
    viewer = facts.get(viewer_id, AccessFacts(viewer_id))
    return viewer, facts.get(target_id, AccessFacts(target_id))


async def check_may_issue_code(viewer_id: int, target_id: int) -> None:
    """Raise ``auth.forbidden`` unless the viewer manages one of the target's schools."""
    day = school_today()
    viewer, target = await _facts(viewer_id, target_id)
    if viewer_id != target_id and any(
        decide(viewer, Action.MANAGE_SCHOOL, SchoolRef(school, city), day)
        for school, city in _schools_of(target, day)
    ):
        return
    raise ReppuError(ErrorCode.AUTH_FORBIDDEN, _FORBIDDEN)


async def check_may_disable(viewer_id: int, target_id: int) -> None:
    """Raise ``auth.forbidden`` unless the viewer is an admin of the target's city."""
    day = school_today()
    viewer, target = await _facts(viewer_id, target_id)
    if viewer_id != target_id and any(
        decide(viewer, Action.MANAGE_CITY, CityRef(city), day)
        for city in target.municipality_ids_on(day)
    ):
        return
    raise ReppuError(ErrorCode.AUTH_FORBIDDEN, _FORBIDDEN)


async def issue_activation_code(
    engine: Engine[Any], settings: Settings, *, actor: int | None, person: int
) -> IssuedCode:
    """A new code for ``person`` (access already checked); older unused codes are withdrawn.

    ``actor``: who issued it; None for the operator on the command line (``reppu
    activation-code``: the first admin's way in), recorded as issued by the person.
    Raises ``auth.rate_limited`` past :data:`CODES_PER_ISSUER_PER_HOUR`.
    """
    issuer = person if actor is None else actor
    now = utc_now()
    if await Account.exists().where((Account.person == person) & Account.disabled.eq(True)):
        # A code would let the person in the moment the account is enabled, without anyone
        # deciding that: enable the account first.
        raise ReppuError(
            ErrorCode.AUTH_FORBIDDEN,
            "This account is disabled: its city's admin enables it before a code is issued.",
        )
    code = new_activation_code()
    expires_at = now + dt.timedelta(seconds=settings.signin.activation_code_seconds)
    async with write_transaction(engine):
        recent = await ActivationCode.count().where(
            (ActivationCode.issued_by == issuer)
            & (ActivationCode.created_at > now - dt.timedelta(hours=1))
        )
        if recent >= CODES_PER_ISSUER_PER_HOUR:
            raise ReppuError(
                ErrorCode.AUTH_RATE_LIMITED,
                "Too many activation codes in an hour. Wait a while before issuing more.",
                headers={"Retry-After": "3600"},
            )
        await ActivationCode.update({ActivationCode.used_at: now}).where(
            (ActivationCode.person == person) & ActivationCode.used_at.is_null()
        )
        # Codes past their time are of no use; account_event keeps that they were issued.
        await ActivationCode.delete().where(ActivationCode.expires_at < now)
        await ActivationCode.insert(
            ActivationCode(
                person=person,
                issued_by=issuer,
                code_hash=keyed_digest(settings.signin, "activation", _normal(code)),
                created_at=now,
                expires_at=expires_at,
            )
        )
        await record_event(
            EventKind.ACTIVATION_ISSUED,
            person=person,
            actor=actor,
            detail="" if actor is not None else "by the operator (reppu activation-code)",
        )
    return IssuedCode(code=code, expires_at=expires_at)


def _normal(code: str) -> str:
    return normalise_activation_code(code)


async def _count_redeem_attempt(engine: Engine[Any], settings: Settings, address: str) -> int:
    """Count this attempt per address before the code is looked at (as logins are counted:
    ``server/identity.py``); refuse once over the address's limit. Returns the row to take
    back on success."""
    now = utc_now()
    since = now - dt.timedelta(seconds=settings.login_window_seconds)
    key = f"activation:{address}"
    async with write_transaction(engine):
        await LoginFailure.delete().where(
            (LoginFailure.key == key) & (LoginFailure.failed_at <= since)
        )
        rows = await LoginFailure.insert(LoginFailure(key=key, failed_at=now)).returning(
            LoginFailure.id
        )
    count = await LoginFailure.count().where(
        (LoginFailure.key == key) & (LoginFailure.failed_at > since)
    )
    if count > settings.login_failures_per_address:
        raise ReppuError(
            ErrorCode.AUTH_RATE_LIMITED,
            "Too many attempts. Wait a while before trying again.",
            headers={"Retry-After": str(settings.login_window_seconds)},
        )
    return int(rows[0]["id"])


async def redeem_activation_code(
    engine: Engine[Any],
    settings: Settings,
    *,
    code: str,
    username: str,
    password: str,
    device_name: str,
    address: str,
) -> IssuedToken:
    """Set the person's password with a code and sign this device in.

    A person without an account gets one named ``username``; a person with one keeps its
    username, which must be the one given. The code is spent only if all of this succeeds.
    """
    if len(password) < MIN_PASSWORD_LENGTH or not password.strip():
        raise ReppuError(
            ErrorCode.REQUEST_INVALID,
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters, not only spaces.",
            field="$.password",
        )
    attempt = await _count_redeem_attempt(engine, settings, address)
    digest = keyed_digest(settings.signin, "activation", _normal(code))
    now = utc_now()
    live = ActivationCode.exists().where(
        (ActivationCode.code_hash == digest)
        & ActivationCode.used_at.is_null()
        & (ActivationCode.expires_at > now)
    )
    # Hashed only for a code that may work: a guess costs the server no argon2 time, and
    # the hash is made before the write transaction, which must not wait on it.
    password_hash = await anyio.to_thread.run_sync(hash_password, password) if await live else ""
    async with write_transaction(engine):
        # Spent first, conditionally: of two redemptions at once only one updates the row.
        # Any refusal below rolls the transaction back, and the code with it.
        spent = await (
            ActivationCode.update({ActivationCode.used_at: now})
            .where(
                (ActivationCode.code_hash == digest)
                & ActivationCode.used_at.is_null()
                & (ActivationCode.expires_at > now)
            )
            .returning(ActivationCode.person)
        )
        issued = None
        if spent and password_hash:
            person = int(spent[0]["person"])
            account_id = await _activate_account(person, username, password_hash)
            if await revoke_every_token(account_id):
                # A password reset signs every other device out (the old password may be
                # what was stolen); a revoking event tells every process to forget them.
                await record_event(
                    EventKind.ACCOUNT_SIGNED_OUT,
                    person=person,
                    detail="by a password reset (activation code)",
                )
                await announce_revocation(engine)
            issued = await issue_token(
                settings, account_id=account_id, person_id=person, device_name=device_name
            )
            await record_event(EventKind.ACTIVATION_REDEEMED, person=person, address=address)
            await LoginFailure.delete().where(LoginFailure.id == attempt)
    if issued is None:
        # Also for a wrong username or a disabled account: the refusal does not tell
        # that the code was valid.
        async with write_transaction(engine):
            await record_event(EventKind.ACTIVATION_REFUSED, address=address, detail="no such code")
        raise ReppuError(
            ErrorCode.ACTIVATION_INVALID, "The activation code is not valid. Ask for a new one."
        )
    return issued


async def person_of_username(username: str) -> int | None:
    """The person whose account has this username, for the operator's command line."""
    row = await Account.select(Account.person).where(Account.username == username).first()
    return int(row["person"]) if row else None


async def _activate_account(person: int, username: str, password_hash: str) -> int:
    """The person's account with the new password, made if there is none; its id."""
    account = (
        await Account.select(Account.id, Account.username, Account.disabled)
        .where(Account.person == person)
        .first()
    )
    if account is None:
        username = unicodedata.normalize("NFKC", username)
        if len(username) < MIN_NEW_USERNAME_LENGTH or not _PLAIN_USERNAME.fullmatch(username):
            raise ReppuError(
                ErrorCode.REQUEST_INVALID,
                f"A username is at least {MIN_NEW_USERNAME_LENGTH} characters: letters a-z, "
                "digits, '.', '_' and '-'.",
                field="$.username",
            )
        # Unique whatever the case: "DEMO-ADMIN" is taken when "demo-admin" is.
        if await Account.exists().where(WhereRaw("lower(username) = {}", username.lower())):
            raise ReppuError(
                ErrorCode.ACTIVATION_USERNAME_TAKEN,
                "That username is taken. Choose another.",
                field="$.username",
            )
        rows = await Account.insert(
            Account(person=person, username=username, password_hash=password_hash)
        ).returning(Account.id)
        return int(rows[0]["id"])
    if account["disabled"] or account["username"].casefold() != username.casefold():
        # The generic refusal: neither tells a guesser that the code was valid.
        raise ReppuError(
            ErrorCode.ACTIVATION_INVALID, "The activation code is not valid. Ask for a new one."
        )
    await Account.update({Account.password_hash: password_hash}).where(Account.id == account["id"])
    return int(account["id"])


async def _account_of(person: int) -> int:
    row = await Account.select(Account.id).where(Account.person == person).first()
    if row is None:
        raise ReppuError(ErrorCode.ACCOUNT_NOT_FOUND, "This person has no account.")
    return int(row["id"])


async def revoke_every_token(account_id: int) -> bool:
    """Revoke every live token of the account and drop their push subscriptions; call
    inside a write transaction. Whether there was any."""
    tokens = await AuthToken.select(AuthToken.id).where(
        (AuthToken.account == account_id) & AuthToken.revoked_at.is_null()
    )
    ids = [int(t["id"]) for t in tokens]
    if ids:
        await AuthToken.update({AuthToken.revoked_at: utc_now()}).where(AuthToken.id.is_in(ids))
        await delete_subscriptions(PushSubscription.device.is_in(ids))
        await delete_native_devices(NativeDevice.device.is_in(ids))
    return bool(ids)


async def set_disabled(engine: Engine[Any], *, actor: int, person: int, disabled: bool) -> int:
    """Disable (signing out every device) or enable the person's account; returns its id."""
    account_id = await _account_of(person)
    async with write_transaction(engine):
        await Account.update({Account.disabled: disabled}).where(Account.id == account_id)
        if disabled:
            await revoke_every_token(account_id)
            # Codes not yet used would let the person back in: withdraw them.
            await ActivationCode.update({ActivationCode.used_at: utc_now()}).where(
                (ActivationCode.person == person) & ActivationCode.used_at.is_null()
            )
        kind = EventKind.ACCOUNT_DISABLED if disabled else EventKind.ACCOUNT_ENABLED
        await record_event(kind, person=person, actor=actor)
        if disabled:
            await announce_revocation(engine)
    return account_id


async def sign_out_everywhere(engine: Engine[Any], *, actor: int, person: int) -> int:
    """Revoke every token of the person's account; returns the account's id."""
    account_id = await _account_of(person)
    async with write_transaction(engine):
        await revoke_every_token(account_id)
        await record_event(EventKind.ACCOUNT_SIGNED_OUT, person=person, actor=actor)
        await announce_revocation(engine)
    return account_id
