"""Applying a OneRoster import: one write transaction, through the one write path.

:func:`import_oneroster` reads what earlier imports stored, lets ``plan.py`` decide, and
writes the rows, their ``external_ref`` rows and the sync records they change (groups,
rosters, lessons whose teacher was renamed) with ``write_records``, all in one transaction:
a problem anywhere refuses the whole import and nothing is written. Ties are never deleted
once they have been in force: an ended membership, staff role or guardianship gets
``valid_to`` yesterday (a tie that had not begun yet is removed), so that history and the
rows pointing at people stay. Pupils' partitions follow their memberships and guardianships
(``sync/policy.py``), so a pupil moved to another class leaves the old class's partition
and joins the new one at their next pull.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from server.access import marks
from server.clock import school_today
from server.db.bulk import insert_values, run_sql
from server.db.engine import read_snapshot, write_transaction
from server.demo.progress import Progress, no_progress
from server.oneroster.parse import (
    FILES,
    Batch,
    ClassRow,
    DemographicRow,
    EnrollmentRow,
    ImportRefused,
    OrgRow,
    Problem,
    RoleRow,
    Row,
    SessionRow,
    UserRow,
)
from server.oneroster.plan import (
    KINDS,
    MEMBERSHIP_ROLES,
    STAFF_ROLES,
    Link,
    Plan,
    Ref,
    make_plan,
    ref_data,
    stamp,
)
from server.rosters import roster_writes
from server.signin.config import SigninSettings
from server.signin.identifiers import replace_identifiers
from server.sync_store import RecordWrite, write_records
from server.timetable import cover_writes, group_writes, lesson_writes

CHUNK = 2000
"""Ids per ``IN (...)`` list."""

_REFS = (
    "SELECT id, kind, source_id, local_id, modified, digest, data, ended FROM external_ref "
    "WHERE source = {}"
)
_REF_COLUMNS = ("source", "kind", "source_id", "local_id", "modified", "digest", "data", "ended")
_UPDATE_REF = (
    "UPDATE external_ref SET local_id = {}, modified = {}, digest = {}, data = {}, ended = {} "
    "WHERE id = {}"
)
_END_REFS = "UPDATE external_ref SET ended = {{}} WHERE id IN ({ids})"
_NEXT_IDS_PG = (
    "SELECT nextval(pg_get_serial_sequence({{}}, 'id')) AS id FROM generate_series(1, {n})"
)
_MAX_ID = {
    table: f'SELECT COALESCE(MAX(id), 0) AS id FROM "{table}"'  # noqa: S608 (our own names)
    for table in (
        "organisation",
        "term",
        "school_group",
        "person",
        "account",
        "staff_role",
        "membership",
        "guardianship",
    )
}
LEARNER_NUMBER = "fi.oppijanumero"
"""The ``external_ref.source`` of national learner numbers (kind ``person``)."""
_NUMBERS = (
    "SELECT source_id, local_id FROM external_ref WHERE source = {{}} AND kind = 'person' "
    "AND source_id IN ({ids})"
)
_DROP_NUMBERS = (
    "DELETE FROM external_ref WHERE source = {{}} AND kind = 'person' AND local_id IN ({ids})"
)
_END_TIES = (
    'UPDATE "{table}" SET valid_to = {{}} WHERE {column} IN ({ids}) '
    "AND (valid_to IS NULL OR valid_to > {{}}) AND valid_from <= {{}}"
)
_DROP_TIES = 'DELETE FROM "{table}" WHERE {column} IN ({ids}) AND valid_from > {{}}'
_EXISTING = 'SELECT id FROM "{table}" WHERE id IN ({ids})'
_UPDATE = 'UPDATE "{table}" SET {sets} WHERE id = {{}}'
_SET = '"{column}" = {{}}'
_DISABLE = "UPDATE account SET disabled = {{}} WHERE person IN ({ids})"
_USERNAMES = "SELECT username, person FROM account WHERE username IN ({ids})"
_LESSONS_OF = "SELECT id FROM lesson WHERE teacher IN ({ids})"
_GROUPS_OF = 'SELECT DISTINCT "group" AS id FROM membership WHERE {column} IN ({ids})'
_PEOPLE_OF_ROLES = "SELECT DISTINCT person FROM staff_role WHERE id IN ({ids})"


@dataclass(slots=True)
class Counts:
    created: int = 0
    updated: int = 0
    ended: int = 0
    unchanged: int = 0


@dataclass(slots=True)
class Summary:
    """What an import did, per file (and ``guardianships``, derived from users)."""

    source: str
    counts: dict[str, Counts] = field(default_factory=dict)
    seconds: float = 0.0
    sync_records: int = 0

    @property
    def rows(self) -> int:
        return sum(c.created + c.updated + c.ended + c.unchanged for c in self.counts.values())

    @property
    def changed(self) -> int:
        return sum(c.created + c.updated + c.ended for c in self.counts.values())

    def describe(self) -> str:
        lines = [
            f"OneRoster import from {self.source!r}: {self.rows:,} records in "
            f"{self.seconds:.1f} s, {self.sync_records:,} sync records written.",
            f"  {'':<18} {'created':>9} {'updated':>9} {'ended':>9} {'unchanged':>9}",
        ]
        for name, c in self.counts.items():
            lines.append(
                f"  {name:<18} {c.created:>9,} {c.updated:>9,} {c.ended:>9,} {c.unchanged:>9,}"
            )
        return "\n".join(lines)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for first in range(0, len(items), CHUNK):
        yield items[first : first + CHUNK]


class _Writer:
    """Executes a plan inside the caller's write transaction."""

    def __init__(
        self,
        engine: Engine[Any],
        plan: Plan,
        refs: dict[str, dict[str, Ref]],
        today: dt.date,
        progress: Progress,
    ) -> None:
        self.engine, self.plan, self.refs, self.today = engine, plan, refs, today
        self.yesterday = today - dt.timedelta(days=1)
        self.progress = progress
        self.local: dict[str, dict[str, int]] = {
            kind: {sid: r.local_id for sid, r in by_sid.items() if r.local_id is not None}
            for kind, by_sid in refs.items()
        }
        self.new_refs: list[tuple[Any, ...]] = []
        self.changed_refs: list[tuple[Any, ...]] = []
        self.ended_refs: list[int] = []
        self.groups: set[int] = set()
        self.staff_people: set[int] = set()
        """People whose staff roles this import starts, changes or ends: their substitute
        cover is placed afresh (``server/cover.py``)."""
        """Groups whose roster may have changed."""
        self.group_records: set[int] = set()
        self.renamed: set[int] = set()
        """People whose name changed: their lessons' teacher names and rosters."""
        self.done = 0
        self.total = (
            sum(len(o.creates) + len(o.updates) + len(o.ends) for o in plan.ops.values())
            + len(plan.links.creates)
            + len(plan.links.updates)
            + len(plan.links.ends)
        )

    def tick(self, stage: str, count: int) -> None:
        self.done += count
        self.progress(stage, self.done, max(self.total, 1))

    def id_of(self, kind: str, sid: str) -> int:
        return self.local[kind][sid]

    async def allocate(self, table: str, count: int) -> list[int]:
        """``count`` fresh ids for ``table`` (its sequence on PostgreSQL; SQLite has one
        writer, whose transaction this is)."""
        if count == 0:
            return []
        if isinstance(self.engine, PostgresEngine):
            rows = await run_sql(_NEXT_IDS_PG.format(n=count), table)
            return [int(r["id"]) for r in rows]
        first = int((await run_sql(_MAX_ID[table]))[0]["id"]) + 1
        return list(range(first, first + count))

    def remember(self, kind: str, row: Row | Link, local_id: int | None, ref: Ref | None) -> None:
        if isinstance(row, Link):
            values: tuple[Any, ...] = (local_id, "", row.kind, row.kind, False)
            sid = row.sid
        else:
            values = (local_id, stamp(row.modified), row.digest, ref_data(row), False)
            sid = row.sid
        if local_id is not None:
            self.local.setdefault(kind, {})[sid] = local_id
        if ref is None:
            self.new_refs.append((self.plan.source, kind, sid, *values))
        else:
            self.changed_refs.append((*values, ref.id))

    async def create(
        self,
        file: str,
        table: str,
        rows: Sequence[Row],
        values: Callable[[Row], tuple[Any, ...]],
        columns: tuple[str, ...],
        keep_if_none: frozenset[str] = frozenset(),
    ) -> list[Row]:
        """Insert ``rows`` into ``table`` with fresh ids and remember their refs. A row whose
        sourcedId had ended is brought back: its old row, if there still is one, is updated
        instead (leaving the ``keep_if_none`` columns as they are where the new value is
        None). Returns the rows brought back so."""
        kind = KINDS[file]
        refs = self.refs.get(kind, {})
        earlier = {
            r.sid: local
            for r in rows
            if (ref := refs.get(r.sid)) is not None and (local := ref.local_id) is not None
        }
        still: set[int] = set()
        for chunk in _chunks(sorted(set(earlier.values()))):
            found = await run_sql(_EXISTING.format(table=table, ids=marks(len(chunk))), *chunk)
            still.update(int(r["id"]) for r in found)
        revived = [r for r in rows if earlier.get(r.sid) in still]
        fresh = [r for r in rows if earlier.get(r.sid) not in still]
        ids = await self.allocate(table, len(fresh))
        for row, new_id in zip(fresh, ids, strict=True):
            self.local.setdefault(kind, {})[row.sid] = new_id
        await insert_values(
            table, ("id", *columns), [(i, *values(r)) for r, i in zip(fresh, ids, strict=True)]
        )
        for row, new_id in zip(fresh, ids, strict=True):
            self.remember(kind, row, new_id, refs.get(row.sid))
        for row in revived:
            local = earlier[row.sid]
            update = {
                column: value
                for column, value in zip(columns, values(row), strict=True)
                if value is not None or column not in keep_if_none
            }
            await self.update(table, local, update)
            self.remember(kind, row, local, refs[row.sid])
        self.tick(f"write {file}", len(rows))
        return revived

    async def update(self, table: str, local_id: int, values: dict[str, Any]) -> None:
        """``UPDATE`` of one row; ``table`` and the columns are this module's own names."""
        sets = ", ".join(_SET.format(column=column) for column in values)
        await run_sql(_UPDATE.format(table=table, sets=sets), *values.values(), local_id)

    async def end_ties(self, table: str, column: str, ids: Sequence[int]) -> None:
        """End ``table``'s ties whose ``column`` is in ``ids``: ``valid_to`` yesterday, or
        gone if they had not begun."""
        if table == "membership":
            for chunk in _chunks(list(ids)):
                rows = await run_sql(
                    _GROUPS_OF.format(column=column, ids=marks(len(chunk))), *chunk
                )
                self.groups.update(int(r["id"]) for r in rows)
        for chunk in _chunks(list(ids)):
            await run_sql(
                _END_TIES.format(table=table, column=column, ids=marks(len(chunk))),
                self.yesterday,
                *chunk,
                self.yesterday,
                self.yesterday,
            )
            await run_sql(
                _DROP_TIES.format(table=table, column=column, ids=marks(len(chunk))),
                *chunk,
                self.yesterday,
            )

    def end_refs(self, ends: list[tuple[str, Ref]]) -> None:
        self.ended_refs.extend(ref.id for _, ref in ends)

    # -- files, in order ------------------------------------------------------------------

    async def orgs(self) -> None:
        ops = self.plan.ops["orgs"]

        def values(row: Row) -> tuple[Any, ...]:
            assert isinstance(row, OrgRow)
            parent = self.id_of("org", row.parent) if row.parent else None
            return (row.kind, row.name, parent, row.language or "fi")

        columns = ("kind", "name", "parent", "language")
        # Municipalities first: a school's parent must exist before it.
        for kind in ("municipality", "school"):
            rows = [r for r in ops.creates if isinstance(r, OrgRow) and r.kind == kind]
            await self.create("orgs", "organisation", rows, values, columns)
        for row, ref in ops.updates:
            assert ref.local_id is not None
            await self.update(
                "organisation", ref.local_id, dict(zip(columns, values(row), strict=True))
            )
            self.remember("org", row, ref.local_id, ref)
            self.group_records.update(await self._groups_of_school(ref.local_id))
        await self.end_ties(
            "staff_role", "organisation", [r.local_id for _, r in ops.ends if r.local_id]
        )
        self.end_refs(ops.ends)
        self.tick("write orgs", len(ops.updates) + len(ops.ends))

    async def _groups_of_school(self, school: int) -> list[int]:
        rows = await run_sql("SELECT id FROM school_group WHERE school = {}", school)
        return [int(r["id"]) for r in rows]

    async def sessions(self) -> None:
        ops = self.plan.ops["academicSessions"]
        columns = ("organisation", "name", "starts_on", "ends_on")

        def values(row: Row) -> tuple[Any, ...]:
            assert isinstance(row, SessionRow)
            org = row.org or self.plan.default_org
            assert org is not None
            return (self.id_of("org", org), row.title, row.starts_on, row.ends_on)

        await self.create("academicSessions", "term", ops.creates, values, columns)
        for row, ref in ops.updates:
            assert ref.local_id is not None
            await self.update("term", ref.local_id, dict(zip(columns, values(row), strict=True)))
            self.remember("session", row, ref.local_id, ref)
        self.end_refs(ops.ends)
        self.tick("write academicSessions", len(ops.updates) + len(ops.ends))

    async def courses(self) -> None:
        ops = self.plan.ops["courses"]
        refs = self.refs.get("course", {})
        for row in ops.creates:
            self.remember("course", row, None, refs.get(row.sid))
        for row, ref in ops.updates:
            self.remember("course", row, None, ref)
        self.end_refs(ops.ends)
        self.tick("write courses", len(ops.creates) + len(ops.updates) + len(ops.ends))

    async def classes(self) -> None:
        ops = self.plan.ops["classes"]
        columns = ("school", "term", "name", "kind", "grade", "subject")

        def values(row: Row) -> tuple[Any, ...]:
            assert isinstance(row, ClassRow)
            title, grade, subject = self.plan.courses[row.course]
            subject = None if row.kind == "home_class" else row.subject or subject or title
            return (
                self.id_of("org", row.school),
                self.id_of("session", row.terms[0]),
                row.title,
                row.kind,
                row.grade if row.grade is not None else grade,
                subject,
            )

        await self.create("classes", "school_group", ops.creates, values, columns)
        created = {self.id_of("class", r.sid) for r in ops.creates}
        self.group_records |= created
        self.groups |= created
        for row, ref in ops.updates:
            assert ref.local_id is not None
            await self.update(
                "school_group", ref.local_id, dict(zip(columns, values(row), strict=True))
            )
            self.remember("class", row, ref.local_id, ref)
            self.group_records.add(ref.local_id)
        await self.end_ties(
            "membership", '"group"', [r.local_id for _, r in ops.ends if r.local_id]
        )
        self.end_refs(ops.ends)
        self.tick("write classes", len(ops.updates) + len(ops.ends))

    async def users(self) -> None:
        ops = self.plan.ops["users"]
        columns = (
            "given_name",
            "family_name",
            "language",
            "turvakielto",
            "email",
            "phone",
            "shares_contact_with_guardians",
        )

        def person(row: Row) -> tuple[Any, ...]:
            assert isinstance(row, UserRow)
            return (
                row.given_name,
                row.family_name,
                row.language or "fi",
                row.turvakielto,
                row.email,
                row.phone,
                row.shares_contact,
            )

        def created(row: Row) -> tuple[Any, ...]:
            return (*person(row), self.plan.birth_dates.get(row.sid))

        revived = await self.create(
            "users",
            "person",
            ops.creates,
            created,
            (*columns, "birth_date"),
            keep_if_none=frozenset({"birth_date"}),
        )
        for row in revived:
            assert isinstance(row, UserRow)
            await self.upsert_account(self.id_of("user", row.sid), row)
        back = {r.sid for r in revived}
        accounts = [
            r for r in ops.creates if isinstance(r, UserRow) and r.username and r.sid not in back
        ]
        ids = await self.allocate("account", len(accounts))
        await insert_values(
            "account",
            ("id", "person", "username", "password_hash", "disabled"),
            [
                (i, self.id_of("user", r.sid), r.username, "", not r.enabled)
                for r, i in zip(accounts, ids, strict=True)
            ],
        )
        for row, ref in ops.updates:
            assert isinstance(row, UserRow)
            assert ref.local_id is not None
            before = await run_sql(
                "SELECT given_name, family_name FROM person WHERE id = {}", ref.local_id
            )
            if before and (before[0]["given_name"], before[0]["family_name"]) != (
                row.given_name,
                row.family_name,
            ):
                self.renamed.add(ref.local_id)
            await self.update("person", ref.local_id, dict(zip(columns, person(row), strict=True)))
            await self.upsert_account(ref.local_id, row)
            self.remember("user", row, ref.local_id, ref)
        await self.save_learner_numbers([*ops.creates, *(r for r, _ in ops.updates)])
        ended = [r.local_id for _, r in ops.ends if r.local_id]
        for table, column in (("membership", "person"), ("staff_role", "person")):
            await self.end_ties(table, column, ended)
        for chunk in _chunks(ended):
            await run_sql(
                _DISABLE.format(ids=marks(len(chunk))),
                True,
                *chunk,
            )
        self.end_refs(ops.ends)
        self.tick("write users", len(ops.updates) + len(ops.ends))

    async def check_conflicts(self) -> list[Problem]:
        """What the stored rows refuse, found before anything is written: a username or an
        oppijanumero that belongs to another person."""
        return [*(await self._taken_usernames()), *(await self._taken_learner_numbers())]

    async def _taken_usernames(self) -> list[Problem]:
        """A username already taken by someone this import does not make is refused."""
        rows = self.plan.ops["users"]
        wanted = {
            r.username: r
            for r in [*rows.creates, *(u for u, _ in rows.updates)]
            if isinstance(r, UserRow) and r.username
        }
        mine = {
            self.local["user"][r.sid]
            for r in wanted.values()
            if r.sid in self.local.get("user", {})
        }
        names = list(wanted)
        problems = []
        for chunk in _chunks(names):
            found = await run_sql(
                _USERNAMES.format(ids=marks(len(chunk))),
                *chunk,
            )
            for r in found:
                if int(r["person"]) not in mine:
                    row = wanted[r["username"]]
                    problems.append(
                        Problem(
                            "users",
                            row.line,
                            "username",
                            f"{row.username!r} is taken by another person",
                        )
                    )
        return problems

    async def _taken_learner_numbers(self) -> list[Problem]:
        """An oppijanumero already held by a person other than the row's (one new to this
        import holds none yet)."""
        rows = self.plan.ops["users"]
        numbers = {
            r.oppijanumero: r
            for r in [*rows.creates, *(u for u, _ in rows.updates)]
            if isinstance(r, UserRow) and r.oppijanumero
        }
        known = self.local.get("user", {})
        problems = []
        for chunk in _chunks(sorted(numbers)):
            for found in await run_sql(
                _NUMBERS.format(ids=marks(len(chunk))), LEARNER_NUMBER, *chunk
            ):
                row = numbers[found["source_id"]]
                if found["local_id"] != known.get(row.sid):
                    problems.append(
                        Problem(
                            "users",
                            row.line,
                            "metadata.fi.oppijanumero",
                            "this oppijanumero belongs to another person",
                        )
                    )
        return problems

    async def save_learner_numbers(self, rows: list[Row]) -> None:
        """Each person's oppijanumero, kept as an ``external_ref`` of its own source: one
        number belongs to one person, whichever system sent it."""
        users = [r for r in rows if isinstance(r, UserRow)]
        numbers = {r.oppijanumero: r for r in users if r.oppijanumero}
        people = [self.id_of("user", r.sid) for r in users]
        for chunk in _chunks(people):
            await run_sql(_DROP_NUMBERS.format(ids=marks(len(chunk))), LEARNER_NUMBER, *chunk)
        await insert_values(
            "external_ref",
            _REF_COLUMNS,
            [
                (LEARNER_NUMBER, "person", number, self.id_of("user", r.sid), "", "", "", False)
                for number, r in numbers.items()
            ],
        )

    async def upsert_account(self, person: int, row: UserRow) -> None:
        if not row.username:
            return
        found = await run_sql("SELECT id FROM account WHERE person = {}", person)
        if found:
            await self.update(
                "account",
                int(found[0]["id"]),
                {"username": row.username, "disabled": not row.enabled},
            )
        else:
            (new_id,) = await self.allocate("account", 1)
            await insert_values(
                "account",
                ("id", "person", "username", "password_hash", "disabled"),
                [(new_id, person, row.username, "", not row.enabled)],
            )

    async def demographics(self) -> None:
        ops = self.plan.ops["demographics"]
        for row in [*ops.creates, *(r for r, _ in ops.updates)]:
            assert isinstance(row, DemographicRow)
            person = self.id_of("user", row.sid)
            if row.sid not in self.plan.birth_dates:
                await self.update("person", person, {"birth_date": row.birth_date})
        refs = self.refs.get("demographic", {})
        for row in ops.creates:
            self.remember("demographic", row, self.id_of("user", row.sid), refs.get(row.sid))
        for row, ref in ops.updates:
            self.remember("demographic", row, self.id_of("user", row.sid), ref)
        self.end_refs(ops.ends)
        self.tick("write demographics", len(ops.creates) + len(ops.updates) + len(ops.ends))

    def _staff(self, row: Row) -> tuple[Any, ...] | None:
        assert isinstance(row, RoleRow)
        role = STAFF_ROLES.get((row.role, self.plan.org_kinds[row.org]))
        if role is None:
            return None
        return (self.id_of("user", row.user), self.id_of("org", row.org), role)

    def _member(self, row: Row) -> tuple[Any, ...] | None:
        assert isinstance(row, EnrollmentRow)
        role = MEMBERSHIP_ROLES.get(row.role)
        if role is None:
            return None
        return (self.id_of("class", row.klass), self.id_of("user", row.user), role)

    async def ties(
        self,
        file: str,
        table: str,
        tie: Callable[[Row], tuple[Any, ...] | None],
        columns: tuple[str, ...],
    ) -> None:
        """Roles (staff roles) and enrollments (memberships): dated ties."""
        ops = self.plan.ops[file]
        kind = KINDS[file]
        refs = self.refs.get(kind, {})
        news: list[Row] = []
        for row in ops.creates:
            if tie(row) is not None:
                news.append(row)
            else:
                self.remember(kind, row, None, refs.get(row.sid))

        def values(row: Row) -> tuple[Any, ...]:
            assert isinstance(row, RoleRow | EnrollmentRow)
            found = tie(row)
            assert found is not None
            return (*found, row.begins or self.today, row.ends)

        await self.create(file, table, news, values, (*columns, "valid_from", "valid_to"))
        if table == "membership":
            self.groups.update(int(values(r)[0]) for r in news)
        if table == "staff_role":
            self.staff_people.update(int(values(r)[0]) for r in news)
        gone: list[int] = []
        for row, ref in ops.updates:
            assert isinstance(row, RoleRow | EnrollmentRow)
            found = tie(row)
            if found is None or ref.local_id is None:
                # The row changed into or out of a kind Reppu keeps a tie for.
                if ref.local_id is not None:
                    gone.append(ref.local_id)
                if found is None:
                    self.remember(kind, row, None, ref)
                else:
                    await self.create(
                        file, table, [row], values, (*columns, "valid_from", "valid_to")
                    )
                    if table == "membership":
                        self.groups.add(int(found[0]))
                continue
            update = dict(zip(columns, found, strict=True))
            update["valid_to"] = row.ends
            if row.begins is not None:
                update["valid_from"] = row.begins
            if table == "membership":
                self.groups.update(await self._group_of(ref.local_id))
                self.groups.add(int(found[0]))
            if table == "staff_role":
                self.staff_people.add(int(found[0]))
            await self.update(table, ref.local_id, update)
            self.remember(kind, row, ref.local_id, ref)
        ended = gone + [r.local_id for _, r in ops.ends if r.local_id is not None]
        if table == "staff_role":
            for chunk in _chunks(ended):
                rows = await run_sql(_PEOPLE_OF_ROLES.format(ids=marks(len(chunk))), *chunk)
                self.staff_people.update(int(r["person"]) for r in rows)
        await self.end_ties(table, "id", ended)
        self.end_refs(ops.ends)
        self.tick(f"write {file}", len(ops.updates) + len(ops.ends))

    async def _group_of(self, membership: int) -> list[int]:
        rows = await run_sql('SELECT "group" AS id FROM membership WHERE id = {}', membership)
        return [int(r["id"]) for r in rows]

    async def links(self) -> None:
        ops = self.plan.links
        ids = await self.allocate("guardianship", len(ops.creates))
        await insert_values(
            "guardianship",
            ("id", "guardian", "pupil", "kind", "valid_from", "valid_to"),
            [
                (
                    i,
                    self.id_of("user", link.guardian),
                    self.id_of("user", link.pupil),
                    "custodial" if link.kind == "custodial" else "information_only",
                    self.today,
                    None,
                )
                for link, i in zip(ops.creates, ids, strict=True)
            ],
        )
        refs = self.refs.get("link", {})
        for link, new_id in zip(ops.creates, ids, strict=True):
            self.remember("link", link, new_id, refs.get(link.sid))
        for link, ref in ops.updates:
            assert ref.local_id is not None
            await self.update("guardianship", ref.local_id, {"kind": link.kind})
            self.remember("link", link, ref.local_id, ref)
        await self.end_ties("guardianship", "id", [r.local_id for _, r in ops.ends if r.local_id])
        self.end_refs(ops.ends)
        self.tick("write guardianships", len(ops.creates) + len(ops.updates) + len(ops.ends))

    async def save_refs(self) -> None:
        await insert_values("external_ref", _REF_COLUMNS, self.new_refs)
        for values in self.changed_refs:
            await run_sql(_UPDATE_REF, *values)
        for chunk in _chunks(self.ended_refs):
            await run_sql(_END_REFS.format(ids=marks(len(chunk))), True, *chunk)

    async def sync_writes(self) -> list[RecordWrite]:
        """The sync records this import changed: groups, rosters, renamed teachers' lessons."""
        for chunk in _chunks(sorted(self.renamed)):
            rows = await run_sql(_GROUPS_OF.format(column="person", ids=marks(len(chunk))), *chunk)
            self.groups.update(int(r["id"]) for r in rows)
        lessons: list[int] = []
        for chunk in _chunks(sorted(self.renamed)):
            rows = await run_sql(_LESSONS_OF.format(ids=marks(len(chunk))), *chunk)
            lessons.extend(int(r["id"]) for r in rows)
        writes: list[RecordWrite] = []
        for chunk in _chunks(sorted(self.group_records)):
            writes += await group_writes(chunk)
        for chunk in _chunks(sorted(self.groups)):
            writes += await roster_writes(chunk, self.today)
        for chunk in _chunks(lessons):
            writes += await lesson_writes(chunk)
        for chunk in _chunks(sorted(self.staff_people)):
            writes += await cover_writes(chunk, self.today)
        # A record may be asked for twice (a roster of a changed group that a substitute
        # also covers); every copy is placed as of today, so the first one is kept.
        unique: dict[tuple[str, int], RecordWrite] = {}
        for write in writes:
            unique.setdefault((write.record_type, write.record_id), write)
        return list(unique.values())


