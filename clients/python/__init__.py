"""The Python reference client of Reppu's sync protocol.

``ReppuClient`` pulls into and pushes from a :class:`LocalStore` (one SQLite file per device,
or ``:memory:``). It is what the tests and load tools use, and the model for a Kotlin or Swift
client; ``docs/sync-protocol.md`` describes the protocol it speaks.
"""

from clients.python.client import ReppuClient, SyncReport
from clients.python.store import LocalStore
from clients.python.timetable import Slot, day_timetable

__all__ = ["LocalStore", "ReppuClient", "Slot", "SyncReport", "day_timetable"]
