"""Who is calling: passwords, bearer tokens bound to devices, and login rate limits.

Tokens are 256-bit random strings handed out once; the database keeps only their HMAC-SHA-256
under the settings' secret key, so a copy of the database holds no usable token (and changing
the secret key logs everyone out). Passwords are argon2id hashes; verifying one costs tens of
milliseconds of CPU, so it runs in a worker thread and the event loop stays free.

Failed logins are counted in the database, not in memory, so that every server process sees
the same count: more than ``login_failures_per_account`` failures for one username, or
``login_failures_per_address`` from one address, within ``login_window_seconds`` refuse further
attempts with ``auth.rate_limited`` until the window has passed.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import os
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from piccolo.engine.base import Engine

from schemas.errors import ErrorCode
from server.clock import utc_now
from server.db.engine import write_transaction
from server.db.notify_tables import NativeDevice, PushSubscription
from server.db.tables import Account, AuthToken, LoginFailure
from server.errors import ReppuError
from server.fanout import delete_native_devices, delete_subscriptions
from server.settings import Settings

_hasher = PasswordHasher()
# A password check costs about 0.2 s of CPU and 64 MiB; more of them at once than there are
# cores only makes every one slower and starves the rest of the process (a morning's login
# burst did exactly that: docs/benchmarks.md). The limiter is made on first use, inside the
# event loop it belongs to.
_VERIFY_SLOTS = max(1, os.cpu_count() or 1)


@functools.cache
def _verify_limiter() -> anyio.CapacityLimiter:
    return anyio.CapacityLimiter(_VERIFY_SLOTS)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so that "no such user" and "wrong
    password" take the same time and cannot be told apart by a stopwatch."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request."""

    person_id: int
    account_id: int
    token_id: int
    device_name: str = ""
    """The name the device logged in with (audit trails of what it pushes)."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: dt.datetime
    person_id: int


def hash_password(password: str) -> str:
    """An argon2id hash with a fresh salt, for storing."""
    return _hasher.hash(password)


def _verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def token_digest(settings: Settings, token: str) -> str:
    """What the database stores and looks up for ``token``."""
    return hmac.new(settings.secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def _failure_keys(username: str, address: str) -> tuple[str, str]:
    return f"account:{username.casefold()}", f"address:{address}"


async def _recent_failures(key: str, since: dt.datetime) -> int:
    return int(
        await LoginFailure.count().where(
            (LoginFailure.key == key) & (LoginFailure.failed_at > since)
        )
    )


async def _count_attempt(
    engine: Engine[Any], settings: Settings, username: str, address: str
) -> list[int]:
    """Record this attempt as a failure *before* the password is checked, then refuse it if
    that puts either key over its limit; returns the rows to take back if it succeeds.

    Counting first is what makes the limit hold against many guesses sent at once: each one
    is counted before any of them has spent the tens of milliseconds of a password check.
    """
    now = utc_now()
    since = now - dt.timedelta(seconds=settings.login_window_seconds)
    account_key, address_key = _failure_keys(username, address)
    async with write_transaction(engine):
        # Old failures of these keys are swept as new ones arrive, so the table stays small.
        await LoginFailure.delete().where(
            LoginFailure.key.is_in([account_key, address_key]) & (LoginFailure.failed_at <= since)
        )
        rows = await LoginFailure.insert(
            LoginFailure(key=account_key, failed_at=now),
            LoginFailure(key=address_key, failed_at=now),
        ).returning(LoginFailure.id)
    if (
        await _recent_failures(account_key, since) > settings.login_failures_per_account
        or await _recent_failures(address_key, since) > settings.login_failures_per_address
    ):
        raise ReppuError(
            ErrorCode.AUTH_RATE_LIMITED,
            "Too many failed logins. Wait a while before trying again.",
            headers={"Retry-After": str(settings.login_window_seconds)},
        )
    return [int(r["id"]) for r in rows]


async def log_in(
    engine: Engine[Any],
    settings: Settings,
    *,
    username: str,
    password: str,
    device_name: str,
    address: str,
) -> IssuedToken:
    """Check the password and issue a token for the named device.

    Raises ``auth.rate_limited`` before checking anything when the limits are reached, and
    ``auth.bad_credentials`` for an unknown username, a wrong password or a disabled account
    alike.
    """
    async with _verify_limiter():
        # Counted only once a check slot is ours: attempts waiting in a burst of honest
        # logins do not count against the address.
        attempt = await _count_attempt(engine, settings, username, address)
        account = (
            await Account.select(
                Account.id, Account.person, Account.password_hash, Account.disabled
            )
            .where(Account.username == username)
            .first()
        )
        stored_hash = account["password_hash"] if account else _dummy_hash()
        ok = await anyio.to_thread.run_sync(_verify_password, stored_hash, password)
    if account is None or not ok or account["disabled"]:
        raise ReppuError(ErrorCode.AUTH_BAD_CREDENTIALS, "Wrong username or password.")

    async with write_transaction(engine):
        issued = await issue_token(
            settings, account_id=account["id"], person_id=account["person"], device_name=device_name
        )
        # A success takes its own attempt back and clears the account's count, so a person
        # who mistyped twice starts afresh.
        await LoginFailure.delete().where(
            LoginFailure.id.is_in(attempt)
            | (LoginFailure.key == _failure_keys(username, address)[0])
        )
    return issued


async def issue_token(
    settings: Settings, *, account_id: int, person_id: int, device_name: str
) -> IssuedToken:
    """Insert a new device token for the account; call inside a write transaction.

    Every way in (a password, an activation code, an OpenID Connect sign-in) ends here, so
    their tokens are alike.
    """
    token = secrets.token_urlsafe(32)
    now = utc_now()
    expires_at = now + dt.timedelta(seconds=settings.token_ttl_seconds)
    await AuthToken.insert(
        AuthToken(
            account=account_id,
            token_hash=token_digest(settings, token),
            device_name=device_name,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return IssuedToken(token=token, expires_at=expires_at, person_id=int(person_id))


# Prebuilt: this runs on every authenticated request.
_PRINCIPAL_QUERY = (
    "SELECT t.id, a.id AS account_id, a.person AS person_id, t.expires_at, t.revoked_at, "
    "t.device_name, a.disabled FROM auth_token t JOIN account a ON a.id = t.account "
    "WHERE t.token_hash = {}"
)


_PRINCIPALS_QUERY = (
    "SELECT t.token_hash, t.id, a.id AS account_id, a.person AS person_id, t.expires_at, "
    "t.revoked_at, t.device_name, a.disabled FROM auth_token t JOIN account a ON a.id = t.account "
    "WHERE t.token_hash IN ({})"
)


def _live_principal(row: dict[str, Any] | None) -> Principal | None:
    if row is None or row["revoked_at"] is not None or row["disabled"]:
        return None
    if row["expires_at"] <= utc_now():
        return None
    return Principal(
        person_id=int(row["person_id"]),
        account_id=int(row["account_id"]),
        token_id=int(row["id"]),
        device_name=row["device_name"],
    )


async def authenticate(settings: Settings, token: str) -> Principal | None:
    """The principal of a live token, or None if it is unknown, expired, revoked or disabled."""
    rows = await AuthToken.raw(_PRINCIPAL_QUERY, token_digest(settings, token))
    return _live_principal(rows[0] if rows else None)


async def authenticate_digests(digests: Collection[str]) -> dict[str, Principal]:
    """:func:`authenticate` for many tokens at once, by their digests (:func:`token_digest`):
    the principal of each live one; unknown, expired, revoked and disabled ones are left out."""
    found: dict[str, Principal] = {}
    ordered = sorted(set(digests))
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        sql = _PRINCIPALS_QUERY.format(", ".join("{}" for _ in chunk))
        for row in await AuthToken.raw(sql, *chunk):
            principal = _live_principal(row)
            if principal is not None:
                found[str(row["token_hash"])] = principal
    return found


async def log_out(engine: Engine[Any], principal: Principal) -> None:
    """Revoke the token the request came with; the device must log in again.

    The device's push subscription goes with it: a logged-out phone shows no more news.
    """
    async with write_transaction(engine):
        await AuthToken.update({AuthToken.revoked_at: utc_now()}).where(
            AuthToken.id == principal.token_id
        )
        await delete_subscriptions(PushSubscription.device == principal.token_id)
        await delete_native_devices(NativeDevice.device == principal.token_id)
