"""Clocks: the engine never reads the time except through one of these."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

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
    """The real time, in UTC."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """A clock that only moves when told to: for tests, scenarios and simulation.

    :param start: a timezone-aware start time.
    :raises ValueError: for a naive start time.
    """

    def __init__(self, start: datetime) -> None:
        _aware(start)
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current virtual time."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` of real (elapsed) time and return the new time,
        shown in the start's time zone (45 minutes after 02:30 CEST on the night
        summer time ends is 02:15 CET).

        :raises ValueError: for a negative ``delta`` (time never runs backwards).
        """
        if delta < timedelta(0):
            raise ValueError(f"cannot move a clock backwards (advance by {delta})")
        with self._lock:
            self._now = instant_after(self._now, delta).astimezone(self._now.tzinfo)
            return self._now

    def set(self, moment: datetime) -> datetime:
        """Jump to the instant ``moment`` (not earlier than now) and return it, shown
        in the clock's time zone (a deadline's UTC ``due`` does not turn the clock
        to UTC).

        :raises ValueError: for a naive or earlier moment.
        """
        _aware(moment)
        with self._lock:
            # compared as instants: two times in one zone compare by wall clock
            if moment.astimezone(UTC) < self._now.astimezone(UTC):
                raise ValueError(f"cannot set the clock back from {self._now} to {moment}")
            self._now = moment.astimezone(self._now.tzinfo)
            return self._now

    def __repr__(self) -> str:
        return f"VirtualClock({self._now.isoformat()})"


def _aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"time {moment} has no time zone; use a timezone-aware datetime")
