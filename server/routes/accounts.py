"""Accounts without a provider: activation codes (issued by a principal or admin, redeemed
by the person) and an admin's disable, enable and sign-out of every device.
``docs/identity.md`` describes them; ``server/signin/accounts.py`` does the work."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from schemas.auth import LoginResponse
from schemas.errors import ErrorCode
from schemas.signin import ActivateRequest, ActivationCodeIssued
from server.access import load_access_facts
from server.clock import school_today
from server.identity import Principal
from server.routes.ids import PathId
from server.signin.accounts import (
    check_may_disable,
    check_may_issue_code,
    issue_activation_code,
    redeem_activation_code,
    set_disabled,
    sign_out_everywhere,
)
from server.state import AppState
from sync.policy import AccessFacts, roles_on

NO_STORE = CacheControlHeader(no_store=True)
"""An answer that carries a token or a code is not kept by any cache (RFC 6749 section 5.1)."""

ACCOUNT_ERRORS = [ErrorCode.AUTH_FORBIDDEN, ErrorCode.ACCOUNT_NOT_FOUND]
"""What an admin's disable, enable and sign-out may answer besides the usual (OpenAPI)."""


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


async def login_response(person_id: int, token: str, expires_at: Any) -> LoginResponse:
    """What ``POST /auth/login`` answers, for any way of signing in."""
    facts = (await load_access_facts([person_id])).get(person_id)
    roles = roles_on(facts or AccessFacts(person_id), school_today())
    return LoginResponse(
        token=token, expires_at=expires_at, person_id=person_id, roles=sorted(roles)
    )


@post(
    "/people/{person_id:int}/activation-code",
    status_code=HTTP_201_CREATED,
    tags=["accounts"],
    summary="Issue a one-time activation code",
    cache_control=NO_STORE,
    error_codes=[ErrorCode.AUTH_FORBIDDEN, ErrorCode.AUTH_RATE_LIMITED],
)
async def issue_code(
    request: Request[Principal, Any, Any],
    person_id: PathId,
    app_state: NamedDependency[AppState],
) -> ActivationCodeIssued:
    """A code with which the person sets a password; earlier unused codes are withdrawn.
    The person's school's principal or the city's admin; ``auth.forbidden`` otherwise."""
    await check_may_issue_code(request.user.person_id, person_id)
    issued = await issue_activation_code(
        app_state.engine, app_state.settings, actor=request.user.person_id, person=person_id
    )
    return ActivationCodeIssued(code=issued.code, expires_at=issued.expires_at)


@post(
    "/auth/activate",
    status_code=200,
    exclude_from_auth=True,
    tags=["auth"],
    summary="Set a password with an activation code",
    cache_control=NO_STORE,
    error_codes=[
        ErrorCode.ACTIVATION_INVALID,
        ErrorCode.ACTIVATION_USERNAME_TAKEN,
        ErrorCode.AUTH_RATE_LIMITED,
    ],
)
async def activate(
    request: Request[Any, Any, Any],
    data: JSONBody[ActivateRequest],
    app_state: NamedDependency[AppState],
) -> LoginResponse:
    """Spend the code, set the password (making the account if there is none) and sign this
    device in, as ``POST /auth/login`` would."""
    issued = await redeem_activation_code(
        app_state.engine,
        app_state.settings,
        code=data.code,
        username=data.username,
        password=data.password,
        device_name=data.device_name,
        address=client_address(request),
    )
    return await login_response(issued.person_id, issued.token, issued.expires_at)


@post(
    "/people/{person_id:int}/account/disable",
    status_code=HTTP_204_NO_CONTENT,
    tags=["accounts"],
    summary="Disable an account and sign it out of every device",
    error_codes=ACCOUNT_ERRORS,
)
async def disable_account(
    request: Request[Principal, Any, Any],
    person_id: PathId,
    app_state: NamedDependency[AppState],
) -> None:
    """The city's admins only. Every token of the account is revoked at once."""
    await check_may_disable(request.user.person_id, person_id)
    account = await set_disabled(
        app_state.engine, actor=request.user.person_id, person=person_id, disabled=True
    )
    app_state.recent.forget_account(account)


@post(
    "/people/{person_id:int}/account/enable",
    status_code=HTTP_204_NO_CONTENT,
    tags=["accounts"],
    summary="Enable a disabled account",
    error_codes=ACCOUNT_ERRORS,
)
async def enable_account(
    request: Request[Principal, Any, Any],
    person_id: PathId,
    app_state: NamedDependency[AppState],
) -> None:
    """The city's admins only. The person signs in again; old tokens stay revoked."""
    await check_may_disable(request.user.person_id, person_id)
    await set_disabled(
        app_state.engine, actor=request.user.person_id, person=person_id, disabled=False
    )


@post(
    "/people/{person_id:int}/account/sign-out",
    status_code=HTTP_204_NO_CONTENT,
    tags=["accounts"],
    summary="Sign an account out of every device",
    error_codes=ACCOUNT_ERRORS,
)
async def sign_out_account(
    request: Request[Principal, Any, Any],
    person_id: PathId,
    app_state: NamedDependency[AppState],
) -> None:
    """The city's admins only (a lost phone): every token is revoked, the account stays."""
    await check_may_disable(request.user.person_id, person_id)
    account = await sign_out_everywhere(
        app_state.engine, actor=request.user.person_id, person=person_id
    )
    app_state.recent.forget_account(account)


ACCOUNT_ROUTES = [issue_code, activate, disable_account, enable_account, sign_out_account]
