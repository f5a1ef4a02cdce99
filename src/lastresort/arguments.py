"""Argument checks of the public entry points (the Engine and both stores).

Each check refuses a wrong type or an out-of-range value with
:class:`~lastresort.errors.InvalidArgument`, naming the call and the parameter,
before anything is read or written; the stores call the same checks, so that they
refuse the same arguments alike. Messages show the type given, never the value:
it could be something about a child.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from .errors import InvalidArgument
from .events import Event, NotificationDelivered
from .privacy import describe
from .protocol.model import Actor

__all__ = [
    "MAX_LEASE",
    "MAX_LIMIT",
    "check_actor",
    "check_attempts",
    "check_claim",
    "check_delivery",
    "check_facts",
    "check_fire",
    "check_flag",
    "check_limit",
    "check_moment",
    "check_open",
    "check_optional_text",
    "check_page_limit",
    "check_text",
    "check_version",
]

#: The largest claim or page limit: SQLite's and PostgreSQL's largest integer
#: (``sys.maxsize`` on 64-bit Pythons, what callers pass for "no limit").
MAX_LIMIT = 2**63 - 1
#: The longest claim lease.
MAX_LEASE = timedelta(days=366)


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def check_text(call: str, name: str, value: object) -> None:
    """Refuse anything but a string."""
    if not isinstance(value, str):
        raise InvalidArgument(call=call, argument=name, problem=f"a string, not {_kind(value)}")


def check_optional_text(call: str, name: str, value: object) -> None:
    """Refuse anything but ``None`` or a string."""
    if value is not None and not isinstance(value, str):
        raise InvalidArgument(
            call=call, argument=name, problem=f"None or a string, not {_kind(value)}"
        )


def check_flag(call: str, name: str, value: object) -> None:
    """Refuse anything but ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise InvalidArgument(
            call=call, argument=name, problem=f"True or False, not {_kind(value)}"
        )


def check_actor(call: str, value: object) -> None:
    """Refuse anything but a role key or an :class:`~lastresort.Actor` whose role is
    a string and whose id is ``None`` or a string."""
    if isinstance(value, str):
        return
    if isinstance(value, Actor):
        if isinstance(value.role, str) and (value.id is None or isinstance(value.id, str)):
            return
        problem = (
            f"an Actor with a string role and id, not one with a {_kind(value.role)} role"
            f" and a {_kind(value.id)} id"
        )
    else:
        problem = f"a role key (a string) or an Actor, not {_kind(value)}"
    raise InvalidArgument(call=call, argument="actor", problem=problem)


def check_facts(call: str, value: object) -> None:
    """Refuse anything but ``None`` or a mapping with string keys (the values are
    checked against the protocol's declared facts by the engine)."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        problem = f"None or a mapping of declared fact names to values, not {_kind(value)}"
    elif not all(isinstance(key, str) for key in value):
        problem = "a mapping with fact names (strings) as keys"
    else:
        return
    raise InvalidArgument(call=call, argument="facts", problem=problem)


def check_version(call: str, name: str, value: object) -> None:
    """Refuse anything but ``None`` or a whole number ≥ 1 (``True`` is no number here)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        shown = repr(value) if isinstance(value, int) else _kind(value)
        raise InvalidArgument(
            call=call, argument=name, problem=f"None or a whole number >= 1, not {shown}"
        )


