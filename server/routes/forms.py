"""Forms for staff: definitions (create, import, export, list) and a request's responses
(status per pupil, CSV). Guardians answer through push mutations (``server/forms.py``).

A definition or request the caller may not see answers 404, like one that does not exist,
so that ids of other schools' forms cannot be probed.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from schemas.errors import ErrorCode
from schemas.forms import (
    MAX_DEFINITION_BYTES,
    DefinitionIn,
    DefinitionOut,
    DefinitionSummary,
    FormRequestStatus,
)
from server.access import load_access_facts
from server.clock import school_today, utc_now
from server.db.engine import DUPLICATE, write_transaction
from server.db.form_tables import FormDefinition as DefinitionRow
from server.errors import ReppuError
from server.forms import (
    decode_definition,
    may_use_definitions_of,
    organisation_ref,
    request_status,
    responses_csv,
    visible_request,
)
from server.identity import Principal
from server.routes.ids import PathId, QueryId
from server.state import AppState
from sync.forms import FormProblem, check_definition
from sync.policy import AccessFacts, Action, CityRef, SchoolRef, decide


async def _viewer(request: Request[Principal, Any, Any]) -> AccessFacts:
    person_id = request.user.person_id
    return (await load_access_facts([person_id])).get(person_id, AccessFacts(person_id))


def _out(row: dict[str, Any]) -> DefinitionOut:
    return DefinitionOut(
        id=row["id"],
        organisation_id=row["organisation"],
        key=row["key"],
        version=row["version"],
        created_at=row["created_at"],
        definition=decode_definition(row["body"]),
    )


@post(
    "/forms/definitions",
    tags=["forms"],
    summary="Create or import a form definition",
    error_codes=[ErrorCode.AUTH_FORBIDDEN],
)
async def create_definition(
    request: Request[Principal, Any, Any],
    data: JSONBody[DefinitionIn],
    app_state: NamedDependency[AppState],
) -> DefinitionOut:
    """Store ``definition`` as the next version of its ``key`` at the organisation: a school's
    principals and its city's admins for a school, the city's admins for a municipality. An
    exported definition (``GET /forms/definitions/{id}``, its ``definition``) imports as is."""
    viewer = await _viewer(request)
    day = school_today()
    owner = await organisation_ref(data.organisation_id)
    allowed = (
        decide(viewer, Action.MANAGE_SCHOOL, owner, day)
        if isinstance(owner, SchoolRef)
        else owner is not None and decide(viewer, Action.MANAGE_CITY, CityRef(owner), day)
    )
    if not allowed:
        raise ReppuError(
            ErrorCode.AUTH_FORBIDDEN,
            "Only the school's principals and the city's admins may add its forms.",
            field="$.organisation_id",
        )
    try:
        check_definition(data.definition, "$.definition")
    except FormProblem as problem:
        raise ReppuError(ErrorCode.REQUEST_INVALID, problem.message, field=problem.field) from None
    body = msgspec.json.encode(data.definition).decode()
    if len(body) > MAX_DEFINITION_BYTES:
        raise ReppuError(
            ErrorCode.REQUEST_INVALID,
            f"A definition may be at most {MAX_DEFINITION_BYTES} bytes as JSON.",
            field="$.definition",
        )
    for attempt in range(2):
        try:
            async with write_transaction(app_state.engine):
                latest = (
                    await DefinitionRow.select(DefinitionRow.version)
                    .where(
                        (DefinitionRow.organisation == data.organisation_id)
                        & (DefinitionRow.key == data.definition.key)
                    )
                    .order_by(DefinitionRow.version, ascending=False)
                    .first()
                )
                row = DefinitionRow(
                    organisation=data.organisation_id,
                    key=data.definition.key,
                    version=(latest["version"] if latest else 0) + 1,
                    body=body,
                    created_by=viewer.person_id,
                    created_at=utc_now(),
                )
                await row.save()
            break
        except DUPLICATE:
            if attempt:
                raise  # pragma: no cover (two more versions racing twice)
            # Another version of this key was stored a moment ago: take the next number.
    return DefinitionOut(
        id=int(row.id),
        organisation_id=data.organisation_id,
        key=data.definition.key,
        version=int(row.version),
        created_at=row.created_at,
        definition=data.definition,
    )


@get("/forms/definitions/{definition_id:int}", tags=["forms"], summary="Export a definition")
async def get_definition(
    request: Request[Principal, Any, Any], definition_id: PathId
) -> DefinitionOut:
    """One definition version, whose ``definition`` is the shareable JSON document. For the
    staff who may send it (``docs/forms.md``)."""
    viewer = await _viewer(request)
    row = await DefinitionRow.select().where(DefinitionRow.id == definition_id).first()
    owner = await organisation_ref(row["organisation"]) if row else None
    if row is None or owner is None or not may_use_definitions_of(viewer, owner, school_today()):
        raise ReppuError(ErrorCode.NOT_FOUND, "No such form definition, or not yours to see.")
    return _out(row)


@get(
    "/forms/definitions",
    tags=["forms"],
    summary="Definitions a school may send",
    error_codes=[ErrorCode.NOT_FOUND],
)
async def list_definitions(
    request: Request[Principal, Any, Any], organisation_id: QueryId
) -> list[DefinitionSummary]:
    """Every version of the definitions of ``organisation_id`` and, for a school, of its
    municipality, newest first within each key."""
    viewer = await _viewer(request)
    owner = await organisation_ref(organisation_id)
    if owner is None or not may_use_definitions_of(viewer, owner, school_today()):
        raise ReppuError(ErrorCode.NOT_FOUND, "No such organisation, or not yours to see.")
    owners = [organisation_id]
    if isinstance(owner, SchoolRef):
        owners.append(owner.municipality_id)
    rows = (
        await DefinitionRow.select()
        .where(DefinitionRow.organisation.is_in(owners))
        .order_by(DefinitionRow.organisation)
        .order_by(DefinitionRow.key)
        .order_by(DefinitionRow.version, ascending=False)
    )
    return [
        DefinitionSummary(
            id=r["id"],
            organisation_id=r["organisation"],
            key=r["key"],
            version=r["version"],
            title=decode_definition(r["body"]).title,
            created_at=r["created_at"],
        )
        for r in rows
    ]


@get("/forms/requests/{request_id:int}/status", tags=["forms"], summary="Who has answered")
async def form_request_status(
    request: Request[Principal, Any, Any], request_id: PathId
) -> FormRequestStatus:
    """Each pupil's response: not opened, draft, submitted, partly signed or complete. For
    the group's teachers, the school's principals and the city's admins (the sender only as
    one of them: ``sync.policy.Action.READ_RESPONSES``)."""
    day = school_today()
    found = await visible_request(await _viewer(request), request_id, day)
    if found is None:
        raise ReppuError(ErrorCode.NOT_FOUND, "No such form request, or not yours to see.")
    return await request_status(found, day)


@get(
    "/forms/requests/{request_id:int}/responses.csv",
    tags=["forms"],
    summary="Every response as CSV",
    media_type="text/csv",
)
async def form_responses_csv(
    request: Request[Principal, Any, Any], request_id: PathId
) -> Response[str]:
    """A row per pupil, a column per question; for the same staff as the status."""
    day = school_today()
    found = await visible_request(await _viewer(request), request_id, day)
    if found is None:
        raise ReppuError(ErrorCode.NOT_FOUND, "No such form request, or not yours to see.")
    return Response(
        content=await responses_csv(found, day),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="form-request-{request_id}.csv"',
            "Cache-Control": "no-store",
        },
    )


FORM_ROUTES = [
    create_definition,
    get_definition,
    list_definitions,
    form_request_status,
    form_responses_csv,
]
