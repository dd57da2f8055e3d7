"""Forms: the mutations that send requests and answer and sign them, their synced records,
and the staff's view of a request (status and CSV).

Each handler runs inside the push's write transaction (``server/push.py``): it decides access
through the one policy, checks the answers with the pure rules of ``sync/forms.py``, writes
its rows and then their records through the one write path. ``docs/forms.md`` describes the
model and every rejection.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import msgspec
from piccolo.engine.postgres import PostgresEngine

from schemas.core import GuardianshipKind, MembershipRole, OrganisationKind, PartitionKind
from schemas.forms import (
    Answer,
    FieldKind,
    FormAnswerArgs,
    FormDefinition,
    FormRequestArgs,
    FormRequestRecord,
    FormRequestStatus,
    FormResponseRecord,
    FormSignArgs,
    PupilFormStatus,
    ResponseStatus,
    Signature,
)
from schemas.sync import MutationCode
from server.access import load_access_facts
from server.clock import school_today, utc_now
from server.db.form_tables import (
    FormDefinition as DefinitionRow,
)
from server.db.form_tables import (
    FormRequest,
    FormResponse,
    FormSignature,
)
from server.db.tables import Guardianship, Membership, Organisation, SchoolGroup
from server.messaging import names
from server.mutations import MutationContext, MutationRejectedError
from server.sync_store import RecordWrite, write_records
from sync.forms import FormProblem, answers_hash, check_answers, response_status
from sync.policy import AccessFacts, Action, CityRef, GroupRef, SchoolRef, SentRef, decide

_answers_json = msgspec.json.Decoder(dict[str, Answer])
_definition_json = msgspec.json.Decoder(FormDefinition)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def person_partition(pupil_id: int) -> str:
    return f"{PartitionKind.PERSON.value}:{pupil_id}"


def decode_definition(body: str) -> FormDefinition:
    return _definition_json.decode(body)


def _refuse(code: MutationCode, reason: str, field: str | None = None) -> MutationRejectedError:
    return MutationRejectedError(code, reason, field)


# --- facts -------------------------------------------------------------------------------


async def custodians_of(pupil_ids: Iterable[int], day: dt.date) -> dict[int, set[int]]:
    """Each pupil's custodial guardians on ``day`` (never the information-only ones)."""
    ids = sorted(set(pupil_ids))
    found: dict[int, set[int]] = defaultdict(set)
    if not ids:
        return found
    rows = await Guardianship.select(Guardianship.guardian, Guardianship.pupil).where(
        Guardianship.pupil.is_in(ids)
        & (Guardianship.kind == GuardianshipKind.CUSTODIAL.value)
        & (Guardianship.valid_from <= day)
        & (Guardianship.valid_to.is_null() | (Guardianship.valid_to >= day))
    )
    for r in rows:
        found[r["pupil"]].add(r["guardian"])
    return found


async def _current_pupils(group_id: int, day: dt.date) -> set[int]:
    rows = await Membership.select(Membership.person).where(
        (Membership.group == group_id)
        & (Membership.role == MembershipRole.PUPIL.value)
        & (Membership.valid_from <= day)
        & (Membership.valid_to.is_null() | (Membership.valid_to >= day))
    )
    return {r["person"] for r in rows}


async def _group(group_id: int) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (
        await SchoolGroup.select(
            SchoolGroup.id,
            SchoolGroup.school,
            SchoolGroup.school._.parent.as_alias("municipality"),
        )
        .where(SchoolGroup.id == group_id)
        .first()
    )
    return row


async def may_see_request(viewer: AccessFacts, request: dict[str, Any], day: dt.date) -> bool:
    """The staff who see a request's responses today: the group's teachers, the school's
    principals and the city's admins. Its sender only as one of these: having sent it
    grants nothing once their job or their groups have ended."""
    group = await _group(request["group"])
    if group is None:
        return False
    sent = SentRef(request["sender"], group["municipality"], group["school"], group["id"])
    return bool(decide(viewer, Action.READ_RESPONSES, sent, day))


# --- records -----------------------------------------------------------------------------


