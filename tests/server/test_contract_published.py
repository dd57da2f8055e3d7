"""The published sync contract is what the server sends (issue 17).

A native app team writes its types from ``/schema/openapi.json`` alone (``server/contract.py``
completes it). Here the test city's pupil, guardian and teacher make every mutation of the
catalogue over the real push and pull everything they may read, in JSON and in MessagePack,
and every body sent and received is validated against that document. The document is closed
for the check (an object may hold no property the document does not name), so a field the
server sends but does not publish fails as surely as a wrong type. Runs on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import msgspec
import pytest
from litestar.response import ServerSentEventMessage
from piccolo.engine.base import Engine

from schemas.sync import RECORD_TYPES
from server.catalogue import CATALOGUE
from server.clock import SCHOOL_TIMEZONE, school_today
from server.contract import OMITTED
from server.db.form_tables import FormRequest
from server.db.tables import Lesson
from server.live import LiveHub
from server.routes.sync import live_events
from server.settings import Settings
from server.sync_store import seed_sync_state
from server.timetable import all_timetable_writes
from tests.city import PASSWORD, City, add_timetable
from tests.conftest import log_in_as
from tests.devices import next_weekday
from tests.sync.test_forms import GOOD, every_kind

ROOT = Path(__file__).resolve().parents[2]
JSON = "application/json"
MSGPACK = "application/x-msgpack"
REF = "#/components/schemas/{}".format
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _closed(node: Any) -> Any:
    """The schema with every object that names its properties closed to any others."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {key: _closed(value) for key, value in node.items()}
    if "properties" in closed and "additionalProperties" not in closed and "allOf" not in closed:
        closed["additionalProperties"] = False
    return closed


class Contract:
    """The published document, and a validator for each of its components."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schemas: dict[str, Any] = document["components"]["schemas"]
        self._components = _closed(document["components"])
        self._validators: dict[str, jsonschema_rs.Validator] = {}

    def check(self, name: str, value: Any) -> None:
        """``value`` fits the component ``name``; the errors are the assertion's message."""
        if name not in self._validators:
            root = {"$ref": REF(name), "components": self._components}
            self._validators[name] = jsonschema_rs.Draft202012Validator(root, validate_formats=True)
        errors = [
            f"{e.instance_path}: {e.message}" for e in self._validators[name].iter_errors(value)
        ]
        assert not errors, (name, errors[:5])

    def check_omitted_defaults(self, record: dict[str, Any]) -> None:
        """A record never carries a field that holds its default: it is left out."""
        name = _record_component(self.schemas, record["type"])
        properties = self.schemas[name]["properties"]
        for key in self.schemas[name].get(OMITTED, []):
            if key in record:
                assert record[key] != properties[key]["default"], (record["type"], key)


def _record_component(schemas: dict[str, Any], record_type: str) -> str:
    mapping: dict[str, str] = schemas["Record"]["discriminator"]["mapping"]
    return mapping[record_type].rsplit("/", 1)[1]


