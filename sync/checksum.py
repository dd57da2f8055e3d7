"""Per-partition counts and checksums, so a client can tell that its copy diverged.

A record's digest is the first 8 bytes, big-endian, of SHA-256 over ``"{type}:{id}:{v}"``
(UTF-8). A partition's checksum is the sum of its records' digests modulo 2**64, written as 16
lower-case hex digits. A sum, unlike a hash of a list, can be kept up to date one change at a
time (add the new digest, subtract the old), and any client can compute it from its store in
any order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MOD = 1 << 64


def record_digest(record_type: str, record_id: int, version: int) -> int:
    raw = hashlib.sha256(f"{record_type}:{record_id}:{version}".encode()).digest()
    return int.from_bytes(raw[:8], "big")


@dataclass(frozen=True, slots=True)
class Tally:
    """A partition's record count and checksum."""

    count: int = 0
    checksum: int = 0

    def add(self, digest: int) -> Tally:
        return Tally(self.count + 1, (self.checksum + digest) % MOD)

    def remove(self, digest: int) -> Tally:
        return Tally(self.count - 1, (self.checksum - digest) % MOD)

    @property
    def hex(self) -> str:
        return f"{self.checksum:016x}"

    @classmethod
    def from_hex(cls, count: int, checksum: str) -> Tally:
        return cls(count, int(checksum, 16))