async def _request_row(request_id: int) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (
        await FormRequest.select(
            *FormRequest.all_columns(),
            FormRequest.definition._.version.as_alias("definition_version"),
            FormRequest.definition._.body.as_alias("definition_body"),
        )
        .where(FormRequest.id == request_id)
        .first()
    )
    return row


async def request_write(request: dict[str, Any]) -> RecordWrite:
    pupils = [
        r["pupil"]
        for r in await FormResponse.select(FormResponse.pupil).where(
            FormResponse.request == request["id"]
        )
    ]
    sender = (await names([request["sender"]])).get(request["sender"], "")
    record = FormRequestRecord(
        id=request["id"],
        v=0,
        definition_id=request["definition"],
        definition_version=request["definition_version"],
        definition=decode_definition(request["definition_body"]),
        school_id=request["school"],
        group_id=request["group"],
        sender_id=request["sender"],
        sender_name=sender,
        sent_at=request["sent_at"],
        due_on=request["due_on"],
        note=request["note"],
    )
    partitions = {person_partition(p) for p in pupils}
    partitions.add(f"{PartitionKind.GROUP_STAFF.value}:{request['group']}")
    return RecordWrite("form_request", request["id"], record, frozenset(partitions))


async def _valid_signatures(response_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not response_ids:
        return found
    rows = (
        await FormSignature.select(
            FormSignature.response,
            FormSignature.signer,
            FormSignature.signed_at,
            FormSignature.answers_hash,
        )
        .where(FormSignature.response.is_in(response_ids) & FormSignature.voided_at.is_null())
        .order_by(FormSignature.id)
    )
    for r in rows:
        found[r["response"]].append(r)
    return found


class ResponseView(msgspec.Struct):
    """A response with its valid signatures and status, as staff and records show it."""

    row: dict[str, Any]
    answers: dict[str, Answer]
    signatures: list[dict[str, Any]]
    status: ResponseStatus
    signed: int
    needed: int


async def response_views(
    request: dict[str, Any], day: dt.date, pupil_ids: Iterable[int] | None = None
) -> list[ResponseView]:
    """The request's responses (those of ``pupil_ids``, or all), in pupil id order."""
    rule = decode_definition(request["definition_body"]).signing
    query = FormResponse.select().where(FormResponse.request == request["id"])
    if pupil_ids is not None:
        query = query.where(FormResponse.pupil.is_in(sorted(set(pupil_ids)) or [0]))
    rows = sorted(await query, key=lambda r: r["pupil"])
    signatures = await _valid_signatures([r["id"] for r in rows])
    custody = await custodians_of((r["pupil"] for r in rows), day)
    views = []
    for r in rows:
        signed_by = signatures.get(r["id"], [])
        status, signed, needed = response_status(
            saved=r["saved_at"] is not None,
            submitted=r["submitted_at"] is not None,
            signers=(s["signer"] for s in signed_by),
            custodians=custody.get(r["pupil"], set()),
            rule=rule,
        )
        answers = _answers_json.decode(r["answers"]) if r["answers"] else {}
        views.append(ResponseView(r, answers, signed_by, status, signed, needed))
    return views


async def response_writes(
    request: dict[str, Any], day: dt.date, pupil_ids: Iterable[int] | None = None
) -> list[RecordWrite]:
    views = await response_views(request, day, pupil_ids)
    who = await names(
        [s["signer"] for v in views for s in v.signatures]
        + [v.row["submitted_by"] for v in views if v.row["submitted_by"]]
    )
    writes = []
    for v in views:
        r = v.row
        record = FormResponseRecord(
            id=r["id"],
            v=0,
            request_id=r["request"],
            pupil_id=r["pupil"],
            status=v.status,
            needed=v.needed,
            signed=v.signed,
            definition_version=r["definition_version"],
            answers=v.answers,
            answers_hash=r["answers_hash"],
            saved_at=r["saved_at"],
            submitted_at=r["submitted_at"],
            submitted_by_id=r["submitted_by"],
            submitted_by_name=who.get(r["submitted_by"]) if r["submitted_by"] else None,
            signatures=[
                Signature(
                    signer_id=s["signer"],
                    signer_name=who.get(s["signer"], ""),
                    signed_at=s["signed_at"],
                    answers_hash=s["answers_hash"],
                )
                for s in v.signatures
            ],
        )
        writes.append(
            RecordWrite("form_response", r["id"], record, frozenset({person_partition(r["pupil"])}))
        )
    return writes


# --- form.request ------------------------------------------------------------------------


async def send_form_request(ctx: MutationContext, args: FormRequestArgs) -> None:
    """``form.request``: see :class:`schemas.forms.FormRequestArgs`."""
    group = await _group(args.group_id)
    if group is None:
        raise _refuse(MutationCode.NOT_FOUND, "No such group.", "$.group_id")
    ref = GroupRef(group["id"], group["school"], group["municipality"])
    school = SchoolRef(group["school"], group["municipality"])
    if not (
        decide(ctx.viewer, Action.TEACH_GROUP, ref, ctx.day)
        or decide(ctx.viewer, Action.MANAGE_SCHOOL, school, ctx.day)
    ):
        raise _refuse(
            MutationCode.FORBIDDEN,
            "Only the group's teachers, the school's principals and the city's admins may "
            "send it forms.",
            "$.group_id",
        )
    definition = (
        await DefinitionRow.select(DefinitionRow.id, DefinitionRow.organisation)
        .where(DefinitionRow.id == args.definition_id)
        .first()
    )
    # Another city's definitions are not to be probed: the same answer as a missing one.
    if definition is None or definition["organisation"] not in (
        group["school"],
        group["municipality"],
    ):
        raise _refuse(
            MutationCode.NOT_FOUND,
            "No such form definition for this school.",
            "$.definition_id",
        )
    if args.due_on < ctx.day:
        raise _refuse(MutationCode.INVALID_ARGS, "The due date has passed.", "$.due_on")
    pupils = await _current_pupils(args.group_id, ctx.day)
    for i, pupil_id in enumerate(args.pupil_ids):
        if pupil_id not in pupils:
            raise _refuse(
                MutationCode.INVALID_ARGS,
                "This person is not a pupil of the group.",
                f"$.pupil_ids[{i}]",
            )
    chosen = sorted(set(args.pupil_ids) or pupils)
    if not chosen:
        raise _refuse(MutationCode.INVALID_ARGS, "The group has no pupils.", "$.group_id")
    request = FormRequest(
        definition=args.definition_id,
        school=group["school"],
        group=args.group_id,
        sender=ctx.viewer.person_id,
        due_on=args.due_on,
        note=args.note,
        sent_at=utc_now(),
    )
    await request.save()
    await FormResponse.insert(*(FormResponse(request=request.id, pupil=p) for p in chosen))
    row = await _request_row(int(request.id))
    assert row is not None
    await write_records(
        ctx.engine, [await request_write(row), *await response_writes(row, ctx.day)]
    )


# --- form.save, form.submit, form.sign ---------------------------------------------------


async def _response_for(
    ctx: MutationContext, request_id: int, pupil_id: int, version: int
) -> tuple[dict[str, Any], dict[str, Any], FormDefinition]:
    """(request, response, definition) that the caller may answer for, or a rejection.

    On PostgreSQL the response's row is locked until the push's transaction ends, so two
    guardians answering or signing at once take turns (SQLite has one writer anyway)."""
    pupil = (await load_access_facts([pupil_id])).get(pupil_id, AccessFacts(pupil_id))
    if not decide(ctx.viewer, Action.ACT_FOR_PUPIL, pupil, ctx.day):
        raise _refuse(
            MutationCode.FORBIDDEN,
            "Only the pupil's custodial guardians may answer and sign forms about the pupil.",
            "$.pupil_id",
        )
    if isinstance(ctx.engine, PostgresEngine):
        await FormResponse.raw(
            "SELECT id FROM form_response WHERE request = {} AND pupil = {} FOR UPDATE",
            request_id,
            pupil_id,
        )
    response = (
        await FormResponse.select()
        .where((FormResponse.request == request_id) & (FormResponse.pupil == pupil_id))
        .first()
    )
    request = await _request_row(request_id) if response is not None else None
    if response is None or request is None:
        raise _refuse(MutationCode.NOT_FOUND, "No such form for this pupil.", "$.request_id")
    # Judged by when the guardian did it on the device: a form filled offline on its due
    # date and synced the next morning is on time.
    if school_today(ctx.occurred_at) > request["due_on"]:
        raise _refuse(
            MutationCode.TOO_LATE,
            f"The form was due on {request['due_on'].isoformat()}.",
            "$.request_id",
        )
    if version != request["definition_version"]:
        raise _refuse(
            MutationCode.INVALID_ARGS,
            f"This form is version {request['definition_version']} of its definition; the "
            f"answers were filled for version {version}. Reload the form.",
            "$.definition_version",
        )
    return request, response, decode_definition(request["definition_body"])


def _checked(
    definition: FormDefinition, answers: dict[str, Answer], *, complete: bool
) -> dict[str, Answer]:
    try:
        return check_answers(definition, answers, complete=complete)
    except FormProblem as problem:
        raise _refuse(MutationCode.INVALID_ARGS, problem.message, problem.field) from None


async def _answer(ctx: MutationContext, args: FormAnswerArgs, *, submit: bool) -> None:
    request, response, definition = await _response_for(
        ctx, args.request_id, args.pupil_id, args.definition_version
    )
    answers = _checked(definition, args.answers, complete=submit)
    if not submit and response["submitted_at"] is not None:
        raise _refuse(
            MutationCode.CONFLICT,
            "The form has been submitted since: submit the changed answers instead.",
            "$.request_id",
        )
    digest = answers_hash(request["id"], args.pupil_id, args.definition_version, answers)
    now = utc_now()
    if digest != response["answers_hash"]:
        # Changed answers void every signature over the old ones.
        await FormSignature.update({FormSignature.voided_at: now}).where(
            (FormSignature.response == response["id"]) & FormSignature.voided_at.is_null()
        )
    elif submit and response["submitted_at"] is not None:
        return  # The same answers submitted again: nothing changes.
    values: dict[Any, Any] = {
        FormResponse.definition_version: args.definition_version,
        FormResponse.answers: msgspec.json.encode(answers).decode(),
        FormResponse.answers_hash: digest,
        FormResponse.saved_at: ctx.occurred_at,
    }
    if submit:
        values[FormResponse.submitted_at] = ctx.occurred_at
        values[FormResponse.submitted_by] = ctx.viewer.person_id
    await FormResponse.update(values).where(FormResponse.id == response["id"])
    await write_records(ctx.engine, await response_writes(request, ctx.day, [args.pupil_id]))


async def save_form(ctx: MutationContext, args: FormAnswerArgs) -> None:
    """``form.save``: keep a draft (checked as far as it goes; nothing is required)."""
    await _answer(ctx, args, submit=False)


async def submit_form(ctx: MutationContext, args: FormAnswerArgs) -> None:
    """``form.submit``: the answers, checked in full against the definition version."""
    await _answer(ctx, args, submit=True)


async def sign_form(ctx: MutationContext, args: FormSignArgs) -> None:
    """``form.sign``: a custodial guardian signs the submitted answers they saw."""
    request, response, definition = await _response_for(
        ctx, args.request_id, args.pupil_id, args.definition_version
    )
    if response["submitted_at"] is None:
        raise _refuse(
            MutationCode.CONFLICT,
            "The form has not been submitted yet: submit it before signing.",
            "$.request_id",
        )
    seen = _checked(definition, args.answers, complete=True)
    digest = answers_hash(request["id"], args.pupil_id, args.definition_version, seen)
    if digest != response["answers_hash"]:
        raise _refuse(
            MutationCode.CONFLICT,
            "The answers have changed since you saw them: read them again and sign anew.",
            "$.answers",
        )
    already = await FormSignature.exists().where(
        (FormSignature.response == response["id"])
        & (FormSignature.signer == ctx.viewer.person_id)
        & FormSignature.voided_at.is_null()
    )
    if already:
        return  # Signed these answers before: the first signature stands.
    await FormSignature(
        response=response["id"],
        signer=ctx.viewer.person_id,
        signed_at=ctx.occurred_at,
        received_at=ctx.received_at,
        device=ctx.device[:100],
        client_id=ctx.client_id,
        mutation_id=ctx.mutation_id,
        answers_hash=digest,
    ).save()
    await write_records(ctx.engine, await response_writes(request, ctx.day, [args.pupil_id]))


# --- staff views -------------------------------------------------------------------------


async def visible_request(
    viewer: AccessFacts, request_id: int, day: dt.date
) -> dict[str, Any] | None:
    """The request, if ``viewer`` is among the staff who see its responses."""
    request = await _request_row(request_id)
    if request is None or not await may_see_request(viewer, request, day):
        return None
    return request


async def request_status(request: dict[str, Any], day: dt.date) -> FormRequestStatus:
    views = await response_views(request, day)
    who = await names(v.row["pupil"] for v in views)
    counts = {s.value: 0 for s in ResponseStatus}
    pupils = []
    for v in views:
        counts[v.status.value] += 1
        pupils.append(
            PupilFormStatus(
                pupil_id=v.row["pupil"],
                name=who.get(v.row["pupil"], ""),
                status=v.status,
                signed=v.signed,
                needed=v.needed,
                submitted_at=v.row["submitted_at"],
            )
        )
    pupils.sort(key=lambda p: (p.name, p.pupil_id))
    return FormRequestStatus(
        request_id=request["id"],
        definition_id=request["definition"],
        definition_version=request["definition_version"],
        group_id=request["group"],
        due_on=request["due_on"],
        counts=counts,
        pupils=pupils,
    )


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    if _NUMBER.match(text):
        return text  # a negative number is no formula
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _answer_text(kind: FieldKind, value: Answer) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(value)
    if kind == FieldKind.CONSENT:
        return "yes" if value else "no"
    return str(value)


async def responses_csv(request: dict[str, Any], day: dt.date) -> str:
    """Every response of the request as CSV: a row per pupil, a column per question
    (headed by its id), after the pupil, status, submission and signatures."""
    definition = decode_definition(request["definition_body"])
    views = await response_views(request, day)
    who = await names(
        [v.row["pupil"] for v in views]
        + [s["signer"] for v in views for s in v.signatures]
        + [v.row["submitted_by"] for v in views if v.row["submitted_by"]]
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "pupil_id",
            "pupil",
            "status",
            "signed",
            "needed",
            "submitted_at",
            "submitted_by",
            "signatures",
            *(f.id for f in definition.fields),
        ]
    )
    for v in sorted(views, key=lambda v: (who.get(v.row["pupil"], ""), v.row["pupil"])):
        r = v.row
        signatures = "; ".join(
            f"{who.get(s['signer'], '')} {s['signed_at'].isoformat()}" for s in v.signatures
        )
        writer.writerow(
            [
                _cell(r["pupil"]),
                _cell(who.get(r["pupil"], "")),
                _cell(v.status.value),
                _cell(v.signed),
                _cell(v.needed),
                _cell(r["submitted_at"].isoformat() if r["submitted_at"] else ""),
                _cell(who.get(r["submitted_by"], "") if r["submitted_by"] else ""),
                _cell(signatures),
                *(_cell(_answer_text(f.kind, v.answers.get(f.id))) for f in definition.fields),
            ]
        )
    return out.getvalue()


# --- definitions -------------------------------------------------------------------------


async def organisation_ref(organisation_id: int) -> SchoolRef | int | None:
    """A school as a :class:`SchoolRef`, a municipality as its id, or None."""
    row = (
        await Organisation.select(Organisation.kind, Organisation.parent)
        .where(Organisation.id == organisation_id)
        .first()
    )
    if row is None:
        return None
    if row["kind"] == OrganisationKind.SCHOOL.value and row["parent"] is not None:
        return SchoolRef(organisation_id, row["parent"])
    if row["kind"] == OrganisationKind.MUNICIPALITY.value:
        return organisation_id
    return None


def may_use_definitions_of(viewer: AccessFacts, owner: SchoolRef | int, day: dt.date) -> bool:
    """Staff who may read (and send) an organisation's definitions: a school's staff and its
    city's admins; a municipality's: the staff of any of its schools and its admins."""
    target = owner if isinstance(owner, SchoolRef) else CityRef(owner)
    return bool(decide(viewer, Action.USE_FORM_DEFINITIONS, target, day))
