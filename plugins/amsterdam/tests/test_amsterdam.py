"""The amsterdam protocol through the public API: GGD Vangnet takes over at the city hall and
the mayor speaks to the child, with every escalation fired by the virtual clock, acute danger,
refused handovers, the plugin's protocol check and its party directory."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import lastresort_amsterdam as amsterdam
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
FACTS: dict[str, str | bool] = {"age_band": "8-11", "disclosure": True, "accompanied": False}

#: how to reach each step by the people's own events
ROUTES: dict[str, list[tuple[str, str]]] = {
    "arrived": [],
    "awaiting_vangnet": [("call_vangnet", "counter")],
    "with_vangnet": [("call_vangnet", "counter"), ("vangnet_takes_over", "vangnet")],
    "awaiting_mayor": [
        ("call_vangnet", "counter"),
        ("vangnet_takes_over", "vangnet"),
        ("engage_mayor", "vangnet"),
    ],
    "mayor_met": [
        ("call_vangnet", "counter"),
        ("vangnet_takes_over", "vangnet"),
        ("engage_mayor", "vangnet"),
        ("mayor_spoke_with_child", "mayor"),
    ],
}


@pytest.fixture
def setup() -> tuple[lr.Engine, lr.VirtualClock]:
    return make_engine(plugins=[amsterdam])


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
    encounter = engine.open("amsterdam", lr.Actor("counter", "counter-1"), facts=FACTS)
    for event, actor in ROUTES[step]:
        engine.fire(encounter.id, event, pseudonymous(actor))
    assert engine.get(encounter.id).state == step
    return encounter.id


def handovers(events: list[lr.Event]) -> list[tuple[str | None, str | None]]:
    return [
        (e.from_party, e.to_party) for e in events if isinstance(e, lr.ResponsibilityTransferred)
    ]


# -- the protocol ------------------------------------------------------------------------------


def test_the_protocol_loads_cleanly_and_is_found_through_the_entry_point() -> None:
    protocol = amsterdam.protocol()
    assert lr.validate(protocol) == []
    assert "27 January 2014" in protocol.source
    assert "GGD Vangnet" in protocol.source
    assert protocol.parties["vangnet"].kind is lr.PartyKind.EXPERT
    # the mayor is always informed; GGD Vangnet decides whether and when they meet
    assert protocol.requirements.mayor_promise is lr.MayorPromise.INFORMED
    assert protocol.requirements.mayor_contact is False
    assert protocol.requirements.max_wait_for_expert == timedelta(hours=1, minutes=45)
    # a meeting is Vangnet's choice, reminded until it happens or is cancelled: no bound
    assert protocol.requirements.max_wait_for_mayor is None
    installed, _ = make_engine(entry_points=True)
    assert installed.protocol("amsterdam") == protocol


def test_every_text_is_bilingual_and_the_acute_path_covers_every_step() -> None:
    protocol = amsterdam.protocol()
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


def test_the_verifier_finds_the_protocol_safe_and_the_mayor_wait_unbounded() -> None:
    report = assert_protocol_safe(amsterdam.protocol(), plugins=[amsterdam])
    assert report.result("mayor").ok
    assert report.result("amsterdam-vangnet-takes-over").ok
    assert report.result("amsterdam-mayor-in-person").ok
    strict = lr.Engine(plugins=[amsterdam], entry_points=False, strict=True)
    assert "amsterdam" in strict.protocols
    expert, mayor = report.bounds
    assert (expert.goal, expert.worst) == ("child_with_expert", timedelta(hours=1, minutes=45))
    assert [p.step for p in expert.path] == [
        "arrived",
        "awaiting_vangnet",
        "escalated",
        "with_vangnet",
    ]
    # honest: once arranged, the kabinet is reminded every 4 hours until the meeting
    assert (mayor.goal, mayor.worst, mayor.unbounded) == ("mayor_involved", None, True)
    assert [(p.event, p.step) for p in mayor.cycle] == [
        (None, "awaiting_mayor"),
        ("mayor_contact_overdue", "awaiting_mayor"),
    ]
    # and many closing paths never meet the mayor: the promise is "informed"
    assert {end[-1].step for end in mayor.ends} >= {"closed", "closed_referred"}


# -- the happy path ------------------------------------------------------------------------------


def test_happy_path_vangnet_takes_over_and_the_mayor_speaks_to_the_child(
    setup: tuple[Any, Any],
) -> None:
    engine, clock = setup
    encounter = engine.open("amsterdam", lr.Actor("counter", "desk-1"), facts=FACTS)
    assert where(engine, encounter.id) == ("arrived", "counter")
    assert pending(engine, encounter.id) == [("vangnet_not_called", timedelta(minutes=15))]

    clock.advance(timedelta(minutes=3))
    engine.fire(encounter.id, "call_vangnet", lr.Actor("counter", "counter-1"))
    assert where(engine, encounter.id) == ("awaiting_vangnet", "counter")
    assert told(engine, encounter.id, "call_vangnet") == ["vangnet"]
    assert pending(engine, encounter.id) == [("vangnet_overdue", timedelta(minutes=45))]

    clock.advance(timedelta(minutes=35))
    events = engine.fire(encounter.id, "vangnet_takes_over", lr.Actor("vangnet", "ggd-12"))
    assert handovers(events) == [("counter", "vangnet")]
    assert where(engine, encounter.id) == ("with_vangnet", "vangnet")
    assert told(engine, encounter.id, "vangnet_takes_over") == ["kabinet", "mayor"]
    assert pending(engine, encounter.id) == []  # Vangnet decides; no clock engages the mayor

    clock.advance(timedelta(minutes=40))
    engine.fire(encounter.id, "engage_mayor", lr.Actor("vangnet", "vangnet-1"))
    assert where(engine, encounter.id) == ("awaiting_mayor", "vangnet")
    assert told(engine, encounter.id, "engage_mayor") == ["kabinet", "mayor"]
    assert pending(engine, encounter.id) == [("mayor_contact_overdue", timedelta(hours=4))]

    clock.advance(timedelta(hours=2))
    events = engine.fire(encounter.id, "mayor_spoke_with_child", lr.Actor("mayor", "mayor-1"))
    assert handovers(events) == []  # the mayor speaks; Vangnet stays responsible
    assert where(engine, encounter.id) == ("mayor_met", "vangnet")
    assert engine.deadlines(encounter.id) == []

    engine.fire(encounter.id, "report_made", lr.Actor("vangnet", "vangnet-1"))
    engine.fire(encounter.id, "close", lr.Actor("vangnet", "vangnet-1"))
    closed = engine.get(encounter.id)
    assert (closed.state, closed.closed_at) == ("closed", clock.now())
    assert told(engine, encounter.id, "close") == ["kabinet", "mayor"]
    steps = [e.step for e in engine.timeline(encounter.id) if isinstance(e, lr.StepEntered)]
    assert steps == [
        "awaiting_vangnet",
        "with_vangnet",
        "awaiting_mayor",
        "mayor_met",
        "reported",
        "closed",
    ]


def test_walk_happy_path_informs_the_mayor(setup: tuple[Any, Any]) -> None:
    engine, _ = setup
    encounter = walk_happy_path(engine, "amsterdam", facts=FACTS)
    assert encounter.state == "closed"
    # the first path to a close need not meet the mayor, but it informs the mayor
    assert "mayor" in {n.party for n in engine.outbox(encounter.id)}


# -- escalations at the counter ---------------------------------------------------------------------


def test_vangnet_never_comes_the_clock_engages_the_crisis_service(setup: tuple[Any, Any]) -> None:
    engine, clock = setup
    eid = at_step(engine, "arrived")

    clock.advance(timedelta(minutes=14, seconds=59))
    assert engine.tick() == []
    clock.advance(timedelta(seconds=1))
    assert missed(engine.tick()) == ["vangnet_not_called"]
    assert where(engine, eid) == ("awaiting_vangnet", "counter")
    assert told(engine, eid, "vangnet_not_called") == ["kabinet", "vangnet"]

    clock.advance(timedelta(minutes=45))
    assert missed(engine.tick()) == ["vangnet_overdue"]
    assert where(engine, eid) == ("escalated", "counter")
    assert told(engine, eid, "vangnet_overdue") == ["kabinet", "vangnet"]
    assert pending(engine, eid) == [("no_vangnet_available", timedelta(minutes=45))]

    clock.advance(timedelta(minutes=45))
    events = engine.tick()
    assert missed(events) == ["no_vangnet_available"]
    assert handovers(events) == [("counter", "crisis")]
    assert where(engine, eid) == ("with_crisis_service", "crisis")
    assert engine.get(eid).closed
    assert told(engine, eid, "no_vangnet_available") == ["crisis", "kabinet", "mayor"]


def test_vangnet_takes_over_late_from_the_escalation(setup: tuple[Any, Any]) -> None:
    engine, clock = setup
    eid = at_step(engine, "awaiting_vangnet")
    clock.advance(timedelta(minutes=45))
    assert missed(engine.tick()) == ["vangnet_overdue"]
    clock.advance(timedelta(minutes=44))
    engine.fire(eid, "vangnet_takes_over", lr.Actor("vangnet", "vangnet-1"))
    assert where(engine, eid) == ("with_vangnet", "vangnet")
    assert pending(engine, eid) == []


def test_vangnet_already_at_the_city_hall_takes_over_at_once(setup: tuple[Any, Any]) -> None:
    engine, _ = setup
    eid = at_step(engine, "arrived")
    engine.fire(eid, "vangnet_takes_over", lr.Actor("vangnet", "vangnet-1"))
    assert where(engine, eid) == ("with_vangnet", "vangnet")


# -- the deadline on the mayor's conversation ----------------------------------------------------


def test_an_arranged_meeting_reminds_the_kabinet_and_the_mayor_every_4_hours(
    setup: tuple[Any, Any],
) -> None:
    engine, clock = setup
    eid = at_step(engine, "with_vangnet")
    clock.advance(timedelta(hours=5))
    assert engine.tick() == []  # no clock engages the mayor: Vangnet decides
    engine.fire(eid, "engage_mayor", lr.Actor("vangnet", "vangnet-1"))
    assert pending(engine, eid) == [("mayor_contact_overdue", timedelta(hours=4))]

    for round_ in (1, 2, 3):
        clock.advance(timedelta(hours=4))
        events = engine.tick()
        assert missed(events) == ["mayor_contact_overdue"]
        assert handovers(events) == []  # Vangnet keeps the child; the kabinet is reminded
        assert where(engine, eid) == ("awaiting_mayor", "vangnet")
        assert told(engine, eid, "mayor_contact_overdue") == sorted(["kabinet", "mayor"] * round_)

    assert engine.allowed(eid, "mayor") == ["mayor_spoke_with_child", "acute_danger"]
    engine.fire(eid, "mayor_spoke_with_child", lr.Actor("mayor", "mayor-1"))
    assert where(engine, eid) == ("mayor_met", "vangnet")
    assert engine.deadlines(eid) == []


def test_vangnet_reports_while_waiting_for_the_mayor_and_may_cancel_the_meeting(
    setup: tuple[Any, Any],
) -> None:
    engine, _ = setup
    eid = at_step(engine, "awaiting_mayor")
    engine.fire(
        eid, "report_made", lr.Actor("vangnet", "vangnet-1")
    )  # the report does not wait for the meeting
    assert where(engine, eid) == ("awaiting_mayor_reported", "vangnet")
    engine.fire(eid, "meeting_cancelled", lr.Actor("vangnet", "vangnet-1"))
    assert where(engine, eid) == ("reported", "vangnet")
    assert told(engine, eid, "meeting_cancelled") == ["kabinet", "mayor"]
    assert engine.deadlines(eid) == []
    engine.fire(eid, "close", lr.Actor("vangnet", "vangnet-1"))
    assert engine.get(eid).state == "closed"


def test_no_signs_of_unsafety_refers_the_child_on_without_the_mayor_meeting_it(
    setup: tuple[Any, Any],
) -> None:
    engine, _ = setup
    eid = at_step(engine, "with_vangnet")
    engine.fire(eid, "refer_on", lr.Actor("vangnet", "vangnet-1"))
    assert where(engine, eid) == ("referred_on", "vangnet")
    with pytest.raises(lr.NotPermitted):
        engine.fire(eid, "close", lr.Actor("counter", "counter-1"))
    engine.fire(eid, "close", lr.Actor("vangnet", "vangnet-1"))
    assert engine.get(eid).state == "closed_referred"
    assert told(engine, eid, "close") == ["kabinet", "mayor"]
    assert told(engine, eid, "mayor_spoke_with_child") == []


# -- acute danger and refused handovers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "actor", "giver"),
    [
        ("arrived", "counter", "counter"),
        ("with_vangnet", "vangnet", "vangnet"),
        ("awaiting_mayor", "mayor", "vangnet"),
        ("mayor_met", "kabinet", "vangnet"),
    ],
)
def test_acute_danger_hands_the_child_to_the_police(
    setup: tuple[Any, Any], step: str, actor: str, giver: str
) -> None:
    engine, _ = setup
    eid = at_step(engine, step)
    events = engine.fire(eid, "acute_danger", pseudonymous(actor))
    assert handovers(events) == [(giver, "police")]
    assert where(engine, eid) == ("with_police", "police")
    assert engine.get(eid).closed
    assert engine.deadlines(eid) == []
    assert told(engine, eid, "acute_danger") == ["kabinet", "mayor", "police"]


@pytest.mark.parametrize("intruder", ["counter", "kabinet", "mayor", "police"])
def test_only_vangnet_accepts_the_handover_from_the_counter(
    setup: tuple[Any, Any], intruder: str
) -> None:
    engine, _ = setup
    eid = at_step(engine, "awaiting_vangnet")
    before = snapshot(engine, eid)
    with pytest.raises(lr.NotPermitted) as info:
        engine.fire(eid, "vangnet_takes_over", pseudonymous(intruder))
    assert info.value.allowed == ["vangnet"]
    assert snapshot(engine, eid) == before


def test_nobody_but_the_mayor_records_the_conversation(setup: tuple[Any, Any]) -> None:
    engine, _ = setup
    eid = at_step(engine, "awaiting_mayor")
    before = snapshot(engine, eid)
    for intruder in ("vangnet", "kabinet", "counter"):
        with pytest.raises(lr.NotPermitted) as info:
            engine.fire(eid, "mayor_spoke_with_child", pseudonymous(intruder))
        assert info.value.allowed == ["mayor"]
    assert snapshot(engine, eid) == before


def test_the_engine_refuses_the_counter_even_when_listed_in_by() -> None:
    protocol = amsterdam.protocol()
    loose = evolve(
        protocol,
        transitions=[
            evolve(t, by=("vangnet", "counter")) if t.event == "vangnet_takes_over" else t
            for t in protocol.transitions
        ],
    )
    engine, _ = make_engine(protocols=[loose], plugins=[amsterdam])
    eid = at_step(engine, "awaiting_vangnet")
    before = snapshot(engine, eid)
    with pytest.raises(lr.NotPermitted, match="only the receiving party"):
        engine.fire(eid, "vangnet_takes_over", lr.Actor("counter", "counter-1"))
    assert snapshot(engine, eid) == before


# -- the protocol check and the directory ----------------------------------------------------------


def test_the_check_keeps_vangnet_and_the_mayor_in_person() -> None:
    protocol = amsterdam.protocol()
    broken = evolve(
        protocol,
        steps={
            **protocol.steps,
            "awaiting_vangnet": evolve(protocol.steps["awaiting_vangnet"], responsible="kabinet"),
        },
        transitions=[
            evolve(t, by=("mayor", "vangnet")) if t.event == "mayor_spoke_with_child" else t
            for t in protocol.transitions
        ],
    )
    with pytest.raises(lr.ProtocolError) as info:
        make_engine(protocols=[broken], plugins=[amsterdam])
    problems = info.value.problems
    index = {t.event: i for i, t in enumerate(protocol.transitions)}
    assert any(f"$.transitions[{index['call_vangnet']}].to" in p for p in problems)
    assert any(f"$.transitions[{index['vangnet_not_called']}].to" in p for p in problems)
    meeting = [i for i, t in enumerate(protocol.transitions) if t.event == "mayor_spoke_with_child"]
    mayor = [p for p in problems if any(f"$.transitions[{i}].by" in p for i in meeting)]
    assert len(mayor) == 2  # from awaiting_mayor and from awaiting_mayor_reported
    assert len(problems) == 4, problems
    assert amsterdam.lastresort_validate_protocol(evolve(broken, id="elders")) == []
    assert amsterdam.lastresort_validate_protocol(protocol) == []

    # the verifier reports the same rules as properties, with counterexample paths
    report = lr.verify(broken, amsterdam.lastresort_protocol_properties(broken))
    # (the core's `handover` fails too: the counter itself fires into a kabinet step)
    assert [r.name for r in report.failed] == [
        "handover",
        "amsterdam-vangnet-takes-over",
        "amsterdam-mayor-in-person",
    ]
    _, vangnet, mayor_ = report.failed
    assert [(p.event, p.step) for p in vangnet.counterexample] == [
        (None, "arrived"),
        ("call_vangnet", "awaiting_vangnet"),
    ]
    assert [(p.event, p.step) for p in mayor_.counterexample] == [
        (None, "arrived"),
        ("vangnet_takes_over", "with_vangnet"),
        ("engage_mayor", "awaiting_mayor"),
        ("mayor_spoke_with_child", "mayor_met"),
    ]
    assert amsterdam.lastresort_protocol_properties(evolve(protocol, id="elders")) == []


def test_the_directory_names_112_for_the_police() -> None:
    engine, _ = make_engine(plugins=[amsterdam])
    assert engine.on_duty("amsterdam", "police") == "112"
    assert engine.on_duty("amsterdam", "vangnet") is None
    assert engine.on_duty("taskforce", "police") is None


# -- what people read ------------------------------------------------------------------------------


def test_check_reports_every_property_and_the_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "amsterdam"]) == 0
    out = capsys.readouterr().out
    assert "at most 1h45m; requirement max_wait_for_expert 1h45m: holds" in out
    assert "✗" not in out
    for prop in [r.name for r in lr.verify(amsterdam.protocol()).results] + [
        p.name for p in amsterdam.lastresort_protocol_properties(amsterdam.protocol())
    ]:
        assert prop in out
    # the bounds quoted in the docs page are what `check` prints
    page = (ROOT / "docs/protocols/amsterdam.md").read_text(encoding="utf-8")
    [quoted] = [b for b in re.findall(r"```\n(.*?)```", page, re.S) if b.startswith("time until")]
    printed = {line.strip() for line in out.splitlines()}
    assert [line.strip() for line in quoted.splitlines() if line.strip() not in printed] == []


def test_show_prints_a_dutch_card_a_counter_clerk_can_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["show", "amsterdam", "--lang", "nl"]) == 0
    out = capsys.readouterr().out
    for text in (
        "GGD Vangnet neemt over en beslist of en wanneer de burgemeester het kind spreekt",
        "Verantwoordelijk: Baliemedewerker stadhuis\n",  # the party's name, no role key
        "Vraag: ben je nu veilig? Is het kind in acuut gevaar, bel dan 112.",
        "Bel daarna GGD Vangnet",
        "Blijf bij het kind tot de Vangnet-medewerker het overneemt.",
        "Wil het kind weggaan, dan kunt u het niet tegenhouden",
        "de burgemeester het kind zo snel mogelijk persoonlijk spreekt",
        "Termijn: 4 u → Herinnering aan de burgemeester * (voorbeeldwaarde: de gemeente stelt"
        " deze termijn zelf vast)",
        "Termijnen met * zijn voorbeeldwaarden",
        "de burgemeester wordt altijd geïnformeerd; de deskundige beslist of en wanneer",
        "Acuut gevaar: bel 112.",
    ):
        assert text in out
    assert "Stay with the child" not in out
    for wrong in ("ben je nu in gevaar", "opnieuw gealarmeerd", "voor afsluiting", "niet weggaan"):
        assert wrong not in out


@pytest.mark.parametrize(
    ("page", "printed"),
    [
        (
            "docs/protocols/amsterdam.md",
            ["closed None ['kabinet', 'kabinet', 'mayor', 'mayor', 'vangnet']"],
        ),
        ("plugins/amsterdam/README.md", []),
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
