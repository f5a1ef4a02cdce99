"""The huisverbod order protocol through the public API: Veilig Thuis consulted before the
order, the oral order in urgent cases, the 24-hour contact-address checkpoint, the 10-day
expiry, extension to at most 28 days by the mayor alone, withdrawal, acute danger before the
order, refused orders against a minor, refused extension and withdrawal by the mandated
officer, the plugin's guards, its protocol check, its verifier property and its directory."""

from __future__ import annotations

import importlib.metadata
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import lastresort_huisverbod as hv
import pytest
from attrs import evolve

import lastresort as lr
from lastresort.cli import main
from lastresort.store import audit
from lastresort.testing import assert_protocol_safe, make_engine, pseudonymous, snapshot

ROOT = Path(__file__).resolve().parents[3]
TOML = ROOT / "plugins/huisverbod/src/lastresort_huisverbod/huisverbod.toml"
AMS = ZoneInfo("Europe/Amsterdam")
NIGHT = datetime(2026, 3, 7, 2, 40, tzinfo=AMS)  # a Saturday night call-out
ADULT: dict[str, str | bool] = {"subject": "adult", "urgent": False}
URGENT: dict[str, str | bool] = {"subject": "adult", "urgent": True}
DAY = timedelta(days=1)


@pytest.fixture
def setup() -> tuple[lr.Engine, lr.VirtualClock]:
    return make_engine(plugins=[hv], start=NIGHT)


def state(engine: lr.Engine, encounter_id: str) -> str:
    return engine.get(encounter_id).state


def told(engine: lr.Engine, encounter_id: str, event: str) -> list[str]:
    return sorted(n.party for n in engine.outbox(encounter_id) if n.event == event)


def imposed(
    engine: lr.Engine, facts: dict[str, str | bool] = ADULT, event: str = "impose"
) -> tuple[lr.Encounter, datetime]:
    """An order imposed by the mandated officer after consulting Veilig Thuis."""
    order = engine.open(hv.PROTOCOL_ID, lr.Actor("officer", "officer-1"), facts=facts)
    engine.fire(order.id, "consult_veilig_thuis", lr.Actor("officer", "officer-1"))
    engine.fire(order.id, "veilig_thuis_consulted", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    engine.fire(order.id, event, lr.Actor("officer", "officer-1"))
    assert state(engine, order.id) == "first_day"
    return engine.get(order.id), engine.clock.now()


def run_to(engine: lr.Engine, clock: lr.VirtualClock, moment: datetime) -> None:
    """Move the clock to ``moment`` one deadline at a time, ticking at each."""
    while (due := engine.next_deadline()) is not None and due <= moment:
        clock.set(max(clock.now(), due))
        engine.tick()
    clock.set(moment)
    engine.tick()


# -- the protocol ----------------------------------------------------------------------------


def test_protocol_loads_round_trips_and_is_safe() -> None:
    protocol = hv.protocol()
    assert protocol.kind is lr.ProtocolKind.ORDER
    assert protocol == lr.load_protocol(TOML)
    assert lr.load_protocol(lr.dump_protocol(protocol)) == protocol
    assert protocol.requirements.max_order_duration == timedelta(days=28)
    report = assert_protocol_safe(protocol, plugins=[hv])
    for name in ("order-adult-only", "order-consult-first", "order-cap", "order-mayor-only"):
        assert report.result(name).ok
        assert report.result(name).applicable
    assert report.result(hv.PROPERTY_TEN_DAYS).ok
    (cap,) = report.bounds
    assert cap.worst == timedelta(days=28)


def test_registered_under_the_lastresort_entry_point() -> None:
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="lastresort")}
    assert found.get("huisverbod") == "lastresort_huisverbod"


def test_card_in_dutch_is_for_the_officer_and_the_mayor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(TOML), "--lang", "nl"]) == 0
    card = capsys.readouterr().out
    assert "Hulpofficier van justitie" in card
    assert "Veilig Thuis" in card
    assert "10 dagen" in card


# -- the 10 days ----------------------------------------------------------------------------------


