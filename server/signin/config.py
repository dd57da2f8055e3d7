"""The sign-in part of the settings: which OpenID Connect providers the operator registered,
and the keys and limits of sign-in. Read once at start-up by ``server/settings.py``.

Providers are one JSON object in ``REPPU_OIDC_PROVIDERS``, keyed by a short name that appears
in URLs (``/auth/oidc/<name>/start``). ``docs/identity.md`` shows a full example. The
provider hosts come only from here, never from a request.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from schemas.core import Role

CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
MATCH_SCHEMES = ("oppijanumero", "national_id", "staff_id")
"""How a claim finds a person: the oppijanumero of the roster (pupils), a staff identifier or
a national identity number (both kept only as keyed hashes, ``person_identifier``)."""

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class SigninConfigError(ValueError):
    """A sign-in setting cannot be used; ``variable`` names the environment variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(problem)
        self.variable = variable


@dataclass(frozen=True, slots=True)
class ClaimMatch:
    claim: str
    scheme: str
    qualifier: str = ""
    """Another claim that scopes this one: MPASSid's staff identifiers are unique only
    within a school, so ``{"claim": "urn:mpass.id:uid", "qualifier":
    "urn:mpass.id:schoolCode"}`` looks up ``<school code>/<uid>``."""


@dataclass(frozen=True, slots=True)
class OidcProvider:
    """One provider the operator registered Reppu with."""

    name: str
    title: str
    issuer: str
    client_id: str
    client_auth: str
    client_secret: str = ""
    private_key: str = ""
    """The private JWK (JSON text) for ``private_key_jwt``."""
    roles: tuple[str, ...] = ()
    """Roles whose holders may sign in this way; empty: anyone."""
    scopes: tuple[str, ...] = ("openid",)
    matches: tuple[ClaimMatch, ...] = ()
    acr_values: tuple[str, ...] = ()
    """Accepted ``acr`` values, also asked for; empty: ``acr`` is not checked."""
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256")
    end_session: bool = True
    """Send the person to the provider's ``end_session_endpoint`` on logout, if it has one."""

    def __repr__(self) -> str:  # never show the secrets in a log or a traceback
        return f"OidcProvider(name={self.name!r}, issuer={self.issuer!r})"


@dataclass(frozen=True, slots=True)
class SigninSettings:
    providers: tuple[OidcProvider, ...] = ()
    public_url: str = ""
    """Where people reach this server (``https://reppu.example.fi``): redirect URIs are made
    from it (``<public_url>/auth/oidc/<name>/callback``)."""
    identity_key: bytes = b""
    """The key of the HMAC-SHA-256 that identifiers and codes are stored under."""
    app_redirect_uris: tuple[str, ...] = ()
    """Where a native app may be sent back (RFC 8252): claimed https URLs, private-use
    schemes (``fi.example.reppu:/signin``), or ``http://127.0.0.1/<path>`` for a loopback
    redirect on any port."""
    activation_code_seconds: int = 3 * 86400
    request_seconds: int = 600
    """How long a sign-in may take at the provider before its state is forgotten."""
    handoff_seconds: int = 120

    def provider(self, name: str) -> OidcProvider | None:
        return next((p for p in self.providers if p.name == name), None)

    def __repr__(self) -> str:
        return f"SigninSettings(providers={[p.name for p in self.providers]!r})"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_issuer_url(url: str) -> str | None:
    """Why ``url`` cannot be an issuer (https, or plain http to loopback only), or None."""
    parts = urlsplit(url)
    if not parts.hostname or parts.query or parts.fragment:
        return "is not an absolute URL without query or fragment"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return None
    return "must be https (plain http only to a loopback address)"


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SigninConfigError("REPPU_OIDC_PROVIDERS", f"{where} must be a list of strings")
    return tuple(value)


