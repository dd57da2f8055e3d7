"""Sign-in: activation codes, OIDC requests and hand-offs, sign-in sessions, hashed person
identifiers and the account audit trail (written by hand, as Piccolo's auto would)."""

from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column, OnDelete, OnUpdate
from piccolo.columns.column_types import ForeignKey, Serial, Timestamptz, Varchar
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table

ID = "2026-12-07T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Sign-in: activation_code, oidc_request, signin_handoff, signin_session, "
DESCRIPTION += "person_identifier, account_event."


class Person(Table, tablename="person", schema=None):
    id = Serial(primary_key=True)


class Account(Table, tablename="account", schema=None):
    id = Serial(primary_key=True)


class AuthToken(Table, tablename="auth_token", schema=None):
    id = Serial(primary_key=True)


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


def _fk(references: type[Table], *, null: bool = False, unique: bool = False) -> dict[str, Any]:
    return _params(
        references=references,
        on_delete=OnDelete.restrict,
        on_update=OnUpdate.cascade,
        target_column=None,
        index=True,
        null=null,
        unique=unique,
    )


def _text(length: int, **extra: Any) -> dict[str, Any]:
    return _params(length=length, default="", **extra)


Columns = list[tuple[str, type[Column], dict[str, Any]]]

TABLES: list[tuple[str, str, Columns]] = [
    (
        "ActivationCode",
        "activation_code",
        [
            ("id", Serial, _params(primary_key=True)),
            ("person", ForeignKey, _fk(Person)),
            ("issued_by", ForeignKey, _fk(Person)),
            ("code_hash", Varchar, _text(64, unique=True, index=True)),
            ("created_at", Timestamptz, _params()),
            ("expires_at", Timestamptz, _params()),
            ("used_at", Timestamptz, _params(null=True, default=None)),
        ],
    ),
    (
        "OidcRequest",
        "oidc_request",
        [
            ("id", Serial, _params(primary_key=True)),
            ("state_hash", Varchar, _text(64, unique=True, index=True)),
            ("provider", Varchar, _text(40)),
            ("nonce", Varchar, _text(100)),
            ("code_verifier", Varchar, _text(128)),
            ("return_to", Varchar, _text(400)),
            ("device_name", Varchar, _text(100)),
            ("created_at", Timestamptz, _params()),
            ("expires_at", Timestamptz, _params()),
            ("used_at", Timestamptz, _params(null=True, default=None)),
        ],
    ),
    (
        "SigninHandoff",
        "signin_handoff",
        [
            ("id", Serial, _params(primary_key=True)),
            ("handoff_hash", Varchar, _text(64, unique=True, index=True)),
            ("account", ForeignKey, _fk(Account)),
            ("provider", Varchar, _text(40)),
            ("device_name", Varchar, _text(100)),
            ("created_at", Timestamptz, _params()),
            ("expires_at", Timestamptz, _params()),
            ("used_at", Timestamptz, _params(null=True, default=None)),
        ],
    ),
    (
        "SigninSession",
        "signin_session",
        [
            ("id", Serial, _params(primary_key=True)),
            ("token", ForeignKey, _fk(AuthToken, unique=True)),
            ("provider", Varchar, _text(40)),
        ],
    ),
    (
        "PersonIdentifier",
        "person_identifier",
        [
            ("id", Serial, _params(primary_key=True)),
            ("person", ForeignKey, _fk(Person)),
            ("scheme", Varchar, _text(32)),
            ("digest", Varchar, _text(64, index=True)),
        ],
    ),
    (
        "AccountEvent",
        "account_event",
        [
            ("id", Serial, _params(primary_key=True)),
            ("at", Timestamptz, _params()),
            ("kind", Varchar, _text(40)),
            ("person", ForeignKey, _fk(Person, null=True)),
            ("actor", ForeignKey, _fk(Person, null=True)),
            ("provider", Varchar, _text(40)),
            ("address", Varchar, _text(64)),
            ("detail", Varchar, _text(300)),
        ],
    ),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    for class_name, tablename, columns in TABLES:
        manager.add_table(class_name=class_name, tablename=tablename, schema=None, columns=None)
        for name, column_class, params in columns:
            manager.add_column(
                table_class_name=class_name,
                tablename=tablename,
                column_name=name,
                db_column_name=name,
                column_class_name=column_class.__name__,
                column_class=column_class,
                params=params,
                schema=None,
            )
    return manager