def test_order_ends_exactly_ten_days_after_imposing(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    assert told(engine, order.id, "impose") == ["mayor", "veilig_thuis"]
    assert hv.order_ends_at(engine, order.id) == start + timedelta(days=10)
    # the contact-address checkpoint, 24 hours after imposing
    clock.advance(timedelta(hours=23, minutes=59))
    assert engine.tick() == []
    clock.advance(timedelta(minutes=1))
    engine.tick()
    assert state(engine, order.id) == "in_force"
    assert told(engine, order.id, "contact_address_due") == ["mayor", "officer", "veilig_thuis"]
    assert hv.order_ends_at(engine, order.id) == start + timedelta(days=10)
    # day 8: the mayor is asked to decide on extension
    run_to(engine, clock, start + timedelta(days=8))
    assert state(engine, order.id) == "extension_decision"
    assert told(engine, order.id, "extension_decision_due") == ["mayor", "veilig_thuis"]
    assert hv.order_ends_at(engine, order.id) == start + timedelta(days=10)
    run_to(engine, clock, start + timedelta(days=10) - timedelta(seconds=1))
    assert state(engine, order.id) == "extension_decision"
    run_to(engine, clock, start + timedelta(days=10))
    ended = engine.get(order.id)
    assert ended.state == "expired"
    assert ended.closed_at == start + timedelta(days=10)
    assert hv.order_ends_at(engine, order.id) is None
    assert engine.deadlines(order.id) == []


def test_oral_order_in_an_urgent_case_runs_the_same_ten_days(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, clock = setup
    order, start = imposed(engine, URGENT, "impose_orally")
    run_to(engine, clock, start + timedelta(days=10))
    assert engine.get(order.id).state == "expired"
    assert engine.get(order.id).closed_at == start + timedelta(days=10)


def test_oral_order_refused_when_not_urgent_and_nothing_changes(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, _ = setup
    order = engine.open(hv.PROTOCOL_ID, lr.Actor("officer", "officer-1"), facts=ADULT)
    engine.fire(order.id, "consult_veilig_thuis", lr.Actor("officer", "officer-1"))
    engine.fire(order.id, "veilig_thuis_consulted", lr.Actor("officer", "officer-1"))
    before = snapshot(engine, order.id)
    assert "impose_orally" not in engine.allowed(order.id, "officer")
    with pytest.raises(lr.GuardRefused, match=r"urgent") as refused:
        engine.fire(order.id, "impose_orally", lr.Actor("officer", "officer-1"))
    assert refused.value.guard == hv.GUARD_URGENT
    assert snapshot(engine, order.id) == before
    engine.fire(order.id, "impose", lr.Actor("officer", "officer-1"))
    assert state(engine, order.id) == "first_day"


# -- extension: the mayor alone, at most 28 days in total -----------------------------------------


@pytest.mark.parametrize(
    ("decided_after", "until_after"),
    [
        (timedelta(days=1, hours=2), timedelta(days=28)),  # day 2, to the full four weeks
        (timedelta(days=3), timedelta(days=14)),
        (timedelta(days=8, hours=2), timedelta(days=21, hours=6)),
        (timedelta(days=10) - timedelta(minutes=1), timedelta(days=10, minutes=1)),
    ],
)
def test_extension_runs_to_the_date_the_mayor_chooses(
    setup: tuple[lr.Engine, lr.VirtualClock], decided_after: timedelta, until_after: timedelta
) -> None:
    """On main an extension ran 18 days from the decision: on day 2 it ended at day 19,
    on day 9 at day 26. The law: to a date the mayor chooses, at most 4 weeks after
    imposing (counted in UTC here, so no daylight saving reading applies)."""
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + decided_after)
    until = start.astimezone(UTC) + until_after
    engine.fire(order.id, "extend", lr.Actor("mayor", "bgm-1"), until=until)
    assert state(engine, order.id) == "extended"
    assert told(engine, order.id, "extend") == ["officer", "veilig_thuis"]
    assert hv.order_ends_at(engine, order.id) == until
    [pending] = engine.deadlines(order.id)
    assert pending.due == until
    assert pending.due.tzinfo == UTC
    run_to(engine, clock, until - timedelta(seconds=1))
    assert state(engine, order.id) == "extended"
    run_to(engine, clock, until)
    ended = engine.get(order.id)
    assert ended.state == "expired"
    assert ended.closed_at is not None
    assert ended.closed_at.astimezone(UTC) == until


def test_extension_to_the_full_four_weeks_across_daylight_saving(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    """Imposed on 7 March 02:40 (CET); summer time starts on 29 March. Four weeks later
    is 4 April 02:40 on the calendar (CEST) but 03:40 in elapsed time: the earlier
    holds, whichever way the law is read."""
    engine, clock = setup
    order, start = imposed(engine)
    assert start == NIGHT
    run_to(engine, clock, start + timedelta(days=9))
    calendar = datetime(2026, 4, 4, 2, 40, tzinfo=AMS)
    assert calendar.utcoffset() == timedelta(hours=2)
    before = snapshot(engine, order.id)
    for late in (calendar + timedelta(minutes=1), start.astimezone(UTC) + timedelta(days=28)):
        with pytest.raises(lr.InvalidArgument, match=r"no later than 2026-04-04T02:40:00\+02:00"):
            engine.fire(
                order.id, "extend", lr.Actor("mayor", "mayor-1"), until=late.astimezone(AMS)
            )
        assert snapshot(engine, order.id) == before
    engine.fire(order.id, "extend", lr.Actor("mayor", "mayor-1"), until=calendar)
    [pending] = engine.deadlines(order.id)
    assert pending.due == calendar.astimezone(UTC)
    run_to(engine, clock, calendar)
    assert state(engine, order.id) == "expired"
    assert engine.get(order.id).closed_at == calendar


@pytest.mark.parametrize(
    ("until", "message"),
    [
        (NIGHT + timedelta(days=28, minutes=1), "no later than"),
        (NIGHT + timedelta(days=60), "no later than"),
        (NIGHT + timedelta(days=9), "later than now"),  # now
        (NIGHT + timedelta(days=2), "later than now"),  # the past
        (datetime(2026, 3, 20, 12, 0), "naive datetime"),
        ("2026-03-20", "timezone-aware datetime"),
        (None, "step 'extended'"),
    ],
)
def test_a_wrong_extension_date_is_refused_and_nothing_changes(
    setup: tuple[lr.Engine, lr.VirtualClock], until: Any, message: str
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=9))
    before = snapshot(engine, order.id)
    with pytest.raises(lr.InvalidArgument, match=message) as refused:
        engine.fire(order.id, "extend", lr.Actor("mayor", "mayor-1"), until=until)
    assert refused.value.argument == "until"
    assert "nothing was changed" in str(refused.value)
    assert snapshot(engine, order.id) == before


def test_a_date_for_a_step_without_a_chosen_deadline_is_refused(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=9))
    before = snapshot(engine, order.id)
    with pytest.raises(lr.InvalidArgument, match="no deadline whose date the caller chooses"):
        engine.fire(
            order.id, "withdraw", lr.Actor("mayor", "mayor-1"), until=start + timedelta(days=12)
        )
    assert snapshot(engine, order.id) == before


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_the_chosen_date_survives_a_restart(tmp_path: Path, backend: str) -> None:
    clock = lr.VirtualClock(NIGHT)

    def store() -> lr.Store:
        return lr.MemoryStore() if backend == "memory" else lr.SQLiteStore(tmp_path / "o.db")

    kept = store()
    engine = lr.Engine(plugins=[hv], store=kept, clock=clock, entry_points=False)
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=9))
    until = datetime(2026, 3, 30, 9, 0, tzinfo=AMS)  # after the change to summer time
    engine.fire(order.id, "extend", lr.Actor("mayor", "mayor-1"), until=until)
    if backend == "sqlite":
        kept.close()
        kept = store()
    again = lr.Engine(plugins=[hv], store=kept, clock=clock, entry_points=False)
    assert again.get(order.id).state == "extended"
    assert [d.due for d in again.deadlines(order.id)] == [until.astimezone(UTC)]
    assert hv.order_ends_at(again, order.id) == until
    run_to(again, clock, until)
    assert again.get(order.id).state == "expired"
    if backend == "sqlite":
        kept.close()
        report = audit.verify(tmp_path / "o.db")
        assert report.ok, report


