"""The work-queue query (:meth:`Store.find <lastresort.store.base.Store.find>`), the
same for every store: its argument checks, its SQL (SQLite's and PostgreSQL's) and
its filter in Python (the memory store's).

A work queue is a page of encounters ordered by id ("open encounters held by the
expert", "overdue in step X"), paged with the last id shown as ``after``. The SQL
stores answer it from indexes (``encounters_open``, ``encounters_queue`` on
``(responsible, id)`` of open encounters, ``deadlines_due`` for what is overdue), so
that a page costs about what it holds, not one read per open encounter.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from attrs import frozen

from ..arguments import check_page_limit
from ..errors import InvalidArgument
from ..privacy import describe
from ..protocol.model import Encounter
from .base import PendingDeadline

__all__ = ["FIND_COLUMNS", "QUEUE_INDEX", "Find", "check_find", "find_query"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

#: the columns a found encounter is read from, in the order ``load_encounter`` takes
FIND_COLUMNS = (
    "id, protocol, protocol_version, state, responsible, facts, version, opened_at,"
    " closed_at, channel"
)

#: The index of work queues by party (SQLite schema version 6, PostgreSQL version 3):
#: open encounters by responsible party in id order, so that "open encounters the
#: expert holds" reads one page of index entries, not every open encounter. One index
#: only: the step and the protocol are less selective, and each index costs a write on
#: every step an encounter takes.
QUEUE_INDEX = (
    "CREATE INDEX encounters_queue ON encounters (responsible, id) WHERE closed_at IS NULL"
)


@frozen(kw_only=True)
class Find:
    """A checked work-queue query (see :func:`check_find`): each selection ``None``
    (any value) or the values allowed (an empty set matches nothing)."""

    protocol: frozenset[str] | None
    state: frozenset[str] | None
    responsible: frozenset[str] | None
    overdue_at: datetime | None
    overdue: bool
    open_only: bool
    after: str | None
    limit: int

    @property
    def empty(self) -> bool:
        """Whether no encounter can match (a selection of no values)."""
        return any(s is not None and not s for s in (self.protocol, self.state, self.responsible))

    def matches(self, encounter: Encounter, deadlines: Collection[PendingDeadline]) -> bool:
        """Whether ``encounter`` (with its pending ``deadlines``) is in the queue,
        leaving out the page (``after``, ``limit``): the memory store's filter."""
        if self.open_only and encounter.closed_at is not None:
            return False
        if self.after is not None and encounter.id <= self.after:
            return False
        if self.protocol is not None and encounter.protocol not in self.protocol:
            return False
        if self.state is not None and encounter.state not in self.state:
            return False
        if self.responsible is not None and encounter.responsible not in self.responsible:
            return False
        if self.overdue_at is not None:
            late = any(d.due <= self.overdue_at for d in deadlines)
            if late != self.overdue:
                return False
        return True


def _selection(call: str, name: str, value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset((value,))
    # a mapping is a collection of its keys: refused, as passing one is a mistake
    if isinstance(value, Collection) and not isinstance(value, Mapping | bytes | bytearray):
        if all(isinstance(v, str) for v in value):
            return frozenset(value)
        problem = "a collection of strings only"
    else:
        problem = f"None, a string or a collection of strings, not {describe(value)}"
    raise InvalidArgument(call=call, argument=name, problem=problem)


def check_find(
    call: str,
    *,
    protocol: object = None,
    state: object = None,
    responsible: object = None,
    overdue_at: object = None,
    overdue: object = True,
    open_only: object = True,
    after: object = None,
    limit: object = 50,
) -> Find:
    """Check the arguments of a work-queue query (every store's ``find`` calls this
    first, so that all refuse alike) and return them normalised.

    :raises InvalidArgument: naming the argument, never echoing its value; nothing
        is read.
    """
    selections = {
        name: _selection(call, name, value)
        for name, value in (("protocol", protocol), ("state", state), ("responsible", responsible))
    }
    if overdue_at is not None and not (
        isinstance(overdue_at, datetime)
        and overdue_at.tzinfo is not None
        and overdue_at.utcoffset() is not None
    ):
        raise InvalidArgument(
            call=call,
            argument="overdue_at",
            problem=f"None or a timezone-aware datetime, not {describe(overdue_at)}",
        )
    if not isinstance(overdue, bool):
        raise InvalidArgument(
            call=call, argument="overdue", problem=f"True or False, not {describe(overdue)}"
        )
    if overdue is False and overdue_at is None:
        raise InvalidArgument(
            call=call,
            argument="overdue",
            problem="False (only encounters not overdue) needs overdue_at, the moment to judge by",
        )
    if not isinstance(open_only, bool):
        raise InvalidArgument(
            call=call, argument="open_only", problem=f"True or False, not {describe(open_only)}"
        )
    if after is not None and not isinstance(after, str):
        raise InvalidArgument(
            call=call,
            argument="after",
            problem=f"None or an encounter id (a string), not {describe(after)}",
        )
    page = check_page_limit(call, limit)
    return Find(
        protocol=selections["protocol"],
        state=selections["state"],
        responsible=selections["responsible"],
        overdue_at=overdue_at,
        overdue=overdue,
        open_only=open_only,
        after=after,
        limit=page,
    )


def find_query(query: Find, mark: str) -> tuple[str, tuple[Any, ...]]:
    """The SQL of ``query`` on the ``encounters`` and ``deadlines`` tables (SQLite's
    and PostgreSQL's: ``mark`` is the parameter mark, ``?`` or ``%s``), selecting
    :data:`FIND_COLUMNS`, and its parameters. ``query`` must not be
    :attr:`~Find.empty` (``IN ()`` is no SQL)."""
    where: list[str] = []
    args: list[Any] = []
    if query.open_only:
        where.append("closed_at IS NULL")  # the partial indexes' condition, verbatim
    if query.after is not None:
        where.append(f"id > {mark}")
        args.append(query.after)
    for column, values in (
        ("protocol", query.protocol),
        ("state", query.state),
        ("responsible", query.responsible),
    ):
        if values is None:
            continue
        ordered = sorted(values)  # a stable statement for the same query
        if len(ordered) == 1:
            where.append(f"{column} = {mark}")
        else:
            where.append(f"{column} IN ({', '.join([mark] * len(ordered))})")
        args.extend(ordered)
    if query.overdue_at is not None:
        negate = "" if query.overdue else "NOT "
        where.append(f"id {negate}IN (SELECT encounter_id FROM deadlines WHERE due_us <= {mark})")
        args.append((query.overdue_at - _EPOCH) // _MICRO)
    sql = f"SELECT {FIND_COLUMNS} FROM encounters"
    if where:
        sql += f" WHERE {' AND '.join(where)}"
    sql += f" ORDER BY id LIMIT {mark}"
    args.append(query.limit)
    return sql, tuple(args)
