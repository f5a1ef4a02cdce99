"""Working-day deadlines ("2wd"): parsing, the calendar (weekends, Dutch public
holidays, closing days from a hook, daylight saving), the engine's scheduling, the
verifier's longest span, and SystemClock(tz=...)."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lastresort as lr
from lastresort.protocol.conversion import format_duration, parse_deadline_duration
from lastresort.protocol.model import WorkingDays
from lastresort.protocol.workdays import WorkingCalendar, due_after, longest_span
from lastresort.verifier.bounds import WORKING_DAY_HORIZON, span
from tests.conftest import TASKFORCE

AMS = ZoneInfo("Europe/Amsterdam")
CAL = WorkingCalendar("Europe/Amsterdam")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=AMS)  # type: ignore[misc]


def local(moment: datetime) -> datetime:
    return moment.astimezone(AMS)


def _data(after: str = "2wd", **header: Any) -> dict[str, Any]:
    data = lr.dump_protocol(lr.load_protocol(TASKFORCE))
    data["steps"]["arrived"]["deadline"]["after"] = after
    data["protocol"].update(header)
    return data


# -- the file format ----------------------------------------------------------------


def test_working_days_parse_dump_and_round_trip() -> None:
    assert parse_deadline_duration("2wd") == WorkingDays(2)
    assert parse_deadline_duration("45m") == timedelta(minutes=45)
    assert format_duration(WorkingDays(5)) == "5wd"
    protocol = lr.load_protocol(_data("2wd"))
    assert protocol.steps["arrived"].deadline is not None
    assert protocol.steps["arrived"].deadline.after == WorkingDays(2)
    assert protocol.timezone == "Europe/Amsterdam"  # the default
    dumped = lr.dump_protocol(protocol)
    assert dumped["steps"]["arrived"]["deadline"]["after"] == "2wd"
    assert "timezone" not in dumped["protocol"]  # the default is left out
    assert lr.load_protocol(dumped) == protocol
    other = lr.load_protocol(_data("1wd", timezone="Europe/Brussels"))
    assert lr.dump_protocol(other)["protocol"]["timezone"] == "Europe/Brussels"


@pytest.mark.parametrize(
    ("after", "problem"),
    [
        ("0wd", "$.steps.arrived.deadline.after: must be longer than zero"),
        ("251wd", "$.steps.arrived.deadline.after: 251wd is too long; a deadline is at most 250wd"),
        ("2 wd", "$.steps.arrived.deadline.after: invalid duration '2 wd'"),
        ("2wd3h", "$.steps.arrived.deadline.after: invalid duration '2wd3h'"),
        ("-2wd", "$.steps.arrived.deadline.after: invalid duration '-2wd'"),
    ],
)
def test_bad_working_days_are_located_errors(after: str, problem: str) -> None:
    data = _data(after)
    before = copy.deepcopy(data)
    with pytest.raises(lr.ProtocolError) as info:
        lr.load_protocol(data)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems
    assert data == before  # the input is left as it was


def test_too_many_working_days_are_refused_even_unchecked() -> None:
    with pytest.raises(lr.ProtocolError, match="at most 250wd"):
        lr.load_protocol(_data("9999wd"), check=False)


def test_working_days_are_only_for_deadlines() -> None:
    data = _data("1h")
    data["parties"]["expert"]["response"]["median"] = "2wd"
    with pytest.raises(lr.ProtocolError) as info:
        lr.load_protocol(data)
    assert any(
        p.startswith("$.parties.expert.response.median: invalid duration '2wd'")
        for p in info.value.problems
    )


@pytest.mark.parametrize("check", [True, False])
def test_an_unknown_time_zone_is_a_located_error(check: bool) -> None:
    data = _data("2wd", timezone="Europe/Amsterdm")
    with pytest.raises(lr.ProtocolError) as info:
        lr.load_protocol(data, check=check)
    assert info.value.problems == [
        "$.protocol.timezone: unknown time zone 'Europe/Amsterdm' (did you mean"
        " 'Europe/Amsterdam'?); use an IANA name such as 'Europe/Amsterdam'"
    ]


@pytest.mark.parametrize("zone", ["", " Europe/Amsterdam", "../../etc/passwd", "x" * 500])
def test_malformed_time_zones_are_refused(zone: str) -> None:
    with pytest.raises(lr.ProtocolError) as info:
        lr.load_protocol(_data("2wd", timezone=zone))
    assert any(p.startswith("$.protocol.timezone: unknown time zone") for p in info.value.problems)
    assert all(len(p) < 300 for p in info.value.problems)  # a long name is shortened


def test_a_located_time_zone_error_names_the_line(tmp_path: Any) -> None:
    import tomli_w

    path = tmp_path / "p.toml"
    path.write_text(tomli_w.dumps(_data("2wd", timezone="Mars/Olympus")), encoding="utf-8")
    with pytest.raises(lr.ProtocolError) as info:
        lr.load_protocol(path)
    assert info.value.located is not None
    assert any(":" in line and "timezone" in line for line in info.value.located)


# -- the calendar -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "count", "due"),
    [
        (at(2026, 12, 4, 16), 2, at(2026, 12, 8, 16)),  # Friday 16:00 -> Tuesday 16:00
        (at(2026, 12, 7, 9), 1, at(2026, 12, 8, 9)),  # Monday -> Tuesday
        (at(2026, 12, 5, 10), 2, at(2026, 12, 9, 0)),  # Saturday -> Wednesday 00:00
        (at(2026, 12, 6, 23, 59), 1, at(2026, 12, 8, 0)),  # Sunday late -> Tuesday 00:00
        (at(2026, 12, 7, 0), 1, at(2026, 12, 8, 0)),  # Monday 00:00 is on a working day
        # King's Day (Monday 27 April 2026)
        (at(2026, 4, 24, 16), 2, at(2026, 4, 29, 16)),
        (at(2026, 4, 27, 10), 1, at(2026, 4, 29, 0)),  # on King's Day itself
        # Christmas 2026: Friday 25 and Saturday 26 December
        (at(2026, 12, 24, 9), 2, at(2026, 12, 29, 9)),
        (at(2026, 12, 24, 9), 1, at(2026, 12, 28, 9)),
        # Easter 2026: Good Friday 3 April, Easter Monday 6 April
        (at(2026, 4, 2, 12), 1, at(2026, 4, 7, 12)),
        # New Year 2027 (Friday)
        (at(2026, 12, 31, 15), 1, at(2027, 1, 4, 15)),
    ],
)
def test_working_days_on_the_calendar(start: datetime, count: int, due: datetime) -> None:
    got = CAL.add(start.astimezone(UTC), count)
    assert got.tzinfo is UTC
    assert local(got) == due


def test_working_days_keep_the_wall_clock_across_daylight_saving() -> None:
    # summer time starts on Sunday 29 March 2026: Friday 16:00 CET -> Monday 16:00 CEST
    start = at(2026, 3, 27, 16)
    due = CAL.add(start, 1)
    assert local(due).hour == 16
    assert local(due).utcoffset() == timedelta(hours=2)
    assert due - start == timedelta(hours=71)  # elapsed time is an hour short
    # winter time starts on Sunday 25 October 2026: 73 hours of elapsed time
    start = at(2026, 10, 23, 16)
    due = CAL.add(start, 1)
    assert local(due).hour == 16
    assert local(due).utcoffset() == timedelta(hours=1)
    assert due - start == timedelta(hours=73)


def test_hours_stay_elapsed_time_across_daylight_saving() -> None:
    start = at(2026, 3, 28, 23, 0)  # 23:00 CET; 3h of real time later is 03:00 CEST
    due = due_after(start, timedelta(hours=3), CAL)
    assert due - start == timedelta(hours=3)
    assert local(due).hour == 3
    # 1d is 24 hours, not "the same time tomorrow"
    assert local(due_after(start, timedelta(days=1), CAL)).hour == 0


def test_working_days_need_a_calendar() -> None:
    with pytest.raises(ValueError, match="2wd needs a working-day calendar"):
        due_after(at(2026, 12, 4, 16), WorkingDays(2), None)


def test_a_closing_day_is_skipped() -> None:
    calendar = WorkingCalendar("Europe/Amsterdam", lambda year: [date(year, 12, 31)])
    # Wednesday 30 December 2026 + 1wd: 31 December closed, 1 January a holiday
    assert local(calendar.add(at(2026, 12, 30, 10), 1)) == at(2027, 1, 4, 10)
    assert local(CAL.add(at(2026, 12, 30, 10), 1)) == at(2026, 12, 31, 10)


def test_a_calendar_counts_in_its_own_time_zone() -> None:
    tokyo = WorkingCalendar("Asia/Tokyo")
    # Friday 20:00 in Amsterdam is already Saturday 04:00 in Tokyo: a day off there
    start = at(2026, 12, 4, 20)
    assert local(CAL.add(start, 1)) == at(2026, 12, 7, 20)
    assert tokyo.add(start, 1) == datetime(2026, 12, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


# -- the longest span (verifier) ----------------------------------------------------


def test_longest_spans_over_the_horizon() -> None:
    horizon = range(2026, 2028)
    # the Thursday before Good Friday at 00:00: Friday, the weekend and Easter Monday off
    assert longest_span(WorkingDays(1), CAL, horizon) == timedelta(days=5)
    assert longest_span(WorkingDays(2), CAL, horizon) == timedelta(days=6)
    assert longest_span(timedelta(hours=3), CAL, horizon) == timedelta(hours=3)


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2035, 12, 20), timezones=st.just(AMS)
    ),
    count=st.integers(min_value=1, max_value=10),
)
def test_no_start_in_the_horizon_exceeds_the_longest_span(start: datetime, count: int) -> None:
    bound = longest_span(WorkingDays(count), CAL, WORKING_DAY_HORIZON)
    due = CAL.add(start, count)
    assert timedelta(0) < due - start.astimezone(UTC) <= bound


# -- the engine ---------------------------------------------------------------------


def _engine(after: str = "2wd", start: datetime | None = None, plugins: Any = ()) -> lr.Engine:
    protocol = lr.load_protocol(_data(after))
    return lr.Engine(
        protocols=[protocol],
        store=lr.MemoryStore(),
        clock=lr.VirtualClock(start or at(2026, 12, 4, 16)),
        plugins=list(plugins),
        entry_points=False,
    )


def test_an_encounter_gets_a_working_day_deadline() -> None:
    engine = _engine("2wd")
    enc = engine.open("taskforce", actor=lr.Actor("counter", "c-1"))
    (deadline,) = engine.deadlines(enc.id)
    assert local(deadline.due) == at(2026, 12, 8, 16)  # Friday 16:00 -> Tuesday 16:00
    assert isinstance(engine.clock, lr.VirtualClock)
    engine.clock.set(at(2026, 12, 8, 15, 59))
    assert engine.tick() == []
    engine.clock.set(at(2026, 12, 8, 16))
    assert [e.event for e in engine.tick() if hasattr(e, "event")][:1] == ["expert_not_called"]


def test_lastresort_closing_days_moves_a_working_day_deadline() -> None:
    asked: list[tuple[str, int]] = []

    class TownHall:
        @lr.hookimpl
        def lastresort_closing_days(self, protocol: lr.Protocol, year: int) -> list[date]:
            asked.append((protocol.id, year))
            return [date(2026, 12, 7), date(2025, 12, 8)]  # another year's day is ignored

    engine = _engine("2wd", plugins=[TownHall()])
    enc = engine.open("taskforce", actor=lr.Actor("counter", "c-1"))
    (deadline,) = engine.deadlines(enc.id)
    assert local(deadline.due) == at(2026, 12, 9, 16)  # Monday closed: Wednesday
    engine.open("taskforce", actor=lr.Actor("counter", "c-1"))
    assert asked == [("taskforce", 2026)]  # asked once per protocol and year


class _Raises:
    @lr.hookimpl
    def lastresort_closing_days(self, protocol: lr.Protocol, year: int) -> list[date]:
        raise RuntimeError("calendar service down")


class _Datetimes:
    @lr.hookimpl
    def lastresort_closing_days(self, protocol: lr.Protocol, year: int) -> list[datetime]:
        return [datetime(2026, 12, 7, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("plugin", "problem"),
    [
        (_Raises(), "raised RuntimeError"),
        (_Datetimes(), "returned datetime; expected a list of datetime.date"),
    ],
)
def test_lastresort_closing_days_failing_is_an_error_that_changes_nothing(
    plugin: object, problem: str
) -> None:
    engine = _engine("2wd", plugins=[plugin])
    with pytest.raises(lr.PluginLoadError) as info:
        engine.open("taskforce", actor=lr.Actor("counter", "c-1"))
    assert problem in str(info.value)
    assert info.value.plugin is not None
    assert "calendar service down" not in str(info.value)  # the plugin's text is not echoed
    assert list(engine.store.encounter_ids()) == []  # nothing was opened
    assert engine.store.next_due() is None


def test_a_protocol_without_working_days_never_asks_the_hook() -> None:
    engine = _engine("15m", plugins=[_Raises()])
    enc = engine.open("taskforce", actor=lr.Actor("counter", "c-1"))
    assert engine.get(enc.id).state == "arrived"


def test_the_verifier_counts_working_days_at_their_longest() -> None:
    protocol = lr.load_protocol(_data("1wd"))
    deadline = protocol.steps["arrived"].deadline
    assert deadline is not None
    assert span(protocol, deadline) == timedelta(days=5)
    report = lr.verify(protocol)
    (expert,) = [b for b in report.bounds if b.goal == "child_with_expert"]
    assert expert.worst is not None
    assert expert.worst >= timedelta(days=5)


# -- SystemClock(tz=...) ------------------------------------------------------------


def test_system_clock_defaults_to_utc() -> None:
    now = lr.SystemClock().now()
    assert now.tzinfo is UTC
    assert repr(lr.SystemClock()) == "SystemClock()"


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", AMS])
def test_system_clock_in_a_time_zone(zone: str | ZoneInfo) -> None:
    clock = lr.SystemClock(tz=zone)
    before = datetime.now(UTC)
    now = clock.now()
    after = datetime.now(UTC)
    assert now.tzinfo == AMS
    assert before <= now <= after  # the same instant, shown in the zone
    assert repr(clock) == "SystemClock(tz='Europe/Amsterdam')"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", 3, None.__class__])
def test_system_clock_refuses_an_unknown_zone(zone: Any) -> None:
    with pytest.raises(lr.InvalidArgument) as info:
        lr.SystemClock(tz=zone)
    assert info.value.call == "SystemClock"
    assert info.value.argument == "tz"


def test_working_days_survive_an_scxml_round_trip() -> None:
    from lastresort.render.scxml import from_scxml, to_scxml

    protocol = lr.load_protocol(_data("2wd", timezone="Europe/Brussels"))
    text = to_scxml(protocol)
    assert 'lr:after="2wd"' in text
    assert 'delay="' not in text.split('id="lr.deadline.arrived"')[1].split(">")[0]
    assert from_scxml(text) == protocol


def test_a_card_and_a_diagram_name_working_days_in_their_language() -> None:
    # merged with the one-language cards: a working-day deadline is "2 werkdagen" in
    # Dutch and "2 working days" in English (it was a type error in both renderers)
    protocol = lr.load_protocol(_data("2wd"))
    assert "2 werkdagen" in lr.protocol_card(protocol, "nl")
    assert "2 working days" in lr.protocol_card(protocol, "en")
    assert "1 werkdag" in lr.protocol_card(lr.load_protocol(_data("1wd")), "nl")
    assert "2 werkdagen" in lr.to_mermaid(protocol, "nl")