def test_an_order_is_extended_once(setup: tuple[lr.Engine, lr.VirtualClock]) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=9))
    engine.fire(order.id, "extend", lr.Actor("mayor", "mayor-1"), until=start + timedelta(days=20))
    before = snapshot(engine, order.id)
    with pytest.raises(lr.TransitionNotAllowed, match="extended"):
        engine.fire(
            order.id, "extend", lr.Actor("mayor", "mayor-1"), until=start + timedelta(days=25)
        )
    assert snapshot(engine, order.id) == before


def test_extension_is_not_possible_on_the_first_day(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, _ = setup
    order, _ = imposed(engine)
    before = snapshot(engine, order.id)
    with pytest.raises(lr.TransitionNotAllowed):
        engine.fire(order.id, "extend", lr.Actor("mayor", "mayor-1"))
    assert snapshot(engine, order.id) == before


@pytest.mark.parametrize("actor", ["officer", "veilig_thuis", lr.Actor("officer", "hovj-17")])
def test_mandated_officer_may_not_extend_and_nothing_changes(
    setup: tuple[lr.Engine, lr.VirtualClock], actor: str | lr.Actor
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=8, hours=1))
    before = snapshot(engine, order.id)
    with pytest.raises(lr.NotPermitted) as refused:
        engine.fire(order.id, "extend", pseudonymous(actor))
    assert refused.value.allowed == ["mayor"]
    assert "extension_decision" in str(refused.value)
    assert snapshot(engine, order.id) == before
    assert "extend" not in engine.allowed(order.id, actor)
    assert "extend" in engine.allowed(order.id, "mayor")


