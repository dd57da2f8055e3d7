"""The sign-in round trip through a provider, with its state in the database (the callback
may reach another server process than the start):

1. ``start``: check the app's redirect URI, read the provider's discovery, store the
   request's hashed ``state`` with its ``nonce``, PKCE verifier and the app's
   ``handoff_challenge`` (``oidc_request``, ten minutes), and send the browser to the
   provider.
2. ``finish`` (the callback): spend the request (a ``state`` works once), exchange the code,
   check the ID token (``server/signin/oidc.py``), find the person
   (``server/signin/matching.py``), and leave a one-time hand-off code (two minutes) for the
   app; the browser goes back to the app with ``?handoff=<code>``. Any refusal is audited and
   sends the browser back with ``?signin_error=<code>`` instead; nothing else is created.
3. ``redeem_handoff``: the app posts the hand-off code with its ``handoff_verifier`` and gets
   a device token exactly as ``POST /auth/login`` gives one. The bearer token never travels
   in a URL, and a hand-off code alone is worth nothing: whoever opens a link with somebody
   else's ``?handoff=`` (login CSRF) lacks the verifier the starting app keeps (RFC 8252
   section 8.1 asks such a proof of a public client).
4. ``sign_out``: revoke the device's token, and say where the provider's own session ends
   (RP-initiated logout), if the token came from a provider that has an
   ``end_session_endpoint``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from piccolo.engine.base import Engine

from schemas.errors import ErrorCode
from server.clock import utc_now
from server.db.engine import write_transaction
from server.db.signin_tables import OidcRequest, SigninHandoff, SigninSession
from server.db.tables import Account, AuthToken
from server.errors import ReppuError
from server.identity import IssuedToken, Principal, issue_token, log_out, token_digest
from server.settings import Settings
from server.signin import oidc
from server.signin.audit import EventKind, record_event
from server.signin.config import OidcProvider, SigninSettings
from server.signin.matching import match_person
from server.signin.secrets import keyed_digest, new_url_secret

UNUSABLE_PASSWORD = "!signin-only"  # noqa: S105 (no hash: nothing verifies against it)
"""The password hash of an account made by a provider sign-in: argon2 cannot read it, so no
password opens the account until an activation code sets one."""


def provider_named(settings: SigninSettings, name: str) -> OidcProvider:
    provider = settings.provider(name)
    if provider is None:
        raise ReppuError(ErrorCode.SIGNIN_UNKNOWN_PROVIDER, "No such way to sign in.")
    return provider


def callback_uri(settings: SigninSettings, provider: OidcProvider) -> str:
    """The redirect URI registered with the provider."""
    return f"{settings.public_url}/auth/oidc/{provider.name}/callback"


def app_return_uri(settings: SigninSettings, requested: str | None) -> str:
    """Where the browser goes after the provider: the PWA, or a native app's redirect URI
    the operator allowed. A loopback entry (``http://127.0.0.1/cb``) allows any port, as
    RFC 8252 section 7.3 asks (the app listens on a port of the moment)."""
    if not requested:
        return f"{settings.public_url}/"
    if requested in settings.app_redirect_uris:
        return requested
    parts = urlsplit(requested)
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1") and parts.port:
        portless = urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]))
        if portless in settings.app_redirect_uris and not parts.fragment:
            return requested
    raise ReppuError(
        ErrorCode.SIGNIN_REDIRECT_NOT_ALLOWED, "This app may not receive sign-ins here."
    )


def _with_query(uri: str, **params: str) -> str:
    parts = urlsplit(uri)
    extra = urlencode(params)
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


def handoff_challenge_of(verifier: str) -> str:
    """The S256 challenge of a ``handoff_verifier``, as PKCE makes it (RFC 7636 section 4.2):
    BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def start(
    engine: Engine[Any],
    settings: SigninSettings,
    *,
    provider_name: str,
    return_to: str | None,
    device_name: str,
    handoff_challenge: str,
) -> str:
    """Step 1: the provider's URL to send the browser to. ``handoff_challenge``: the S256
    challenge of the app's ``handoff_verifier``, which step 3 asks for."""
    provider = provider_named(settings, provider_name)
    back = app_return_uri(settings, return_to)
    metadata = await oidc.provider_metadata(provider)
    request = oidc.authorization_request(provider, metadata, callback_uri(settings, provider))
    now = utc_now()
    async with write_transaction(engine):
        # Requests nobody came back for are swept as new ones arrive.
        await OidcRequest.delete().where(OidcRequest.expires_at < now)
        await OidcRequest.insert(
            OidcRequest(
                state_hash=keyed_digest(settings, "state", request.state),
                provider=provider.name,
                nonce=request.nonce,
                code_verifier=request.code_verifier,
                handoff_challenge=handoff_challenge,
                return_to=back,
                device_name=device_name,
                created_at=now,
                expires_at=now + dt.timedelta(seconds=settings.request_seconds),
            )
        )
    return request.url


@dataclass(frozen=True, slots=True)
class _Pending:
    nonce: str
    code_verifier: str
    return_to: str
    device_name: str
    handoff_challenge: str


async def _spend_request(
    engine: Engine[Any], settings: SigninSettings, provider: OidcProvider, state: str
) -> _Pending | None:
    now = utc_now()
    async with write_transaction(engine):
        rows = await (
            OidcRequest.update({OidcRequest.used_at: now})
            .where(
                (OidcRequest.state_hash == keyed_digest(settings, "state", state))
                & (OidcRequest.provider == provider.name)
                & OidcRequest.used_at.is_null()
                & (OidcRequest.expires_at > now)
            )
            .returning(
                OidcRequest.nonce,
                OidcRequest.code_verifier,
                OidcRequest.return_to,
                OidcRequest.device_name,
                OidcRequest.handoff_challenge,
            )
        )
    if not rows:
        return None
    row = rows[0]
    return _Pending(
        row["nonce"],
        row["code_verifier"],
        row["return_to"],
        row["device_name"],
        row["handoff_challenge"],
    )


async def _account_for(person: int) -> tuple[int, bool]:
    """The person's account (id, disabled), made without a password if there is none."""
    row = await Account.select(Account.id, Account.disabled).where(Account.person == person).first()
    if row is not None:
        return int(row["id"]), bool(row["disabled"])
    username = f"person-{person}"
    if await Account.exists().where(Account.username == username):
        username = f"person-{person}-{secrets.token_hex(4)}"
    rows = await Account.insert(
        Account(person=person, username=username, password_hash=UNUSABLE_PASSWORD)
    ).returning(Account.id)
    return int(rows[0]["id"]), False


async def finish(
    engine: Engine[Any],
    settings: SigninSettings,
    *,
    provider_name: str,
    state: str | None,
    code: str | None,
    error: str | None,
    address: str,
    issuer: str | None = None,
) -> str:
    """Step 2: where to send the browser back to, with a hand-off code or an error code.

    Raises ``signin.state_mismatch`` (and sends nobody anywhere) when the state names no
    sign-in this server started: then there is no app to go back to. ``issuer``: the
    answer's ``iss`` parameter (RFC 9207), which must be the provider's issuer if present.
    """
    provider = provider_named(settings, provider_name)
    pending = await _spend_request(engine, settings, provider, state) if state else None
    if pending is None:
        async with write_transaction(engine):
            await record_event(
                EventKind.SIGNIN_REFUSED,
                provider=provider.name,
                address=address,
                detail=ErrorCode.SIGNIN_STATE_MISMATCH.value,
            )
        raise ReppuError(
            ErrorCode.SIGNIN_STATE_MISMATCH,
            "This sign-in was not started here, has expired or was used already. Start again.",
        )
    person: int | None = None
    try:
        if error or not code:
            raise ReppuError(ErrorCode.SIGNIN_REFUSED, "The sign-in was cancelled or refused.")
        if issuer is not None and issuer != provider.issuer:
            # RFC 9207: the answer names another issuer than the one this sign-in went to
            # (a mix-up between providers); its code is not sent anywhere.
            raise ReppuError(ErrorCode.SIGNIN_REFUSED, "The answer came from another service.")
        metadata = await oidc.provider_metadata(provider)
        id_token = await oidc.exchange_code(
            provider,
            metadata,
            code=code,
            redirect_uri=callback_uri(settings, provider),
            code_verifier=pending.code_verifier,
        )
        claims = await oidc.validate_id_token(provider, metadata, id_token, nonce=pending.nonce)
        person = await match_person(settings, provider, claims)
        handoff = new_url_secret()
        now = utc_now()
        async with write_transaction(engine):
            # Hand-offs past their two minutes, used or not, are swept as new ones arrive.
            await SigninHandoff.delete().where(SigninHandoff.expires_at < now)
            account, disabled = await _account_for(person)
            if disabled:
                raise ReppuError(ErrorCode.SIGNIN_REFUSED, "This account is disabled.")
            await SigninHandoff.insert(
                SigninHandoff(
                    handoff_hash=keyed_digest(settings, "handoff", handoff),
                    account=account,
                    provider=provider.name,
                    device_name=pending.device_name,
                    handoff_challenge=pending.handoff_challenge,
                    created_at=now,
                    expires_at=now + dt.timedelta(seconds=settings.handoff_seconds),
                )
            )
            await record_event(
                EventKind.SIGNIN_SUCCEEDED, person=person, provider=provider.name, address=address
            )
    except ReppuError as refusal:
        async with write_transaction(engine):
            await record_event(
                EventKind.SIGNIN_REFUSED,
                person=person,
                provider=provider.name,
                address=address,
                detail=refusal.code.value,
            )
        return _with_query(pending.return_to, signin_error=refusal.code.value)
    return _with_query(pending.return_to, handoff=handoff)


async def redeem_handoff(
    engine: Engine[Any], settings: Settings, *, handoff: str, verifier: str
) -> IssuedToken:
    """Step 3: the device token for a hand-off code and the verifier of the app that started
    the sign-in, once. A wrong verifier spends the code all the same (one try per code) and
    creates nothing."""
    now = utc_now()
    async with write_transaction(engine):
        rows = await (
            SigninHandoff.update({SigninHandoff.used_at: now})
            .where(
                (SigninHandoff.handoff_hash == keyed_digest(settings.signin, "handoff", handoff))
                & SigninHandoff.used_at.is_null()
                & (SigninHandoff.expires_at > now)
            )
            .returning(
                SigninHandoff.account,
                SigninHandoff.provider,
                SigninHandoff.device_name,
                SigninHandoff.handoff_challenge,
            )
        )
        proven = bool(rows) and hmac.compare_digest(
            handoff_challenge_of(verifier).encode("ascii"),
            str(rows[0]["handoff_challenge"]).encode("utf-8"),
        )
        account = (
            await Account.select(Account.id, Account.person, Account.disabled)
            .where(Account.id == rows[0]["account"])
            .first()
            if proven
            else None
        )
        if account is not None and not account["disabled"]:
            issued = await issue_token(
                settings,
                account_id=int(account["id"]),
                person_id=int(account["person"]),
                device_name=rows[0]["device_name"],
            )
            token = (
                await AuthToken.select(AuthToken.id)
                .where(AuthToken.token_hash == token_digest(settings, issued.token))
                .first()
            )
            assert token is not None
            await SigninSession.insert(
                SigninSession(token=token["id"], provider=rows[0]["provider"])
            )
            return issued
    raise ReppuError(
        ErrorCode.SIGNIN_HANDOFF_INVALID, "This sign-in has expired or was used. Sign in again."
    )


async def sign_out(
    engine: Engine[Any], settings: SigninSettings, principal: Principal
) -> str | None:
    """Step 4: revoke the token; the provider's logout URL if it came from one that has it."""
    row = (
        await SigninSession.select(SigninSession.provider)
        .where(SigninSession.token == principal.token_id)
        .first()
    )
    await log_out(engine, principal)
    provider = settings.provider(row["provider"]) if row else None
    if provider is None:
        return None
    try:
        metadata = await oidc.provider_metadata(provider)
    except ReppuError:
        return None  # signed out here all the same; the provider's session outlives it
    return oidc.end_session_url(provider, metadata, f"{settings.public_url}/")
