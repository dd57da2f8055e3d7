"""Row ids in paths and query strings, bounded as the database's id columns are.

Declare an id parameter as ``PathId`` or ``QueryId``, never as ``FromPath[Id]``: Litestar
drops a ``msgspec.Meta`` inside a parameter's annotation and checks only its own ``ge``/``le``,
so ``FromPath[Id]`` took any integer, and ``/people/2147483648`` reached PostgreSQL's 32-bit
column and failed there as a 500 (2**63 failed SQLite too). With these, such an id is a
``request.invalid`` before the route runs. ``tests/server/test_bounded_input.py`` walks every
route with such ids, so a parameter declared otherwise is caught.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter, QueryParameter

from schemas.core import MAX_ID

PathId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
"""A row id in the path: 1 to 2**31 - 1."""
QueryId = Annotated[int, QueryParameter(ge=1, le=MAX_ID)]
"""A row id in the query string: 1 to 2**31 - 1."""