@dataclass
class Device:
    """A logged-in installation that pushes raw bodies, so that every body is checked."""

    http: httpx.AsyncClient
    contract: Contract
    headers: dict[str, str]
    client_id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    last_id: int = 0
    seen: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """The records this device pulled, by type."""

    async def push(self, name: str, **args: Any) -> dict[str, Any]:
        """Push one mutation; its result. A mutation of the catalogue must fit ``Mutation``
        (with its own arguments); any other, ``MutationIn``."""
        self.last_id += 1
        mutation = {
            "id": self.last_id,
            "name": name,
            "args": {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in args.items()},
            "occurred_at": _a_moment_ago().isoformat(),
        }
        self.contract.check("Mutation" if name in CATALOGUE else "MutationIn", mutation)
        body = {"schema_version": 1, "client_id": self.client_id, "mutations": [mutation]}
        self.contract.check("PushRequest", body)
        answer = await self.http.post("/sync/push", json=body, headers=self.headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == JSON
        self.contract.check("PushResponse", answer.json())
        (result,) = answer.json()["results"]
        return dict(result)

    async def pull_all(self) -> list[dict[str, Any]]:
        """Every page of a first sync, each checked; the records by type in ``seen``."""
        body: dict[str, Any] = {"schema_version": 1}
        pages = []
        while True:
            self.contract.check("PullRequest", body)
            answer = await self.http.post("/sync/pull", json=body, headers=self.headers)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            self.contract.check("PullResponse", page)
            pages.append(page)
            for change in page.get("changes", []):
                if change["op"] == "upsert":
                    record = change["record"]
                    self.contract.check("Record", record)
                    self.contract.check_omitted_defaults(record)
                    self.seen.setdefault(record["type"], []).append(record)
            if not page.get("has_more"):
                return pages
            body = {"schema_version": 1, "cursor": page["cursor"]}

    def one(self, record_type: str, **match: Any) -> dict[str, Any]:
        found = [
            r
            for r in self.seen.get(record_type, [])
            if all(r.get(k) == v for k, v in match.items())
        ]
        assert found, (record_type, match, sorted(self.seen))
        return found[-1]


def _a_moment_ago() -> dt.datetime:
    """A device-clock reading earlier today (Helsinki), never in the future."""
    now = dt.datetime.now(dt.UTC)
    start = dt.datetime.combine(school_today(), dt.time(0, 0), tzinfo=SCHOOL_TIMEZONE)
    return max(start.astimezone(dt.UTC), now - dt.timedelta(seconds=60))


async def _contract(http: httpx.AsyncClient) -> Contract:
    answer = await http.get("/schema/openapi.json")
    assert answer.status_code == 200
    return Contract(answer.json())


async def _device(http: httpx.AsyncClient, contract: Contract, username: str) -> Device:
    return Device(http, contract, await log_in_as(http, username, PASSWORD))


@pytest.fixture
async def fx_world(fx_city: City, fx_db: Engine[Any]) -> dict[str, int]:
    """The city's timetable, plus a lesson of 5B (Aino's class from today) all day today."""
    ids = await add_timetable(fx_city)
    today = Lesson(
        group=fx_city.class_5b,
        subject="History",
        teacher=fx_city.teacher,
        room="B2",
        weekday=fx_city.today.isoweekday(),
        starts_at=dt.time(0, 0),
        ends_at=dt.time(23, 59),
        valid_from=fx_city.today - dt.timedelta(days=90),
        valid_to=None,
    )
    await today.save()
    ids["today"] = int(today.id)
    await seed_sync_state(fx_db, await all_timetable_writes())
    return ids


async def test_every_record_and_mutation_fits_the_published_contract(
    fx_client: httpx.AsyncClient, fx_city: City, fx_world: dict[str, int]
) -> None:
    c = fx_city
    contract = await _contract(fx_client)
    teacher = await _device(fx_client, contract, "teacher")
    mother = await _device(fx_client, contract, "mother")
    aino = await _device(fx_client, contract, "aino")
    made: list[str] = []

    async def applied(device: Device, name: str, **args: Any) -> None:
        result = await device.push(name, **args)
        assert result == {"id": device.last_id, "status": "applied"}, (name, result)
        made.append(name)

    monday = next_weekday(c.today, 1)
    await applied(teacher, "lesson.change", lesson_id=fx_world["5b-1"], on_date=monday, room="C3")
    await applied(teacher, "lesson.restore", lesson_id=fx_world["5b-1"], on_date=monday)
    await applied(
        teacher,
        "lesson.change",
        lesson_id=fx_world["today"],
        on_date=c.today,
        starts_at="08:00:00",
        ends_at="09:30:00",
        note="Museum",
    )
    await applied(
        teacher, "attendance.mark", lesson_id=fx_world["today"], on_date=c.today,
        pupil_id=c.aino, status="late", late_minutes=5,
    )  # fmt: skip
    await applied(
        teacher, "bulletin.send", audience="group", audience_id=c.class_5b, title="Retki",
        body="Huomenna retki.", roles=["guardians", "pupils"],
    )  # fmt: skip
    await applied(teacher, "message.send", to=[c.mother], subject="Retki", body="Tervetuloa")
    defined = await fx_client.post(
        "/forms/definitions",
        json={"organisation_id": c.school_a, "definition": every_kind()},
        headers=await log_in_as(fx_client, "principal"),
    )
    assert defined.status_code == 201, defined.text
    await applied(
        teacher, "form.request", definition_id=defined.json()["id"], group_id=c.class_5b,
        due_on=c.today + dt.timedelta(days=7),
    )  # fmt: skip
    (request_id,) = [r["id"] for r in await FormRequest.select(FormRequest.id)]

    await mother.pull_all()
    await applied(mother, "message.read", id=mother.one("message")["id"])
    await applied(mother, "bulletin.read", id=mother.one("bulletin")["id"])
    await applied(mother, "message.send", thread_id=mother.one("thread")["id"], body="Kiitos!")
    sick = {"pupil_id": c.aino, "reason": "illness", "note": "Kuumetta"}
    tomorrow = c.today + dt.timedelta(days=1)
    await applied(mother, "absence.report", from_date=tomorrow, to_date=tomorrow, **sick)
    await applied(mother, "absence.explain", from_date=c.today, to_date=c.today, **sick)
    away = c.today + dt.timedelta(days=14)
    await applied(
        mother, "leave.request", pupil_id=c.aino, from_date=away, to_date=away,
        reason="family", from_time="10:00:00",
    )  # fmt: skip
    answer = {"request_id": request_id, "pupil_id": c.aino, "definition_version": 1}
    await applied(mother, "form.save", **answer, answers={"name": "Aino"})
    await applied(mother, "form.submit", **answer, answers=GOOD)
    await applied(mother, "form.sign", **answer, answers=GOOD)

    await teacher.pull_all()
    leave = teacher.one("absence_notice", kind="leave")
    await applied(teacher, "leave.decide", leave_id=leave["id"], decision="approved", note="OK")
    # A rejection's result (code, reason, field) fits the contract too.
    refused = await aino.push("lesson.restore", lesson_id=fx_world["today"], on_date=c.today)
    assert (refused["status"], refused["code"]) == ("rejected", "mutation.forbidden"), refused
    unknown = await aino.push("lesson.teleport", lesson_id=1)
    assert unknown["code"] == "mutation.unknown", unknown
    assert set(made) == set(CATALOGUE), set(CATALOGUE) - set(made)

    seen: set[str] = set()
    for device in (aino, mother, teacher):
        device.seen.clear()
        await device.pull_all()
        seen |= set(device.seen)
    assert seen == set(RECORD_TYPES), set(RECORD_TYPES) - seen
    assert mother.one("form_response")["status"] == "complete"


def _same_but_datetimes(json_value: Any, packed: Any, where: str = "$") -> int:
    """``packed`` (a MessagePack answer, decoded without types) says what ``json_value`` (the
    JSON answer) says, each datetime as a Timestamp for its RFC 3339 text; how many there were."""
    if isinstance(packed, dt.datetime):
        assert isinstance(json_value, str), (where, json_value)
        assert RFC3339.match(json_value), (where, json_value)
        assert packed.utcoffset() == dt.timedelta(0), where  # a Timestamp is a UTC instant
        assert packed == dt.datetime.fromisoformat(json_value), where
        return 1
    if isinstance(packed, dict):
        assert isinstance(json_value, dict), where
        assert set(packed) == set(json_value), where
        return sum(_same_but_datetimes(json_value[k], v, f"{where}.{k}") for k, v in packed.items())
    if isinstance(packed, list):
        assert isinstance(json_value, list), where
        assert len(packed) == len(json_value), where
        return sum(
            _same_but_datetimes(j, p, f"{where}[{i}]")
            for i, (j, p) in enumerate(zip(json_value, packed, strict=True))
        )
    assert not (isinstance(json_value, str) and RFC3339.match(json_value)), (where, packed)
    assert packed == json_value, where
    return 0


async def test_messagepack_carries_the_same_answer_with_datetimes_as_timestamps(
    fx_client: httpx.AsyncClient, fx_city: City, fx_world: dict[str, int]
) -> None:
    contract = await _contract(fx_client)
    teacher = await _device(fx_client, contract, "teacher")
    await teacher.push("message.send", to=[fx_city.mother], subject="Hei", body="Hei")
    mother = await _device(fx_client, contract, "mother")
    (json_page,) = await mother.pull_all()
    packed_body = msgspec.msgpack.encode({"schema_version": 1})
    headers = {**mother.headers, "Content-Type": MSGPACK, "Accept": MSGPACK}
    answer = await fx_client.post("/sync/pull", content=packed_body, headers=headers)
    assert (answer.status_code, answer.headers["content-type"]) == (200, MSGPACK)
    packed = msgspec.msgpack.decode(answer.content)
    json_page.pop("cursor"), packed.pop("cursor")  # signed afresh for each answer
    assert _same_but_datetimes(json_page, packed) >= 2  # the thread's and the message's

    # A datetime the client sends may be a Timestamp too.
    mutation = {
        "id": 1,
        "name": "message.read",
        "args": {"id": mother.one("message")["id"]},
        "occurred_at": _a_moment_ago(),
    }
    body = {"schema_version": 1, "client_id": mother.client_id, "mutations": [mutation]}
    answer = await fx_client.post(
        "/sync/push", content=msgspec.msgpack.encode(body), headers=headers
    )
    assert (answer.status_code, answer.headers["content-type"]) == (200, MSGPACK)
    results = msgspec.msgpack.decode(answer.content)
    contract.check("PushResponse", results)
    assert results == {"results": [{"id": 1, "status": "applied"}]}


@pytest.mark.parametrize("accept", [JSON, MSGPACK])
async def test_errors_are_json_whatever_the_request_negotiated(
    fx_client: httpx.AsyncClient, fx_city: City, accept: str
) -> None:
    contract = await _contract(fx_client)
    headers = {**await log_in_as(fx_client, "mother"), "Content-Type": MSGPACK, "Accept": accept}
    for body, status, code in (
        ({"schema_version": 99}, 400, "sync.version_unknown"),
        ({"schema_version": 1, "limit": 0}, 422, "request.invalid"),
        ({"schema_version": 1, "cursor": "not a cursor"}, 400, "sync.bad_cursor"),
    ):
        answer = await fx_client.post(
            "/sync/pull", content=msgspec.msgpack.encode(body), headers=headers
        )
        assert (answer.status_code, answer.headers["content-type"]) == (status, JSON), body
        contract.check("ErrorBody", answer.json())
        assert answer.json()["code"] == code
    broken = await fx_client.post("/sync/push", content=b"\xc1", headers=headers)
    assert (broken.status_code, broken.headers["content-type"]) == (400, JSON)
    assert broken.json()["code"] == "request.malformed"


async def test_the_document_names_every_record_type_and_mutation(
    fx_client: httpx.AsyncClient,
) -> None:
    schemas = (await _contract(fx_client)).schemas
    assert set(schemas["Record"]["discriminator"]["mapping"]) == set(RECORD_TYPES)
    assert set(schemas["Mutation"]["discriminator"]["mapping"]) == set(CATALOGUE)
    change = schemas["LessonChangeMutation"]["properties"]
    assert change == {
        "name": {"const": "lesson.change"},
        "args": {"$ref": REF("LessonChangeArgs")},
    }
    assert schemas["Upsert"]["properties"]["record"] == {"$ref": REF("Record")}
    lesson = schemas["LessonRecord"]
    assert lesson[OMITTED] == ["valid_to", "teacher_id", "teacher_name", "room"]
    assert lesson["properties"]["weekday"]["description"] == "ISO weekday: 1 is Monday."
    assert schemas["PullResponse"][OMITTED] == [
        "cursor", "has_more", "added", "removed", "changes", "summaries",
    ]  # fmt: skip
    assert OMITTED not in schemas["PushResponse"]  # not omit_defaults: every field, always
    sent_at = schemas["MessageRecord"]["properties"]["sent_at"]
    assert (sent_at["format"], sent_at["x-msgpack"]) == ("date-time", "timestamp")
    occurred_at = schemas["MutationIn"]["properties"]["occurred_at"]
    assert "format" not in occurred_at  # an offset may be left out: read as UTC
    assert occurred_at["x-msgpack"] == "timestamp"
    # A result's status is a closed set a generated client can switch on, not any string.
    status = schemas["MutationResult"]["properties"]["status"]
    assert status["$ref"] == REF("MutationStatus")
    assert schemas["MutationStatus"]["enum"] == ["applied", "rejected"]


def _sse_fields(message: ServerSentEventMessage) -> dict[str, str]:
    """An event as a client's SSE parser reads it off the wire: its ``event`` and ``data``."""
    fields: dict[str, list[str]] = {}
    for line in message.encode().decode().splitlines():
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value.removeprefix(" "))
    return {name: "\n".join(values) for name, values in fields.items()}


