"""An OpenID Connect relying party: discovery, the provider's keys, the authorization
request, the code exchange and the ID token's checks. No HTTP routes here
(``server/routes/signin.py``), no signature code of our own (joserfc verifies).

1. **Discovery.** ``<issuer>/.well-known/openid-configuration`` is read and kept for an hour.
   Its ``issuer`` must be the configured one, and every endpoint must be on the issuer's own
   origin: hosts come only from the operator's configuration, never from a request or a
   document a request could steer (SSRF).
2. **Keys.** The provider's JWKS is kept until a token names a ``kid`` it lacks; then it is
   fetched again once, and not again within :data:`JWKS_REFETCH_SECONDS`, so that tokens
   with made-up key ids cannot make us hammer the provider.
3. **Authorization request.** The code flow only (never implicit), with PKCE (S256), a
   ``state`` and a ``nonce``; the caller stores them (``oidc_request``).
4. **Code exchange.** ``client_secret_basic``, ``client_secret_post`` or ``private_key_jwt``.
5. **ID token.** Its ``alg`` must be one the provider is configured with (never ``none``,
   never a shared-secret HMAC), its signature good under the provider's key of that ``kid``;
   ``iss`` the issuer, ``aud`` our client (and ``azp`` ours when there are several
   audiences), ``exp`` in the future, ``iat`` not in the future nor too old, ``nonce`` the one
   we sent, and ``acr`` one of the accepted values where the operator configured them.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, import_key

from schemas.errors import ErrorCode
from server.clock import utc_now
from server.errors import ReppuError
from server.signin.config import OidcProvider

DISCOVERY_SECONDS = 3600
JWKS_REFETCH_SECONDS = 10
CLOCK_LEEWAY_SECONDS = 60
MAX_TOKEN_AGE_SECONDS = 600
"""An ID token issued longer ago than this is refused, whatever its ``exp``."""
HTTP_TIMEOUT_SECONDS = 10.0
MAX_DOCUMENT_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None = None


@dataclass(slots=True)
class _ProviderCache:
    metadata: ProviderMetadata | None = None
    metadata_at: dt.datetime | None = None
    keys: KeySet | None = None
    keys_at: dt.datetime | None = None
    jwks_fetches: int = 0


@functools.cache
def _cache(provider: OidcProvider) -> _ProviderCache:
    """What this process knows of one provider (a process-local memo, as in identity.py)."""
    return _ProviderCache()


def _refuse_token(reason: str) -> ReppuError:
    return ReppuError(
        ErrorCode.SIGNIN_INVALID_ID_TOKEN,
        f"The sign-in service's answer could not be trusted ({reason}). Nothing was signed in.",
    )


def _unavailable(what: str) -> ReppuError:
    return ReppuError(
        ErrorCode.SIGNIN_PROVIDER_UNAVAILABLE,
        f"The sign-in service cannot be used right now ({what}). Try again later.",
        headers={"Retry-After": "60"},
    )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _same_origin(provider: OidcProvider, url: object, name: str) -> str:
    if not isinstance(url, str) or _origin(url) != _origin(provider.issuer):
        raise _unavailable(f"its {name} is not on the issuer's own address")
    return url


async def _get_json(url: str) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False) as http:
            answer = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError:
        raise _unavailable("no answer") from None
    if answer.status_code != 200 or len(answer.content) > MAX_DOCUMENT_BYTES:
        raise _unavailable(f"status {answer.status_code}")
    try:
        document = answer.json()
    except ValueError:
        raise _unavailable("not JSON") from None
    if not isinstance(document, dict):
        raise _unavailable("not a JSON object")
    return document


async def provider_metadata(provider: OidcProvider) -> ProviderMetadata:
    """The provider's discovery document, fetched at most once an hour."""
    cache = _cache(provider)
    now = utc_now()
    if (
        cache.metadata is not None
        and cache.metadata_at is not None
        and now - cache.metadata_at < dt.timedelta(seconds=DISCOVERY_SECONDS)
    ):
        return cache.metadata
    document = await _get_json(provider.issuer.rstrip("/") + "/.well-known/openid-configuration")
    if document.get("issuer") != provider.issuer:
        raise _unavailable("its discovery document names another issuer")
    end_session = document.get("end_session_endpoint")
    metadata = ProviderMetadata(
        issuer=provider.issuer,
        authorization_endpoint=_same_origin(
            provider, document.get("authorization_endpoint"), "authorization endpoint"
        ),
        token_endpoint=_same_origin(provider, document.get("token_endpoint"), "token endpoint"),
        jwks_uri=_same_origin(provider, document.get("jwks_uri"), "key set"),
        end_session_endpoint=(
            _same_origin(provider, end_session, "logout endpoint") if end_session else None
        ),
    )
    cache.metadata, cache.metadata_at = metadata, now
    return metadata


async def _fetch_keys(provider: OidcProvider, metadata: ProviderMetadata) -> KeySet:
    cache = _cache(provider)
    document = await _get_json(metadata.jwks_uri)
    try:
        keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError):
        raise _unavailable("its key set cannot be read") from None
    cache.keys, cache.keys_at = keys, utc_now()
    cache.jwks_fetches += 1
    return keys


