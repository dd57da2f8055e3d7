"""notify_channel holds an address, not a URL (written by hand).

A channel was an apprise URL of the person's choosing, so a person chose the host the worker
connected to (SSRF: loopback, the cloud's metadata address, the school's intranet). Now a
channel is a kind (``email`` or ``sms``) and an address, and the worker builds the URL from
the operator's ``REPPU_SMTP_URL`` / ``REPPU_SMS_URL``.

Forwards, before the columns change: a ``mailto``/``mailtos`` URL that apprise reads as
exactly one recipient becomes that address (a channel of kind ``email``, sent from now on
through the operator's mail server); every other row (chat hooks, gateways, several
recipients, anything unreadable) is deleted, with the credentials it may hold, and its
waiting deliveries end as ``gone`` when the worker next meets them. Then ``url`` is renamed
``address`` and ``kind`` is added (``email`` for the rows that stay).

Backwards deletes every channel: the old code would read a bare address as a URL.
"""

from typing import Any

import apprise
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Serial, Text, Varchar
from piccolo.columns.indexes import IndexMethod
from piccolo.engine import engine_finder
from piccolo.table import Table

from notifications.channels import normalise_email

ID = "2026-12-07T01:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "notify_channel: kind and address instead of a person's apprise URL."


class NotifyChannel(Table, tablename="notify_channel", schema=None):
    id = Serial(primary_key=True)
    url = Text()


def legacy_email(url: str) -> str | None:
    """The one e-mail address an old ``mailto`` channel URL sent to, or None."""
    if not url.lower().startswith(("mailto://", "mailtos://")):
        return None
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    targets = getattr(plugin, "targets", None) or []
    if len(targets) != 1 or not isinstance(targets[0], tuple):
        return None
    return normalise_email(str(targets[0][1]))


def _bind() -> None:
    # This module's table must use the migration's engine, not whichever one Piccolo bound
    # when the module was first imported (a test session migrates SQLite, then PostgreSQL).
    engine = engine_finder()
    assert engine is not None
    NotifyChannel._meta.db = engine


async def convert_channels() -> None:
    _bind()
    for row in await NotifyChannel.select(NotifyChannel.id, NotifyChannel.url):
        address = legacy_email(row["url"])
        if address is None:
            await NotifyChannel.delete().where(NotifyChannel.id == row["id"])
        else:
            await NotifyChannel.update({NotifyChannel.url: address}).where(
                NotifyChannel.id == row["id"]
            )


async def delete_channels() -> None:
    _bind()
    await NotifyChannel.delete(force=True)


def _params(**extra: Any) -> dict[str, Any]:
    return {
        "null": False,
        "primary_key": False,
        "unique": False,
        "index": False,
        "index_method": IndexMethod.btree,
        "choices": None,
        "db_column_name": None,
        "secret": False,
        **extra,
    }


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    # Raw steps run first: the rows are converted while ``url`` is still there.
    manager.add_raw(convert_channels)
    manager.add_raw_backwards(delete_channels)
    manager.add_column(
        table_class_name="NotifyChannel",
        tablename="notify_channel",
        column_name="kind",
        db_column_name="kind",
        column_class_name="Varchar",
        column_class=Varchar,
        params=_params(length=8, default="email"),
        schema=None,
    )
    manager.rename_column(
        table_class_name="NotifyChannel",
        tablename="notify_channel",
        old_column_name="url",
        new_column_name="address",
        old_db_column_name="url",
        new_db_column_name="address",
        schema=None,
    )
    return manager
