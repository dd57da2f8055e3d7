"""Signing in without a demo password: activation codes, OpenID Connect providers, and the
one-time hand-off that turns a provider's sign-in into a device token (``docs/identity.md``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from schemas.core import NO_NUL

DeviceName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]


class ActivationCodeIssued(msgspec.Struct):
    code: str
    """Give it to the person (on paper, read aloud); shown once, the server keeps a keyed hash."""
    expires_at: dt.datetime


class ActivateRequest(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=NO_NUL)]
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\x00\s]+$")]
    """The new account's username (at least 3 characters: after NFKC, ASCII letters, digits,
    ``.``, ``_``, ``-``; unique whatever the case); a person who has an account already gives
    its username, whatever its length."""
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    """At least 10 characters."""
    device_name: DeviceName


class SigninProvider(msgspec.Struct):
    name: str
    """Goes in ``/auth/oidc/<name>/start``."""
    title: str
    """What the sign-in button says (``MPASSid``, ``Suomi.fi``)."""


class SigninProviders(msgspec.Struct):
    providers: list[SigninProvider]


class HandoffRequest(msgspec.Struct, forbid_unknown_fields=True):
    handoff: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]
    """The one-time code the callback put in the app's redirect (``?handoff=``)."""
    handoff_verifier: Annotated[
        str, msgspec.Meta(min_length=43, max_length=128, pattern=r"^[A-Za-z0-9._~-]+$")
    ]
    """The random secret whose S256 challenge the app gave to ``/auth/oidc/{provider}/start``
    (as PKCE's ``code_verifier``, RFC 7636): the hand-off is redeemed only by the app that
    started the sign-in."""


class SignoutResponse(msgspec.Struct):
    end_session_url: str | None = None
    """Where to send the browser to end the provider's session too (OpenID Connect
    RP-initiated logout), or None when the token did not come from a provider that has one."""