async def _signing_key(provider: OidcProvider, metadata: ProviderMetadata, kid: str | None) -> Any:
    """The provider's key for ``kid``, fetching the key set again once if it is unknown."""
    cache = _cache(provider)
    keys = cache.keys or await _fetch_keys(provider, metadata)

    def find(keys: KeySet) -> Any:
        if kid is None:
            return keys.keys[0] if len(keys.keys) == 1 else None
        return next((k for k in keys.keys if k.kid == kid), None)

    key = find(keys)
    recently = cache.keys_at is not None and utc_now() - cache.keys_at < dt.timedelta(
        seconds=JWKS_REFETCH_SECONDS
    )
    if key is None and not recently:
        # A key the provider rotated in since we last looked: fetch once more, but not more
        # often than every JWKS_REFETCH_SECONDS whatever tokens arrive.
        key = find(await _fetch_keys(provider, metadata))
    if key is None:
        raise _refuse_token("signed with a key the provider does not publish")
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str


def authorization_request(
    provider: OidcProvider, metadata: ProviderMetadata, redirect_uri: str
) -> AuthorizationRequest:
    """Where to send the browser: the code flow with PKCE, a fresh state and nonce."""
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(provider.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if provider.acr_values:
        params["acr_values"] = " ".join(provider.acr_values)
    parts = urlsplit(metadata.authorization_endpoint)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return AuthorizationRequest(
        url=urlunsplit(parts._replace(query=query)),
        state=state,
        nonce=nonce,
        code_verifier=verifier,
    )


def _client_assertion(provider: OidcProvider, audience: str) -> str:
    key = import_key(json.loads(provider.private_key))
    alg = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}.get(key.key_type, "RS256")
    now = int(utc_now().timestamp())
    claims = {
        "iss": provider.client_id,
        "sub": provider.client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 60,
    }
    header: dict[str, Any] = {"alg": alg}
    if key.kid:
        header["kid"] = key.kid
    return jwt.encode(header, claims, key, algorithms=[alg])


async def exchange_code(
    provider: OidcProvider,
    metadata: ProviderMetadata,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> str:
    """Exchange the authorization code for the ID token (the raw JWT, not yet checked)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    auth: httpx.BasicAuth | None = None
    if provider.client_auth == "client_secret_basic":
        # RFC 6749 2.3.1: both parts form-encoded before Basic.
        auth = httpx.BasicAuth(
            urlencode({"": provider.client_id})[1:], urlencode({"": provider.client_secret})[1:]
        )
    elif provider.client_auth == "client_secret_post":
        form.update(client_id=provider.client_id, client_secret=provider.client_secret)
    else:
        form.update(
            client_id=provider.client_id,
            client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            client_assertion=_client_assertion(provider, metadata.token_endpoint),
        )
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False) as http:
            answer = await http.post(
                metadata.token_endpoint,
                data=form,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                headers={"Accept": "application/json"},
            )
    except httpx.HTTPError:
        raise _unavailable("no answer from its token endpoint") from None
    if 400 <= answer.status_code < 500:
        raise ReppuError(
            ErrorCode.SIGNIN_REFUSED,
            "The sign-in service did not accept this sign-in (it may have been used or have "
            "expired). Start again.",
        )
    if answer.status_code != 200 or len(answer.content) > MAX_DOCUMENT_BYTES:
        raise _unavailable(f"its token endpoint answered {answer.status_code}")
    try:
        body = answer.json()
    except ValueError:
        raise _unavailable("its token endpoint did not answer JSON") from None
    id_token = body.get("id_token") if isinstance(body, dict) else None
    if not isinstance(id_token, str):
        raise _refuse_token("no ID token")
    return id_token


async def validate_id_token(
    provider: OidcProvider, metadata: ProviderMetadata, id_token: str, *, nonce: str
) -> dict[str, Any]:
    """The ID token's claims, once every check of the module's step 5 has passed."""
    try:
        header = jws.extract_compact(id_token.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeEncodeError):
        raise _refuse_token("not a signed token") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in provider.algorithms:
        raise _refuse_token(f"signature algorithm {alg!r} is not accepted")
    kid = header.get("kid")
    key = await _signing_key(provider, metadata, kid if isinstance(kid, str) else None)
    try:
        claims = jwt.decode(id_token, key, algorithms=[alg]).claims
    except (JoseError, ValueError):
        raise _refuse_token("bad signature") from None
    _check_claims(provider, claims, nonce=nonce)
    return claims


def _check_claims(provider: OidcProvider, claims: dict[str, Any], *, nonce: str) -> None:
    now = utc_now().timestamp()
    if claims.get("iss") != provider.issuer:
        raise _refuse_token("another issuer")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or provider.client_id not in audiences:
        raise _refuse_token("issued to another client")
    if len(audiences) > 1 and claims.get("azp") != provider.client_id:
        raise _refuse_token("issued to another client")
    if "azp" in claims and claims["azp"] != provider.client_id:
        raise _refuse_token("issued to another client")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or exp <= now - CLOCK_LEEWAY_SECONDS:
        raise _refuse_token("expired")
    if not isinstance(iat, int | float) or iat > now + CLOCK_LEEWAY_SECONDS:
        raise _refuse_token("issued in the future")
    if iat < now - MAX_TOKEN_AGE_SECONDS:
        raise _refuse_token("issued too long ago")
    if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(
        claims["nonce"], nonce
    ):
        raise _refuse_token("another sign-in's nonce")
    if provider.acr_values and claims.get("acr") not in provider.acr_values:
        raise _refuse_token("identification not strong enough")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise _refuse_token("no subject")


def end_session_url(
    provider: OidcProvider, metadata: ProviderMetadata, post_logout_redirect_uri: str
) -> str | None:
    """Where to send the browser to end the provider's session too, if the provider can."""
    if not provider.end_session or metadata.end_session_endpoint is None:
        return None
    params = {"client_id": provider.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
    parts = urlsplit(metadata.end_session_endpoint)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


def jwks_fetch_count(provider: OidcProvider) -> int:
    """How many times this process fetched the provider's key set (tests, metrics)."""
    return _cache(provider).jwks_fetches
