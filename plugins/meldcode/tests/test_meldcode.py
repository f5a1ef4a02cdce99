"""The meldcode protocol through the public API: each outcome of the five steps and the 2019
afwegingskader's two decisions, Veilig Thuis advice, the report as a warm handover, the
disclosure guard, acute danger from every step, refused events that change nothing, the
protocol check, the plugin's property and its directory."""

from __future__ import annotations

import importlib.metadata
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import lastresort_meldcode as mc
import pytest
from attrs import evolve

import lastresort as lr
from lastresort.testing import assert_protocol_safe, make_engine, pseudonymous, snapshot

ROOT = Path(__file__).resolve().parents[3]
TOML = ROOT / "plugins/meldcode/src/lastresort_meldcode/meldcode.toml"
MONDAY = datetime(2026, 5, 11, 10, 15, tzinfo=ZoneInfo("Europe/Amsterdam"))
TEACHER = lr.Actor("professional", "juf-7")


@pytest.fixture
def setup() -> tuple[lr.Engine, lr.VirtualClock]:
    return make_engine(plugins=[mc], start=MONDAY)


def state(engine: lr.Engine, case_id: str) -> str:
    return engine.get(case_id).state


def told(engine: lr.Engine, case_id: str, event: str) -> list[str]:
    return sorted(n.party for n in engine.outbox(case_id) if n.event == event)


def weighed(engine: lr.Engine, disclosure: bool = False) -> str:
    """A case through steps 1 to 3, now in step 4 (weighing)."""
    case = engine.open(mc.PROTOCOL_ID, pseudonymous(TEACHER), facts={"disclosure": disclosure})
    engine.fire(case.id, "signals_mapped", pseudonymous(TEACHER))
    engine.fire(case.id, "colleague_consulted", lr.Actor("aandachtsfunctionaris", "af-2"))
    engine.fire(case.id, "talked", pseudonymous(TEACHER))
    assert state(engine, case.id) == "weighing"
    return case.id


def deciding(engine: lr.Engine, disclosure: bool = False) -> str:
    case_id = weighed(engine, disclosure)
    engine.fire(case_id, "suspicion_remains", pseudonymous(TEACHER))
    assert state(engine, case_id) == "deciding_report"
    return case_id


# -- the protocol ------------------------------------------------------------------------------


def test_protocol_loads_round_trips_and_is_safe() -> None:
    protocol = mc.protocol()
    assert protocol.kind is lr.ProtocolKind.ENCOUNTER
    assert protocol == lr.load_protocol(TOML)
    assert lr.load_protocol(lr.dump_protocol(protocol)) == protocol
    report = assert_protocol_safe(protocol, plugins=[mc])
    assert report.result(mc.PROPERTY_UNSAFETY_REPORTED).ok
    for name in ("acute-danger", "handover", "deadlines", "termination", "clerk-never-closes"):
        assert report.result(name).ok
        assert report.result(name).applicable
    # no mayor and no "every case reported": the Meldcode lets a case close without a
    # report; its own rule is the plugin's property
    assert not report.result("mayor").applicable
    assert not report.result("report-before-close").applicable


def test_registered_under_the_lastresort_entry_point() -> None:
    found = importlib.metadata.entry_points(group="lastresort")
    assert any(ep.name == "meldcode" and ep.value == "lastresort_meldcode" for ep in found)
    engine = lr.Engine(entry_points=True)
    assert "meldcode" in engine.protocols


def test_every_deadline_is_labelled_an_example_value() -> None:
    protocol = mc.protocol()
    for key, step in protocol.steps.items():
        if step.deadline is not None:
            assert "voorbeeldwaarde" in step.instructions.nl, key
            assert "example value" in step.instructions.en, key
    assert "example values" in protocol.source


# -- the outcomes ------------------------------------------------------------------------------