# -- appeal and provisional relief ---------------------------------------------------------------


@pytest.mark.parametrize("after", [timedelta(hours=5), timedelta(days=3), timedelta(days=9)])
def test_the_court_sets_the_order_aside_and_it_ends(
    setup: tuple[lr.Engine, lr.VirtualClock], after: timedelta
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + after)
    engine.fire(order.id, "court_sets_aside", lr.Actor("mayor", "mayor-1"))
    ended = engine.get(order.id)
    assert ended.state == "set_aside"
    assert ended.closed_at == start + after
    assert engine.deadlines(order.id) == []
    assert told(engine, order.id, "court_sets_aside") == ["officer", "police", "veilig_thuis"]


def test_a_suspended_order_keeps_its_end_ten_days_after_imposing(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    """Schorsing (Awb art. 8:81) takes away the order's effect, not its end: the order
    imposed for 10 days still ends 10 days after imposing (and the clock crosses the
    change to summer time here: 10 days of elapsed time, like the unsuspended order)."""
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=2, hours=3))
    engine.fire(order.id, "court_suspends", lr.Actor("mayor", "mayor-1"))
    assert state(engine, order.id) == "suspended"
    assert hv.order_ends_at(engine, order.id) is None  # not in force while suspended
    [pending] = engine.deadlines(order.id)
    assert pending.due == start.astimezone(UTC) + timedelta(days=10)
    assert pending.event == "suspended_order_ends"
    run_to(engine, clock, start + timedelta(days=10))
    assert state(engine, order.id) == "expired"


def test_a_lifted_suspension_puts_the_order_in_force_until_the_same_end(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=3))
    engine.fire(order.id, "court_suspends", lr.Actor("mayor", "mayor-1"))
    clock.advance(timedelta(days=3))
    engine.fire(order.id, "court_lifts_suspension", lr.Actor("mayor", "mayor-1"))
    assert state(engine, order.id) == "resumed"
    end = start.astimezone(UTC) + timedelta(days=10)
    assert hv.order_ends_at(engine, order.id) == end
    # still the mayor's to extend, to at most four weeks after imposing
    assert "extend" in engine.allowed(order.id, "mayor")
    run_to(engine, clock, end)
    assert state(engine, order.id) == "expired"


def test_a_suspended_extension_keeps_the_date_the_mayor_chose(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=9))
    until = datetime(2026, 3, 31, 18, 0, tzinfo=AMS)
    engine.fire(order.id, "extend", lr.Actor("mayor", "mayor-1"), until=until)
    clock.advance(timedelta(days=2))
    engine.fire(order.id, "court_suspends", lr.Actor("mayor", "mayor-1"))
    assert state(engine, order.id) == "extension_suspended"
    assert [d.due for d in engine.deadlines(order.id)] == [until.astimezone(UTC)]
    clock.advance(timedelta(days=2))
    engine.fire(order.id, "court_lifts_suspension", lr.Actor("mayor", "mayor-1"))
    assert state(engine, order.id) == "extension_resumed"
    assert hv.order_ends_at(engine, order.id) == until
    run_to(engine, clock, until)
    assert state(engine, order.id) == "expired"