def check_moment(call: str, name: str, value: object, *, optional: bool = False) -> None:
    """Refuse anything but a timezone-aware :class:`~datetime.datetime` (or ``None``
    with ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None:
        return
    what = "a timezone-aware datetime" + (" or None" if optional else "")
    given = "a naive datetime" if isinstance(value, datetime) else _kind(value)
    raise InvalidArgument(call=call, argument=name, problem=f"{what}, not {given}")


def check_limit(call: str, limit: object) -> None:
    """Refuse a claim ``limit`` that is not ``None`` or a whole number from 0 to
    :data:`MAX_LIMIT`."""
    if limit is None or (
        isinstance(limit, int) and not isinstance(limit, bool) and 0 <= limit <= MAX_LIMIT
    ):
        return
    shown = repr(limit) if isinstance(limit, int | float) and len(repr(limit)) < 30 else None
    shown = shown or ("a larger number" if isinstance(limit, int) else _kind(limit))
    raise InvalidArgument(
        call=call,
        argument="limit",
        problem=f"None or a whole number >= 0 and <= {MAX_LIMIT}, not {shown}",
    )


def check_page_limit(call: str, limit: object) -> int:
    """``limit`` when it is a whole number from 1 to :data:`MAX_LIMIT` (a page's size).

    :raises InvalidArgument: for anything else."""
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(
            call=call,
            argument="limit",
            problem=f"a whole number of at least 1, not {describe(limit)}",
        )
    return limit


def check_attempts(call: str, value: object) -> None:
    """Refuse anything but a whole number ≥ 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        shown = repr(value) if isinstance(value, int) else _kind(value)
        raise InvalidArgument(
            call=call, argument="attempts", problem=f"a whole number >= 0, not {shown}"
        )


def check_claim(call: str, now: object, lease: object, limit: object) -> None:
    """The arguments of a store's claim: an aware ``now``, a lease longer than zero and
    at most :data:`MAX_LEASE` that does not run past the end of time, and a limit."""
    check_moment(call, "now", now)
    if not isinstance(lease, timedelta) or not timedelta(0) < lease <= MAX_LEASE:
        given = str(lease) if isinstance(lease, timedelta) else _kind(lease)
        raise InvalidArgument(
            call=call,
            argument="lease",
            problem=f"a timedelta longer than zero and at most 366 days, not {given}",
        )
    check_limit(call, limit)
    assert isinstance(now, datetime)
    try:
        now + lease
    except OverflowError:
        raise InvalidArgument(
            call=call, argument="now", problem="a time at least a lease before the year 10000"
        ) from None


def check_delivery(call: str, event: object, kind: type[Event] = NotificationDelivered) -> None:
    """Refuse anything but a ``kind`` event (:class:`~lastresort.NotificationDelivered`
    by default) with an aware time."""
    name = kind.__name__
    if not isinstance(event, kind):
        raise InvalidArgument(call=call, argument="event", problem=f"a {name}, not {_kind(event)}")
    if event.at.tzinfo is None or event.at.utcoffset() is None:
        raise InvalidArgument(
            call=call,
            argument="event",
            problem=f"a {name} with a timezone-aware time, not a naive one",
        )


def check_open(protocol_id: object, actor: object, facts: object, channel: object) -> None:
    """The arguments of :meth:`Engine.open <lastresort.Engine.open>`."""
    check_text("Engine.open", "protocol_id", protocol_id)
    check_actor("Engine.open", actor)
    check_facts("Engine.open", facts)
    # ``channel`` is checked against the protocol's declared channels by Engine.open
    # (ChannelRefused, whatever its type): one refusal for every undeclared channel


def check_fire(encounter_id: object, event: object, actor: object, version: object) -> None:
    """The arguments of :meth:`Engine.fire <lastresort.Engine.fire>`."""
    check_text("Engine.fire", "encounter_id", encounter_id)
    check_text("Engine.fire", "event", event)
    check_actor("Engine.fire", actor)
    check_version("Engine.fire", "expected_version", version)


def check_engine(
    protocols: object, plugins: object, store: object, clock: object, *, store_type: type
) -> None:
    """The collaborators given to :class:`~lastresort.Engine`: ``protocols`` ``None`` or
    an iterable of protocols, ``plugins`` an iterable, ``store`` ``None`` or a
    :class:`~lastresort.Store` (``store_type``, given by the engine: the ground floor
    does not import the store), ``clock`` ``None`` or something with ``now()``."""
    from .clock import Clock
    from .protocol.model import Protocol

    call = "Engine"
    if protocols is not None:
        if isinstance(protocols, str | bytes) or not isinstance(protocols, Iterable):
            raise InvalidArgument(
                call=call,
                argument="protocols",
                problem=f"None or protocols, not {_kind(protocols)}",
            )
        protocols = list(protocols)
        for item in protocols:
            if not isinstance(item, Protocol):
                raise InvalidArgument(
                    call=call,
                    argument="protocols",
                    problem=f"None or lastresort.Protocol objects, not one {_kind(item)}",
                )
    if isinstance(plugins, str | bytes) or not isinstance(plugins, Iterable):
        raise InvalidArgument(
            call=call,
            argument="plugins",
            problem=f"plugin objects or modules, not {_kind(plugins)}",
        )
    if store is not None and not isinstance(store, store_type):
        raise InvalidArgument(
            call=call, argument="store", problem=f"None or a lastresort Store, not {_kind(store)}"
        )
    if clock is not None and not isinstance(clock, Clock):
        raise InvalidArgument(
            call=call, argument="clock", problem=f"None or a Clock (with now()), not {_kind(clock)}"
        )
