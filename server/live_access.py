"""Who may still hear what: the access checks of live streams, many streams in one lookup.

A live stream (``GET /sync/live``) needs the partitions its holder may read when it opens,
and again every minute or so, with its token checked again (``server/routes/sync.py``). Done
one stream at a time that is four or five queries a stream (on SQLite a connection each), so
a city's 20,000 streams opening at once, or rechecking every minute, would keep the database
busy with little else. :class:`StreamAccess` instead gathers the questions that arrive while
a lookup is under way and answers all of them with the next one: one snapshot, one query for
the tokens and four for the people's facts (``server/access.py``), whatever their number.

Nothing is kept between lookups: every answer is read from the database after the question
was asked, so the answers are exactly as fresh as asking one at a time (deny by default: an
unknown or revoked token, or a token of another person, is answered ``None``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from piccolo.engine.base import Engine

from server.access import load_access_facts
from server.clock import school_today
from server.db.engine import read_snapshot
from server.identity import Principal, authenticate_digests
from sync.policy import AccessFacts, readable_partitions

BATCH = 500
"""Questions answered by one lookup at most (bound parameters per query stay few)."""

_Question = tuple[int | None, str | None, "asyncio.Future[Any]"]
"""(person, token digest, answer): a person's partitions, checked against the token if one is
given; or, with no person, the token's principal."""


class StreamAccess:
    """Answers "which partitions may this person read now (and is this token still live)?"
    for many streams at once; at most one lookup is under way at a time."""

    def __init__(self, engine: Callable[[], Engine[Any]]) -> None:
        self._engine = engine
        self._waiting: list[_Question] = []
        self._task: asyncio.Task[None] | None = None
        self.lookups = 0
        """Lookups made so far (tests; the benchmark's notes)."""

    async def principal(self, digest: str) -> Principal | None:
        """:func:`server.identity.authenticate` of the token whose digest is ``digest``."""
        found: Principal | None = await self._ask(None, digest)
        return found

    async def readable(self, person_id: int) -> frozenset[str]:
        """The partitions ``person_id`` may read today (the token was just checked)."""
        found: frozenset[str] = await self._ask(person_id, None)
        return found

    async def still_readable(self, person_id: int, digest: str) -> frozenset[str] | None:
        """The partitions ``person_id`` may read today, or None when the token of ``digest``
        (``server.identity.token_digest``) is no longer live or is not ``person_id``'s."""
        found: frozenset[str] | None = await self._ask(person_id, digest)
        return found

    async def _ask(self, person_id: int | None, digest: str | None) -> Any:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((person_id, digest, answer))
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._answer_all(), name="reppu-live-access")
        return await answer

    async def _answer_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
            try:
                answers = await self._lookup(batch)
            except Exception as exc:  # every question of the batch fails as its own query would
                for _, _, answer in batch:
                    if not answer.done():
                        answer.set_exception(exc)
                continue
            for (_, _, answer), found in zip(batch, answers, strict=True):
                if not answer.done():  # its stream may have gone meanwhile
                    answer.set_result(found)

    async def _lookup(self, batch: list[_Question]) -> list[Any]:
        self.lookups += 1
        persons = sorted({person for person, _, _ in batch if person is not None})
        digests = {digest for _, digest, _ in batch if digest is not None}
        async with read_snapshot(self._engine()):
            principals = await authenticate_digests(digests) if digests else {}
            facts = await load_access_facts(persons) if persons else {}
        day = school_today()
        readable = {
            p: frozenset(str(x) for x in readable_partitions(facts.get(p, AccessFacts(p)), day))
            for p in persons
        }
        answers: list[Any] = []
        for person, digest, _ in batch:
            if person is None:
                answers.append(principals.get(digest or ""))
                continue
            if digest is not None:
                principal = principals.get(digest)
                if principal is None or principal.person_id != person:
                    answers.append(None)
                    continue
            answers.append(readable[person])
        return answers

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
