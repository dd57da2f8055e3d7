"""Roster imports over HTTP: what an admin's upload became (``docs/operations.md``)."""

from __future__ import annotations

import datetime as dt

import msgspec


class ImportCounts(msgspec.Struct):
    """Rows of one file that the import creates, updates, ends or leaves as they are."""

    created: int
    updated: int
    ended: int
    unchanged: int


class ImportProblem(msgspec.Struct):
    """One reason the set is refused, located."""

    file: str
    """``users.csv``; or the zip itself."""
    line: int
    """1 is the header; 0 means the file as a whole."""
    column: str
    """The column's name; empty for the whole row or file."""
    problem: str


class RosterImport(msgspec.Struct):
    """One uploaded OneRoster set and what became of it."""

    id: int
    status: str
    """``checked``: the dry run found nothing wrong, and ``POST .../{id}/apply`` applies it;
    ``refused``: the dry run or the apply found problems, nothing was changed;
    ``applying``; ``applied``; ``expired``: not applied within a day, the file is gone."""
    uploaded_by: int
    uploaded_at: dt.datetime
    file_name: str
    file_sha256: str
    file_bytes: int
    counts: dict[str, ImportCounts]
    """Per file (``users``, ``enrollments``, ..., and ``guardianships``): what the import
    would do (``checked``) or did (``applied``); empty when refused."""
    problems: list[ImportProblem]
    """The first problems (at most 200), each with where it is."""
    problem_count: int
    applied_by: int | None = None
    applied_at: dt.datetime | None = None


class RosterImportList(msgspec.Struct):
    imports: list[RosterImport]
    """Newest first."""
