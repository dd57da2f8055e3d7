"""Signing in through an OpenID Connect provider (MPASSid, Suomi.fi): the provider list, the
round trip (``start``, ``callback``), the hand-off exchange and the sign-out that ends the
provider's session too. ``server/signin/flow.py`` does the work; ``docs/identity.md`` draws
the sequence."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_302_FOUND

from schemas.auth import LoginResponse
from schemas.errors import ErrorCode
from schemas.signin import HandoffRequest, SigninProvider, SigninProviders, SignoutResponse
from server.identity import Principal, token_digest
from server.routes.accounts import NO_STORE, client_address, login_response
from server.signin import flow
from server.state import AppState

# The hand-off code rides in the redirect's query: no page may keep it or pass it on.
_PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

QueryText = Annotated[str | None, Parameter(max_length=2000, required=False)]


@get("/auth/providers", exclude_from_auth=True, tags=["auth"], summary="Ways to sign in")
async def providers(app_state: NamedDependency[AppState]) -> SigninProviders:
    """The providers the operator configured, for the login screen's buttons."""
    return SigninProviders(
        providers=[
            SigninProvider(name=p.name, title=p.title) for p in app_state.settings.signin.providers
        ]
    )


@get(
    "/auth/oidc/{provider:str}/start",
    exclude_from_auth=True,
    tags=["auth"],
    summary="Start signing in through a provider",
    status_code=HTTP_302_FOUND,
    error_codes=[
        ErrorCode.SIGNIN_UNKNOWN_PROVIDER,
        ErrorCode.SIGNIN_REDIRECT_NOT_ALLOWED,
        ErrorCode.SIGNIN_PROVIDER_UNAVAILABLE,
    ],
)
async def start_signin(
    provider: FromPath[str],
    app_state: NamedDependency[AppState],
    handoff_challenge: Annotated[
        str, Parameter(min_length=43, max_length=43, pattern=r"^[A-Za-z0-9_-]{43}$")
    ],
    return_to: QueryText = None,
    device_name: Annotated[
        str, Parameter(min_length=1, max_length=100, pattern=r"^[^\x00]*$")
    ] = "Browser",
) -> Redirect:
    """Redirects to the provider. ``return_to``: a native app's redirect URI (RFC 8252) the
    operator allowed; without it the browser comes back to the web app.
    ``handoff_challenge`` (required): BASE64URL(SHA256(``handoff_verifier``)), a random
    secret the app keeps and gives with the hand-off code to ``POST /auth/oidc/handoff``."""
    url = await flow.start(
        app_state.engine,
        app_state.settings.signin,
        provider_name=provider,
        return_to=return_to,
        device_name=device_name,
        handoff_challenge=handoff_challenge,
    )
    return Redirect(url, status_code=302, headers=_PRIVATE)


@get(
    "/auth/oidc/{provider:str}/callback",
    exclude_from_auth=True,
    tags=["auth"],
    summary="The provider's redirect back",
    status_code=HTTP_302_FOUND,
    error_codes=[ErrorCode.SIGNIN_UNKNOWN_PROVIDER, ErrorCode.SIGNIN_STATE_MISMATCH],
)
async def signin_callback(
    request: Request[Any, Any, Any],
    provider: FromPath[str],
    app_state: NamedDependency[AppState],
    oidc_state: Annotated[str | None, QueryParameter(name="state", max_length=2000)] = None,
    code: QueryText = None,
    error: QueryText = None,
    iss: QueryText = None,
) -> Redirect:
    """Redirects to the app with ``?handoff=<one-time code>``, or ``?signin_error=<code>``."""
    url = await flow.finish(
        app_state.engine,
        app_state.settings.signin,
        provider_name=provider,
        state=oidc_state,
        code=code,
        error=error,
        address=client_address(request),
        issuer=iss,
    )
    return Redirect(url, status_code=302, headers=_PRIVATE)


@post(
    "/auth/oidc/handoff",
    status_code=200,
    exclude_from_auth=True,
    tags=["auth"],
    summary="Exchange a hand-off code for a device token",
    cache_control=NO_STORE,
    error_codes=[ErrorCode.SIGNIN_HANDOFF_INVALID],
)
async def redeem_handoff(
    data: JSONBody[HandoffRequest], app_state: NamedDependency[AppState]
) -> LoginResponse:
    """The device token, as ``POST /auth/login`` gives it; a hand-off code works once."""
    issued = await flow.redeem_handoff(
        app_state.engine,
        app_state.settings,
        handoff=data.handoff,
        verifier=data.handoff_verifier,
    )
    return await login_response(issued.person_id, issued.token, issued.expires_at)


@post("/auth/signout", status_code=200, tags=["auth"], summary="Sign out, at the provider too")
async def sign_out(
    request: Request[Principal, Any, Any], app_state: NamedDependency[AppState]
) -> SignoutResponse:
    """Revoke this device's token, as ``POST /auth/logout`` does, and say where to send the
    browser to end the provider's session too (if the token came from one that can)."""
    url = await flow.sign_out(app_state.engine, app_state.settings.signin, request.user)
    token = (request.headers.get("authorization") or "").partition(" ")[2].strip()
    app_state.recent.forget_principal(token_digest(app_state.settings, token))
    return SignoutResponse(end_session_url=url)


SIGNIN_ROUTES = [providers, start_signin, signin_callback, redeem_handoff, sign_out]
