"""The rotterdam protocol through the public API: the Ok-punt, the kabinetsmedewerker and the
Jeugdconsul, with every escalation fired by the virtual clock, acute danger, refused
handovers, the plugin's guards, its protocol check and its party directory."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import lastresort_rotterdam as rotterdam
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
SIGNED = lr.Actor("jeugdconsul", "jc-0042")
FACTS: dict[str, str | bool] = {"age_band": "12-15", "contact_by": "child", "disclosure": True}


@pytest.fixture
def setup() -> tuple[lr.Engine, lr.VirtualClock]:
    return make_engine(plugins=[rotterdam])


def told(engine: lr.Engine, encounter_id: str, event: str) -> list[str]:
    """The parties notified of ``event``, sorted."""
    return sorted(n.party for n in engine.outbox(encounter_id) if n.event == event)


def missed(events: list[lr.Event]) -> list[str]:
    return [e.event for e in events if isinstance(e, lr.DeadlineMissed)]


def where(engine: lr.Engine, encounter_id: str) -> tuple[str, str | None]:
    encounter = engine.get(encounter_id)
    return encounter.state, encounter.responsible


def pending(engine: lr.Engine, encounter_id: str) -> list[tuple[str, timedelta]]:
    """Pending deadlines as (event, time from now)."""
    now = engine.clock.now()
    return [(d.event, d.due - now) for d in engine.deadlines(encounter_id)]


def at_step(engine: lr.Engine, step: str) -> str:
    """Open an encounter and walk it to ``step`` by the people's own events."""
    routes: dict[str, list[tuple[str, lr.Actor | str]]] = {
        "arrived": [],
        "awaiting_veilig_thuis": [("engage_veilig_thuis", "counter")],
        "awaiting_kabinet": [("engage_kabinet", "counter")],
        "with_kabinet": [("engage_kabinet", "counter"), ("kabinet_takes_over", "kabinet")],
        "with_veilig_thuis": [
            ("engage_veilig_thuis", "counter"),
            ("veilig_thuis_takes_over", "veilig_thuis"),
        ],
        "awaiting_jeugdconsul": [("engage_jeugdconsul", "counter")],
        "with_jeugdconsul": [
            ("engage_jeugdconsul", "counter"),
            ("jeugdconsul_takes_case", "jeugdconsul"),
        ],
        "awaiting_help": [
            ("engage_jeugdconsul", "counter"),
            ("jeugdconsul_takes_case", "jeugdconsul"),
            ("help_agreed", "jeugdconsul"),
        ],
    }
    encounter = engine.open("rotterdam", lr.Actor("counter", "counter-1"), facts=FACTS)
    for event, actor in routes[step]:
        engine.fire(encounter.id, event, pseudonymous(actor))
    assert engine.get(encounter.id).state == step
    return encounter.id


# -- the protocol ------------------------------------------------------------------------------


def test_the_protocol_loads_cleanly_and_is_found_through_the_entry_point() -> None:
    protocol = rotterdam.protocol()
    assert lr.validate(protocol) == []
    assert protocol.id == "rotterdam"
    assert "27 January 2014" in protocol.source
    assert protocol.parties["jeugdconsul"].kind is lr.PartyKind.ESCALATION
    assert protocol.requirements.max_wait_for_expert == timedelta(hours=1, minutes=45)
    installed, _ = make_engine(entry_points=True)
    assert installed.protocol("rotterdam") == protocol


def test_every_text_is_bilingual_and_the_acute_path_covers_every_step() -> None:
    protocol = rotterdam.protocol()
    for step in protocol.steps.values():
        assert step.instructions.nl.strip()
        assert step.instructions.en.strip()
        assert step.instructions.nl != step.instructions.en
    [acute] = [t for t in protocol.transitions if t.event == "acute_danger"]
    target = protocol.steps[acute.target]
    assert "emergency" in target.tags
    assert protocol.parties[target.responsible or ""].kind is lr.PartyKind.EMERGENCY
    non_terminal = {k for k, s in protocol.steps.items() if not s.terminal}
    assert set(protocol.sources_of(acute)) == non_terminal


