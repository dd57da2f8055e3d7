"""``POST /auth/login`` and ``POST /auth/logout``."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from schemas.auth import LoginRequest, LoginResponse
from schemas.errors import ErrorCode
from server.access import load_access_facts
from server.clock import school_today
from server.identity import Principal, log_in, log_out, token_digest
from server.state import AppState
from sync.policy import AccessFacts, roles_on


@post(
    "/auth/login",
    status_code=200,
    exclude_from_auth=True,
    tags=["auth"],
    summary="Log in a device",
    cache_control=CacheControlHeader(no_store=True),  # a token (RFC 6749 section 5.1)
    error_codes=[ErrorCode.AUTH_BAD_CREDENTIALS, ErrorCode.AUTH_RATE_LIMITED],
)
async def login(
    request: Request[Any, Any, Any],
    data: JSONBody[LoginRequest],
    app_state: NamedDependency[AppState],
) -> LoginResponse:
    """Exchange a username and password for a bearer token bound to the named device."""
    address = request.client.host if request.client else "unknown"
    issued = await log_in(
        app_state.engine,
        app_state.settings,
        username=data.username,
        password=data.password,
        device_name=data.device_name,
        address=address,
    )
    facts = (await load_access_facts([issued.person_id])).get(issued.person_id)
    roles = roles_on(facts or AccessFacts(issued.person_id), school_today())
    return LoginResponse(
        token=issued.token,
        expires_at=issued.expires_at,
        person_id=issued.person_id,
        roles=sorted(roles),
    )


@post("/auth/logout", status_code=HTTP_204_NO_CONTENT, tags=["auth"], summary="Log out")
async def logout(
    request: Request[Principal, Any, Any], app_state: NamedDependency[AppState]
) -> None:
    """Revoke the token this request came with."""
    await log_out(app_state.engine, request.user)
    token = (request.headers.get("authorization") or "").partition(" ")[2].strip()
    app_state.recent.forget_principal(token_digest(app_state.settings, token))