@pytest.mark.parametrize("event", ["court_suspends", "court_sets_aside", "court_lifts_suspension"])
def test_only_the_mayor_records_the_courts_decision_and_nothing_changes(
    setup: tuple[lr.Engine, lr.VirtualClock], event: str
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=2))
    if event == "court_lifts_suspension":
        engine.fire(order.id, "court_suspends", lr.Actor("mayor", "mayor-1"))
    before = snapshot(engine, order.id)
    with pytest.raises(lr.NotPermitted):
        engine.fire(order.id, event, lr.Actor("officer", "officer-1"))
    assert snapshot(engine, order.id) == before


def test_before_the_order_there_is_nothing_to_appeal(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, _ = setup
    order = engine.open(hv.PROTOCOL_ID, lr.Actor("officer", "officer-1"), facts=ADULT)
    before = snapshot(engine, order.id)
    for event in ("court_suspends", "court_sets_aside"):
        with pytest.raises(lr.TransitionNotAllowed):
            engine.fire(order.id, event, lr.Actor("mayor", "mayor-1"))
    assert snapshot(engine, order.id) == before


# -- withdrawal -----------------------------------------------------------------------------------


@pytest.mark.parametrize("after", [timedelta(hours=3), timedelta(days=4), timedelta(days=9)])
def test_the_mayor_withdraws_at_any_time_in_force(
    setup: tuple[lr.Engine, lr.VirtualClock], after: timedelta
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + after)
    engine.fire(order.id, "withdraw", lr.Actor("mayor", "mayor-1"))
    ended = engine.get(order.id)
    assert ended.state == "withdrawn"
    assert ended.closed_at == start + after
    assert engine.deadlines(order.id) == []
    assert told(engine, order.id, "withdraw") == ["officer", "veilig_thuis"]


def test_withdrawal_of_an_extended_order(setup: tuple[lr.Engine, lr.VirtualClock]) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=9))
    engine.fire(order.id, "extend", lr.Actor("mayor", "mayor-1"), until=start + timedelta(days=20))
    clock.advance(timedelta(days=5))
    engine.fire(order.id, "withdraw", lr.Actor("mayor", "mayor-1"))
    assert state(engine, order.id) == "withdrawn"


def test_mandated_officer_may_not_withdraw_and_nothing_changes(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=2))
    before = snapshot(engine, order.id)
    with pytest.raises(lr.NotPermitted, match="mayor"):
        engine.fire(order.id, "withdraw", lr.Actor("officer", "officer-1"))
    assert snapshot(engine, order.id) == before


# -- adult only, Veilig Thuis first ---------------------------------------------------------------


@pytest.mark.parametrize("subject", ["minor", "child", "unknown"])
def test_order_against_a_minor_is_refused_and_nothing_is_stored(
    setup: tuple[lr.Engine, lr.VirtualClock], subject: str
) -> None:
    engine, _ = setup
    with pytest.raises(lr.FactsRefused) as refused:
        engine.open(hv.PROTOCOL_ID, lr.Actor("officer", "officer-1"), facts={"subject": subject})
    assert "subject" in str(refused.value)
    assert subject not in str(refused.value)  # the engine never echoes a refused value
    assert list(engine.store.encounter_ids()) == []
    assert engine.outbox() == []