async def test_the_live_streams_events_are_the_published_ones(
    fx_client: httpx.AsyncClient, fx_settings: Settings
) -> None:
    contract = await _contract(fx_client)
    content = contract.document["paths"]["/sync/live"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]
    event_schema = jsonschema_rs.Draft202012Validator(content["text/event-stream"]["schema"])
    answers: list[set[str] | None] = [{"group:1", "group:2"}, None]

    async def recheck() -> set[str] | None:
        return answers.pop(0)  # a partition gained, then the token revoked

    hub = LiveHub(fx_settings)
    events = live_events(hub, {"group:1"}, recheck, keep_alive=0.0, recheck_every=0.0)
    seen = []
    try:
        async for message in events:
            fields = _sse_fields(message)
            assert event_schema.is_valid(fields), fields
            seen.append((fields["event"], fields["data"]))
    finally:
        await events.aclose()
        await hub.stop()
    assert seen == [("ready", ""), ("poke", "group:2"), ("end", "log in again")]


def _contract_types() -> Any:
    """``scripts/contract_types.py`` as a module (scripts/ is no package)."""
    path = ROOT / "scripts" / "contract_types.py"
    spec = importlib.util.spec_from_file_location("contract_types", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_typescript_types_are_generated_from_the_served_document(
    fx_client: httpx.AsyncClient,
) -> None:
    generator = _contract_types()
    document = (await _contract(fx_client)).document
    assert generator.TARGET.read_text() == generator.typescript(document), (
        "clients/typescript/contract.d.ts is stale: run scripts/contract_types.py"
    )
    assert set(generator.reachable(document["components"]["schemas"])) >= {
        *(_record_component(document["components"]["schemas"], t) for t in RECORD_TYPES),
        "Mutation",
        "MutationResult",
    }


def test_the_typescript_types_compile_and_narrow() -> None:
    tsc = ROOT / "var" / "ts" / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        message = "no TypeScript: scripts/typescript installs it into var/ts"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: this test must run)")
        pytest.skip(message)
    compiled = subprocess.run(
        [
            str(tsc),
            "--noEmit",
            "--strict",
            "--target",
            "es2022",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            str(ROOT / "clients" / "typescript" / "contract.d.ts"),
            str(ROOT / "tests" / "fixtures" / "typescript" / "uses_the_contract.ts"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
