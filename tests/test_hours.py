"""Availability hours of a party: parsing, is_open and next_open."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lastresort.protocol.hours import Hours

AMS = ZoneInfo("Europe/Amsterdam")
MONDAY = datetime(2026, 3, 2, tzinfo=AMS)  # Monday 2 March 2026, 00:00
ADVICE = "use 'always' or e.g. 'mon-fri 08:00-18:00, sat 10:00-14:00'"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Day 0 is Monday 2 March 2026, in Amsterdam."""
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


def test_always() -> None:
    for text in ("always", "24/7", " Always "):
        hours = Hours.parse(text)
        assert hours.always
        assert hours.text == text
        assert hours.is_open(at(6, 3))
        assert hours.next_open(at(2, 4, 17)) == at(2, 4, 17)


def test_office_hours() -> None:
    hours = Hours.parse("mon-fri 08:00-18:00")
    assert hours.windows == tuple((day, time(8), time(18)) for day in range(5))
    assert not hours.is_open(at(0, 7, 59))
    assert hours.is_open(at(0, 8))
    assert hours.is_open(at(4, 17, 59))
    assert not hours.is_open(at(4, 18))  # a window ends before its end time
    assert not hours.is_open(at(5, 12))  # Saturday


def test_several_windows_and_letter_case() -> None:
    hours = Hours.parse("Mon-Fri 08:00-12:00, mon-fri 13:00-17:00,  sat 10:00-14:00")
    assert hours.is_open(at(0, 9))
    assert not hours.is_open(at(0, 12, 30))
    assert hours.is_open(at(5, 10))
    assert not hours.is_open(at(6, 10))


def test_daily_and_whole_days() -> None:
    daily = Hours.parse("daily 07:00-23:00")
    assert all(daily.is_open(at(day, 7)) for day in range(7))
    assert not daily.is_open(at(3, 23, 30))
    whole = Hours.parse("sun 00:00-24:00")
    assert whole.windows == ((6, time(0), time.max),)
    assert whole.is_open(at(6, 0))
    assert whole.is_open(at(6, 23, 59))
    assert not whole.is_open(at(0, 0))


def test_a_window_past_midnight_runs_into_the_next_day() -> None:
    hours = Hours.parse("fri 22:00-06:00")
    assert hours.windows == ((4, time(22), time.max), (5, time(0), time(6)))
    assert not hours.is_open(at(4, 21, 59))
    assert hours.is_open(at(4, 22))
    assert hours.is_open(at(5, 0))
    assert hours.is_open(at(5, 5, 59))
    assert not hours.is_open(at(5, 6))
    assert not hours.is_open(at(0, 2))  # Monday night is not Friday night


def test_a_window_ending_at_midnight_stays_on_its_day() -> None:
    hours = Hours.parse("wed 20:00-00:00")
    assert hours.windows == ((2, time(20), time.max),)
    assert hours.is_open(at(2, 23, 59))
    assert not hours.is_open(at(3, 0))
    assert hours.next_open(at(3, 0)) == at(9, 20)


def test_sunday_night_runs_into_monday() -> None:
    hours = Hours.parse("sun 22:00-02:00")
    assert hours.windows == ((6, time(22), time.max), (0, time(0), time(2)))
    assert hours.is_open(at(7, 1))  # Monday 9 March, 01:00


def test_day_range_wrapping_over_the_weekend() -> None:
    hours = Hours.parse("fri-mon 09:00-17:00")
    assert [d for d, _, _ in hours.windows] == [4, 5, 6, 0]
    assert hours.is_open(at(6, 10))
    assert not hours.is_open(at(2, 10))


def test_next_open() -> None:
    hours = Hours.parse("mon-fri 08:00-18:00")
    assert hours.next_open(at(0, 9)) == at(0, 9)  # already open
    assert hours.next_open(at(0, 6, 30)) == at(0, 8)
    assert hours.next_open(at(0, 18)) == at(1, 8)
    assert hours.next_open(at(4, 19)) == at(7, 8)  # Friday evening -> Monday
    assert hours.next_open(at(5, 12)) == at(7, 8)
    assert hours.next_open(at(4, 19)).tzinfo is AMS