def test_without_the_subject_fact_no_order_is_prepared(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, _ = setup
    order = engine.open(hv.PROTOCOL_ID, lr.Actor("officer", "officer-1"))
    before = snapshot(engine, order.id)
    with pytest.raises(lr.GuardRefused, match="only be imposed on an adult"):
        engine.fire(order.id, "consult_veilig_thuis", lr.Actor("officer", "officer-1"))
    assert snapshot(engine, order.id) == before
    engine.fire(order.id, "no_order", lr.Actor("officer", "officer-1"))
    assert state(engine, order.id) == "not_imposed"


@pytest.mark.parametrize("step", ["assessing", "consulting"])
def test_no_order_before_veilig_thuis_is_consulted(
    setup: tuple[lr.Engine, lr.VirtualClock], step: str
) -> None:
    engine, _ = setup
    order = engine.open(hv.PROTOCOL_ID, lr.Actor("officer", "officer-1"), facts=ADULT)
    if step == "consulting":
        engine.fire(order.id, "consult_veilig_thuis", lr.Actor("officer", "officer-1"))
    before = snapshot(engine, order.id)
    for event in hv.IMPOSE_EVENTS:
        with pytest.raises(lr.TransitionNotAllowed, match=step):
            engine.fire(order.id, event, lr.Actor("mayor", "mayor-1"))
    assert snapshot(engine, order.id) == before


def test_veilig_thuis_unreachable_is_re_alerted_every_hour(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, clock = setup
    order = engine.open(hv.PROTOCOL_ID, lr.Actor("officer", "officer-1"), facts=URGENT)
    engine.fire(order.id, "consult_veilig_thuis", lr.Actor("officer", "officer-1"))
    assert told(engine, order.id, "consult_veilig_thuis") == ["mayor", "veilig_thuis"]
    for hours in (1, 2):
        clock.advance(timedelta(hours=1))
        missed = [e for e in engine.tick() if isinstance(e, lr.DeadlineMissed)]
        assert [e.event for e in missed] == ["veilig_thuis_overdue"]
        assert len(told(engine, order.id, "veilig_thuis_overdue")) == 2 * hours
    assert state(engine, order.id) == "consulting"
    engine.fire(order.id, "veilig_thuis_consulted", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    engine.fire(order.id, "impose_orally", lr.Actor("officer", "officer-1"))
    assert state(engine, order.id) == "first_day"


def test_the_mayor_may_impose_personally(setup: tuple[lr.Engine, lr.VirtualClock]) -> None:
    engine, _ = setup
    order = engine.open(hv.PROTOCOL_ID, lr.Actor("mayor", "mayor-1"), facts=ADULT)
    engine.fire(order.id, "consult_veilig_thuis", lr.Actor("mayor", "mayor-1"))
    engine.fire(order.id, "veilig_thuis_consulted", lr.Actor("mayor", "mayor-1"))
    engine.fire(order.id, "impose", lr.Actor("mayor", "mayor-1"))
    assert state(engine, order.id) == "first_day"
    assert engine.get(order.id).responsible == "mayor"


# -- acute danger ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "actor"),
    [("assessing", "officer"), ("consulting", "veilig_thuis"), ("consulted", "mayor")],
)
def test_acute_danger_before_the_order_goes_to_the_police(
    setup: tuple[lr.Engine, lr.VirtualClock], step: str, actor: str
) -> None:
    engine, _ = setup
    order = engine.open(hv.PROTOCOL_ID, lr.Actor("officer", "officer-1"), facts=ADULT)
    route = ["consult_veilig_thuis", "veilig_thuis_consulted"]
    for event in route[: ["assessing", "consulting", "consulted"].index(step)]:
        engine.fire(order.id, event, lr.Actor("officer", "officer-1"))
    assert state(engine, order.id) == step
    events = engine.fire(order.id, "acute_danger", pseudonymous(actor))
    ended = engine.get(order.id)
    assert (ended.state, ended.responsible) == ("police_intervention", "police")
    assert ended.closed
    assert engine.deadlines(order.id) == []
    assert told(engine, order.id, "acute_danger") == ["mayor", "police"]
    assert [
        (e.from_party, e.to_party) for e in events if isinstance(e, lr.ResponsibilityTransferred)
    ] == [("mayor", "police")]


def test_during_the_order_acute_danger_leaves_the_order_in_force(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=3))
    before = snapshot(engine, order.id)
    with pytest.raises(lr.TransitionNotAllowed):
        engine.fire(order.id, "acute_danger", lr.Actor("officer", "officer-1"))
    assert snapshot(engine, order.id) == before
    assert hv.order_ends_at(engine, order.id) == start + timedelta(days=10)


# -- refused handovers -----------------------------------------------------------------------------


def test_responsibility_stays_with_the_mayor_under_mandate(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=9))
    engine.fire(order.id, "extend", lr.Actor("mayor", "mayor-1"), until=start + timedelta(days=21))
    transfers = [
        e for e in engine.timeline(order.id) if isinstance(e, lr.ResponsibilityTransferred)
    ]
    assert transfers == []
    assert {e.responsible for e in engine.timeline(order.id) if isinstance(e, lr.StepEntered)} == {
        "mayor"
    }


