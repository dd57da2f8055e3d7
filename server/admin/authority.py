"""Who may use the admin routes: a city's admins (``municipality.manage``), asked of the one
policy (``sync/policy.py``). Deny by default: an unknown school is refused exactly as another
city's school is, so the answer never tells whether a school exists."""

from __future__ import annotations

from schemas.core import OrganisationKind
from schemas.errors import ErrorCode
from server.access import load_access_facts
from server.clock import school_today
from server.db.tables import Organisation
from server.errors import ReppuError
from sync.policy import AccessFacts, Action, CityRef, decide

_FORBIDDEN = "Only an admin of this school's city may do this."


async def _viewer(viewer_id: int) -> AccessFacts:
    return (await load_access_facts([viewer_id])).get(viewer_id, AccessFacts(viewer_id))


async def check_admins_school(viewer_id: int, school_id: int) -> int:
    """The school's municipality, if the viewer is an admin of it; ``auth.forbidden``
    otherwise, and for an id that is no school."""
    school = (
        await Organisation.select(Organisation.kind, Organisation.parent)
        .where(Organisation.id == school_id)
        .first()
    )
    if school is None or school["kind"] != OrganisationKind.SCHOOL or school["parent"] is None:
        raise ReppuError(ErrorCode.AUTH_FORBIDDEN, _FORBIDDEN)
    city = int(school["parent"])
    if not decide(await _viewer(viewer_id), Action.MANAGE_CITY, CityRef(city), school_today()):
        raise ReppuError(ErrorCode.AUTH_FORBIDDEN, _FORBIDDEN)
    return city


async def administered_cities(viewer_id: int) -> set[int]:
    """The municipalities the viewer is an admin of today; ``auth.forbidden`` if none."""
    day = school_today()
    viewer = await _viewer(viewer_id)
    cities = {
        city
        for city in viewer.municipality_ids_on(day)
        if decide(viewer, Action.MANAGE_CITY, CityRef(city), day)
    }
    if not cities:
        raise ReppuError(ErrorCode.AUTH_FORBIDDEN, "Only a city's admins may do this.")
    return cities