async def _load_refs(source: str) -> dict[str, dict[str, Ref]]:
    refs: dict[str, dict[str, Ref]] = {}
    for r in await run_sql(_REFS, source):
        refs.setdefault(r["kind"], {})[r["source_id"]] = Ref(
            id=int(r["id"]),
            local_id=None if r["local_id"] is None else int(r["local_id"]),
            modified=r["modified"],
            digest=r["digest"],
            data=r["data"],
            ended=bool(r["ended"]),
        )
    return refs


def _summary(plan: Plan) -> Summary:
    summary = Summary(source=plan.source)
    for file in FILES:
        ops = plan.ops[file]
        summary.counts[file] = Counts(
            len(ops.creates), len(ops.updates), len(ops.ends), ops.unchanged
        )
    links = plan.links
    summary.counts["guardianships"] = Counts(
        len(links.creates), len(links.updates), len(links.ends), links.unchanged
    )
    return summary


async def _save_national_ids(
    batch: Batch, people: dict[str, int], identity: SigninSettings | None
) -> None:
    """Each user row's henkilötunnus, hashed at once (``server/signin/identifiers.py``).
    Every row of the file replaces its person's number, so a correction takes effect even
    where nothing else of the row changed."""
    rows = [r for r in batch.rows.get("users", []) if isinstance(r, UserRow)]
    if not any(r.national_id for r in rows):
        return
    if identity is None:
        raise ImportRefused(
            [Problem("users.csv", 0, "metadata.fi.henkilotunnus", "no identity key to hash it")]
        )
    await replace_identifiers(
        identity,
        "national_id",
        ((people[r.sid], r.national_id) for r in rows if r.sid in people),
    )