@pytest.mark.parametrize(
    ("event", "actor"),
    [("extend", "officer"), ("withdraw", "veilig_thuis"), ("order_expires", "mayor")],
)
def test_refused_transfers_of_the_mayors_own_decisions_change_nothing(
    setup: tuple[lr.Engine, lr.VirtualClock], event: str, actor: str
) -> None:
    engine, clock = setup
    order, start = imposed(engine)
    run_to(engine, clock, start + timedelta(days=8, hours=12))
    before = snapshot(engine, order.id)
    with pytest.raises(lr.NotPermitted):
        engine.fire(order.id, event, pseudonymous(actor))
    assert snapshot(engine, order.id) == before


# -- the plugin's protocol check, property and directory -------------------------------------------


def test_protocol_check_keeps_the_order_within_the_law() -> None:
    protocol = hv.protocol()
    transitions = tuple(
        evolve(t, by=("officer", "mayor")) if t.event in {"extend", "withdraw"} else t
        for t in protocol.transitions
    )
    broken = evolve(
        protocol,
        transitions=transitions,
        facts={
            **protocol.facts,
            "subject": lr.Fact(protocol.facts["subject"].kind, ("adult", "minor")),
        },
        requirements=evolve(protocol.requirements, max_order_duration=timedelta(days=30)),
    )
    with pytest.raises(lr.ProtocolError) as refused:
        lr.Engine(protocols=[broken], plugins=[hv], entry_points=False)
    text = "\n".join(refused.value.problems)
    assert "$.requirements.max_order_duration: 30d is more than the 28d" in text
    assert "$.facts.subject: must allow only 'adult'" in text
    assert len(re.findall(r"\$\.transitions\[\d+\]\.by: '(extend|withdraw)'", text)) == 2
    assert hv.lastresort_validate_protocol(protocol) == []
    missing = evolve(protocol, requirements=lr.Requirements(report_before_close=False))
    assert hv.lastresort_validate_protocol(missing) == [
        "$.requirements.max_order_duration: the huisverbod protocol must state it (at most 28d,"
        " Wet tijdelijk huisverbod art. 9)"
    ]
    assert hv.lastresort_validate_protocol(evolve(broken, id="elsewhere")) == []


def test_ten_days_property_catches_a_short_order() -> None:
    protocol = hv.protocol()
    short = evolve(
        protocol.steps["in_force"],
        deadline=lr.Deadline(timedelta(days=6), "extension_decision_due"),
    )
    broken = evolve(protocol, steps={**protocol.steps, "in_force": short})
    with pytest.raises(AssertionError, match=r"huisverbod-ten-days.*after 9d, not 10d"):
        assert_protocol_safe(broken, plugins=[hv])
    other = evolve(broken, id="elsewhere")
    assert hv.lastresort_protocol_properties(other) == []


def test_party_directory_gives_the_public_desks(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, _ = setup
    assert engine.on_duty(hv.PROTOCOL_ID, "veilig_thuis") == "Veilig Thuis 0800-2000 (24/7)"
    assert engine.on_duty(hv.PROTOCOL_ID, "police") == "112"
    assert engine.on_duty(hv.PROTOCOL_ID, "officer") is None


def test_docs_page_names_every_step_and_event() -> None:
    page = (ROOT / "docs/protocols/huisverbod.md").read_text(encoding="utf-8")
    protocol = hv.protocol()
    for key in [*protocol.steps, *{t.event for t in protocol.transitions}]:
        assert f"`{key}`" in page, key


def test_readme_example_runs() -> None:
    readme = (ROOT / "plugins/huisverbod/README.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", readme, re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    engine, order = namespace["engine"], namespace["order"]
    assert state(engine, order.id) == "expired"
