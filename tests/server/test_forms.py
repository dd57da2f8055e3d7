"""Forms over the API: definitions, requests, answers, signatures, status and CSV; who may do
what, and that a refusal writes nothing. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import httpx
import pytest

from clients.python import ReppuClient
from schemas.core import GuardianshipKind, MembershipRole, StaffRoleKind
from server.db.form_tables import FormRequest, FormResponse, FormSignature
from server.db.sync_tables import ChangeLog
from server.db.tables import Account, Guardianship, Membership, Person, StaffRole
from server.identity import hash_password
from tests.city import PASSWORD, City
from tests.conftest import log_in_as
from tests.devices import change, device, records
from tests.sync.test_forms import GOOD, every_kind


async def _person(username: str, given: str) -> int:
    row = Person(given_name=given, family_name="Testinen")
    await row.save()
    await Account(person=row.id, username=username, password_hash=hash_password(PASSWORD)).save()
    return int(row.id)


async def _staff(
    c: City, username: str, school: int, role: StaffRoleKind, groups: list[int]
) -> int:
    person = await _person(username, username.capitalize())
    since = c.today - dt.timedelta(days=30)
    await StaffRole(
        person=person, organisation=school, role=role, valid_from=since, valid_to=None
    ).save()
    for group in groups:
        await Membership(
            group=group, person=person, role=MembershipRole.TEACHER, valid_from=since
        ).save()
    return person


async def _second_custodian(c: City) -> int:
    """Aino's second custodial guardian (the father has a right to information only)."""
    person = await _person("aino_dad", "Jussi")
    await Guardianship(
        guardian=person,
        pupil=c.aino,
        kind=GuardianshipKind.CUSTODIAL,
        valid_from=c.today - dt.timedelta(days=30),
    ).save()
    return person


async def _define(
    http: httpx.AsyncClient, who: str, organisation: int, **overrides: Any
) -> httpx.Response:
    body = {"organisation_id": organisation, "definition": every_kind(**overrides)}
    return await http.post("/forms/definitions", json=body, headers=await log_in_as(http, who))


async def _sent(
    http: httpx.AsyncClient, c: City, definition_id: int | None = None
) -> tuple[int, int]:
    """(definition id, request id): the principal's definition (a new one unless given) sent
    by the teacher to 5B."""
    if definition_id is None:
        made = await _define(http, "principal", c.school_a)
        assert made.status_code == 201, made.text
        definition_id = int(made.json()["id"])
    teacher = await device(http, "teacher")
    result = await change(
        teacher,
        "form.request",
        definition_id=definition_id,
        group_id=c.class_5b,
        due_on=c.today + dt.timedelta(days=7),
    )
    assert result["status"] == "applied", result
    (request_id,) = [r["id"] for r in await FormRequest.select(FormRequest.id)]
    return definition_id, request_id


def _answer(
    request_id: int, pupil_id: int, answers: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "pupil_id": pupil_id,
        "definition_version": 1,
        "answers": answers,
        **extra,
    }


async def _response(client: ReppuClient) -> dict[str, Any]:
    await client.sync()
    (response,) = records(client, "form_response").values()
    return response


