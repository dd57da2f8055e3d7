"""Every Reppu table, in an order where a table comes after the tables it points to."""

from __future__ import annotations

from piccolo.table import Table

from server.db.absence_tables import ABSENCE_TABLES
from server.db.calendar_tables import CALENDAR_TABLES
from server.db.form_tables import FORM_TABLES
from server.db.message_tables import MESSAGE_TABLES
from server.db.notify_tables import NOTIFY_TABLES
from server.db.oneroster_tables import ONEROSTER_TABLES
from server.db.retention_tables import RETENTION_TABLES
from server.db.signin_tables import SIGNIN_TABLES
from server.db.sync_tables import SYNC_TABLES
from server.db.tables import ALL_TABLES

EVERY_TABLE: tuple[type[Table], ...] = (
    *ALL_TABLES,
    *SYNC_TABLES,
    *MESSAGE_TABLES,
    *NOTIFY_TABLES,
    *ABSENCE_TABLES,
    *FORM_TABLES,
    *CALENDAR_TABLES,
    *ONEROSTER_TABLES,
    *SIGNIN_TABLES,
    *RETENTION_TABLES,
)
