"""Pulling and pushing over HTTP for one logged-in device."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from clients.python.store import LocalStore
from schemas.sync import MAX_PUSH_MUTATIONS, SCHEMA_VERSION, PullResponse

_decode_pull = msgspec.json.Decoder(PullResponse)


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


class ReppuClient:
    """One device: a store, a bearer token and an HTTP client (``base_url`` set on it)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str,
        store: LocalStore | None = None,
        *,
        page_limit: int = 500,
    ) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}
        self.store = store or LocalStore()
        self.page_limit = page_limit
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

    async def pull(self, repair: list[str] | None = None) -> tuple[PullResponse, list[str]]:
        """One pull, applied; returns the answer and the partitions that failed their check."""
        body: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "limit": self.page_limit}
        if self.store.cursor:
            body["cursor"] = self.store.cursor
        if repair:
            body["repair"] = repair
        try:
            answer = _decode_pull.decode((await self._post("/sync/pull", body)).content)
        except SyncError as exc:
            if exc.code != "sync.bad_cursor" or "cursor" not in body:
                raise
            # The server no longer knows this cursor: start again from nothing.
            self.store.reset()
            del body["cursor"]
            answer = _decode_pull.decode((await self._post("/sync/pull", body)).content)
        return answer, self.store.apply(answer)

    async def sync(self, max_pages: int = 10_000) -> SyncReport:
        """Pull until nothing more is waiting, repairing any partition whose check fails."""
        report = SyncReport()
        repair: list[str] = []
        for _ in range(max_pages):
            answer, mismatched = await self.pull(repair)
            report.pages += 1
            report.changes += len(answer.changes)
            repair = [p for p in mismatched if p not in repair]
            report.repaired.extend(repair)
            if not answer.has_more and not repair:
                return report
        raise RuntimeError(f"sync did not finish within {max_pages} pages")

    def queue(self, name: str, args: dict[str, Any]) -> int:
        """Record a mutation locally (works offline); ``push`` sends it."""
        return self.store.queue(name, args, dt.datetime.now(dt.UTC).isoformat())

    async def push(self) -> list[dict[str, Any]]:
        """Send every queued mutation, in batches the server accepts; returns the results."""
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
        return results
