"""The veilig-thuis protocol through the public API: the worker at the counter in office
hours, the crisis service outside them, the mayor informed at the agreed moments (a meeting
is the worker's choice), a referral (no signs of unsafety) and a report (Veilig Thuis becomes
responsible), every
escalation fired by the virtual clock, acute danger, refused handovers, the plugin's guards,
its protocol check and its party directory."""

from __future__ import annotations

import importlib.metadata
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import lastresort_veilig_thuis as vt
import pytest
from attrs import evolve

import lastresort as lr
from lastresort.cli import main
from lastresort.testing import (
    assert_protocol_safe,
    make_engine,
    pseudonymous,
    snapshot,
    walk_happy_path,
)

ROOT = Path(__file__).resolve().parents[3]
TOML = ROOT / "plugins/veilig-thuis/src/lastresort_veilig_thuis/veilig_thuis.toml"
AMS = ZoneInfo("Europe/Amsterdam")
MONDAY = datetime(2026, 3, 2, 10, 5, tzinfo=AMS)  # office hours
FRIDAY_EVENING = datetime(2026, 3, 6, 21, 30, tzinfo=AMS)  # outside office hours
FACTS: dict[str, str | bool] = {"age_band": "12-15", "disclosure": True, "accompanied": False}
NO_DISCLOSURE: dict[str, str | bool] = {"age_band": "8-11", "disclosure": False}


def engine_at(start: datetime = MONDAY) -> tuple[lr.Engine, lr.VirtualClock]:
    return make_engine(plugins=[vt], start=start)


def where(engine: lr.Engine, encounter_id: str) -> tuple[str, str | None]:
    encounter = engine.get(encounter_id)
    return encounter.state, encounter.responsible


def told(engine: lr.Engine, encounter_id: str, event: str) -> list[str]:
    """The parties notified of ``event``, sorted (repeats included)."""
    return sorted(n.party for n in engine.outbox(encounter_id) if n.event == event)


def pending(engine: lr.Engine, encounter_id: str) -> list[tuple[str, timedelta]]:
    """Pending deadlines as (event, time from now)."""
    now = engine.clock.now()
    return [(d.event, d.due - now) for d in engine.deadlines(encounter_id)]


def handovers(engine: lr.Engine, encounter_id: str) -> list[tuple[str | None, str | None]]:
    return [
        (e.from_party, e.to_party)
        for e in engine.timeline(encounter_id)
        if isinstance(e, lr.ResponsibilityTransferred)
    ]


ROUTES: dict[str, list[tuple[str, str]]] = {
    "arrived": [],
    "awaiting_worker": [("call_veilig_thuis", "counter")],
    "with_worker": [("call_veilig_thuis", "counter"), ("worker_takes_over", "vt_worker")],
}
ROUTES["mayor_informed"] = [*ROUTES["with_worker"], ("inform_mayor", "vt_worker")]
ROUTES["awaiting_mayor"] = [*ROUTES["mayor_informed"], ("arrange_mayor_meeting", "vt_worker")]
ROUTES["mayor_met"] = [*ROUTES["awaiting_mayor"], ("mayor_spoke_with_child", "mayor")]
ROUTES["referred_on"] = [*ROUTES["mayor_informed"], ("refer_on", "vt_worker")]
ROUTES["reported"] = [*ROUTES["mayor_met"], ("report_accepted", "veilig_thuis")]


def at_step(
    engine: lr.Engine, step: str, facts: dict[str, str | bool] | None = None
) -> lr.Encounter:
    """Open an encounter (in office hours) and walk it to ``step`` by people's own events."""
    encounter = engine.open(
        vt.PROTOCOL_ID,
        lr.Actor("counter", "counter-1"),
        facts=NO_DISCLOSURE if facts is None else facts,
    )
    for event, actor in ROUTES[step]:
        engine.fire(encounter.id, event, pseudonymous(actor))
    assert engine.get(encounter.id).state == step
    return engine.get(encounter.id)