async def test_a_form_goes_to_the_family_and_is_complete_with_every_signature(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    await _second_custodian(c)
    _, request_id = await _sent(fx_client, c)
    mother = await device(fx_client, "mother")
    await mother.sync()
    (request,) = records(mother, "form_request").values()
    assert request["definition"]["key"] == "retkilupa"
    assert request["definition_version"] == 1
    assert "pupil_ids" not in request
    response = await _response(mother)
    assert (response["pupil_id"], response["status"], response["needed"]) == (
        c.aino,
        "not_opened",
        2,
    )
    # The information-only guardian and the pupil read it; another family does not.
    for reader in ("father", "aino"):
        assert (await _response(await device(fx_client, reader)))["request_id"] == request_id
    olli_parent = await device(fx_client, "olli_parent")
    await olli_parent.sync()
    assert records(olli_parent, "form_request") == {}
    assert records(olli_parent, "form_response") == {}
    # The group's teacher holds the request (group-staff), not the family's answers.
    teacher = await device(fx_client, "teacher")
    await teacher.sync()
    assert list(records(teacher, "form_request")) == [request_id]
    assert records(teacher, "form_response") == {}

    saved = await change(mother, "form.save", **_answer(request_id, c.aino, {"name": "Ai"}))
    assert saved["status"] == "applied", saved
    assert (await _response(mother))["status"] == "draft"
    submitted = await change(mother, "form.submit", **_answer(request_id, c.aino, GOOD))
    assert submitted["status"] == "applied", submitted
    assert (await _response(mother))["status"] == "submitted"
    signed = await change(mother, "form.sign", **_answer(request_id, c.aino, GOOD))
    assert signed["status"] == "applied", signed
    response = await _response(mother)
    assert (response["status"], response["signed"], response["needed"]) == ("partly_signed", 1, 2)
    assert response["signatures"][0]["signer_id"] == c.mother
    assert response["signatures"][0]["answers_hash"] == response["answers_hash"]
    # The signature is an audited act: who, when, on which device, by which mutation.
    (audit,) = await FormSignature.select()
    assert (audit["signer"], audit["device"], audit["client_id"]) == (
        c.mother,
        "t",
        mother.client_id,
    )
    assert audit["mutation_id"] == 3
    assert audit["answers_hash"] == response["answers_hash"]

    dad = await device(fx_client, "aino_dad")
    seen = (await _response(dad))["answers"]
    assert (await change(dad, "form.sign", **_answer(request_id, c.aino, seen)))["status"] == (
        "applied"
    )
    assert (await _response(mother))["status"] == "complete"

    # Changed answers void both signatures; a signature over the old answers is a conflict.
    changed = await change(
        mother, "form.submit", **_answer(request_id, c.aino, {**GOOD, "photos": True})
    )
    assert changed["status"] == "applied", changed
    response = await _response(mother)
    assert (response["status"], response.get("signatures", [])) == ("submitted", [])
    assert await FormSignature.count().where(FormSignature.voided_at.is_not_null()) == 2
    stale = await change(dad, "form.sign", **_answer(request_id, c.aino, seen))
    assert (stale["status"], stale["code"], stale["field"]) == (
        "rejected",
        "mutation.conflict",
        "$.answers",
    )
    # A draft after submission would hide the submitted answers: refused as a conflict.
    late_draft = await change(mother, "form.save", **_answer(request_id, c.aino, {"name": "A"}))
    assert late_draft["code"] == "mutation.conflict"


async def test_permissions_refuse_with_their_code_and_write_nothing(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    made = await _define(fx_client, "principal", c.school_a)
    definition_id = made.json()["id"]
    await _staff(c, "teacher_5a", c.school_a, StaffRoleKind.TEACHER, [c.class_5a])
    # A teacher of another group, a guardian and a pupil may not send the group a form.
    for who in ("teacher_5a", "mother", "aino"):
        refused = await change(
            await device(fx_client, who),
            "form.request",
            definition_id=definition_id,
            group_id=c.class_5b,
            due_on=c.today,
        )
        assert (refused["status"], refused["code"]) == ("rejected", "mutation.forbidden"), who
    assert await FormRequest.count() == 0
    assert await FormResponse.count() == 0
    assert await ChangeLog.count() == 0
    # Nor may a school use another city's or school's definitions it cannot see.
    teacher = await device(fx_client, "teacher")
    missing = await change(
        teacher, "form.request", definition_id=999_999, group_id=c.class_5b, due_on=c.today
    )
    assert (missing["code"], missing["field"]) == ("mutation.not_found", "$.definition_id")

    _, request_id = await _sent(fx_client, c, definition_id)
    before = await ChangeLog.count()
    good = _answer(request_id, c.aino, GOOD)
    cases = [
        ("olli_parent", "form.save", good),  # another family's child
        ("olli_parent", "form.submit", good),
        ("olli_parent", "form.sign", good),
        ("father", "form.save", good),  # right to information only
        ("father", "form.submit", good),
        ("father", "form.sign", good),
        ("aino", "form.submit", good),  # a pupil does not sign for herself
    ]
    for who, name, args in cases:
        refused = await change(await device(fx_client, who), name, **args)
        assert (refused["status"], refused["code"], refused["field"]) == (
            "rejected",
            "mutation.forbidden",
            "$.pupil_id",
        ), (who, name)
    # The mother's other child got no such form.
    mother = await device(fx_client, "mother")
    other = await change(mother, "form.submit", **_answer(request_id, c.eero, GOOD))
    assert (other["code"], other["field"]) == ("mutation.not_found", "$.request_id")
    (row,) = await FormResponse.select()
    assert (row["answers"], row["submitted_at"]) == (None, None)
    assert await FormSignature.count() == 0
    assert await ChangeLog.count() == before
    # The information-only guardian cannot sign even answers the mother submitted.
    accepted = await change(mother, "form.submit", **good)
    assert accepted["status"] == "applied", accepted
    father = await device(fx_client, "father")
    assert (await change(father, "form.sign", **good))["code"] == "mutation.forbidden"
    assert await FormSignature.count() == 0


async def test_answers_are_checked_against_the_definition_version_they_were_filled_for(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    _, request_id = await _sent(fx_client, c)
    mother = await device(fx_client, "mother")
    wrong: list[tuple[dict[str, Any], str]] = [
        ({**GOOD, "name": 7}, "$.answers.name"),  # text
        ({**GOOD, "name": "x" * 201}, "$.answers.name"),  # over-long text
        ({**GOOD, "notes": "x" * 51}, "$.answers.notes"),  # over-long long text
        ({**GOOD, "lunch": "fish"}, "$.answers.lunch"),  # single choice
        ({**GOOD, "allergies": ["gluten"]}, "$.answers.allergies"),  # multiple choice
        ({**GOOD, "back_on": "2026-13-01"}, "$.answers.back_on"),  # date
        ({**GOOD, "photos": "kyllä"}, "$.answers.photos"),  # consent
        ({**GOOD, "height": 12.5}, "$.answers.height"),  # number
        ({**GOOD, "shoe_size": 38}, "$.answers.shoe_size"),  # unknown question
        ({k: v for k, v in GOOD.items() if k != "photos"}, "$.answers.photos"),  # required
    ]
    for answers, _ in wrong:
        mother.queue("form.submit", _answer(request_id, c.aino, answers))
    mother.queue("form.submit", _answer(request_id, c.aino, GOOD, definition_version=2))
    results = await mother.push()
    expected = [field for _, field in wrong] + ["$.definition_version"]
    assert [(r["status"], r["code"], r["field"]) for r in results] == [
        ("rejected", "mutation.invalid_args", field) for field in expected
    ]
    (row,) = await FormResponse.select()
    assert row["answers"] is None
    # A question id that is not even well-formed is refused by the args' type.
    odd = await change(mother, "form.submit", **_answer(request_id, c.aino, {"Name!": "x"}))
    assert odd["code"] == "mutation.invalid_args"


async def test_a_form_is_answered_until_its_due_date_by_the_device_clock(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    _, request_id = await _sent(fx_client, c)
    await FormRequest.update({FormRequest.due_on: c.today - dt.timedelta(days=1)}).where(
        FormRequest.id == request_id
    )
    mother = await device(fx_client, "mother")
    late = await change(mother, "form.submit", **_answer(request_id, c.aino, GOOD))
    assert (late["status"], late["code"]) == ("rejected", "mutation.too_late")
    # Filled offline yesterday, synced today: on time.
    mother.store.queue(
        "form.submit",
        _answer(request_id, c.aino, GOOD),
        (dt.datetime.now(dt.UTC) - dt.timedelta(days=1, hours=1)).isoformat(),
    )
    (result,) = await mother.push()
    assert result["status"] == "applied", result


async def test_a_replayed_signature_applies_once(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    _, request_id = await _sent(fx_client, c)
    mother = await device(fx_client, "mother")
    assert (await change(mother, "form.submit", **_answer(request_id, c.aino, GOOD)))[
        "status"
    ] == "applied"
    body = {
        "schema_version": 1,
        "client_id": mother.client_id,
        "mutations": [
            {
                "id": 2,
                "name": "form.sign",
                "args": _answer(request_id, c.aino, GOOD),
                "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
            }
        ],
    }
    first = (await fx_client.post("/sync/push", json=body, headers=mother.headers)).json()
    again = (await fx_client.post("/sync/push", json=body, headers=mother.headers)).json()
    assert first == again == {"results": [{"id": 2, "status": "applied"}]}
    assert await FormSignature.count() == 1


# --- staff routes ------------------------------------------------------------------------


async def test_definitions_are_versioned_exported_and_imported(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    first = await _define(fx_client, "principal", c.school_a)
    second = await _define(fx_client, "principal", c.school_a, signing="any_custodian")
    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    teacher = await log_in_as(fx_client, "teacher")
    exported = await fx_client.get(f"/forms/definitions/{first.json()['id']}", headers=teacher)
    assert exported.status_code == 200
    assert exported.json()["definition"] == every_kind()
    # Shared with the city: the admin imports the exported document as it is.
    admin = await log_in_as(fx_client, "admin")
    imported = await fx_client.post(
        "/forms/definitions",
        json={"organisation_id": c.city, "definition": exported.json()["definition"]},
        headers=admin,
    )
    assert (imported.status_code, imported.json()["version"]) == (201, 1)
    listed = await fx_client.get(
        f"/forms/definitions?organisation_id={c.school_a}", headers=teacher
    )
    # The school's own and its city's, by organisation, newest version first.
    assert [(d["organisation_id"], d["version"]) for d in listed.json()] == sorted(
        [(c.school_a, 2), (c.school_a, 1), (c.city, 1)], key=lambda d: (d[0], -d[1])
    )
    broken = await _define(fx_client, "principal", c.school_a, title={"fi": "Vain suomeksi"})
    assert (broken.status_code, broken.json()["code"], broken.json()["field"]) == (
        422,
        "request.invalid",
        "$.definition.title",
    )
    # Every request carries its definition to every pupil: a definition has a size limit.
    label = {language: "x" * 500 for language in ("fi", "sv", "en")}
    huge = [{"id": f"q{i}", "kind": "consent", "label": label} for i in range(100)]
    too_big = await _define(fx_client, "principal", c.school_a, fields=huge)
    assert (too_big.status_code, too_big.json()["field"]) == (422, "$.definition")


async def test_only_a_schools_staff_see_and_make_its_definitions(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    await _staff(c, "principal_b", c.school_b, StaffRoleKind.PRINCIPAL, [])
    made = await _define(fx_client, "principal", c.school_a)
    for who, organisation in (
        ("teacher", c.school_a),  # teachers send forms; principals make them
        ("principal", c.school_b),  # another school
        ("principal", c.city),  # the city is the admins'
        ("mother", c.school_a),
    ):
        refused = await _define(fx_client, who, organisation)
        assert (refused.status_code, refused.json()["code"]) == (403, "auth.forbidden"), who
    for who in ("principal_b", "mother"):
        headers = await log_in_as(fx_client, who)
        got = await fx_client.get(f"/forms/definitions/{made.json()['id']}", headers=headers)
        assert (got.status_code, got.json()["code"]) == (404, "not_found"), who
        listed = await fx_client.get(
            f"/forms/definitions?organisation_id={c.school_a}", headers=headers
        )
        assert listed.status_code == 404, who


async def test_staff_see_each_pupils_status_and_export_csv(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    await _second_custodian(c)
    _, request_id = await _sent(fx_client, c)
    mother = await device(fx_client, "mother")
    answers = {**GOOD, "name": '=HYPERLINK("http://x")'}
    for name in ("form.submit", "form.sign"):
        assert (await change(mother, name, **_answer(request_id, c.aino, answers)))["status"] == (
            "applied"
        )
    for who in ("teacher", "principal", "admin"):
        status = await fx_client.get(
            f"/forms/requests/{request_id}/status", headers=await log_in_as(fx_client, who)
        )
        assert status.status_code == 200, who
        (pupil,) = status.json()["pupils"]
        assert (pupil["pupil_id"], pupil["status"], pupil["signed"], pupil["needed"]) == (
            c.aino,
            "partly_signed",
            1,
            2,
        )
        assert status.json()["counts"]["partly_signed"] == 1
    exported = await fx_client.get(
        f"/forms/requests/{request_id}/responses.csv", headers=await log_in_as(fx_client, "teacher")
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    header, row = list(csv.reader(io.StringIO(exported.text)))
    assert header[:3] == ["pupil_id", "pupil", "status"]
    values = dict(zip(header, row, strict=True))
    assert values["pupil"] == "Aino Virtanen"
    assert values["name"] == '\'=HYPERLINK("http://x")'  # never a formula in a spreadsheet
    assert (values["allergies"], values["photos"], values["height"]) == ("milk; nuts", "no", "142")
    assert values["signatures"].startswith("Maria Virtanen ")


@pytest.mark.parametrize("who", ["teacher_5a", "principal_b", "mother", "father", "aino"])
async def test_another_groups_or_schools_people_do_not_see_a_requests_answers(
    fx_client: httpx.AsyncClient, fx_city: City, who: str
) -> None:
    c = fx_city
    await _staff(c, "teacher_5a", c.school_a, StaffRoleKind.TEACHER, [c.class_5a])
    await _staff(c, "principal_b", c.school_b, StaffRoleKind.PRINCIPAL, [])
    _, request_id = await _sent(fx_client, c)
    headers = await log_in_as(fx_client, who)
    for path in ("status", "responses.csv"):
        got = await fx_client.get(f"/forms/requests/{request_id}/{path}", headers=headers)
        assert (got.status_code, got.json()["code"]) == (404, "not_found"), path
