"""Schema-driven fuzzing of every route: schemathesis holds the server to its OpenAPI document.

schemathesis reads ``/schema/openapi.json`` and generates requests for every operation in it
(a new route is fuzzed without a line here), valid ones and ones that break the schema, as a
pupil, a guardian and a teacher of ``tests/city.py``, on SQLite and PostgreSQL. Every answer
must be no 5xx, with a documented status, media type, headers and body.

The requests go through the suite's in-process client, on the test's event loop, where the
database engine lives (schemathesis's own ASGI transport runs the app on another loop, which
PostgreSQL's pool does not survive). Hypothesis runs in a worker thread and hands each
request to the loop. Each test has its own database, so the fuzz's writes stay there.

Each operation gets valid requests, invalid ones (where its schema can be broken) and, where
its path names people, groups or schools, valid requests naming those of the city, so that
the code behind the access check is reached too. A request that revokes the caller's token
(``/auth/logout``) does not leave the rest of the fuzz to be answered 401: the next request
goes with a new token, and the test fails if any operation saw nothing but 401s.

A second test runs schemathesis's coverage phase once per database, as a teacher: boundary
values and each way of breaking each schema one at a time, a missing token, a wrong content
type, and every method a path does not have (405 with ``Allow``): about 1,600 requests
today, the same every run.

``REPPU_FUZZ_EXAMPLES`` sets the examples per operation and pass (default 6, derandomized so
that CI is reproducible: about 470 requests per role and database); ``REPPU_FUZZ_EXAMPLES=200``
fuzzes for real, locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario
from schemathesis.specs.openapi.schemas import OpenApiSchema

from server.db.engine import write_transaction
from server.identity import Principal, authenticate, issue_token
from server.settings import Settings
from server.worker_presence import Presence
from tests.city import City
from tests.conftest import log_in_as

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("REPPU_FUZZ_EXAMPLES", "6"))
ROLES = {"pupil": "aino", "guardian": "mother", "teacher": "teacher"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
BASE_URL = "http://reppu.test"
SECONDS_PER_REQUEST = 60


def _fits_msgpack(value: Any) -> Any:
    """``value`` with integers MessagePack cannot carry (beyond 64 bits) sent as text."""
    if isinstance(value, dict):
        return {k: _fits_msgpack(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fits_msgpack(v) for v in value]
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return str(value)
    return value


@schemathesis.serializer("application/x-msgpack")
def _msgpack(_: schemathesis.SerializationContext, value: Any) -> bytes:
    return msgspec.msgpack.encode(_fits_msgpack(value))


def _http_request(case: Case, headers: dict[str, str]) -> httpx.Request:
    """The request schemathesis means to send for ``case`` (with ``headers`` added), byte for
    byte, as httpx's."""
    prepared = requests.Request(
        **case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    ).prepare()
    return httpx.Request(
        str(prepared.method),
        str(prepared.url),
        headers=dict(prepared.headers),
        content=prepared.body.encode() if isinstance(prepared.body, str) else prepared.body,
    )