def test_no_suspicion_after_weighing_closes_without_a_report(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, _ = setup
    case_id = weighed(engine)
    engine.fire(case_id, "no_suspicion", pseudonymous(TEACHER))
    closed = engine.get(case_id)
    assert closed.state == "no_suspicion"
    assert closed.closed_at is not None
    assert told(engine, case_id, "no_suspicion") == ["aandachtsfunctionaris"]


def test_a_disclosure_is_a_suspicion_and_the_refusal_changes_nothing(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, _ = setup
    case_id = weighed(engine, disclosure=True)
    before = snapshot(engine, case_id)
    with pytest.raises(lr.GuardRefused, match="disclosed unsafety at home"):
        engine.fire(case_id, "no_suspicion", pseudonymous(TEACHER))
    assert snapshot(engine, case_id) == before
    assert "no_suspicion" not in engine.allowed(case_id, TEACHER)
    assert "suspicion_remains" in engine.allowed(case_id, TEACHER)


def test_acute_or_structural_unsafety_is_reported_in_a_warm_handover(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, _ = setup
    case_id = deciding(engine)
    engine.fire(case_id, "acute_or_structural_unsafety", pseudonymous(TEACHER))
    assert state(engine, case_id) == "report_required"
    # once unsafety is found, the only ways on are a report (or acute danger)
    assert sorted(engine.allowed(case_id, TEACHER)) == ["acute_danger", "report", "report_and_help"]
    engine.fire(case_id, "report", pseudonymous(TEACHER))
    assert state(engine, case_id) == "reporting"
    assert engine.get(case_id).responsible == "professional"  # until Veilig Thuis accepts
    assert told(engine, case_id, "report") == ["veilig_thuis"]
    before = snapshot(engine, case_id)
    with pytest.raises(lr.NotPermitted, match="who may: veilig_thuis"):
        engine.fire(case_id, "report_received", pseudonymous(TEACHER))  # the giver cannot accept
    assert snapshot(engine, case_id) == before
    engine.fire(case_id, "report_received", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    reported = engine.get(case_id)
    assert reported.state == "reported"
    assert reported.responsible == "veilig_thuis"
    assert [
        (e.from_party, e.to_party)
        for e in engine.timeline(case_id)
        if isinstance(e, lr.ResponsibilityTransferred)
    ] == [("professional", "veilig_thuis")]


def test_a_report_with_the_professionals_own_help(setup: tuple[lr.Engine, lr.VirtualClock]) -> None:
    engine, clock = setup
    case_id = deciding(engine)
    engine.fire(case_id, "acute_or_structural_unsafety", pseudonymous(TEACHER))
    engine.fire(
        case_id, "report_and_help", lr.Actor("aandachtsfunctionaris", "aandachtsfunctionaris-1")
    )
    clock.advance(timedelta(hours=1))
    engine.tick()  # Veilig Thuis has not confirmed: alerted, still with help
    assert state(engine, case_id) == "reporting_with_help"
    assert told(engine, case_id, "report_overdue") == ["aandachtsfunctionaris", "veilig_thuis"]
    engine.fire(case_id, "report_received", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert state(engine, case_id) == "reported_helping"


def test_help_that_leads_to_safety_closes_without_a_report(
    setup: tuple[lr.Engine, lr.VirtualClock],
) -> None:
    engine, clock = setup
    case_id = deciding(engine)
    engine.fire(case_id, "no_acute_or_structural_unsafety", pseudonymous(TEACHER))
    engine.fire(case_id, "help_possible", pseudonymous(TEACHER))
    assert state(engine, case_id) == "helping"
    [pending] = engine.deadlines(case_id)
    assert pending.event == "help_review_due"
    clock.advance(timedelta(weeks=6))
    engine.tick()
    assert state(engine, case_id) == "reviewing_help"
    assert told(engine, case_id, "help_review_due") == ["aandachtsfunctionaris", "professional"]
    engine.fire(case_id, "help_led_to_safety", pseudonymous(TEACHER))
    assert state(engine, case_id) == "help_succeeded"
    assert not any(n.party == "veilig_thuis" for n in engine.outbox(case_id))


@pytest.mark.parametrize("when", ["deciding_help", "helping", "reviewing_help"])
def test_help_that_is_not_possible_or_does_not_work_is_reported_after_all(
    setup: tuple[lr.Engine, lr.VirtualClock], when: str
) -> None:
    engine, clock = setup
    case_id = deciding(engine)
    engine.fire(case_id, "no_acute_or_structural_unsafety", pseudonymous(TEACHER))
    if when == "deciding_help":
        engine.fire(case_id, "help_not_possible", pseudonymous(TEACHER))
    else:
        engine.fire(case_id, "help_possible", pseudonymous(TEACHER))
        if when == "reviewing_help":
            clock.advance(timedelta(weeks=6))
            engine.tick()
        engine.fire(case_id, "help_insufficient", pseudonymous(TEACHER))
    assert state(engine, case_id) == "report_required"
    engine.fire(case_id, "report", pseudonymous(TEACHER))
    engine.fire(case_id, "report_received", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    assert state(engine, case_id) == "reported"


# -- advice -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "back_to"), [("consulting", "talking"), ("weighing", "weighing")]
)
def test_veilig_thuis_advice_leaves_the_professional_responsible(
    setup: tuple[lr.Engine, lr.VirtualClock], where: str, back_to: str
) -> None:
    engine, clock = setup
    case = engine.open(mc.PROTOCOL_ID, pseudonymous(TEACHER), channel="referral")
    engine.fire(case.id, "signals_mapped", pseudonymous(TEACHER))
    if where == "weighing":
        engine.fire(case.id, "colleague_consulted", pseudonymous(TEACHER))
        engine.fire(
            case.id, "conversation_unsafe", pseudonymous(TEACHER)
        )  # step 3 left out for safety
    engine.fire(case.id, "ask_advice", pseudonymous(TEACHER))
    assert told(engine, case.id, "ask_advice") == ["veilig_thuis"]
    clock.advance(timedelta(hours=2))
    engine.tick()
    assert told(engine, case.id, "advice_overdue") == ["aandachtsfunctionaris", "veilig_thuis"]
    engine.fire(case.id, "advice_given", lr.Actor("veilig_thuis", "veilig-thuis-1"))
    after = engine.get(case.id)
    assert after.state == back_to
    assert after.responsible == "professional"
    assert not any(isinstance(e, lr.ResponsibilityTransferred) for e in engine.timeline(case.id))


# -- acute danger and refusals -----------------------------------------------------------------


def test_acute_danger_from_every_step_goes_to_the_police() -> None:
    protocol = mc.protocol()
    for key, step in protocol.steps.items():
        if step.terminal:
            continue
        assert any(
            t.event == "acute_danger" and key in protocol.sources_of(t) and t.target == "emergency"
            for t in protocol.transitions
        ), key
    engine, _ = make_engine(plugins=[mc], start=MONDAY)
    case_id = deciding(engine)
    engine.fire(case_id, "acute_danger", pseudonymous(TEACHER))
    after = engine.get(case_id)
    assert (after.state, after.responsible) == ("emergency", "police")
    assert told(engine, case_id, "acute_danger") == [
        "aandachtsfunctionaris",
        "police",
        "veilig_thuis",
    ]


@pytest.mark.parametrize(
    ("event", "actor", "error"),
    [
        ("report", TEACHER, lr.TransitionNotAllowed),  # no report before the decision
        ("help_possible", TEACHER, lr.TransitionNotAllowed),  # decision 1 first
        ("acute_or_structural_unsafety", "veilig_thuis", lr.NotPermitted),  # the professional's
    ],
)
def test_steps_are_not_skipped_and_refusals_change_nothing(
    setup: tuple[lr.Engine, lr.VirtualClock], event: str, actor: lr.Actor | str, error: type
) -> None:
    engine, _ = setup
    case_id = deciding(engine) if error is lr.NotPermitted else weighed(engine)
    before = snapshot(engine, case_id)
    with pytest.raises(error):
        engine.fire(case_id, event, pseudonymous(actor))
    assert snapshot(engine, case_id) == before


def test_nothing_of_the_child_is_in_the_case() -> None:
    protocol = mc.protocol()
    assert set(protocol.facts) == {"disclosure", "age_band"}
    engine, _ = make_engine(plugins=[mc], start=MONDAY)
    with pytest.raises(lr.FactsRefused):
        engine.open(mc.PROTOCOL_ID, pseudonymous(TEACHER), facts={"name": "Anna"})


# -- the plugin -----------------------------------------------------------------------------------


def test_property_catches_help_without_a_report_after_unsafety() -> None:
    protocol = mc.protocol()
    broken = evolve(
        protocol,
        transitions=[
            *protocol.transitions,
            lr.Transition("help_anyway", ("report_required",), "helping", ("professional",)),
        ],
    )
    report = lr.verify(broken, mc.lastresort_protocol_properties(broken))
    result = report.result(mc.PROPERTY_UNSAFETY_REPORTED)
    assert not result.ok
    assert "without a report to Veilig Thuis" in str(result)


def test_property_only_for_the_meldcode_protocol() -> None:
    assert mc.lastresort_protocol_properties(evolve(mc.protocol(), id="other")) == []


def test_party_directory_gives_the_public_desks(setup: tuple[lr.Engine, lr.VirtualClock]) -> None:
    engine, _ = setup
    assert engine.on_duty(mc.PROTOCOL_ID, "veilig_thuis") == "Veilig Thuis 0800-2000 (24/7)"
    assert engine.on_duty(mc.PROTOCOL_ID, "police") == "112"
    assert engine.on_duty(mc.PROTOCOL_ID, "professional") is None


def test_docs_page_names_every_step_and_event() -> None:
    page = (ROOT / "docs/protocols/meldcode.md").read_text(encoding="utf-8")
    protocol = mc.protocol()
    for key in [*protocol.steps, *{t.event for t in protocol.transitions}]:
        assert f"`{key}`" in page, key


def test_readme_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "plugins/meldcode/README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```python\n(.*?)```", readme, re.S)
    exec(compile(block, "README.md", "exec"), {})
    assert "disclosed unsafety at home" in capsys.readouterr().out