def _provider(name: str, raw: Any) -> OidcProvider:
    var = "REPPU_OIDC_PROVIDERS"
    if not _NAME.match(name):
        raise SigninConfigError(var, f"{name!r} is not a provider name (a-z, 0-9, _ and -)")
    if not isinstance(raw, dict):
        raise SigninConfigError(var, f"{name}: expected an object")
    known = {
        "title", "issuer", "client_id", "client_auth", "client_secret", "private_key",
        "roles", "scopes", "match", "acr_values", "algorithms", "end_session",
    }  # fmt: skip
    unknown = set(raw) - known
    if unknown:
        raise SigninConfigError(var, f"{name}: unknown keys {sorted(unknown)}")
    issuer = raw.get("issuer")
    if not isinstance(issuer, str) or (problem := check_issuer_url(issuer)):
        raise SigninConfigError(var, f"{name}.issuer {problem or 'is missing'}")
    client_id = raw.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise SigninConfigError(var, f"{name}.client_id is missing")
    client_auth = raw.get("client_auth", "client_secret_basic")
    if client_auth not in CLIENT_AUTH_METHODS:
        raise SigninConfigError(var, f"{name}.client_auth must be one of {CLIENT_AUTH_METHODS}")
    secret = raw.get("client_secret", "")
    private_key = raw.get("private_key", "")
    if client_auth == "private_key_jwt":
        if not isinstance(private_key, dict) or "d" not in private_key:
            raise SigninConfigError(var, f"{name}.private_key must be a private JWK object")
        private_key = json.dumps(private_key)
    elif not isinstance(secret, str) or not secret:
        raise SigninConfigError(var, f"{name}.client_secret is missing")
    roles = _strings(raw.get("roles", []), f"{name}.roles")
    for role in roles:
        if role not in {r.value for r in Role}:
            raise SigninConfigError(var, f"{name}.roles: {role!r} is not a role")
    matches = []
    for item in raw.get("match", []):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("claim"), str)
            or item.get("scheme") not in MATCH_SCHEMES
            or not isinstance(item.get("qualifier", ""), str)
            or set(item) - {"claim", "scheme", "qualifier"}
        ):
            raise SigninConfigError(
                var,
                f"{name}.match: each is {{'claim': ..., 'scheme': one of {MATCH_SCHEMES}, "
                "'qualifier'?: ...}",
            )
        matches.append(ClaimMatch(item["claim"], item["scheme"], item.get("qualifier", "")))
    if not matches:
        raise SigninConfigError(var, f"{name}.match must name at least one claim")
    algorithms = _strings(raw.get("algorithms", ["RS256", "ES256", "PS256"]), f"{name}.algs")
    if any(a.lower() == "none" or a.startswith("HS") for a in algorithms):
        raise SigninConfigError(var, f"{name}.algorithms: only asymmetric signatures")
    scopes = _strings(raw.get("scopes", ["openid"]), f"{name}.scopes")
    if "openid" not in scopes:
        scopes = ("openid", *scopes)
    return OidcProvider(
        name=name,
        title=str(raw.get("title") or name),
        issuer=issuer,
        client_id=client_id,
        client_auth=client_auth,
        client_secret=secret if isinstance(secret, str) else "",
        private_key=private_key if isinstance(private_key, str) else "",
        roles=roles,
        scopes=scopes,
        matches=tuple(matches),
        acr_values=_strings(raw.get("acr_values", []), f"{name}.acr_values"),
        algorithms=algorithms,
        end_session=bool(raw.get("end_session", True)),
    )


def check_app_redirect_uri(uri: str) -> str | None:
    """Why ``uri`` cannot be a native app's redirect URI (RFC 8252 section 7), or None."""
    parts = urlsplit(uri)
    if parts.fragment:
        return "must not have a fragment"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http":
        if parts.hostname == "127.0.0.1" or parts.hostname == "::1":
            return None
        return "plain http only to the loopback address (127.0.0.1 or [::1])"
    if "." in parts.scheme and not parts.netloc:
        return None  # a private-use scheme in reverse domain order: fi.example.reppu:/signin
    return "is not a claimed https URL, a private-use scheme or a loopback URL"


def load_signin_settings(env: Mapping[str, str], secret_key: str) -> SigninSettings:
    """The sign-in settings from ``env``; raises :class:`SigninConfigError`."""
    raw = env.get("REPPU_OIDC_PROVIDERS") or "{}"
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        raise SigninConfigError("REPPU_OIDC_PROVIDERS", "is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise SigninConfigError("REPPU_OIDC_PROVIDERS", "must be a JSON object of providers")
    providers = tuple(_provider(name, value) for name, value in parsed.items())
    public_url = (env.get("REPPU_PUBLIC_URL") or "").rstrip("/")
    if public_url and check_issuer_url(public_url):
        raise SigninConfigError(
            "REPPU_PUBLIC_URL", "must be an https URL (plain http only to loopback)"
        )
    if providers and not public_url:
        raise SigninConfigError("REPPU_PUBLIC_URL", "is needed when providers are configured")
    identity = env.get("REPPU_IDENTITY_KEY") or ""
    if identity and len(identity) < 32:
        raise SigninConfigError("REPPU_IDENTITY_KEY", "must be at least 32 characters")
    # Without its own key, one is derived from the secret key; changing that key then
    # unlinks every imported identifier until the next import (docs/identity.md).
    key = (
        identity.encode()
        if identity
        else hmac.new(secret_key.encode(), b"reppu identity key", hashlib.sha256).digest()
    )
    uris = tuple(u.strip() for u in (env.get("REPPU_SIGNIN_APP_REDIRECTS") or "").split(","))
    uris = tuple(u for u in uris if u)
    for uri in uris:
        if problem := check_app_redirect_uri(uri):
            raise SigninConfigError("REPPU_SIGNIN_APP_REDIRECTS", f"{uri!r} {problem}")
    seconds = env.get("REPPU_ACTIVATION_CODE_SECONDS") or str(3 * 86400)
    if not seconds.isdigit() or not 300 <= int(seconds) <= 30 * 86400:
        raise SigninConfigError(
            "REPPU_ACTIVATION_CODE_SECONDS", "must be a whole number from 300 to 2592000"
        )
    return SigninSettings(
        providers=providers,
        public_url=public_url,
        identity_key=key,
        app_redirect_uris=uris,
        activation_code_seconds=int(seconds),
    )
