"""Admin over HTTP: a school's people and their accounts, a person's devices, sync health.

A city's admins only (``municipality.manage``); everyone else, and anyone asking about a
school or person outside their cities, is answered ``auth.forbidden``. ``docs/admin.md``
describes the routes; ``server/admin/`` does the work.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, delete, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from schemas.admin import MAX_BULLETINS, MAX_PEOPLE_PAGE, Devices, PeoplePage, SyncHealth
from schemas.core import MAX_ID, Role
from schemas.errors import ErrorCode
from server.admin.audit import record_devices_listed, record_people_listed
from server.admin.authority import administered_cities, check_admins_school
from server.admin.devices import list_devices, sign_out_device
from server.admin.people import list_school_people
from server.admin.sync_health import sync_health
from server.clock import utc_now
from server.identity import Principal
from server.routes.ids import PathId, QueryId
from server.signin.accounts import check_may_disable
from server.state import AppState

DEVICE_ERRORS = [ErrorCode.AUTH_FORBIDDEN, ErrorCode.ACCOUNT_NOT_FOUND]


@get(
    "/admin/people",
    tags=["admin"],
    summary="A school's people of one role, with their accounts",
    error_codes=[ErrorCode.AUTH_FORBIDDEN],
)
async def admin_people(
    request: Request[Principal, Any, Any],
    school: QueryId,
    role: Annotated[Role, QueryParameter()],
    app_state: NamedDependency[AppState],
    cursor: Annotated[int, QueryParameter(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PEOPLE_PAGE)] = 100,
) -> PeoplePage:
    """In id order after ``cursor``; ``next_cursor`` when more follow. The school's city's
    admins only; any other school, and an id that is no school, is ``auth.forbidden``.
    Audited (``admin.people_listed``)."""
    actor = request.user.person_id
    city = await check_admins_school(actor, school)
    page = await list_school_people(school=school, city=city, role=role, after=cursor, limit=limit)
    await record_people_listed(
        app_state.engine, actor=actor, school=school, role=role.value, cursor=cursor
    )
    return page


@get(
    "/admin/people/{person_id:int}/devices",
    tags=["admin"],
    summary="A person's signed-in devices",
    error_codes=DEVICE_ERRORS,
)
async def admin_devices(
    request: Request[Principal, Any, Any], person_id: PathId, app_state: NamedDependency[AppState]
) -> Devices:
    """Each live token as a device (never the token). The person's city's admins only.
    Audited (``admin.devices_listed``)."""
    await check_may_disable(request.user.person_id, person_id)
    devices = await list_devices(person_id)
    await record_devices_listed(app_state.engine, actor=request.user.person_id, person=person_id)
    return devices


@delete(
    "/admin/people/{person_id:int}/devices/{device_id:int}",
    status_code=HTTP_204_NO_CONTENT,
    tags=["admin"],
    summary="Sign one device out",
    error_codes=[*DEVICE_ERRORS, ErrorCode.ACCOUNT_DEVICE_NOT_FOUND],
)
async def admin_sign_out_device(
    request: Request[Principal, Any, Any],
    person_id: PathId,
    device_id: PathId,
    app_state: NamedDependency[AppState],
) -> None:
    """Revoke the device's token at once, in every server process; audited with the actor.
    The person's other devices stay signed in. The person's city's admins only."""
    await check_may_disable(request.user.person_id, person_id)
    signed_out = await sign_out_device(
        app_state.engine, actor=request.user.person_id, person=person_id, device=device_id
    )
    app_state.recent.forget_principal(signed_out.token_hash)


@get(
    "/admin/sync-health",
    tags=["admin"],
    summary="Outbox lanes, recent bulletins' delivery, the last compaction",
    error_codes=[ErrorCode.AUTH_FORBIDDEN],
)
async def admin_sync_health(
    request: Request[Principal, Any, Any],
    bulletins: Annotated[int, QueryParameter(ge=1, le=MAX_BULLETINS)] = 20,
) -> SyncHealth:
    """A city's admins only; the bulletins are those of the admin's cities and their schools."""
    cities = await administered_cities(request.user.person_id)
    return await sync_health(cities, now=utc_now(), bulletins=bulletins)


ADMIN_ROUTES = [admin_people, admin_devices, admin_sign_out_device, admin_sync_health]
