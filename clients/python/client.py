"""Pulling and pushing over HTTP for one logged-in device."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from clients.python.store import LocalStore
from schemas.sync import MAX_CHECK, MAX_PUSH_MUTATIONS, SCHEMA_VERSION, MutationCode, PullResponse

_decode_pull = msgspec.json.Decoder(PullResponse)
OUT_OF_ORDER = MutationCode.OUT_OF_ORDER.value

CHECK_EVERY = dt.timedelta(days=1)
"""How often a sync asks for the summaries of every partition held, changed or not."""


def _wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SyncError(RuntimeError):
    """The server refused a request; ``code`` is its stable error code."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('code')}: {body.get('message')}")
        self.status = status
        self.code = body.get("code")


@dataclass
class SyncReport:
    pages: int = 0
    changes: int = 0
    repaired: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    """Partitions whose summary was asked for although nothing in them need have changed."""


class ReppuClient:
    """One device: a store, a bearer token and an HTTP client (``base_url`` set on it).

    Summaries come with changes, so a copy of a partition that rarely changes would never be
    checked; once every ``check_every`` (by ``clock``) a sync asks for the summary of every
    partition held, and repairs the ones that do not match. ``check_every=None`` never asks.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str,
        store: LocalStore | None = None,
        *,
        page_limit: int = 500,
        check_every: dt.timedelta | None = CHECK_EVERY,
        clock: Callable[[], dt.datetime] = _wall_clock,
    ) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}
        self.store = store or LocalStore()
        self.page_limit = page_limit
        self.check_every = check_every
        self.clock = clock
        if self.store.get_meta("client_id") is None:
            self.store.set_meta("client_id", secrets.token_urlsafe(16))

    @property
    def client_id(self) -> str:
        value = self.store.get_meta("client_id")
        assert value is not None
        return value

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        answer = await self.http.post(path, json=body, headers=self.headers)
        if answer.status_code != 200:
            raise SyncError(answer.status_code, answer.json())
        return answer

    async def pull(
        self, repair: list[str] | None = None, check: list[str] | None = None
    ) -> tuple[PullResponse, list[str]]:
        """One pull, applied; returns the answer and the partitions that failed their check."""
        body: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "limit": self.page_limit}
        if self.store.cursor:
            body["cursor"] = self.store.cursor
        if repair:
            body["repair"] = repair
        if check:
            body["check"] = check
        try:
            answer = _decode_pull.decode((await self._post("/sync/pull", body)).content)
        except SyncError as exc:
            if exc.code != "sync.bad_cursor" or "cursor" not in body:
                raise
            # The server no longer knows this cursor: start again from nothing. A database
            # restored from a backup has a new epoch and refuses every older cursor; it may
            # have lost mutations this device sent, so the kept ones are queued again (the
            # server answers those it still has as replays).
            self.store.reset()
            self.store.requeue_sent()
            del body["cursor"]
            answer = _decode_pull.decode((await self._post("/sync/pull", body)).content)
        return answer, self.store.apply(answer)

    def _checks_due(self, now: dt.datetime) -> bool:
        if self.check_every is None:
            return False
        last = self.store.get_meta("checked_at")
        if last is None:
            return True
        # A clock set back (before the last check) must not put the next check off for ever.
        return not dt.timedelta(0) <= now - dt.datetime.fromisoformat(last) < self.check_every

    async def sync(self, max_pages: int = 10_000) -> SyncReport:
        """Pull until nothing more is waiting, repairing any partition whose check fails;
        when a check of every partition held is due, ask for their summaries on the way."""
        report = SyncReport()
        repair: list[str] = []
        now = self.clock()
        due = self._checks_due(now)
        to_check = sorted(self.store.partitions()) if due else []
        for _ in range(max_pages):
            check, to_check = to_check[:MAX_CHECK], to_check[MAX_CHECK:]
            answer, mismatched = await self.pull(repair, check)
            report.pages += 1
            report.changes += len(answer.changes)
            report.checked.extend(check)
            repair = [p for p in mismatched if p not in repair]
            report.repaired.extend(repair)
            if not answer.has_more and not repair and not to_check:
                if due:
                    # Only a sync that got to the end counts: an interrupted one checks again.
                    self.store.set_meta("checked_at", now.isoformat())
                return report
        raise RuntimeError(f"sync did not finish within {max_pages} pages")

    def queue(self, name: str, args: dict[str, Any]) -> int:
        """Record a mutation locally (works offline); ``push`` sends it."""
        return self.store.queue(name, args, dt.datetime.now(dt.UTC).isoformat())

    @property
    def lost_before(self) -> int | None:
        """Set when the server lost mutations this device could no longer send again: some of
        the ids below this one (of the installation before :meth:`push` renumbered) are gone.
        An app tells its user that work done before then may need doing again."""
        value = self.store.get_meta("lost_before")
        return None if value is None else int(value)

    async def push(self) -> list[dict[str, Any]]:
        """Send every queued mutation, in batches the server accepts; returns the results.

        If the server answers the first one ``mutation.out_of_order``, it has lost mutations
        this device sent (it was restored from a backup): the kept ones are sent again, and
        if the store no longer keeps the one it expects, the outbox goes on under a new client
        id, numbered from 1, and :attr:`lost_before` reports the gap.
        """
        results: list[dict[str, Any]] = []
        requeued = False
        for _ in range(3):
            answered, gap = await self._push_outbox()
            results += [r for r in answered if r.get("code") != OUT_OF_ORDER]
            if not gap:
                return results
            if not requeued:
                requeued = True
                if self.store.requeue_sent():
                    continue
            # None of the outbox is on the server (its first id came after a gap), so it is
            # all sent again as a new installation's; the gap itself cannot be sent.
            lowest = self.store.pending()[0][0]
            self.store.set_meta("lost_before", str(lowest))
            self.store.renumber(secrets.token_urlsafe(16))
        raise RuntimeError("the server refused this device's outbox as out of order")

    async def _push_outbox(self) -> tuple[list[dict[str, Any]], bool]:
        """One pass over the outbox; the results, and whether its first id was out of order."""
        results: list[dict[str, Any]] = []
        pending = self.store.pending()
        for start in range(0, len(pending), MAX_PUSH_MUTATIONS):
            batch = pending[start : start + MAX_PUSH_MUTATIONS]
            body = {
                "schema_version": SCHEMA_VERSION,
                "client_id": self.client_id,
                "mutations": [
                    {"id": i, "name": n, "args": a, "occurred_at": o} for i, n, a, o in batch
                ],
            }
            answered: list[dict[str, Any]] = (await self._post("/sync/push", body)).json()[
                "results"
            ]
            self.store.settle(answered)
            results += answered
            if start == 0 and answered and answered[0].get("code") == OUT_OF_ORDER:
                # Never in the normal course: an id leaves the outbox only once answered.
                return results, True
        return results, False