async def _first_event(app: Litestar, request: httpx.Request) -> httpx.Response:
    """An event stream's status, headers and first chunk; then the client goes away.

    httpx's ASGI transport waits for the whole body, which a live stream never ends.
    """
    started: dict[str, Any] = {}
    chunks: list[bytes] = []
    seen = asyncio.Event()
    body = request.read()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await seen.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if chunks[-1] or not message.get("more_body"):
                seen.set()

    url = request.url
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": url.path,
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.headers.raw],
        "client": ("127.0.0.1", 50000),
        "server": ("reppu.test", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    answer = httpx.Response(
        started["status"],
        headers=started.get("headers", []),
        content=b"".join(chunks),
        request=request,
    )
    answer.elapsed = dt.timedelta(0)  # schemathesis reads it; httpx sets it only on a read
    return answer


def _is_event_stream(case: Case) -> bool:
    definition = case.operation.definition.raw
    return any(
        "text/event-stream" in (answer.get("content") or {})
        for answer in definition.get("responses", {}).values()
    )


def _has_invalid_requests(operation: dict[str, Any]) -> bool:
    """Whether a request can break the operation's schema: not when it takes no body and
    no parameters but text in its path (``/calendar/{name}``: every string is a name)."""
    return "requestBody" in operation or any(
        not (p["in"] == "path" and p.get("schema") == {"type": "string"})
        for p in operation.get("parameters", [])
    )


def _ids_of(city: City) -> dict[str, list[int]]:
    """Ids of the city by parameter name: random ids seldom name anything, and the code
    behind a route's access check deserves fuzzing too."""
    pupils = [city.aino, city.eero, city.olli]
    people = [*pupils, city.mother, city.father, city.olli_parent, city.teacher, city.principal]
    return {
        "person_id": people,
        "pupil_id": pupils,
        "group_id": [city.class_5a, city.class_5b, city.math_a, city.class_3c],
        "school_id": [city.school_a, city.school_b],
        "organisation_id": [city.city, city.school_a, city.school_b],
    }


def _with_known_ids(operation: APIOperation, ids: dict[str, list[int]]) -> Any:
    """Valid requests whose path (and query) name things of the city; None if the path names
    something else or the request names nothing we know."""
    parameters = operation.definition.raw.get("parameters", [])
    path = [p["name"] for p in parameters if p["in"] == "path"]
    query = [p["name"] for p in parameters if p["in"] == "query" and p["name"] in ids]
    if any(name not in ids for name in path) or not (path or query):
        return None

    def named(values: tuple[int, ...]) -> Any:
        return operation.as_strategy(
            path_parameters=dict(zip(path, values[: len(path)], strict=True)),
            query=dict(zip(query, values[len(path) :], strict=True)),
        )

    return st.tuples(*(st.sampled_from(ids[name]) for name in path + query)).flatmap(named)


def _fuzz_operation(case_strategy: Any, send: Callable[[Case], None], examples: int) -> None:
    """Hypothesis's run over one operation and mode (in a worker thread)."""

    @given(case_strategy)
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        send(case)

    run()


class Caller:
    """Sends schemathesis's cases to the app as one person, through the suite's client on
    the test's loop, and has schemathesis judge the answers."""

    def __init__(
        self,
        settings: Settings,
        app: Litestar,
        client: httpx.AsyncClient,
        token: str,
        principal: Principal,
    ) -> None:
        self.settings, self.app, self.client, self.token = settings, app, client, token
        self.principal = principal
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.loop = asyncio.get_running_loop()

    async def live_token(self) -> dict[str, str]:
        """The caller's token, or a new one if a request revoked it (``/auth/logout``): the
        fuzz must not go on as nobody. Issued as login does, without the slow password hash."""
        if await authenticate(self.settings, self.token) is None:
            async with write_transaction(self.app.state.reppu.engine):
                issued = await issue_token(
                    self.settings,
                    account_id=self.principal.account_id,
                    person_id=self.principal.person_id,
                    device_name="fuzz",
                )
            self.token = issued.token
        return {"Authorization": f"Bearer {self.token}"}

    async def exchange(self, case: Case, checks: list[Any]) -> None:
        """Send ``case`` (without a token where it means to leave it out) and judge the answer."""
        leaves_out_token = _leaves_out(case, "authorization")
        headers = {} if leaves_out_token else await self.live_token()
        request = _http_request(case, headers)
        if _is_event_stream(case):
            answer = await _first_event(self.app, request)
        else:
            answer = await self.client.send(request)
        self.statuses[case.operation.label][answer.status_code] += 1
        case.validate_response(answer, checks=checks, headers=headers)

    def send(self, case: Case) -> None:
        """:meth:`exchange` from Hypothesis's worker thread."""
        future = asyncio.run_coroutine_threadsafe(self.exchange(case, CHECKS), self.loop)
        future.result(SECONDS_PER_REQUEST)

    def report(self, name: str, operations: int) -> None:
        answers = sum(self.statuses.values(), Counter[int]())
        print(f"\n{name}: {answers.total()} requests over {operations} operations:", answers)


def _leaves_out(case: Case, header: str) -> bool:
    data = case.meta.phase.data if case.meta is not None else None
    return (
        isinstance(data, CoveragePhaseData)
        and data.scenario == CoverageScenario.MISSING_PARAMETER
        and (data.parameter or "").lower() == header
    )


async def _caller(
    settings: Settings, app: Litestar, client: httpx.AsyncClient, username: str
) -> Caller:
    token = (await log_in_as(client, username))["Authorization"].removeprefix("Bearer ")
    principal = await authenticate(settings, token)
    assert principal is not None
    return Caller(settings, app, client, token, principal)


async def _operations(client: httpx.AsyncClient) -> tuple[OpenApiSchema, list[APIOperation]]:
    document = (await client.get("/schema/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(
        1
        for item in document["paths"].values()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    )
    return schema, operations


@pytest.mark.parametrize("role", sorted(ROLES))
async def test_every_route_answers_as_the_openapi_document_says(
    role: str,
    fx_settings: Settings,
    fx_app: Litestar,
    fx_client: httpx.AsyncClient,
    fx_city: City,
) -> None:
    _, operations = await _operations(fx_client)
    caller = await _caller(fx_settings, fx_app, fx_client, ROLES[role])
    ids = _ids_of(fx_city)
    failures: list[str] = []
    # A delivery worker is alive, as on a running server: /health/ready answers 200 (its 503
    # is tested in tests/server/test_operations.py).
    presence = Presence(fx_app.state.reppu.engine)
    await presence.beat()  # before the first request, not whenever the task gets to it
    beating = asyncio.create_task(presence.run())
    try:
        for operation in operations:
            modes = [GenerationMode.POSITIVE]
            if _has_invalid_requests(operation.definition.raw):
                modes.append(GenerationMode.NEGATIVE)
            strategies = {mode.value: operation.as_strategy(generation_mode=mode) for mode in modes}
            if (known := _with_known_ids(operation, ids)) is not None:
                strategies["positive, ids of the city"] = known
            for name, strategy in strategies.items():
                try:
                    await asyncio.to_thread(_fuzz_operation, strategy, caller.send, EXAMPLES)
                # Every operation's failures, not only the first (schemathesis raises a
                # BaseExceptionGroup of the distinct failures it found).
                except (Exception, BaseExceptionGroup) as exc:
                    failures.append(f"{operation.label} ({name}): {exc}")
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await fx_app.state.reppu.live.stop()
    caller.report(role, len(operations))
    assert not failures, "\n\n".join(failures)
    # The fuzz reached past authentication everywhere: no operation saw only 401s.
    assert not [label for label, counts in caller.statuses.items() if set(counts) == {401}]


async def test_every_route_meets_the_coverage_cases(
    fx_settings: Settings, fx_app: Litestar, fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    """schemathesis's coverage phase, as a teacher: for every operation, boundary values and
    each way of breaking its schema one at a time, a missing token, an unsupported content
    type, and every method the path does not have (405 with ``Allow``). Deterministic."""
    schema, operations = await _operations(fx_client)
    caller = await _caller(fx_settings, fx_app, fx_client, ROLES["teacher"])
    checks = [*CHECKS, unsupported_method, missing_required_header]
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    failures: list[str] = []
    # A delivery worker is alive, as on a running server: /health/ready answers 200 (its 503
    # is tested in tests/server/test_operations.py).
    presence = Presence(fx_app.state.reppu.engine)
    await presence.beat()  # before the first request, not whenever the task gets to it
    beating = asyncio.create_task(presence.run())
    try:
        for operation in operations:
            config = schema.config.generation_for(operation=operation)
            for case in schema.iter_coverage_cases(
                operation, generation_modes=modes, generation_config=config
            ):
                try:
                    await caller.exchange(case, checks)
                except (Exception, BaseExceptionGroup) as exc:
                    failures.append(f"{operation.label}: {exc}")
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await fx_app.state.reppu.live.stop()
    caller.report("coverage", len(operations))
    assert not failures, "\n\n".join(failures)