async def _checked_plan(
    batch: Batch, identity: SigninSettings | None
) -> tuple[Plan, dict[str, dict[str, Ref]]]:
    """The plan for ``batch`` against the stored references; raises ``ImportRefused`` with
    the plan's problems, or when national identity numbers come without a key to hash them."""
    refs = await _load_refs(batch.source)
    plan = make_plan(batch.source, batch.rows, batch.modes, refs)
    if plan.problems:
        raise ImportRefused(plan.problems)
    if identity is None and any(
        isinstance(r, UserRow) and r.national_id for r in batch.rows.get("users", [])
    ):
        raise ImportRefused(
            [Problem("users.csv", 0, "metadata.fi.henkilotunnus", "no identity key to hash it")]
        )
    return plan, refs


async def check_oneroster(
    engine: Engine[Any],
    batch: Batch,
    *,
    today: dt.date | None = None,
    identity: SigninSettings | None = None,
) -> Summary:
    """What :func:`import_oneroster` would do with ``batch`` now, writing nothing (a dry
    run): the same plan and the same checks of the stored rows, in one read snapshot.
    Raises ``ImportRefused`` with every problem, as the import would."""
    started = time.perf_counter()
    async with read_snapshot(engine):
        plan, refs = await _checked_plan(batch, identity)
        writer = _Writer(engine, plan, refs, today or school_today(), no_progress)
        conflicts = await writer.check_conflicts()
    if conflicts:
        raise ImportRefused(conflicts)
    summary = _summary(plan)
    summary.seconds = time.perf_counter() - started
    return summary


