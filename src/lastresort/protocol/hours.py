"""Availability hours of a party (``always``, ``mon-fri 08:00-18:00, sat 10:00-14:00``).

Used by the simulator to decide whether a role can respond, and by validation to
check the text. Times are local wall-clock times of the datetime asked about.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from attrs import frozen

__all__ = ["Hours"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^(?P<days>[a-z]{3}(?:-[a-z]{3})?|daily)\s+(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$",
    re.ASCII,
)


@frozen
class Hours:
    """Weekly availability windows; ``always`` is every moment.

    :param windows: ``(weekday, start, end)`` with weekday 0 = Monday; ``end``
        may be ``24:00`` (stored as ``time.max``); windows past midnight are split.
    """

    text: str
    windows: tuple[tuple[int, time, time], ...] = ()
    always: bool = False

    @classmethod
    def parse(cls, text: str) -> Hours:
        """Parse an availability text.

        :raises ValueError: naming the part that could not be read.
        """
        raw = text.strip().lower()
        if raw in {"always", "24/7"}:
            return cls(text, (), True)
        windows: list[tuple[int, time, time]] = []
        for part in (p.strip() for p in raw.split(",")):
            match = _WINDOW.match(part)
            if not match:
                shown = part or text  # an empty part says nothing: show the whole text
                raise ValueError(
                    f"cannot read hours {shown!r}; use 'always' or e.g. 'mon-fri 08:00-18:00, sat 10:00-14:00'"
                )
            days = _days(match["days"], part)
            start, end = _clock(match["start"], part), _clock(match["end"], part)
            if start == time.max:
                raise ValueError(f"a window cannot start at 24:00 in {part!r}; use 00:00")
            for day in days:
                if end > start:
                    windows.append((day, start, end))
                elif end == start:
                    raise ValueError(f"empty window in {part!r}")
                else:  # past midnight: split into two windows
                    windows.append((day, start, time.max))
                    if end != time.min:  # "22:00-00:00" ends at midnight: nothing the next day
                        windows.append(((day + 1) % 7, time.min, end))
        return cls(text, tuple(windows), False)

    def is_open(self, at: datetime) -> bool:
        """Whether the party is available at ``at``."""
        if self.always:
            return True
        day, moment = at.weekday(), at.time()
        return any(d == day and start <= moment < end for d, start, end in self.windows)

    def next_open(self, at: datetime) -> datetime:
        """The first moment at or after ``at`` at which the party is available."""
        if self.always or self.is_open(at):
            return at
        best: datetime | None = None
        for offset in range(8):
            day = (at + timedelta(days=offset)).date()
            for d, start, _ in self.windows:
                if d != day.weekday():
                    continue
                candidate = datetime.combine(day, start, tzinfo=at.tzinfo)
                if candidate >= at and (best is None or candidate < best):
                    best = candidate
            if best is not None:
                return best
        raise ValueError(f"hours {self.text!r} are never open")


def _days(spec: str, part: str) -> list[int]:
    if spec == "daily":
        return list(range(7))
    first, _, last = spec.partition("-")
    for name in (first, last or first):
        if name not in _DAYS:
            raise ValueError(f"unknown day {name!r} in {part!r}; use mon, tue, ..., sun")
    a, b = _DAYS.index(first), _DAYS.index(last or first)
    return list(range(a, b + 1)) if a <= b else list(range(a, 7)) + list(range(0, b + 1))


def _clock(text: str, part: str) -> time:
    hours, minutes = int(text[:2]), int(text[3:])
    if (hours, minutes) == (24, 0):
        return time.max
    if hours > 23 or minutes > 59:
        raise ValueError(f"invalid time {text!r} in {part!r}")
    return time(hours, minutes)