def test_next_open_past_midnight() -> None:
    hours = Hours.parse("sat 22:00-02:00")
    assert hours.next_open(at(6, 1)) == at(6, 1)  # Sunday 01:00 is still Saturday night
    assert hours.next_open(at(6, 3)) == at(12, 22)  # then next Saturday 22:00


def test_next_open_of_hours_that_are_never_open() -> None:
    never = Hours("nothing")
    with pytest.raises(ValueError, match=r"^hours 'nothing' are never open$"):
        never.next_open(at(0, 0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"cannot read hours ''; {ADVICE}"),
        ("weekdays", f"cannot read hours 'weekdays'; {ADVICE}"),
        ("mon-fri 8:00-18:00", f"cannot read hours 'mon-fri 8:00-18:00'; {ADVICE}"),
        ("mon-fri 08:00", f"cannot read hours 'mon-fri 08:00'; {ADVICE}"),
        (
            "mon-fri 08:00-18:00,",
            f"cannot read hours 'mon-fri 08:00-18:00,'; {ADVICE}",
        ),
        (
            "mon 08:00-18:00; tue 08:00-18:00",
            f"cannot read hours 'mon 08:00-18:00; tue 08:00-18:00'; {ADVICE}",
        ),
        (
            "mon-fry 08:00-18:00",
            "unknown day 'fry' in 'mon-fry 08:00-18:00'; use mon, tue, ..., sun",
        ),
        ("maa 08:00-18:00", "unknown day 'maa' in 'maa 08:00-18:00'; use mon, tue, ..., sun"),
        ("mon 08:00-25:00", "invalid time '25:00' in 'mon 08:00-25:00'"),
        ("mon 08:60-09:00", "invalid time '08:60' in 'mon 08:60-09:00'"),
        ("mon 09:00-09:00", "empty window in 'mon 09:00-09:00'"),
        ("mon 24:00-08:00", "a window cannot start at 24:00 in 'mon 24:00-08:00'; use 00:00"),
        ("mon ٠٨:٠٠-١٨:٠٠", f"cannot read hours 'mon ٠٨:٠٠-١٨:٠٠'; {ADVICE}"),
    ],
)
def test_bad_texts_are_refused_naming_the_part(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r".") as caught:
        Hours.parse(text)
    assert str(caught.value) == message


_windows = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "mon",
                "tue",
                "wed",
                "thu",
                "fri",
                "sat",
                "sun",
                "daily",
                "mon-fri",
                "sat-sun",
                "fri-mon",
            ]
        ),
        st.integers(0, 23),
        st.sampled_from([0, 15, 30, 45]),
        st.integers(0, 24),
        st.sampled_from([0, 15, 30, 45]),
    ).filter(
        lambda w: (w[1], w[2]) != (w[3], w[4] if w[3] < 24 else 0) and not (w[3] == 24 and w[4])
    ),
    min_size=1,
    max_size=3,
)


def _text(windows: list[tuple[str, int, int, int, int]]) -> str:
    return ", ".join(f"{d} {h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}" for d, h1, m1, h2, m2 in windows)


@settings(max_examples=60, deadline=None)
@given(
    _windows,
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
)
def test_next_open_is_the_first_open_minute(
    windows: list[tuple[str, int, int, int, int]], moment: datetime
) -> None:
    hours = Hours.parse(_text(windows))
    found = hours.next_open(moment)
    assert found >= moment
    assert found - moment < timedelta(days=8)
    assert hours.is_open(found)
    # windows start on whole minutes: no minute before it is open
    probe = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while probe < found:
        assert not hours.is_open(probe), probe
        probe += timedelta(minutes=1)
