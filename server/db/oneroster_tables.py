"""What OneRoster imports remember: each sourcedId and the row it became, and the history of
imports uploaded over HTTP.

``docs/oneroster.md`` explains the import; ``server/oneroster/apply.py`` is the only code that
writes this table.
"""

from __future__ import annotations

from piccolo.columns import BigInt, Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table


class ExternalRef(Table, tablename="external_ref"):
    """One sourcedId of one sending system, and the local row it maps to.

    ``(source, kind, source_id)`` is unique (an index of the migration). ``local_id`` is the
    row's id in the table of ``kind`` (``org``: organisation, ``session``: term, ``class``:
    school_group, ``user``: person, ``role``: staff_role, ``enrollment``: membership,
    ``link``: guardianship); NULL where the row has no table of its own (a course, a
    student's role). ``digest`` is a hash of the row as last imported, so that importing
    the same file again changes nothing; ``modified`` its ``dateLastModified``; ``data``
    what later imports need to know of a row that is not in them (a course's subject, a
    role's user and kind, a user's agents).
    """

    id = Serial(primary_key=True)

    source = Varchar(length=64)
    kind = Varchar(length=16)
    source_id = Varchar(length=255)
    local_id = Integer(null=True, default=None)
    modified = Varchar(length=40, default="")
    digest = Varchar(length=32, default="")
    data = Text(default="")
    ended = Boolean(default=False)
    """``tobedeleted`` arrived, or a bulk file no longer had the row."""


class RosterImport(Table, tablename="roster_import"):
    """One OneRoster set uploaded by an admin over HTTP, and what became of it: the import
    history, and the audit trail of imports (``server/roster_imports.py``).

    An upload is first checked (a dry run, ``status`` ``checked`` or ``refused``); the file
    is kept until it is applied (``applied`` or ``refused``) or a day has passed.
    """

    id = Serial(primary_key=True)

    uploaded_by = Integer()
    """The admin's person id."""
    uploaded_at = Timestamptz()
    file_name = Varchar(length=255, default="")
    file_sha256 = Varchar(length=64)
    file_bytes = BigInt()
    status = Varchar(length=12)
    """``checked`` (the dry run found no problem), ``refused`` (it, or the apply, found
    problems), ``applied``, ``expired`` (never applied; the file is gone)."""
    report = Text(default="")
    """JSON: the counts per file and the first problems, as the answer gave them."""
    applied_by = Integer(null=True, default=None)
    applied_at = Timestamptz(null=True, default=None)


ONEROSTER_TABLES: tuple[type[Table], ...] = (ExternalRef, RosterImport)