# -- the protocol ----------------------------------------------------------------------------


def test_protocol_loads_round_trips_and_is_safe() -> None:
    protocol = vt.protocol()
    assert protocol == lr.load_protocol(TOML)
    assert lr.load_protocol(lr.dump_protocol(protocol)) == protocol
    report = assert_protocol_safe(protocol, plugins=[vt])
    assert report.result("handover").ok
    assert report.result("mayor").ok
    assert {"refer_on", "report_accepted"} <= {t.event for t in protocol.transitions}
    # advice is the clerk's phone consultation, not a choice for the worker with the child
    assert "advice_accepted" not in {t.event for t in protocol.transitions}
    assert protocol.requirements.mayor_promise is lr.MayorPromise.INFORMED


def test_registered_under_the_lastresort_entry_point() -> None:
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="lastresort")}
    assert found.get("veilig_thuis") == "lastresort_veilig_thuis"
    assert [p.id for p in vt.lastresort_protocols()] == ["veilig-thuis"]


def test_card_in_dutch_names_the_worker_and_the_number(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(TOML), "--lang", "nl"]) == 0
    card = capsys.readouterr().out
    assert "Medewerker Veilig Thuis" in card
    assert "0800-2000" in card
    assert "Crisisdienst" in card


# -- happy paths --------------------------------------------------------------------------------


def test_demo_path_without_a_disclosure_is_a_referral_and_informs_the_mayor() -> None:
    engine, _ = engine_at()
    encounter = walk_happy_path(engine, vt.PROTOCOL_ID, facts=NO_DISCLOSURE)
    assert encounter.state == "closed_referred"
    assert encounter.closed
    assert handovers(engine, encounter.id) == [("counter", "vt_worker")]
    assert "mayor" in {n.party for n in engine.outbox(encounter.id)}
    # with a disclosure the same walk is refused at the referral: the report is the way
    with pytest.raises(lr.GuardRefused):
        walk_happy_path(engine, vt.PROTOCOL_ID, facts=FACTS)