async def import_oneroster(
    engine: Engine[Any],
    batch: Batch,
    *,
    today: dt.date | None = None,
    progress: Progress | None = None,
    identity: SigninSettings | None = None,
) -> Summary:
    """Apply ``batch`` in one write transaction; raises ``ImportRefused`` (writing nothing)
    with every problem found. Importing the same batch again changes nothing.

    ``identity``: the key national identity numbers are hashed under; without it the
    ``metadata.fi.henkilotunnus`` column is refused rather than dropped."""
    started = time.perf_counter()
    today = today or school_today()
    report = progress or no_progress
    async with write_transaction(engine):
        if isinstance(engine, PostgresEngine):
            # Two imports at once take turns: each plans from what the other committed.
            await run_sql("LOCK TABLE external_ref IN SHARE ROW EXCLUSIVE MODE")
        plan, refs = await _checked_plan(batch, identity)
        writer = _Writer(engine, plan, refs, today, report)
        conflicts = await writer.check_conflicts()
        if conflicts:
            raise ImportRefused(conflicts)
        await writer.orgs()
        await writer.sessions()
        await writer.courses()
        await writer.classes()
        await writer.users()
        await _save_national_ids(batch, writer.local.get("user", {}), identity)
        await writer.demographics()
        await writer.ties("roles", "staff_role", writer._staff, ("person", "organisation", "role"))
        await writer.ties("enrollments", "membership", writer._member, ("group", "person", "role"))
        await writer.links()
        await writer.save_refs()
        writes = await writer.sync_writes()
        report("write sync records", 0, len(writes))
        await write_records(engine, writes)
        report("write sync records", len(writes), len(writes))
    summary = _summary(plan)
    summary.seconds = time.perf_counter() - started
    summary.sync_records = len(writes)
    return summary
