"""Working days: the calendar a protocol's ``"2wd"`` deadlines are counted on.

A working day is Monday to Friday, less the Dutch public holidays of the `holidays`
package and the local closing days plugins name (hook ``lastresort_closing_days``).
Days are dates in the protocol's time zone (``[protocol] timezone``). The exact rules,
with examples, are in docs/protocol-format.md ("Working days").
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from .model import Protocol, WorkingDays

__all__ = ["WorkingCalendar", "due_after", "longest_span"]

#: The public holidays' country (the arrangement is Dutch; a plugin adds local days).
HOLIDAY_COUNTRY = "NL"


class WorkingCalendar:
    """Which dates are working days, in one time zone.

    :param zone: the time zone days are counted in (an IANA name or a ``ZoneInfo``).
    :param closing_days: gives the extra closing days of a year (a plugin hook's
        answer); asked once per year, from any thread.
    """

    def __init__(
        self,
        zone: str | ZoneInfo,
        closing_days: Callable[[int], Iterable[date]] | None = None,
    ) -> None:
        self.zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
        self._closing = closing_days
        self._years: dict[int, frozenset[date]] = {}
        # (start date, count) -> (due date, whether the start date is a working day):
        # encounters opened on one day share it; bounded, dates are few
        self._targets: dict[tuple[date, int], tuple[date, bool]] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(
        cls, protocol: Protocol, closing_days: Callable[[int], Iterable[date]] | None = None
    ) -> WorkingCalendar:
        """The calendar of ``protocol``: its time zone, Dutch public holidays, and
        ``closing_days``."""
        return cls(protocol.timezone, closing_days)

    def closed_on(self, year: int) -> frozenset[date]:
        """Every public holiday and closing day of ``year`` (weekends aside)."""
        found = self._years.get(year)
        if found is None:
            days = set(holidays.country_holidays(HOLIDAY_COUNTRY, years=year))
            if self._closing is not None:
                days.update(d for d in self._closing(year) if d.year == year)
            found = frozenset(days)
            with self._lock:
                self._years[year] = found
        return found

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        return day.weekday() < 5 and day not in self.closed_on(day.year)

    def next_working_day(self, day: date) -> date:
        """The first working day after ``day``."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def add(self, moment: datetime, count: int) -> datetime:
        """The instant ``count`` working days after ``moment`` (a UTC datetime).

        On a working day: the same wall-clock time on the ``count``-th working day
        after it. On any other day: counted from 00:00 of the next working day, so
        the result is 00:00 of the ``count``-th working day after that one, and the
        whole of ``count`` working days lies between.
        """
        local = moment.astimezone(self.zone)
        start = local.date()
        found = self._targets.get((start, count))
        if found is None:
            working = self.is_working_day(start)
            day = start if working else self.next_working_day(start)
            for _ in range(count):
                day = self.next_working_day(day)
            found = (day, working)
            if len(self._targets) < 4096:
                self._targets[start, count] = found
        day, working = found
        clock = local.time() if working else time(0)
        # wall-clock arithmetic on purpose: a working day keeps its hour across a
        # daylight saving change. A wall-clock time that does not exist that day (in
        # the gap of a spring change) is read with the offset before the change
        # (PEP 495, fold=0), i.e. an hour later on the clock.
        return datetime.combine(day, clock, self.zone).astimezone(UTC)


def due_after(
    moment: datetime, after: timedelta | WorkingDays, calendar: WorkingCalendar | None
) -> datetime:
    """The instant ``after`` past ``moment``: elapsed time for a timedelta (an
    hour's difference on the clock across a daylight saving change), working days
    on ``calendar`` for :class:`WorkingDays`.

    :raises ValueError: working days without a calendar.
    """
    if isinstance(after, WorkingDays):
        if calendar is None:
            raise ValueError(f"{after} needs a working-day calendar")
        return calendar.add(moment, after.count)
    return moment.astimezone(UTC) + after


def longest_span(
    after: timedelta | WorkingDays, calendar: WorkingCalendar, years: range
) -> timedelta:
    """The longest elapsed time ``after`` can span from a start in ``years``.

    A timedelta is itself. For working days, every date of the years is tried as a
    start: at 00:00 for a day off (its worst moment: the rest of it and the whole run
    of days off are added), and at 00:00 and 23:59 for a working day (the span is
    whole days on the clock, an hour more or less when a daylight saving change lies
    between; both moments cover a change on the day itself). Exact for the calendar
    it is given: closing days count only as far as ``calendar`` asks the plugins.
    """
    if not isinstance(after, WorkingDays):
        return after
    first, end = date(years.start, 1, 1), date(years.stop, 1, 1)
    # every working day from the first start to well past the last one's result
    working: list[date] = []
    day = first
    while (
        len(working) < 2
        or working[-1] < end
        or len(working) - bisect_left(working, end) <= after.count
    ):
        if calendar.is_working_day(day):
            working.append(day)
        day += timedelta(days=1)
    zone = calendar.zone
    worst = timedelta(0)
    day = first
    while day < end:
        k = bisect_left(working, day)
        if working[k] == day:
            target = working[k + after.count]
            for clock in (time(0), time(23, 59)):
                start = datetime.combine(day, clock, zone)
                span = datetime.combine(target, clock, zone).astimezone(UTC) - start
                worst = max(worst, span)
        else:
            start = datetime.combine(day, time(0), zone)
            target = working[k + after.count]
            worst = max(worst, datetime.combine(target, time(0), zone).astimezone(UTC) - start)
        day += timedelta(days=1)
    return worst