def test_report_path_step_by_step() -> None:
    engine, clock = engine_at()
    encounter = engine.open(vt.PROTOCOL_ID, lr.Actor("counter", "counter-1"), facts=FACTS)
    assert pending(engine, encounter.id) == [("veilig_thuis_not_called", timedelta(minutes=15))]
    engine.fire(encounter.id, "call_veilig_thuis", lr.Actor("counter", "counter-1"))
    assert where(engine, encounter.id) == ("awaiting_worker", "counter")
    assert told(engine, encounter.id, "call_veilig_thuis") == ["mayor_staff", "vt_worker"]
    clock.advance(timedelta(minutes=30))
    engine.fire(encounter.id, "worker_takes_over", lr.Actor("vt_worker", "vt-worker-1"))
    assert where(engine, encounter.id) == ("with_worker", "vt_worker")
    assert pending(engine, encounter.id) == [("mayor_not_informed", timedelta(hours=1))]
    engine.fire(encounter.id, "inform_mayor", lr.Actor("vt_worker", "vt-worker-1"))
    assert told(engine, encounter.id, "inform_mayor") == ["mayor", "mayor_staff"]
    engine.fire(encounter.id, "arrange_mayor_meeting", lr.Actor("vt_worker", "vt-worker-1"))
    engine.fire(encounter.id, "mayor_spoke_with_child", lr.Actor("mayor", "mayor-1"))
    assert where(engine, encounter.id) == ("mayor_met", "vt_worker")
    engine.fire(encounter.id, "report_accepted", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert where(engine, encounter.id) == ("reported", "veilig_thuis")
    # non-acute: a safety assessment within 5 working days (Monday -> next Monday)
    (deadline,) = engine.deadlines(encounter.id)
    assert deadline.event == "safety_assessment_overdue"
    assert deadline.due.astimezone(AMS).weekday() == 0
    assert deadline.due - clock.now() == timedelta(days=7)
    clock.advance(timedelta(days=3))
    engine.fire(encounter.id, "safety_assessed", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert where(engine, encounter.id) == ("closed_report", None)
    assert engine.deadlines(encounter.id) == []


def test_the_report_never_waits_for_the_mayor() -> None:
    engine, _ = engine_at()
    encounter = engine.open(vt.PROTOCOL_ID, lr.Actor("counter", "counter-1"), facts=FACTS)
    engine.fire(encounter.id, "call_veilig_thuis", lr.Actor("counter", "counter-1"))
    engine.fire(encounter.id, "worker_takes_over", lr.Actor("vt_worker", "vt-worker-1"))
    engine.fire(
        encounter.id, "report_accepted", lr.Actor("veilig_thuis", "veilig-thuis-1")
    )  # before informing the mayor
    assert where(engine, encounter.id) == ("reported", "veilig_thuis")
    assert told(engine, encounter.id, "report_accepted") == ["mayor", "mayor_staff"]
    waiting = at_step(engine, "awaiting_mayor", facts=FACTS)
    engine.fire(
        waiting.id, "report_accepted", lr.Actor("veilig_thuis", "veilig-thuis-1")
    )  # while waiting for the meeting
    assert where(engine, waiting.id) == ("reported", "veilig_thuis")


def test_no_signs_of_unsafety_refers_the_child_on_and_informs_the_mayor() -> None:
    engine, _ = engine_at()
    encounter = at_step(engine, "referred_on")
    assert where(engine, encounter.id) == ("referred_on", "vt_worker")
    with pytest.raises(lr.NotPermitted):
        engine.fire(encounter.id, "close_referred", lr.Actor("counter", "counter-1"))
    engine.fire(encounter.id, "close_referred", lr.Actor("vt_worker", "vt-worker-1"))
    assert where(engine, encounter.id) == ("closed_referred", None)
    assert told(engine, encounter.id, "close_referred") == ["mayor", "mayor_staff"]
    assert told(engine, encounter.id, "mayor_spoke_with_child") == []
    assert handovers(engine, encounter.id) == [("counter", "vt_worker")]


def test_a_meeting_arranged_can_be_cancelled_by_the_worker() -> None:
    engine, _ = engine_at()
    encounter = at_step(engine, "awaiting_mayor")
    engine.fire(encounter.id, "meeting_cancelled", lr.Actor("vt_worker", "vt-worker-1"))
    assert where(engine, encounter.id) == ("mayor_informed", "vt_worker")
    assert told(engine, encounter.id, "meeting_cancelled") == ["mayor", "mayor_staff"]


def test_referral_refused_after_a_disclosure_and_nothing_changes() -> None:
    engine, _ = engine_at()
    encounter = at_step(engine, "mayor_met", facts=FACTS)
    before = snapshot(engine, encounter.id)
    assert "refer_on" not in engine.allowed(encounter.id, "vt_worker")
    with pytest.raises(lr.GuardRefused, match="under this arrangement") as refused:
        engine.fire(encounter.id, "refer_on", lr.Actor("vt_worker", "vt-worker-1"))
    assert refused.value.guard == vt.GUARD_REPORTS_DISCLOSURE
    assert "statutory" not in str(refused.value)
    assert snapshot(engine, encounter.id) == before
    engine.fire(encounter.id, "report_accepted", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert where(engine, encounter.id) == ("reported", "veilig_thuis")


# -- outside office hours: the crisis service ---------------------------------------------------


def test_after_hours_the_crisis_service_comes_and_hands_over_on_the_next_working_day() -> None:
    engine, clock = engine_at(FRIDAY_EVENING)
    encounter = engine.open(vt.PROTOCOL_ID, lr.Actor("counter", "counter-1"), facts=FACTS)
    engine.fire(encounter.id, "call_veilig_thuis", lr.Actor("counter", "counter-1"))
    assert where(engine, encounter.id) == ("awaiting_crisis_service", "counter")
    assert told(engine, encounter.id, "call_veilig_thuis") == ["crisis", "mayor_staff"]
    clock.advance(timedelta(minutes=40))
    engine.fire(encounter.id, "crisis_takes_over", lr.Actor("crisis", "crisis-1"))
    assert where(engine, encounter.id) == ("with_crisis_service", "crisis")
    engine.fire(encounter.id, "safe_for_the_night", lr.Actor("crisis", "crisis-1"))
    assert where(engine, encounter.id) == ("crisis_handover", "crisis")
    assert told(engine, encounter.id, "safe_for_the_night") == [
        "mayor",
        "mayor_staff",
        "veilig_thuis",
    ]
    # the weekend: a reminder every 24 hours, the crisis service stays responsible
    for _ in range(2):
        clock.advance(timedelta(days=1))
        fired = engine.tick()
        assert [e.event for e in fired if isinstance(e, lr.DeadlineMissed)] == [
            "veilig_thuis_takeover_overdue"
        ]
        assert where(engine, encounter.id) == ("crisis_handover", "crisis")
    assert len(told(engine, encounter.id, "veilig_thuis_takeover_overdue")) == 6
    clock.set(datetime(2026, 3, 9, 9, 30, tzinfo=AMS))  # Monday morning
    engine.fire(encounter.id, "worker_takes_over", lr.Actor("vt_worker", "vt-worker-1"))
    assert where(engine, encounter.id) == ("with_worker", "vt_worker")
    assert handovers(engine, encounter.id) == [("counter", "crisis"), ("crisis", "vt_worker")]


def test_crisis_service_late_alerts_the_mayor() -> None:
    engine, clock = engine_at(FRIDAY_EVENING)
    encounter = engine.open(vt.PROTOCOL_ID, lr.Actor("counter", "counter-1"), facts=FACTS)
    engine.fire(encounter.id, "call_veilig_thuis", lr.Actor("counter", "counter-1"))
    clock.advance(timedelta(minutes=44))
    assert engine.tick() == []
    clock.advance(timedelta(minutes=2))
    engine.tick()
    assert where(engine, encounter.id) == ("escalated", "counter")
    assert told(engine, encounter.id, "crisis_service_overdue") == [
        "crisis",
        "mayor",
        "mayor_staff",
    ]
    engine.fire(encounter.id, "crisis_takes_over", lr.Actor("crisis", "crisis-1"))
    assert where(engine, encounter.id) == ("with_crisis_service", "crisis")


@pytest.mark.parametrize(
    ("moment", "office"),
    [
        (datetime(2026, 3, 6, 16, 59, tzinfo=AMS), True),  # Friday, just before closing
        (datetime(2026, 3, 6, 17, 0, tzinfo=AMS), False),  # Friday, closed
        (datetime(2026, 3, 2, 8, 59, tzinfo=AMS), False),  # Monday, not yet open
        (datetime(2026, 3, 2, 9, 0, tzinfo=AMS), True),
        (datetime(2026, 3, 7, 12, 0, tzinfo=AMS), False),  # Saturday
        (datetime(2026, 3, 2, 8, 30, tzinfo=ZoneInfo("UTC")), True),  # 09:30 in Amsterdam
    ],
)
def test_office_hours_decide_who_comes(moment: datetime, office: bool) -> None:
    assert vt.is_office_hours(moment) is office
    engine, _ = engine_at(moment)
    encounter = engine.open(vt.PROTOCOL_ID, lr.Actor("counter", "counter-1"))
    engine.fire(encounter.id, "call_veilig_thuis", lr.Actor("counter", "counter-1"))
    expected = "awaiting_worker" if office else "awaiting_crisis_service"
    assert engine.get(encounter.id).state == expected


def test_office_hours_need_a_time_zone() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        vt.is_office_hours(datetime(2026, 3, 2, 10, 0))


def test_office_hours_guard_refusal_says_why() -> None:
    encounter = lr.Encounter(
        id="e1",
        protocol="other",
        protocol_version="1",
        state="arrived",
        responsible="counter",
        facts={},
        version=1,
        opened_at=FRIDAY_EVENING,
    )
    assert "crisis service" in (vt.lastresort_guard(vt.GUARD_OFFICE_HOURS, encounter) or "")
    assert vt.lastresort_guard(vt.GUARD_AFTER_HOURS, encounter) is None
    assert vt.lastresort_guard("someone_elses_guard", encounter) is None


# -- escalations on the virtual clock -----------------------------------------------------------


def test_counter_that_does_not_call_is_escalated_then_the_crisis_service_takes_over() -> None:
    engine, clock = engine_at()
    encounter = engine.open(vt.PROTOCOL_ID, lr.Actor("counter", "counter-1"), facts=FACTS)
    clock.advance(timedelta(minutes=15))
    engine.tick()
    assert where(engine, encounter.id) == ("escalated", "counter")
    assert told(engine, encounter.id, "veilig_thuis_not_called") == [
        "crisis",
        "mayor_staff",
        "vt_worker",
    ]
    assert pending(engine, encounter.id) == [("nobody_came", timedelta(minutes=45))]
    clock.advance(timedelta(minutes=45))
    engine.tick()
    assert where(engine, encounter.id) == ("with_crisis_service", "crisis")
    assert not engine.get(encounter.id).closed  # the crisis service holds the child now
    assert told(engine, encounter.id, "nobody_came") == ["crisis", "mayor", "mayor_staff"]


def test_worker_late_is_escalated_and_can_still_take_over() -> None:
    engine, clock = engine_at()
    encounter = at_step(engine, "awaiting_worker")
    clock.advance(timedelta(minutes=45))
    engine.tick()
    assert where(engine, encounter.id) == ("escalated", "counter")
    assert told(engine, encounter.id, "worker_overdue") == ["crisis", "mayor_staff", "vt_worker"]
    clock.advance(timedelta(minutes=20))
    engine.fire(encounter.id, "worker_takes_over", lr.Actor("vt_worker", "vt-worker-1"))
    assert where(engine, encounter.id) == ("with_worker", "vt_worker")
    assert engine.deadlines(encounter.id)[0].event == "mayor_not_informed"


def test_the_clock_informs_the_mayor_and_reminds_every_four_hours() -> None:
    engine, clock = engine_at()
    encounter = at_step(engine, "with_worker")
    clock.advance(timedelta(hours=1))
    engine.tick()
    assert where(engine, encounter.id) == ("mayor_informed", "vt_worker")
    assert told(engine, encounter.id, "mayor_not_informed") == ["mayor", "mayor_staff"]
    engine.fire(encounter.id, "arrange_mayor_meeting", lr.Actor("vt_worker", "vt-worker-1"))
    for reminders in (1, 2):
        clock.advance(timedelta(hours=4))
        engine.tick()
        assert len(told(engine, encounter.id, "mayor_overdue")) == 2 * reminders
    assert where(engine, encounter.id) == ("awaiting_mayor", "vt_worker")
    engine.fire(encounter.id, "mayor_spoke_with_child", lr.Actor("mayor", "mayor-1"))
    assert where(engine, encounter.id) == ("mayor_met", "vt_worker")


def test_an_undecided_worker_is_reminded() -> None:
    engine, clock = engine_at()
    encounter = at_step(engine, "mayor_met")
    clock.advance(timedelta(hours=2))
    engine.tick()
    assert where(engine, encounter.id) == ("mayor_met", "vt_worker")
    assert told(engine, encounter.id, "decision_overdue") == ["mayor_staff", "veilig_thuis"]


def test_safety_assessment_after_five_working_days_is_escalated() -> None:
    friday = datetime(2026, 3, 6, 11, 0, tzinfo=AMS)
    engine, clock = engine_at(friday)
    encounter = engine.open(vt.PROTOCOL_ID, lr.Actor("counter", "counter-1"), facts=FACTS)
    for event, actor in ROUTES["reported"]:
        engine.fire(encounter.id, event, pseudonymous(actor))
    reported_at = clock.now()
    (deadline,) = engine.deadlines(encounter.id)
    assert deadline.due == reported_at + timedelta(days=7)  # Friday -> next Friday
    assert deadline.due.astimezone(AMS).weekday() == 4
    clock.advance(timedelta(days=7))
    engine.tick()
    assert where(engine, encounter.id) == ("assessment_overdue", "veilig_thuis")
    assert told(engine, encounter.id, "safety_assessment_overdue") == [
        "mayor",
        "mayor_staff",
        "veilig_thuis",
    ]
    clock.advance(timedelta(days=1))
    engine.tick()
    assert len(told(engine, encounter.id, "safety_assessment_overdue")) == 6
    engine.fire(encounter.id, "safety_assessed", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert where(engine, encounter.id) == ("closed_report", None)


# -- acute danger ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "actor"),
    [
        ("arrived", "counter"),
        ("with_worker", "vt_worker"),
        ("mayor_informed", "mayor_staff"),
        ("reported", "veilig_thuis"),
    ],
)
def test_acute_danger_goes_to_the_police_from_any_step(step: str, actor: str) -> None:
    engine, _ = engine_at()
    encounter = at_step(engine, step)
    assert engine.deadlines(encounter.id)
    events = engine.fire(encounter.id, "acute_danger", pseudonymous(actor))
    assert where(engine, encounter.id) == ("with_police", "police")
    assert engine.get(encounter.id).closed
    assert engine.deadlines(encounter.id) == []
    assert told(engine, encounter.id, "acute_danger") == ["mayor_staff", "police"]
    assert any(isinstance(e, lr.ResponsibilityTransferred) for e in events)


def test_acute_danger_outside_office_hours_from_the_crisis_service() -> None:
    engine, _ = engine_at(FRIDAY_EVENING)
    encounter = engine.open(vt.PROTOCOL_ID, lr.Actor("counter", "counter-1"))
    engine.fire(encounter.id, "call_veilig_thuis", lr.Actor("counter", "counter-1"))
    engine.fire(encounter.id, "crisis_takes_over", lr.Actor("crisis", "crisis-1"))
    engine.fire(encounter.id, "safe_for_the_night", lr.Actor("crisis", "crisis-1"))
    engine.fire(encounter.id, "acute_danger", lr.Actor("crisis", "crisis-1"))
    assert where(engine, encounter.id) == ("with_police", "police")


# -- refused handovers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "event", "actor"),
    [
        ("awaiting_worker", "worker_takes_over", "counter"),  # the giver cannot let go
        ("mayor_met", "report_accepted", "vt_worker"),  # only Veilig Thuis accepts a report
        ("mayor_met", "refer_on", "mayor_staff"),  # only the worker refers on
        ("referred_on", "report_accepted", "mayor_staff"),
        ("awaiting_worker", "crisis_takes_over", "crisis"),  # in office hours the worker comes
    ],
)
def test_refused_handovers_change_nothing(step: str, event: str, actor: str) -> None:
    engine, _ = engine_at()
    encounter = at_step(engine, step)
    before = snapshot(engine, encounter.id)
    with pytest.raises((lr.NotPermitted, lr.TransitionNotAllowed)) as refused:
        engine.fire(encounter.id, event, pseudonymous(actor))
    assert step in str(refused.value)
    assert event in str(refused.value)
    assert snapshot(engine, encounter.id) == before


def test_refused_handover_names_who_may() -> None:
    engine, _ = engine_at()
    encounter = at_step(engine, "mayor_met")
    with pytest.raises(lr.NotPermitted) as refused:
        engine.fire(encounter.id, "report_accepted", lr.Actor("vt_worker", "vt-worker-1"))
    assert refused.value.allowed == ["veilig_thuis"]


def test_crisis_service_cannot_hand_over_by_itself() -> None:
    engine, _ = engine_at(FRIDAY_EVENING)
    encounter = engine.open(vt.PROTOCOL_ID, lr.Actor("counter", "counter-1"))
    engine.fire(encounter.id, "call_veilig_thuis", lr.Actor("counter", "counter-1"))
    engine.fire(encounter.id, "crisis_takes_over", lr.Actor("crisis", "crisis-1"))
    engine.fire(encounter.id, "safe_for_the_night", lr.Actor("crisis", "crisis-1"))
    before = snapshot(engine, encounter.id)
    with pytest.raises(lr.NotPermitted, match="vt_worker"):
        engine.fire(encounter.id, "worker_takes_over", lr.Actor("crisis", "crisis-1"))
    assert snapshot(engine, encounter.id) == before


# -- the plugin's protocol check and directory ------------------------------------------------


def test_protocol_check_keeps_the_rules_in_place() -> None:
    protocol = vt.protocol()
    worker = evolve(protocol.parties["vt_worker"], hours="daily 08:00-20:00")
    transitions = tuple(
        evolve(t, by=("vt_worker", "veilig_thuis"))
        if t.event == "report_accepted"
        else evolve(t, guard=None)
        if t.event == "refer_on"
        else t
        for t in protocol.transitions
    )
    broken = evolve(
        protocol, parties={**protocol.parties, "vt_worker": worker}, transitions=transitions
    )
    with pytest.raises(lr.ProtocolError) as refused:
        lr.Engine(protocols=[broken], plugins=[vt], entry_points=False)
    text = "\n".join(refused.value.problems)
    assert "$.parties.vt_worker.hours: must be 'mon-fri 09:00-17:00'" in text
    assert re.search(r"\$\.transitions\[\d+\]\.by: report_accepted may be fired only by", text)
    assert re.search(r"\$\.transitions\[\d+\]\.guard: refer_on must be guarded", text)
    assert vt.lastresort_validate_protocol(protocol) == []
    other = evolve(protocol, id="elsewhere", transitions=transitions)
    assert vt.lastresort_validate_protocol(other) == []


def test_party_directory_gives_the_public_desks() -> None:
    engine, _ = engine_at()
    assert engine.on_duty(vt.PROTOCOL_ID, "vt_worker") == "Veilig Thuis 0800-2000 (24/7)"
    assert "crisis service" in (engine.on_duty(vt.PROTOCOL_ID, "crisis") or "")
    assert engine.on_duty(vt.PROTOCOL_ID, "police") == "112"
    assert engine.on_duty(vt.PROTOCOL_ID, "counter") is None


def test_notifications_carry_no_facts_about_the_child() -> None:
    engine, _ = engine_at()
    encounter = at_step(engine, "reported", facts=FACTS)
    engine.deliver()
    for note in engine.outbox(encounter.id):
        text = repr(note)
        assert "12-15" not in text
        assert "disclosure" not in text


def test_docs_page_names_every_step_and_event() -> None:
    page = (ROOT / "docs/protocols/veilig-thuis.md").read_text(encoding="utf-8")
    protocol = vt.protocol()
    for key in [*protocol.steps, *{t.event for t in protocol.transitions}]:
        assert f"`{key}`" in page, key


def test_readme_example_runs_at_any_time_of_day() -> None:
    readme = (ROOT / "plugins/veilig-thuis/README.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", readme, re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    engine, encounter = namespace["engine"], namespace["encounter"]
    assert where(engine, encounter.id) == ("reported", "veilig_thuis")
