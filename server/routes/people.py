"""``GET /me`` and ``GET /people/{person_id}``: people as the access policy lets one see another."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from schemas.errors import ErrorCode
from schemas.people import Child, ContactDetails, LanguageIn, LanguageSetting, Me, PersonCard
from server.access import load_access_facts
from server.clock import school_today
from server.db.engine import write_transaction
from server.db.tables import Person
from server.errors import ReppuError
from server.identity import Principal
from server.language import effective_language, supported
from server.messaging import schools_letting_pupils_start
from server.routes.ids import PathId
from server.state import AppState
from sync.policy import AccessFacts, Action, decide, readable_partitions, roles_on


def _card(row: dict[str, Any], *, with_contact: bool) -> PersonCard:
    contact = None
    if with_contact:
        contact = ContactDetails(
            email=row["email"], phone=row["phone"], street_address=row["street_address"]
        )
    return PersonCard(
        id=row["id"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        language=row["language"],
        contact=contact,
    )


async def _people(ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = await Person.select(
        Person.id,
        Person.given_name,
        Person.family_name,
        Person.language,
        Person.ui_language,
        Person.email,
        Person.phone,
        Person.street_address,
    ).where(Person.id.is_in(ids))
    return {row["id"]: row for row in rows}


def _language(row: dict[str, Any]) -> LanguageSetting:
    roster = row["language"] or ""
    return LanguageSetting(
        language=effective_language(row["ui_language"], roster),
        chosen=supported(row["ui_language"]),
        roster=roster,
        roster_supported=supported(roster) is not None,
    )


@get("/me", tags=["people"], summary="Who am I")
async def me(request: Request[Principal, Any, Any]) -> Me:
    """The caller, their roles and children today, and the partitions they may read."""
    today = school_today()
    viewer_id = request.user.person_id
    viewer = (await load_access_facts([viewer_id])).get(viewer_id, AccessFacts(viewer_id))
    wards = viewer.wards_on(today)
    rows = await _people([viewer_id, *(w.pupil_id for w in wards)])
    # A child's contact details follow the policy like anyone's: a child under turvakielto
    # keeps them even from a guardian.
    child_facts = await load_access_facts([w.pupil_id for w in wards])
    children = [
        Child(
            person=_card(
                rows[w.pupil_id],
                with_contact=w.pupil_id in child_facts
                and bool(
                    decide(viewer, Action.READ_CONTACT_DETAILS, child_facts[w.pupil_id], today)
                ),
            ),
            guardianship=w.kind,
            group_ids=sorted(g.group_id for g in w.pupil_groups if g.validity.holds_on(today)),
        )
        for w in sorted(wards, key=lambda w: w.pupil_id)
        if w.pupil_id in rows
    ]
    return Me(
        person=_card(rows[viewer_id], with_contact=True),
        roles=sorted(roles_on(viewer, today)),
        children=children,
        partitions=sorted(str(p) for p in readable_partitions(viewer, today)),
        language=_language(rows[viewer_id]),
        pupil_conversation_schools=sorted(await schools_letting_pupils_start(viewer, today)),
    )


@put(
    "/me/language",
    tags=["people"],
    summary="Choose my language",
    error_codes=[ErrorCode.REQUEST_INVALID],
)
async def choose_language(
    request: Request[Principal, Any, Any],
    data: JSONBody[LanguageIn],
    app_state: NamedDependency[AppState],
) -> LanguageSetting:
    """Save the language the caller reads Reppu in (``fi``, ``sv`` or ``en``; anything else
    is ``request.invalid``). Kept apart from the roster's language, so no import undoes it;
    push texts, rejection reasons and calendar titles follow it from now on. Only the
    caller's own: there is no way to name another person."""
    person = request.user.person_id
    async with write_transaction(app_state.engine):
        await Person.update({Person.ui_language: data.language}).where(Person.id == person)
    rows = await _people([person])
    return _language(rows[person])


@get(
    "/people/{person_id:int}",
    tags=["people"],
    summary="A person, as the policy allows",
    error_codes=[ErrorCode.AUTH_FORBIDDEN],
)
async def person(request: Request[Principal, Any, Any], person_id: PathId) -> PersonCard:
    """A person's name, and their contact details where the policy allows.

    Refused with ``auth.forbidden`` unless the policy grants ``person.read``. The same answer
    is given for a person who does not exist, so ids cannot be probed.
    """
    today = school_today()
    viewer_id = request.user.person_id
    facts = await load_access_facts([viewer_id, person_id])
    viewer = facts.get(viewer_id, AccessFacts(viewer_id))
    target = facts.get(person_id)
    if target is None or not decide(viewer, Action.READ_PERSON, target, today):
        raise ReppuError(ErrorCode.AUTH_FORBIDDEN, "You may not see this person.")
    rows = await _people([person_id])
    with_contact = bool(decide(viewer, Action.READ_CONTACT_DETAILS, target, today))
    return _card(rows[person_id], with_contact=with_contact)
