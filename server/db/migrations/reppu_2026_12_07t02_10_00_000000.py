"""Sign-in: a hand-off is bound to the app that started the sign-in (written by hand).

``oidc_request.handoff_challenge`` keeps the S256 challenge of the app's ``handoff_verifier``
(``GET /auth/oidc/{provider}/start?handoff_challenge=``), and ``signin_handoff`` carries it
to ``POST /auth/oidc/handoff``, which must present the verifier. Rows made before have an
empty challenge, which no verifier matches: they expire unused within minutes.
"""

from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T02:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "oidc_request and signin_handoff: the app's handoff_challenge."


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
    for class_name, tablename in (
        ("OidcRequest", "oidc_request"),
        ("SigninHandoff", "signin_handoff"),
    ):
        manager.add_column(
            table_class_name=class_name,
            tablename=tablename,
            column_name="handoff_challenge",
            db_column_name="handoff_challenge",
            column_class_name="Varchar",
            column_class=Varchar,
            params=_params(length=64, default=""),
            schema=None,
        )
    return manager
