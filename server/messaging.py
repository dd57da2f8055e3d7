"""Messages, bulletins and receipts: the mutations that write them and their synced records.

Each handler runs inside the push's write transaction (``server/push.py``): it decides access
through the one policy, writes its rows, their sync records through the one write path, and
the outbox entry that makes the fan-out notify, all in that transaction.
``docs/messages.md`` describes the model and every rejection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from schemas.core import MembershipRole, Role, StaffRoleKind
from schemas.messages import (
    Audience,
    AudienceRole,
    BulletinRecord,
    BulletinSendArgs,
    ItemType,
    MessageRecord,
    MessageSendArgs,
    Participant,
    ReadArgs,
    ReceiptRecord,
    ThreadRecord,
)
from schemas.sync import MutationCode
from server.access import load_access_facts
from server.audiences import bulletin_partitions, inbox, staff_only
from server.clock import utc_now
from server.db.absence_tables import SchoolSettings
from server.db.message_tables import (
    Bulletin,
    BulletinRecipient,
    Message,
    ReadReceipt,
    Thread,
    ThreadParticipant,
)
from server.db.tables import Organisation, Person, SchoolGroup
from server.fanout import enqueue
from server.mutations import MutationContext, MutationRejectedError
from server.sync_store import RecordWrite, write_records
from sync.policy import (
    AccessFacts,
    Action,
    CityRef,
    GroupRef,
    SchoolRef,
    decide,
    readable_partitions,
    roles_on,
)

STAFF_ROLES = frozenset({Role.TEACHER, Role.PRINCIPAL, Role.ADMIN})
LEADERS = frozenset({Role.PRINCIPAL, Role.ADMIN})


async def names(person_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    rows = await Person.select(Person.id, Person.given_name, Person.family_name).where(
        Person.id.is_in(ids)
    )
    return {r["id"]: f"{r['given_name']} {r['family_name']}" for r in rows}


def _refuse(code: MutationCode, reason: str, field: str | None = None) -> MutationRejectedError:
    return MutationRejectedError(code, reason, field)


# --- records -----------------------------------------------------------------------------


async def thread_writes(thread_ids: Iterable[int]) -> list[RecordWrite]:
    ids = sorted(set(thread_ids))
    if not ids:
        return []
    threads = await Thread.select().where(Thread.id.is_in(ids))
    members = await ThreadParticipant.select(
        ThreadParticipant.thread, ThreadParticipant.person
    ).where(ThreadParticipant.thread.is_in(ids))
    by_thread: dict[int, list[int]] = {}
    for m in members:
        by_thread.setdefault(m["thread"], []).append(m["person"])
    who = await names(p for people in by_thread.values() for p in people)
    writes = []
    for t in threads:
        people = sorted(by_thread.get(t["id"], []))
        record = ThreadRecord(
            id=t["id"],
            v=0,
            subject=t["subject"],
            organisation_id=t["school"],
            participants=[Participant(id=p, name=who.get(p, "")) for p in people],
            started_at=t["started_at"],
        )
        writes.append(RecordWrite("thread", t["id"], record, frozenset(inbox(p) for p in people)))
    return writes


async def message_write(message_id: int, participants: Iterable[int]) -> RecordWrite:
    m = await Message.select().where(Message.id == message_id).first()
    assert m is not None
    sender = (await names([m["sender"]])).get(m["sender"], "")
    record = MessageRecord(
        id=m["id"],
        v=0,
        thread_id=m["thread"],
        sender_id=m["sender"],
        sender_name=sender,
        body=m["body"],
        sent_at=m["sent_at"],
    )
    return RecordWrite("message", m["id"], record, frozenset(inbox(p) for p in participants))


async def bulletin_write(bulletin_id: int) -> RecordWrite:
    b = await Bulletin.select().where(Bulletin.id == bulletin_id).first()
    assert b is not None
    people = [
        r["person"]
        for r in await BulletinRecipient.select(BulletinRecipient.person).where(
            BulletinRecipient.bulletin == bulletin_id
        )
    ]
    author = (await names([b["author"]])).get(b["author"], "")
    record = BulletinRecord(
        id=b["id"],
        v=0,
        title=b["title"],
        body=b["body"],
        author_id=b["author"],
        author_name=author,
        organisation_id=b["organisation"],
        audience=Audience(b["audience"]),
        roles=[AudienceRole(r) for r in b["roles"].split()],
        sent_at=b["sent_at"],
        urgent=b["urgent"],
        group_id=b["group"],
    )
    return RecordWrite("bulletin", b["id"], record, bulletin_partitions(b, people))


# --- message.send ------------------------------------------------------------------------


def _shared_organisation(viewer: AccessFacts, target: AccessFacts, day: dt.date) -> int | None:
    """A school both belong to (as pupil, staff or through a child), else a shared city."""
    mine = viewer.school_ids_on(day) | viewer.family_school_ids_on(day)
    theirs = target.school_ids_on(day) | target.family_school_ids_on(day)
    shared = mine & theirs
    if shared:
        return min(shared)
    cities = viewer.municipality_ids_on(day) & target.municipality_ids_on(day)
    return min(cities) if cities else None


async def schools_letting_pupils_start(viewer: AccessFacts, day: dt.date) -> set[int]:
    """The schools where ``viewer`` is a pupil today and whose rules let pupils start
    conversations with staff."""
    schools = sorted({g.school_id for g in viewer.groups_on(day, MembershipRole.PUPIL)})
    if not schools:
        return set()
    rows = await SchoolSettings.select(SchoolSettings.school).where(
        SchoolSettings.school.is_in(schools) & (SchoolSettings.pupils_start_conversations == True)  # noqa: E712
    )
    return {r["school"] for r in rows}


async def _start_threads(ctx: MutationContext, args: MessageSendArgs) -> None:
    if not args.to:
        raise _refuse(
            MutationCode.INVALID_ARGS, "Name the recipients, or the thread to reply in.", "$.to"
        )
    if args.subject is None:
        raise _refuse(MutationCode.INVALID_ARGS, "A new conversation needs a subject.", "$.subject")
    viewer, day = ctx.viewer, ctx.day
    viewer_roles = roles_on(viewer, day)
    # Pupils start conversations only where their school allows it, and only with its staff.
    pupil_schools = await schools_letting_pupils_start(viewer, day)
    if not viewer_roles & (STAFF_ROLES | {Role.GUARDIAN}) and not pupil_schools:
        raise _refuse(
            MutationCode.FORBIDDEN,
            "Only staff and guardians may start a conversation (and pupils, where their school"
            " allows it).",
        )
    recipients = sorted(set(args.to) - {viewer.person_id})
    facts = await load_access_facts(recipients)
    plans: list[tuple[int, int]] = []
    for i, person_id in enumerate(recipients):
        target = facts.get(person_id, AccessFacts(person_id))
        target_is_staff = bool(roles_on(target, day) & STAFF_ROLES)
        organisation = _shared_organisation(viewer, target, day)
        if not viewer_roles & (STAFF_ROLES | {Role.GUARDIAN}):
            # A pupil: the recipient must teach or lead at a school that lets its pupils.
            staff_at = {
                s.organisation_id
                for s in target.staff_on(day)
                if s.role in (StaffRoleKind.TEACHER, StaffRoleKind.PRINCIPAL)
            }
            shared = staff_at & pupil_schools
            organisation = min(shared) if shared else None
        # One side must be staff (families do not message each other through the school),
        # and the policy must let the sender see the recipient at all.
        if (
            not (viewer_roles & STAFF_ROLES or target_is_staff)
            or not decide(viewer, Action.READ_PERSON, target, day)
            or organisation is None
        ):
            raise _refuse(
                MutationCode.FORBIDDEN,
                "You cannot start a conversation with this person.",
                f"$.to[{args.to.index(person_id) if person_id in args.to else i}]",
            )
        plans.append((person_id, organisation))
    now = utc_now()
    thread_ids: list[int] = []
    for person_id, organisation in plans:
        thread = Thread(
            school=organisation, subject=args.subject, started_by=viewer.person_id, started_at=now
        )
        await thread.save()
        for member in sorted({viewer.person_id, person_id}):
            await ThreadParticipant(thread=thread.id, person=member).save()
        thread_ids.append(int(thread.id))
    writes = await thread_writes(thread_ids)
    for thread_id, (person_id, _) in zip(thread_ids, plans, strict=True):
        message = Message(thread=thread_id, sender=viewer.person_id, body=args.body, sent_at=now)
        await message.save()
        writes.append(await message_write(int(message.id), [viewer.person_id, person_id]))
        await enqueue("message", int(message.id), urgent=False)
    await write_records(ctx.engine, writes)


async def send_message(ctx: MutationContext, args: MessageSendArgs) -> None:
    """``message.send``: see :class:`schemas.messages.MessageSendArgs`."""
    if args.thread_id is None:
        await _start_threads(ctx, args)
        return
    if args.to:
        raise _refuse(
            MutationCode.INVALID_ARGS, "A reply goes to its thread; leave out 'to'.", "$.to"
        )
    members = [
        r["person"]
        for r in await ThreadParticipant.select(ThreadParticipant.person).where(
            ThreadParticipant.thread == args.thread_id
        )
    ]
    if ctx.viewer.person_id not in members:
        # The same answer whether the thread exists or not: ids of other families'
        # conversations are not to be probed.
        raise _refuse(MutationCode.NOT_FOUND, "No such conversation.", "$.thread_id")
    # Ties end (a guardianship, a job): a conversation goes on only while the policy still
    # lets the two see each other.
    others = [p for p in members if p != ctx.viewer.person_id]
    facts = await load_access_facts(others)
    for person_id in others:
        target = facts.get(person_id, AccessFacts(person_id))
        if not decide(ctx.viewer, Action.READ_PERSON, target, ctx.day):
            raise _refuse(
                MutationCode.FORBIDDEN,
                "This conversation has ended: you are no longer connected through a school.",
                "$.thread_id",
            )
    message = Message(
        thread=args.thread_id, sender=ctx.viewer.person_id, body=args.body, sent_at=utc_now()
    )
    await message.save()
    await enqueue("message", int(message.id), urgent=False)
    await write_records(ctx.engine, [await message_write(int(message.id), members)])


# --- bulletin.send -----------------------------------------------------------------------


async def _organisation_parent(organisation_id: int) -> tuple[str, int | None] | None:
    row = (
        await Organisation.select(Organisation.kind, Organisation.parent)
        .where(Organisation.id == organisation_id)
        .first()
    )
    return None if row is None else (row["kind"], row["parent"])


async def _bulletin_scope(
    ctx: MutationContext, args: BulletinSendArgs
) -> tuple[int, int | None, bool]:
    """(organisation, group, may mark urgent) for the audience, or a rejection."""
    viewer, day = ctx.viewer, ctx.day
    forbidden = _refuse(MutationCode.FORBIDDEN, "You may not send bulletins to this audience.")
    if args.audience == Audience.PEOPLE:
        if args.audience_id is not None:
            raise _refuse(
                MutationCode.INVALID_ARGS, "Named people need no audience_id.", "$.audience_id"
            )
        if not args.people:
            raise _refuse(MutationCode.INVALID_ARGS, "Name at least one person.", "$.people")
        roles = roles_on(viewer, day)
        if not roles & STAFF_ROLES:
            raise forbidden
        facts = await load_access_facts(args.people)
        organisation: int | None = None
        for index, person_id in enumerate(args.people):
            target = facts.get(person_id, AccessFacts(person_id))
            shared = _shared_organisation(viewer, target, day)
            if not decide(viewer, Action.READ_PERSON, target, day) or shared is None:
                raise _refuse(
                    MutationCode.FORBIDDEN,
                    "You may not send a bulletin to this person.",
                    f"$.people[{index}]",
                )
            organisation = shared if organisation is None else min(organisation, shared)
        assert organisation is not None
        return organisation, None, bool(roles & LEADERS)
    if args.people:
        raise _refuse(
            MutationCode.INVALID_ARGS, "Only a 'people' audience names people.", "$.people"
        )
    if args.audience_id is None:
        raise _refuse(
            MutationCode.INVALID_ARGS, "Say which group, school or city.", "$.audience_id"
        )
    if args.audience == Audience.GROUP:
        group = (
            await SchoolGroup.select(
                SchoolGroup.id,
                SchoolGroup.school,
                SchoolGroup.school._.parent.as_alias("municipality"),
            )
            .where(SchoolGroup.id == args.audience_id)
            .first()
        )
        if group is None:
            raise _refuse(MutationCode.NOT_FOUND, "No such group.", "$.audience_id")
        school = SchoolRef(group["school"], group["municipality"])
        leads = decide(viewer, Action.MANAGE_SCHOOL, school, day)
        ref = GroupRef(group["id"], group["school"], group["municipality"])
        if not (leads or decide(viewer, Action.TEACH_GROUP, ref, day)):
            raise forbidden
        return group["school"], group["id"], bool(leads)
    found = await _organisation_parent(args.audience_id)
    if args.audience == Audience.SCHOOL:
        if found is None or found[0] != "school" or found[1] is None:
            raise _refuse(MutationCode.NOT_FOUND, "No such school.", "$.audience_id")
        if not decide(viewer, Action.MANAGE_SCHOOL, SchoolRef(args.audience_id, found[1]), day):
            raise forbidden
        return args.audience_id, None, True
    if found is None or found[0] != "municipality":
        raise _refuse(MutationCode.NOT_FOUND, "No such municipality.", "$.audience_id")
    if not decide(viewer, Action.MANAGE_CITY, CityRef(args.audience_id), day):
        raise forbidden
    return args.audience_id, None, True


async def send_bulletin(ctx: MutationContext, args: BulletinSendArgs) -> None:
    """``bulletin.send``: see :class:`schemas.messages.BulletinSendArgs`."""
    if args.audience == Audience.MUNICIPALITY and staff_only(args.roles):
        raise _refuse(
            MutationCode.INVALID_ARGS,
            "A bulletin for the city's staff alone is not supported: send it to each school.",
            "$.roles",
        )
    organisation, group, may_be_urgent = await _bulletin_scope(ctx, args)
    if args.urgent and not may_be_urgent:
        raise _refuse(
            MutationCode.FORBIDDEN,
            "Only principals and admins may send urgent bulletins.",
            "$.urgent",
        )
    bulletin = Bulletin(
        author=ctx.viewer.person_id,
        organisation=organisation,
        group=group,
        audience=args.audience.value,
        roles=" ".join(sorted({r.value for r in args.roles})),
        title=args.title,
        body=args.body,
        urgent=args.urgent,
        sent_at=utc_now(),
    )
    await bulletin.save()
    for person_id in sorted(set(args.people)):
        await BulletinRecipient(bulletin=bulletin.id, person=person_id).save()
    await enqueue("bulletin", int(bulletin.id), urgent=args.urgent)
    await write_records(ctx.engine, [await bulletin_write(int(bulletin.id))])


# --- receipts ----------------------------------------------------------------------------


async def _mark_read(ctx: MutationContext, item_type: ItemType, item_id: int) -> None:
    read_at = min(ctx.occurred_at, utc_now())
    # Two devices marking the same item at once: one insert wins, the other does nothing.
    made = await ReadReceipt.raw(
        "INSERT INTO read_receipt (person, item_type, item_id, read_at) VALUES ({}, {}, {}, {}) "
        "ON CONFLICT (person, item_type, item_id) DO NOTHING RETURNING id",
        ctx.viewer.person_id,
        item_type.value,
        item_id,
        read_at,
    )
    if not made:
        return  # Read before: the first reading time stands.
    receipt_id = int(made[0]["id"])
    record = ReceiptRecord(
        id=receipt_id, v=0, item_type=item_type, item_id=item_id, read_at=read_at
    )
    await write_records(
        ctx.engine,
        [RecordWrite("receipt", receipt_id, record, frozenset({inbox(ctx.viewer.person_id)}))],
    )


async def read_message(ctx: MutationContext, args: ReadArgs) -> None:
    """``message.read``: a participant of the message's thread has read it."""
    row = await Message.select(Message.thread).where(Message.id == args.id).first()
    member = row is not None and await ThreadParticipant.exists().where(
        (ThreadParticipant.thread == row["thread"])
        & (ThreadParticipant.person == ctx.viewer.person_id)
    )
    if not member:
        raise _refuse(MutationCode.NOT_FOUND, "No such message.", "$.id")
    await _mark_read(ctx, ItemType.MESSAGE, args.id)


async def may_read_bulletin(viewer: AccessFacts, bulletin_id: int, day: dt.date) -> bool:
    """Whether the policy lets ``viewer`` read the bulletin (its partition is theirs)."""
    b = await Bulletin.select().where(Bulletin.id == bulletin_id).first()
    if b is None:
        return False
    people: list[int] = []
    if b["audience"] == Audience.PEOPLE.value:
        people = [
            r["person"]
            for r in await BulletinRecipient.select(BulletinRecipient.person).where(
                BulletinRecipient.bulletin == bulletin_id
            )
        ]
    readable = {str(p) for p in readable_partitions(viewer, day)}
    return bool(bulletin_partitions(b, people) & readable)


async def read_bulletin(ctx: MutationContext, args: ReadArgs) -> None:
    """``bulletin.read``: a reader of the bulletin has read it."""
    if not await may_read_bulletin(ctx.viewer, args.id, ctx.day):
        raise _refuse(MutationCode.NOT_FOUND, "No such bulletin.", "$.id")
    await _mark_read(ctx, ItemType.BULLETIN, args.id)
