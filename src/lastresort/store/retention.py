"""How long an encounter's facts are kept after it closed (``lastresort store purge
--retention``, :meth:`~lastresort.SQLiteStore.purge_facts`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from attrs import frozen

from ..protocol.conversion import format_duration, parse_duration

__all__ = ["Retention", "parse_retention"]

_YEARS = re.compile(r"^\s*(\d+)\s*y\s*$", re.IGNORECASE)
_ISO_YEARS = re.compile(r"^\s*P(\d+)Y\s*$", re.IGNORECASE)


@frozen
class Retention:
    """How long facts are kept after an encounter closed: whole calendar years, or
    an exact duration."""

    years: int = 0
    delta: timedelta = timedelta(0)

    def cutoff(self, now: datetime) -> datetime:
        """The moment before which an encounter must have closed to be purged.
        A 29 February minus whole years lands on 28 February."""
        year = now.year - self.years
        try:
            moved = now.replace(year=year)
        except ValueError:  # 29 February in a year that has none
            moved = now.replace(year=year, day=28)
        return moved - self.delta

    def __str__(self) -> str:
        return f"{self.years}y" if self.years else format_duration(self.delta)


def parse_retention(text: str) -> Retention:
    """Parse a retention period: ``20y`` (or ISO ``P20Y``) for calendar years, or a
    lastresort duration (``90d``, ``2w``, ``PT36H``...). Months are not accepted:
    ``m`` means minutes everywhere else in lastresort.

    :raises ValueError: naming the text and what is accepted.
    """
    match = _YEARS.match(text) or _ISO_YEARS.match(text)
    if match:
        years = int(match.group(1))
        if not 1 <= years <= 200:
            raise ValueError(f"retention {text!r}: years must be between 1 and 200")
        return Retention(years=years)
    try:
        delta = parse_duration(text)
    except ValueError:
        raise ValueError(
            f"invalid retention {text!r}: use whole years such as '20y', or a duration such"
            " as '90d' or '2w' (months are not accepted: 'm' means minutes)"
        ) from None
    if delta <= timedelta(0):
        raise ValueError(f"retention {text!r} must be longer than zero")
    return Retention(delta=delta)
