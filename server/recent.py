"""Lookups kept for a few seconds: a device's token and a person's readable partitions.

Every sync request needs both, and they change seldom. Keeping them for
``REPPU_ACCESS_CACHE_SECONDS`` (default 5; 0 turns this off) lets a "nothing new" pull be
answered without the database. What that costs, said plainly: in the *other* worker processes
an ended membership goes on working for at most those seconds, and so does a token logged out
in another process (in the process that logged out, it is forgotten at once). An account
disabled or signed out everywhere is forgotten in every process as soon as its hub hears of
it (``server/live.py``); the tokens are trusted only while the hub is listening.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TypeVar

from server.identity import Principal

K = TypeVar("K")
V = TypeVar("V")


def _prune(entries: dict[K, tuple[float, V]]) -> None:
    """Drop expired entries now and then, so that a map stays as large as the active set."""
    if entries and len(entries) % 1024 == 0:
        now = time.monotonic()
        for key in [k for k, (until, _) in entries.items() if until < now]:
            del entries[key]


@dataclass
class RecentLookups:
    seconds: float
    _principals: dict[str, tuple[float, Principal]] = field(default_factory=dict)
    _readable: dict[int, tuple[float, frozenset[str]]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    def principal(self, digest: str) -> Principal | None:
        found = self._principals.get(digest)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def keep_principal(self, digest: str, principal: Principal) -> None:
        if self.enabled:
            _prune(self._principals)
            self._principals[digest] = (time.monotonic() + self.seconds, principal)

    def forget_principal(self, digest: str) -> None:
        self._principals.pop(digest, None)

    def forget_principals(self) -> None:
        """Forget every token kept: some account was disabled or signed out everywhere."""
        self._principals.clear()

    def forget_account(self, account_id: int) -> None:
        """Forget every token of an account (disabled, or signed out everywhere)."""
        for digest in [d for d, (_, p) in self._principals.items() if p.account_id == account_id]:
            del self._principals[digest]

    def readable(self, person_id: int) -> frozenset[str] | None:
        found = self._readable.get(person_id)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def keep_readable(self, person_id: int, partitions: frozenset[str]) -> None:
        if self.enabled:
            _prune(self._readable)
            self._readable[person_id] = (time.monotonic() + self.seconds, partitions)