def test_the_verifier_finds_the_protocol_safe_within_its_bounds() -> None:
    report = assert_protocol_safe(rotterdam.protocol(), plugins=[rotterdam])
    assert report.result("rotterdam-push-through").ok
    # Rotterdam promises that the mayor is informed; a meeting is a path, not a rule
    assert report.result("mayor").applicable
    assert report.result("mayor").ok
    strict = lr.Engine(plugins=[rotterdam], entry_points=False, strict=True)
    assert "rotterdam" in strict.protocols
    expert, mayor = report.bounds
    assert (expert.goal, expert.worst) == ("child_with_expert", timedelta(hours=1, minutes=45))
    assert [p.step for p in expert.path] == [
        "arrived",
        "awaiting_veilig_thuis",
        "escalated",
        "with_veilig_thuis",
    ]
    # the mayor meets the child when the child wants it and Veilig Thuis agrees
    assert (mayor.goal, mayor.reachable, mayor.unbounded) == ("mayor_involved", True, True)
    assert [(p.event, p.step) for p in mayor.cycle] == [
        (None, "awaiting_mayor"),
        ("mayor_overdue", "awaiting_mayor"),
    ]


# -- the Ok-punt: happy path and escalations --------------------------------------------------------


def test_happy_path_counter_to_veilig_thuis_to_closed(setup: tuple[Any, Any]) -> None:
    engine, clock = setup
    encounter = engine.open("rotterdam", lr.Actor("counter", "desk-2"), facts=FACTS)
    assert where(engine, encounter.id) == ("arrived", "counter")
    assert pending(engine, encounter.id) == [("aid_not_engaged", timedelta(minutes=15))]

    clock.advance(timedelta(minutes=4))
    engine.fire(encounter.id, "engage_veilig_thuis", lr.Actor("counter", "counter-1"))
    assert where(engine, encounter.id) == ("awaiting_veilig_thuis", "counter")
    assert told(engine, encounter.id, "engage_veilig_thuis") == ["veilig_thuis"]
    assert pending(engine, encounter.id) == [("veilig_thuis_overdue", timedelta(minutes=45))]

    clock.advance(timedelta(minutes=30))
    events = engine.fire(
        encounter.id, "veilig_thuis_takes_over", lr.Actor("veilig_thuis", "veilig-thuis-1")
    )
    [handover] = [e for e in events if isinstance(e, lr.ResponsibilityTransferred)]
    assert (handover.from_party, handover.to_party) == ("counter", "veilig_thuis")
    assert where(engine, encounter.id) == ("with_veilig_thuis", "veilig_thuis")
    assert engine.deadlines(encounter.id) == []

    engine.fire(encounter.id, "report_made", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    engine.fire(encounter.id, "close", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    closed = engine.get(encounter.id)
    assert (closed.state, closed.closed_at) == ("closed", clock.now())
    assert told(engine, encounter.id, "close") == ["kabinet", "mayor"]
    assert engine.timeline(encounter.id)[-1].kind == "EncounterClosed"


def test_walk_happy_path_reaches_a_closing_step(setup: tuple[Any, Any]) -> None:
    engine, _ = setup
    encounter = walk_happy_path(engine, "rotterdam", facts=FACTS)
    assert encounter.state in rotterdam.protocol().closing_steps()


def test_nobody_engaged_escalates_by_the_clock_to_the_crisis_service(
    setup: tuple[Any, Any],
) -> None:
    engine, clock = setup
    encounter = engine.open("rotterdam", lr.Actor("counter", "counter-1"))

    clock.advance(timedelta(minutes=14))
    assert engine.tick() == []  # not due yet: nothing happens
    clock.advance(timedelta(minutes=1))
    assert missed(engine.tick()) == ["aid_not_engaged"]
    assert where(engine, encounter.id) == ("awaiting_veilig_thuis", "counter")
    assert told(engine, encounter.id, "aid_not_engaged") == ["kabinet", "veilig_thuis"]

    clock.advance(timedelta(minutes=45))
    assert missed(engine.tick()) == ["veilig_thuis_overdue"]
    assert where(engine, encounter.id) == ("escalated", "counter")
    assert told(engine, encounter.id, "veilig_thuis_overdue") == ["kabinet", "veilig_thuis"]
    assert pending(engine, encounter.id) == [("no_aid_available", timedelta(minutes=45))]

    clock.advance(timedelta(minutes=45))
    events = engine.tick()
    assert missed(events) == ["no_aid_available"]
    assert where(engine, encounter.id) == ("with_crisis_service", "crisis")
    assert engine.get(encounter.id).closed
    assert told(engine, encounter.id, "no_aid_available") == ["crisis", "kabinet", "mayor"]
    assert [e.actor.role for e in events if isinstance(e, lr.StepEntered)] == ["clock"]


def test_veilig_thuis_takes_over_after_the_escalation(setup: tuple[Any, Any]) -> None:
    engine, clock = setup
    eid = at_step(engine, "awaiting_veilig_thuis")
    clock.advance(timedelta(minutes=45))
    assert missed(engine.tick()) == ["veilig_thuis_overdue"]
    clock.advance(timedelta(minutes=20))
    engine.fire(eid, "veilig_thuis_takes_over", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert where(engine, eid) == ("with_veilig_thuis", "veilig_thuis")
    assert engine.deadlines(eid) == []


def test_kabinet_takes_over_and_veilig_thuis_follows(setup: tuple[Any, Any]) -> None:
    engine, _ = setup
    eid = at_step(engine, "awaiting_kabinet")
    assert told(engine, eid, "engage_kabinet") == ["kabinet", "veilig_thuis"]
    assert pending(engine, eid) == [("kabinet_overdue", timedelta(minutes=20))]
    engine.fire(eid, "kabinet_takes_over", lr.Actor("kabinet", "kab-7"))
    assert where(engine, eid) == ("with_kabinet", "kabinet")
    assert told(engine, eid, "kabinet_takes_over") == ["mayor"]
    assert pending(engine, eid) == [("no_aid_available", timedelta(minutes=45))]
    engine.fire(eid, "veilig_thuis_takes_over", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert where(engine, eid) == ("with_veilig_thuis", "veilig_thuis")


def test_kabinet_overdue_escalates_and_then_the_crisis_service_takes_over(
    setup: tuple[Any, Any],
) -> None:
    engine, clock = setup
    eid = at_step(engine, "awaiting_kabinet")
    clock.advance(timedelta(minutes=20))
    assert missed(engine.tick()) == ["kabinet_overdue"]
    assert where(engine, eid) == ("escalated", "counter")
    assert told(engine, eid, "kabinet_overdue") == ["kabinet", "veilig_thuis"]
    clock.advance(timedelta(minutes=45))
    assert missed(engine.tick()) == ["no_aid_available"]
    assert where(engine, eid) == ("with_crisis_service", "crisis")


def test_veilig_thuis_late_while_the_kabinet_holds_the_child(setup: tuple[Any, Any]) -> None:
    engine, clock = setup
    eid = at_step(engine, "with_kabinet")
    clock.advance(timedelta(minutes=44))
    assert engine.tick() == []
    clock.advance(timedelta(minutes=1))
    assert missed(engine.tick()) == ["no_aid_available"]
    assert where(engine, eid) == ("with_crisis_service", "crisis")
    assert told(engine, eid, "no_aid_available") == ["crisis", "kabinet", "mayor"]


# -- the Jeugdconsul -------------------------------------------------------------------------------


def test_jeugdconsul_path_from_the_counter_to_help_resumed(setup: tuple[Any, Any]) -> None:
    engine, clock = setup
    eid = at_step(engine, "awaiting_jeugdconsul")
    assert told(engine, eid, "engage_jeugdconsul") == ["jeugdconsul"]
    assert pending(engine, eid) == [("jeugdconsul_unreachable", timedelta(minutes=30))]
    engine.fire(eid, "jeugdconsul_takes_case", lr.Actor("jeugdconsul", "jeugdconsul-1"))
    assert where(engine, eid) == ("with_jeugdconsul", "jeugdconsul")
    assert pending(engine, eid) == [("jeugdconsul_overdue", timedelta(days=2))]

    clock.advance(timedelta(days=1))
    engine.fire(eid, "help_agreed", lr.Actor("jeugdconsul", "jeugdconsul-1"))
    assert where(engine, eid) == ("awaiting_help", "jeugdconsul")
    assert pending(engine, eid) == [("help_not_started", timedelta(days=7))]
    clock.advance(timedelta(days=3))
    engine.fire(eid, "help_started", lr.Actor("jeugdconsul", "jeugdconsul-1"))
    engine.fire(eid, "close", lr.Actor("jeugdconsul", "jeugdconsul-1"))
    closed = engine.get(eid)
    assert closed.state == "closed_help_resumed"
    assert closed.state in rotterdam.protocol().closing_steps()
    assert told(engine, eid, "close") == ["kabinet", "mayor"]


def test_jeugdconsul_unreachable_escalates_to_veilig_thuis_and_kabinet(
    setup: tuple[Any, Any],
) -> None:
    engine, clock = setup
    eid = at_step(engine, "awaiting_jeugdconsul")
    clock.advance(timedelta(minutes=30))
    assert missed(engine.tick()) == ["jeugdconsul_unreachable"]
    assert where(engine, eid) == ("escalated", "counter")
    assert told(engine, eid, "jeugdconsul_unreachable") == [
        "jeugdconsul",
        "kabinet",
        "veilig_thuis",
    ]


def test_veilig_thuis_takes_over_while_waiting_for_the_jeugdconsul(
    setup: tuple[Any, Any],
) -> None:
    engine, _ = setup
    eid = at_step(engine, "awaiting_jeugdconsul")
    engine.fire(eid, "veilig_thuis_takes_over", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert where(engine, eid) == ("with_veilig_thuis", "veilig_thuis")


def test_an_idle_jeugdconsul_alerts_the_kabinet_every_two_days(setup: tuple[Any, Any]) -> None:
    engine, clock = setup
    eid = at_step(engine, "with_jeugdconsul")
    for _ in range(2):
        clock.advance(timedelta(days=2))
        assert missed(engine.tick()) == ["jeugdconsul_overdue"]
        assert where(engine, eid) == ("with_jeugdconsul", "jeugdconsul")
        assert pending(engine, eid) == [("jeugdconsul_overdue", timedelta(days=2))]
    assert told(engine, eid, "jeugdconsul_overdue") == [
        "jeugdconsul",
        "jeugdconsul",
        "kabinet",
        "kabinet",
    ]


def test_help_not_started_alerts_the_mayor_then_push_through(setup: tuple[Any, Any]) -> None:
    engine, clock = setup
    eid = at_step(engine, "awaiting_help")
    clock.advance(timedelta(days=7))
    assert missed(engine.tick()) == ["help_not_started"]
    assert where(engine, eid) == ("awaiting_help", "jeugdconsul")
    assert told(engine, eid, "help_not_started") == ["jeugdconsul", "kabinet", "mayor"]

    engine.fire(eid, "push_through", SIGNED)
    assert where(engine, eid) == ("awaiting_help", "jeugdconsul")
    assert told(engine, eid, "push_through") == ["kabinet"]
    assert pending(engine, eid) == [("help_not_started", timedelta(days=7))]
    [entered] = [
        e
        for e in engine.timeline(eid)
        if isinstance(e, lr.StepEntered) and e.event == "push_through"
    ]
    assert entered.actor == SIGNED  # the timeline records who used the authority


def test_jeugdconsul_reports_to_veilig_thuis_which_accepts_and_closes(
    setup: tuple[Any, Any],
) -> None:
    engine, _ = setup
    eid = at_step(engine, "with_jeugdconsul")
    engine.fire(eid, "veilig_thuis_accepts_report", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert where(engine, eid) == ("jc_reported", "veilig_thuis")
    assert told(engine, eid, "veilig_thuis_accepts_report") == ["jeugdconsul", "kabinet"]
    engine.fire(eid, "close", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert engine.get(eid).state == "closed"


# -- the guards ------------------------------------------------------------------------------------


def test_push_through_unsigned_is_refused_and_changes_nothing(setup: tuple[Any, Any]) -> None:
    engine, _ = setup
    eid = at_step(engine, "with_jeugdconsul")
    assert "push_through" not in engine.allowed(eid, "jeugdconsul")
    assert "push_through" in engine.allowed(eid, SIGNED)
    before = snapshot(engine, eid)
    # unsigned (no id) the engine refuses it before the guard is asked, and records who tried
    with pytest.raises(lr.ActorRefused) as info:
        engine.fire(eid, "push_through", "jeugdconsul")
    assert "carries no id" in str(info.value)
    assert snapshot(engine, eid) == before
    refused = engine.refusals(encounter_id=eid)[-1]
    assert (refused.actor_role, refused.actor_id, refused.reason) == (
        "jeugdconsul",
        None,
        "ActorRefused",
    )
    # the guard still holds for an embedder that calls it directly
    reason = rotterdam.lastresort_guard(
        name="push_through_signed", encounter=engine.get(eid), actor=lr.Actor("jeugdconsul")
    )
    assert reason is not None
    assert "doorzettingsmacht" in reason
    with pytest.raises(lr.ActorRefused):  # a blank id is no pseudonymous id
        engine.fire(eid, "push_through", lr.Actor("jeugdconsul", "   "))
    assert snapshot(engine, eid) == before

    engine.fire(eid, "push_through", SIGNED)
    assert where(engine, eid) == ("awaiting_help", "jeugdconsul")


def test_jeugdconsul_cannot_take_a_counter_case_without_referral(setup: tuple[Any, Any]) -> None:
    engine, _ = setup
    eid = at_step(engine, "arrived")
    assert "jeugdconsul_takes_case" not in engine.allowed(eid, "jeugdconsul")
    before = snapshot(engine, eid)
    with pytest.raises(lr.GuardRefused) as info:
        engine.fire(eid, "jeugdconsul_takes_case", lr.Actor("jeugdconsul", "jeugdconsul-1"))
    assert info.value.guard == "jeugdconsul_line"
    assert "engage_jeugdconsul" in info.value.reason
    assert snapshot(engine, eid) == before


def test_a_contact_on_the_jeugdconsul_line_is_taken_at_once(setup: tuple[Any, Any]) -> None:
    engine, _ = setup
    opened = engine.open(
        "rotterdam",
        lr.Actor("jeugdconsul", "jeugdconsul-1"),
        {"contact_by": "parent"},
        channel="jeugdconsul",
    )
    assert engine.allowed(opened.id, "jeugdconsul") == ["jeugdconsul_takes_case", "acute_danger"]
    engine.fire(opened.id, "jeugdconsul_takes_case", lr.Actor("jeugdconsul", "jeugdconsul-1"))
    assert where(engine, opened.id) == ("with_jeugdconsul", "jeugdconsul")

    case = rotterdam.open_jeugdconsul_contact(engine, SIGNED, {"contact_by": "professional"})
    assert (case.state, case.responsible, case.channel) == (
        "with_jeugdconsul",
        "jeugdconsul",
        "jeugdconsul",
    )
    assert engine.timeline(case.id)[0].actor == SIGNED


def test_open_jeugdconsul_contact_by_another_role_writes_nothing(setup: tuple[Any, Any]) -> None:
    engine, _ = setup
    with pytest.raises(lr.NotPermitted) as info:
        rotterdam.open_jeugdconsul_contact(engine, lr.Actor("counter", "clerk-07"))
    assert info.value.allowed == ["jeugdconsul"]
    with pytest.raises(lr.FactsRefused):
        rotterdam.open_jeugdconsul_contact(engine, SIGNED, facts={"name": "x"})
    assert engine.outbox() == []
    assert engine.next_deadline() is None


# -- acute danger and refused handovers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "actor"),
    [
        ("arrived", "counter"),
        ("with_kabinet", "kabinet"),
        ("with_veilig_thuis", "veilig_thuis"),
        ("awaiting_help", "jeugdconsul"),
    ],
)
def test_acute_danger_hands_the_child_to_the_police(
    setup: tuple[Any, Any], step: str, actor: str
) -> None:
    engine, _ = setup
    eid = at_step(engine, step)
    events = engine.fire(eid, "acute_danger", pseudonymous(actor))
    assert where(engine, eid) == ("with_police", "police")
    assert engine.get(eid).closed
    assert engine.deadlines(eid) == []
    assert told(engine, eid, "acute_danger") == ["kabinet", "mayor", "police"]
    [handover] = [e for e in events if isinstance(e, lr.ResponsibilityTransferred)]
    assert (handover.from_party, handover.to_party) == (actor, "police")


@pytest.mark.parametrize(
    ("step", "event", "intruder", "receiver"),
    [
        ("awaiting_veilig_thuis", "veilig_thuis_takes_over", "counter", "veilig_thuis"),
        ("with_kabinet", "veilig_thuis_takes_over", "kabinet", "veilig_thuis"),
        ("awaiting_kabinet", "kabinet_takes_over", "counter", "kabinet"),
        ("awaiting_jeugdconsul", "jeugdconsul_takes_case", "counter", "jeugdconsul"),
        ("with_jeugdconsul", "veilig_thuis_accepts_report", "jeugdconsul", "veilig_thuis"),
    ],
)
def test_a_handover_fired_by_anyone_but_the_receiver_changes_nothing(
    setup: tuple[Any, Any], step: str, event: str, intruder: str, receiver: str
) -> None:
    engine, _ = setup
    eid = at_step(engine, step)
    before = snapshot(engine, eid)
    with pytest.raises(lr.NotPermitted) as info:
        engine.fire(eid, event, pseudonymous(intruder))
    assert info.value.allowed == [receiver]
    assert snapshot(engine, eid) == before


def test_the_engine_refuses_the_giver_even_when_listed_in_by() -> None:
    protocol = rotterdam.protocol()
    loose = evolve(
        protocol,
        transitions=[
            evolve(t, by=(*t.by, "counter")) if t.event == "veilig_thuis_takes_over" else t
            for t in protocol.transitions
        ],
    )
    engine, _ = make_engine(protocols=[loose], plugins=[rotterdam])
    eid = at_step(engine, "awaiting_veilig_thuis")
    before = snapshot(engine, eid)
    with pytest.raises(lr.NotPermitted, match="only the receiving party"):
        engine.fire(eid, "veilig_thuis_takes_over", lr.Actor("counter", "counter-1"))
    assert snapshot(engine, eid) == before


# -- the protocol check and the directory ----------------------------------------------------------


def test_the_push_through_authority_stays_with_the_jeugdconsul() -> None:
    protocol = rotterdam.protocol()
    widened = evolve(
        protocol,
        transitions=[
            evolve(t, by=("jeugdconsul", "kabinet"), guard=None) if t.event == "push_through" else t
            for t in protocol.transitions
        ],
        parties={
            **protocol.parties,
            "jeugdconsul": evolve(protocol.parties["jeugdconsul"], kind=lr.PartyKind.EXPERT),
        },
    )
    index = next(i for i, t in enumerate(protocol.transitions) if t.event == "push_through")
    with pytest.raises(lr.ProtocolError) as info:
        make_engine(protocols=[widened], plugins=[rotterdam])
    problems = info.value.problems
    assert f"protocol 'rotterdam': $.transitions[{index}].by" in " ".join(problems)
    assert any(f"$.transitions[{index}].guard" in p for p in problems)
    assert any("$.parties.jeugdconsul.kind" in p for p in problems)
    assert len(problems) == 3
    # the check is Rotterdam's own: the same protocol under another id is not its business
    assert rotterdam.lastresort_validate_protocol(evolve(widened, id="elders")) == []

    # the verifier reports the same rule as a property, with a counterexample path
    report = lr.verify(widened, rotterdam.lastresort_protocol_properties(widened))
    [failed] = report.failed
    assert failed.name == "rotterdam-push-through"
    # the shortest path: the Jeugdconsul's own line (guards count as possibly true)
    assert [(p.event, p.step) for p in failed.counterexample] == [
        (None, "arrived"),
        ("jeugdconsul_takes_case", "with_jeugdconsul"),
        ("push_through", "awaiting_help"),
    ]
    assert len(failed.further) == 2
    assert rotterdam.lastresort_protocol_properties(evolve(protocol, id="elders")) == []


def test_the_directory_names_the_public_desks_on_every_delivery() -> None:
    delivered: list[lr.Notification] = []

    class Pager:
        @lr.hookimpl
        def lastresort_deliver(self, notification: lr.Notification) -> str:
            delivered.append(notification)
            return "paged"

    engine, _ = make_engine(plugins=[rotterdam, Pager()])
    assert engine.on_duty("rotterdam", "veilig_thuis") == "Veilig Thuis 0800-2000 (24/7)"
    assert engine.on_duty("rotterdam", "police") == "112"
    assert engine.on_duty("rotterdam", "kabinet") is None
    assert engine.on_duty("taskforce", "police") is None  # not Rotterdam's to answer
    eid = at_step(engine, "arrived")
    engine.fire(eid, "acute_danger", lr.Actor("counter", "counter-1"))
    engine.deliver()
    assert {(n.party, n.contact) for n in delivered} == {
        ("police", "112"),
        ("mayor", None),
        ("kabinet", None),
    }


# -- what people read ------------------------------------------------------------------------------


def test_check_reports_every_property_and_the_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "rotterdam"]) == 0
    out = capsys.readouterr().out
    assert "at most 1h45m; requirement max_wait_for_expert 1h45m: holds" in out
    assert "✗" not in out
    for prop in [r.name for r in lr.verify(rotterdam.protocol()).results] + [
        p.name for p in rotterdam.lastresort_protocol_properties(rotterdam.protocol())
    ]:
        assert prop in out
    # the bounds quoted in the docs page are what `check` prints
    page = (ROOT / "docs/protocols/rotterdam.md").read_text(encoding="utf-8")
    [quoted] = [b for b in re.findall(r"```\n(.*?)```", page, re.S) if b.startswith("time until")]
    printed = {line.strip() for line in out.splitlines()}
    assert [line.strip() for line in quoted.splitlines() if line.strip() not in printed] == []


def test_show_prints_the_dutch_card(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "rotterdam", "--lang", "nl"]) == 0
    out = capsys.readouterr().out
    for text in (
        "Baliemedewerker Ok-punt (stadhuis)",
        "Vraag: ben je nu veilig? Is het kind in acuut gevaar, bel dan 112.",
        "Wil het kind weggaan, dan kunt u het niet tegenhouden",
        "Kabinetsmedewerker (stafmedewerker van de burgemeester)",
        "gebruik uw doorzettingsmacht",
        "Verantwoordelijk: Jeugdconsul\n",  # the party's name, no role key
        "Termijn: 2 d → Herinnering aan de Jeugdconsul * (voorbeeldwaarde",
        "Tijdens het gesprek bent u verantwoordelijk voor het kind.",
    ):
        assert text in out
    assert "Take the child to a quiet room" not in out
    for wrong in ("ben je nu in gevaar", "voor afsluiting", "neemt de politie het kind over"):
        assert wrong not in out


@pytest.mark.parametrize(
    ("page", "printed"),
    [
        (
            "docs/protocols/rotterdam.md",
            [
                "awaiting_help ['jeugdconsul', 'jeugdconsul', 'kabinet', 'kabinet', 'mayor']",
                "with_jeugdconsul jeugdconsul jeugdconsul",
            ],
        ),
        ("plugins/rotterdam/README.md", []),
    ],
)
def test_the_python_blocks_of_the_docs_run(
    page: str, printed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(encoding="utf-8"), re.S)
    assert blocks
    namespace: dict[str, object] = {"__name__": "docs"}
    for block in blocks:
        exec(compile(block, page, "exec"), namespace)
    assert capsys.readouterr().out.splitlines() == printed


def test_the_mayor_meets_the_child_when_it_wants_and_veilig_thuis_agrees(
    setup: tuple[Any, Any],
) -> None:
    engine, clock = setup
    eid = at_step(engine, "with_veilig_thuis")
    engine.fire(eid, "mayor_meeting_requested", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert where(engine, eid) == ("awaiting_mayor", "veilig_thuis")
    assert told(engine, eid, "mayor_meeting_requested") == ["kabinet", "mayor"]
    with pytest.raises(lr.NotPermitted):  # only the mayor accepts the meeting's handover
        engine.fire(eid, "mayor_meets_child", lr.Actor("kabinet", "kabinet-1"))
    assert where(engine, eid) == ("awaiting_mayor", "veilig_thuis")
    events = engine.fire(eid, "mayor_meets_child", lr.Actor("mayor", "bm-1"))
    assert [
        (e.from_party, e.to_party) for e in events if isinstance(e, lr.ResponsibilityTransferred)
    ] == [("veilig_thuis", "mayor")]
    assert where(engine, eid) == ("with_mayor", "mayor")
    clock.advance(timedelta(hours=1))
    assert missed(engine.tick()) == ["meeting_overrun"]  # a reminder; the mayor stays responsible
    assert where(engine, eid) == ("with_mayor", "mayor")
    with pytest.raises(lr.NotPermitted):  # the mayor cannot hand the child back alone
        engine.fire(eid, "veilig_thuis_takes_back", lr.Actor("mayor", "mayor-1"))
    engine.fire(eid, "veilig_thuis_takes_back", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert where(engine, eid) == ("with_veilig_thuis", "veilig_thuis")
    engine.fire(eid, "report_made", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    engine.fire(eid, "close", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert engine.get(eid).state == "closed"


def test_no_signs_of_unsafety_refers_the_child_on(setup: tuple[Any, Any]) -> None:
    engine, _ = setup
    eid = at_step(engine, "with_veilig_thuis")
    engine.fire(eid, "refer_on", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert where(engine, eid) == ("referred_on", "veilig_thuis")
    engine.fire(eid, "close", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert engine.get(eid).state == "closed_referred"
    assert told(engine, eid, "close") == ["kabinet", "mayor"]
