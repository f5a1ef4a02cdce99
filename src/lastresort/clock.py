"""Clocks: the engine never reads the time except through one of these."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InvalidArgument

__all__ = ["Clock", "SystemClock", "VirtualClock"]


def instant_after(moment: datetime, delta: timedelta) -> datetime:
    """The instant ``delta`` of real (elapsed) time after ``moment``, in UTC.

    ``moment + delta`` on a datetime with a zone is wall-clock arithmetic: across a
    daylight saving change it is an hour off. Deadlines, leases and retries are real
    durations, so they are computed here, on the UTC instant.
    """
    return moment.astimezone(UTC) + delta


@runtime_checkable
class Clock(Protocol):
    """Anything with ``now()`` returning a timezone-aware datetime."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The real time, in UTC or in the time zone ``tz``.

    :param tz: an IANA time zone name (``"Europe/Amsterdam"``) or a
        :class:`~datetime.tzinfo`; ``None`` (the default) is UTC. The instant is the
        same in every zone; only how it is shown differs (deadlines are computed on
        the UTC instant whatever the zone).
    :raises InvalidArgument: (a :class:`ValueError`) for a name this machine does
        not know, or anything but a name or a tzinfo.
    """

    def __init__(self, tz: str | tzinfo | None = None) -> None:
        if tz is None or tz is UTC:
            self._zone: tzinfo = UTC
            self._zone_label: str | None = None
        else:
            self._zone = zone_of("SystemClock", "tz", tz)
            self._zone_label = tz if isinstance(tz, str) else getattr(tz, "key", None) or str(tz)

    def now(self) -> datetime:
        """The current time, timezone-aware, in the clock's zone (UTC by default)."""
        return datetime.now(self._zone)

    def __repr__(self) -> str:
        return (
            "SystemClock()" if self._zone_label is None else f"SystemClock(tz={self._zone_label!r})"
        )


def zone_of(call: str, argument: str, tz: object) -> tzinfo:
    """``tz`` as a time zone: a :class:`~datetime.tzinfo` as it is, an IANA name as its
    ``ZoneInfo``.

    :raises InvalidArgument: naming ``call`` and ``argument`` (never repeating the
        value), for a name this machine does not know or anything but a name or a tzinfo.
    """
    if isinstance(tz, tzinfo):
        return tz
    if not isinstance(tz, str):
        raise InvalidArgument(
            call=call, argument=argument, problem=f"a time zone name or a tzinfo, not {_kind(tz)}"
        )
    try:
        if not tz or len(tz) > 64:
            raise ValueError(tz)
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidArgument(
            call=call,
            argument=argument,
            problem="an IANA time zone this machine knows, such as 'Europe/Amsterdam'",
        ) from None


class VirtualClock:
    """A clock that only moves when told to: for tests, scenarios and simulation.

    :param start: a timezone-aware start time.
    :raises InvalidArgument: (a :class:`ValueError`) for anything else.
    """

    def __init__(self, start: datetime) -> None:
        _aware("VirtualClock", "start", start)
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current virtual time."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` of real (elapsed) time and return the new time,
        shown in the start's time zone (45 minutes after 02:30 CEST on the night
        summer time ends is 02:15 CET).

        :raises InvalidArgument: (a :class:`ValueError`) for a ``delta`` that is not a
            :class:`~datetime.timedelta`, a negative one (time never runs backwards)
            or one past the year 9999; the clock stays where it was.
        """
        if not isinstance(delta, timedelta) or delta < timedelta(0):
            given = "a negative timedelta" if isinstance(delta, timedelta) else _kind(delta)
            raise InvalidArgument(
                call="VirtualClock.advance",
                argument="delta",
                problem=f"a timedelta of zero or more (time never runs backwards), not {given}",
            )
        with self._lock:
            try:
                self._now = instant_after(self._now, delta).astimezone(self._now.tzinfo)
            except OverflowError:
                raise InvalidArgument(
                    call="VirtualClock.advance",
                    argument="delta",
                    problem="a timedelta that keeps the clock before the year 10000",
                ) from None
            return self._now

    def set(self, moment: datetime) -> datetime:
        """Jump to the instant ``moment`` (not earlier than now) and return it, shown
        in the clock's time zone (a deadline's UTC ``due`` does not turn the clock
        to UTC).

        :raises InvalidArgument: (a :class:`ValueError`) for anything but a
            timezone-aware datetime, or an earlier moment.
        """
        _aware("VirtualClock.set", "moment", moment)
        with self._lock:
            # compared as instants: two times in one zone compare by wall clock
            if moment.astimezone(UTC) < self._now.astimezone(UTC):
                raise InvalidArgument(
                    call="VirtualClock.set",
                    argument="moment",
                    problem=f"not earlier than the clock's now ({self._now}; a clock is"
                    f" never set back), not {moment}",
                )
            self._now = moment.astimezone(self._now.tzinfo)
            return self._now

    def __repr__(self) -> str:
        return f"VirtualClock({self._now.isoformat()})"


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _aware(call: str, name: str, moment: object) -> None:
    if not isinstance(moment, datetime):
        given = _kind(moment)
    elif moment.tzinfo is None or moment.utcoffset() is None:
        given = "a naive datetime"
    else:
        return
    raise InvalidArgument(
        call=call, argument=name, problem=f"a timezone-aware datetime, not {given}"
    )
