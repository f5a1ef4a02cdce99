"""Scenario files: strict, located loading; running on the real engine in virtual
time; readable failures; the CLI; the pytest plugin; every shipped scenario."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve

import lastresort as lr
from lastresort.cli import main
from lastresort.simulate import (
    NotificationExpectation,
    ScenarioResult,
    load_scenario,
    run_scenario,
)
from lastresort.testing import GuardPlugin, engine_for, with_guard
from tests.conftest import AMS

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "examples" / "scenarios").glob("*.scenario.toml"))

HEADER = """\
[scenario]
name = "expert late"
protocol = "taskforce"
opened_by_id = "emp-0001"
start = 2026-03-06T18:30:00
facts = { age_band = "12-15", disclosure = true }
"""

LATE = (
    HEADER
    + """
[[steps]]
at = "+1m"
actor = "counter"
actor_id = "counter-01"
event = "call_expert"

[[steps]]
at = "+46m"
state = "escalated"
responsible = "counter"
queued = [{ party = "mayor_staff", event = "expert_overdue" }]

[[steps]]
at = "+51m"
note = "the expert arrives"
actor = "expert"
actor_id = "expert-01"
event = "expert_takes_over"
state = "with_expert"
responsible = "expert"
"""
)


def write(tmp_path: Path, text: str, name: str = "case.scenario.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(lr.ScenarioError) as info:
        load_scenario(write(tmp_path, text))
    return info.value.problems


def run_text(tmp_path: Path, text: str) -> ScenarioResult:
    return run_scenario(load_scenario(write(tmp_path, text)))


# -- loading ----------------------------------------------------------------------------


def test_a_scenario_loads_with_times_resolved_in_amsterdam(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, LATE))
    assert scenario.start == datetime(2026, 3, 6, 18, 30, tzinfo=AMS)
    assert scenario.timezone == "Europe/Amsterdam"
    assert scenario.opened_by == "counter"  # the initial step's responsible party
    assert [s.at for s in scenario.steps] == [
        timedelta(minutes=1),
        timedelta(minutes=46),
        timedelta(minutes=51),
    ]
    assert scenario.steps[0].is_action
    assert not scenario.steps[0].expects
    assert scenario.steps[2].is_action
    assert scenario.steps[2].expects
    assert dict(scenario.facts) == {"age_band": "12-15", "disclosure": True}


def test_unknown_event_is_located_with_a_suggestion(tmp_path: Path) -> None:
    text = LATE.replace('event = "expert_takes_over"', 'event = "expert_take_over"')
    assert problems_of(tmp_path, text) == [
        "$.steps[2].event: unknown event 'expert_take_over' (did you mean 'expert_takes_over'?)"
    ]


def test_unknown_actor_role_is_located(tmp_path: Path) -> None:
    text = LATE.replace('actor = "expert"', 'actor = "vangnet"')
    assert problems_of(tmp_path, text) == [
        "$.steps[2].actor: unknown party 'vangnet'; parties of 'taskforce':"
        " counter, crisis, expert, mayor, mayor_staff, police"
    ]


def test_an_actor_that_may_never_fire_the_event_is_located(tmp_path: Path) -> None:
    text = LATE.replace('actor = "expert"', 'actor = "counter"')
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith("$.steps[2].actor: 'counter' may never fire 'expert_takes_over'")
    assert 'expect_error = "NotPermitted"' in problem


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ('"50 minutes"', "invalid time '50 minutes'"),
        ('"+5x"', "invalid time '+5x'"),
        ('"-5m"', "is before the start"),
        ("2026-03-06", "a date without a time"),
        ('"2026-03-06"', "a date without a time"),
        ("50", "expected a time, got int 50"),
    ],
)
def test_malformed_time_is_located(tmp_path: Path, written: str, message: str) -> None:
    text = LATE.replace('at = "+46m"', f"at = {written}")
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith("$.steps[1].at: ")
    assert message in problem


def test_unknown_keys_are_located_with_suggestions(tmp_path: Path) -> None:
    text = LATE.replace('note = "the expert arrives"', 'notes = "x"').replace(
        "facts = {", 'protocl = "x"\nfacts = {'
    )
    assert problems_of(tmp_path, text) == [
        "$.scenario.protocl: unknown key 'protocl' (did you mean 'protocol'?)",
        "$.steps[2].notes: unknown key 'notes' (did you mean 'note'?)",
    ]


def test_unknown_top_level_key_and_steps_as_a_table(tmp_path: Path) -> None:
    text = HEADER + '\n[steps]\nat = "+1m"\n\n[extra]\nx = 1\n'
    problems = problems_of(tmp_path, text)
    assert "$.extra: unknown key 'extra'" in problems
    assert any(p.startswith("$.steps: expected an array of tables") for p in problems)


def test_every_problem_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = """\
    [scenario]
    name = "broken"
    protocol = "taskforce"
    opened_by_id = "emp-0001"
    start = "2026-03-06T18:30"
    facts = { age_band = "12-14", colour = "blue" }

    [[steps]]
    at = "+50m"
    actor = "counter"
    actor_id = "counter-01"
    event = "call_expert"

    [[steps]]
    at = "+40m"
    state = "with_expret"

    [[steps]]
    at = "yesterday"
    responsible = "mayr"
    allowed = { actor = "expert", events = ["clse"] }
    queued = { party = "police", event = "call_expert" }
    deadlines = [{ step = "awaiting_expert", event = "mayor_overdue" }, { step = "closed" }]
    """
    problems = problems_of(tmp_path, text)
    assert problems == [
        "$.scenario.facts.age_band: value not allowed; allowed: 0-7, 8-11, 12-15, 16-17",
        "$.scenario.facts.colour: unknown fact 'colour' (did you mean 'disclosure'?);"
        " declared by 'taskforce': age_band, disclosure, accompanied",
        "$.steps[1].at: +40m is before $.steps[0] (+50m); steps must be in time order",
        "$.steps[1].state: unknown step 'with_expret' (did you mean 'with_expert'?)",
        "$.steps[2].at: invalid time 'yesterday'; use an offset from the start such as"
        " '+50m' or a date-time such as '2026-03-06T19:20'",
        "$.steps[2].responsible: unknown party 'mayr' (did you mean 'mayor'?)",
        "$.steps[2].allowed.events[0]: unknown event 'clse' (did you mean 'close'?)",
        "$.steps[2].queued[0]: 'call_expert' never notifies 'police' (it notifies: expert);"
        " to check that it does not, add count = 0",
        "$.steps[2].deadlines[0].event: the deadline of step 'awaiting_expert' fires"
        " 'expert_overdue', not 'mayor_overdue'",
        "$.steps[2].deadlines[1].step: step 'closed' has no deadline",
    ]
    # a fact value is never echoed: facts are about a child
    assert not any("12-14" in p for p in problems)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('protocol = "taskforce"', 'protocol = "taskforse"'),
            "$.scenario.protocol: unknown protocol 'taskforse' (did you mean 'taskforce'?)",
        ),
        (
            ("start = 2026-03-06T18:30:00", 'start = "+5m"'),
            "$.scenario.start: the start must be a date-time such as '2026-03-06T18:30', got '+5m'",
        ),
        (
            ('name = "expert late"', 'name = "expert late"\ntimezone = "Europe/Amsterdan"'),
            "$.scenario.timezone: unknown time zone 'Europe/Amsterdan';"
            " use an IANA name such as 'Europe/Amsterdam'",
        ),
        (
            ('name = "expert late"', 'name = "expert late"\nopened_by = "clerk"'),
            "$.scenario.opened_by: unknown party 'clerk'; parties of 'taskforce':"
            " counter, crisis, expert, mayor, mayor_staff, police",
        ),
        (
            ('at = "+46m"', 'at = "2026-03-06T18:00:00"'),
            "$.steps[1].at: 2026-03-06T18:00:00 is before the scenario's start"
            " 2026-03-06T18:30:00+01:00",
        ),
        (
            ('event = "call_expert"', 'event = "expert_overdue"'),
            "$.steps[0].event: 'expert_overdue' is fired only by the clock when its deadline"
            " falls due; let time pass instead (a later 'at')",
        ),
        (
            ('actor = "counter"', 'actor = "clock"'),
            "$.steps[0].actor: 'clock' is not a party: deadline events fire by themselves"
            " as time passes",
        ),
        (
            ('state = "escalated"', 'state = "escalated"\nexpect_error = "NotPermitted"'),
            "$.steps[1].expect_error: only an action (a step with an event) has this key",
        ),
        (
            ('event = "call_expert"', 'event = "call_expert"\nexpect_error = "NotAllowed"'),
            "$.steps[0].expect_error: unknown error kind 'NotAllowed' (did you mean"
            " 'TransitionNotAllowed'?); one of NotPermitted,"
            " TransitionNotAllowed, GuardRefused, ActorRefused, InvalidArgument, LastResortError",
        ),
        (
            ('state = "escalated"', 'state = "escalated"\nuntil = "+3d"'),
            "$.steps[1].until: only an action (a step with an event) has this key",
        ),
        (
            ('event = "call_expert"', 'event = "call_expert"\nuntil = 2026-03-06T18:00:00'),
            "$.steps[0].until: 2026-03-06T18:00:00 is before the scenario's start"
            " 2026-03-06T18:30:00+01:00",
        ),
        (
            ('event = "call_expert"', ""),
            "$.steps[0].event: an action needs the event its actor fires (event)",
        ),
    ],
)
def test_header_and_step_problems(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    text = LATE.replace(*change)
    assert text != LATE
    assert expected in problems_of(tmp_path, text)


def test_a_scenario_needs_steps_and_a_name(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, HEADER.replace('"expert late"', '" "'))
    assert problems == [
        "$.scenario.name: empty name; say in one line what the scenario shows",
        "$.steps: a scenario needs at least one step ([[steps]])",
    ]


def test_unreadable_file_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(lr.ScenarioError, match="cannot read file"):
        load_scenario(tmp_path / "missing.scenario.toml")
    with pytest.raises(lr.ScenarioError, match="invalid TOML"):
        load_scenario(write(tmp_path, "[scenario\n"))


def test_a_mapping_and_explicit_protocols_load(taskforce: lr.Protocol) -> None:
    data: dict[str, Any] = {
        "scenario": {
            "name": "m",
            "protocol": "taskforce",
            "opened_by_id": "emp-0001",
            "start": "2026-03-02T10:00:00+01:00",
        },
        "steps": [{"at": "+1m", "actor": "counter", "actor_id": "c-1", "event": "call_expert"}],
    }
    scenario = load_scenario(data, protocols=[taskforce])
    assert scenario.definition is taskforce
    assert scenario.source is None
    with pytest.raises(lr.ScenarioError, match="unknown protocol 'taskforce'; known: none"):
        load_scenario(data, protocols={})


# -- running ----------------------------------------------------------------------------


def test_a_passing_scenario_runs_on_the_real_engine(tmp_path: Path) -> None:
    result = run_text(tmp_path, LATE)
    assert result.passed, result.report()
    assert result.steps_run == 3
    assert result.encounter is not None
    assert result.encounter.state == "with_expert"
    assert result.summary().startswith("PASS  expert late")
    kinds = [e.kind for e in result.timeline]
    assert "DeadlineMissed" in kinds
    assert "ResponsibilityTransferred" in kinds


def test_deadlines_fire_at_their_own_moment_when_time_jumps(tmp_path: Path) -> None:
    text = (
        HEADER
        + """
[[steps]]
at = "+1m"
actor = "counter"
actor_id = "counter-01"
event = "call_expert"

[[steps]]
at = "+5h"
state = "with_crisis_service"
closed = true
queued = [{ party = "crisis", event = "no_expert_available", count = 1 }]
"""
    )
    result = run_text(tmp_path, text)
    assert result.passed, result.report()
    start = result.scenario.start
    missed = [e for e in result.timeline if isinstance(e, lr.DeadlineMissed)]
    assert [(e.event, e.at - start) for e in missed] == [
        ("expert_overdue", timedelta(minutes=46)),
        ("no_expert_available", timedelta(minutes=91)),
    ]
    closed = [e for e in result.timeline if isinstance(e, lr.EncounterClosed)]
    assert closed[0].at - start == timedelta(minutes=91)


def test_a_wrong_expectation_fails_with_a_readable_diff(tmp_path: Path) -> None:
    text = LATE.replace('state = "with_expert"', 'state = "awaiting_mayor"').replace(
        'responsible = "expert"', 'responsible = "mayor"'
    )
    result = run_text(tmp_path, text)
    assert not result.passed
    assert result.failure is not None
    assert result.failure.index == 2
    assert result.steps_run == 2
    report = result.report()
    lines = report.splitlines()
    assert lines[0] == f"FAIL  expert late  ({tmp_path / 'case.scenario.toml'})"
    assert lines[1] == "  $.steps[2] at +51m (Fri 06 Mar 2026 19:21 CET)"
    assert lines[2:11] == [
        "  note: the expert arrives",
        "  action: expert (expert-01) fires 'expert_takes_over'",
        "  state",
        "    - expected: 'awaiting_mayor'",
        "    + actual:   'with_expert'",
        "  responsible",
        "    - expected: 'mayor'",
        "    + actual:   'expert'",
        "  encounter then: step 'with_expert', responsible 'expert', open",
    ]
    assert lines[11] == "  timeline so far:"
    assert re.search(r"clock\s+DEADLINE MISSED\s+expert_overdue \(due 19:16\)", report)
    assert re.search(r"expert\s+HANDOVER\s+counter → expert", report)
    assert str(result) == report


def test_failures_stop_the_run_at_the_first_failing_step(tmp_path: Path) -> None:
    text = LATE.replace('state = "escalated"', 'state = "awaiting_expert"')
    result = run_text(tmp_path, text)
    assert result.failure is not None
    assert result.failure.index == 1
    assert result.encounter is not None
    assert result.encounter.state == "escalated"  # the expert's step never ran
    assert "ResponsibilityTransferred" not in [e.kind for e in result.timeline]


def test_allowed_deadlines_and_notification_mismatches_are_explained(tmp_path: Path) -> None:
    text = (
        HEADER
        + """
[[steps]]
at = "+1m"
actor = "counter"
actor_id = "counter-01"
event = "call_expert"
allowed = { actor = "counter", events = ["call_expert", "acute_danger"] }
deadlines = [{ step = "awaiting_expert", due = "+45m" }]
queued = [{ party = "expert", event = "call_expert", count = 2 }]
delivered = [{ party = "mayor_staff", event = "expert_overdue" }]
closed = true
"""
    )
    result = run_text(tmp_path, text)
    assert result.failure is not None
    found = {m.what: (m.expected, m.actual) for m in result.failure.mismatches}
    assert found["allowed[counter]"] == (
        "[acute_danger, call_expert]",
        "[acute_danger]  (missing call_expert)",
    )
    assert found["deadlines"] == (
        "awaiting_expert → its event due +45m",
        "awaiting_expert → expert_overdue due +46m (Fri 19:16)",
    )
    assert found["queued[expert of call_expert]"] == (
        "expert notified of 'call_expert' twice",
        "once; queued so far: expert of call_expert",
    )
    assert found["delivered[mayor_staff of expert_overdue]"] == (
        "mayor_staff notified of 'expert_overdue' at least once",
        "never; delivered so far: expert of call_expert",
    )
    assert found["closed"] == ("closed", "open")


def test_expected_error_passes_and_leaves_the_encounter_unchanged(tmp_path: Path) -> None:
    text = LATE.replace(
        'at = "+46m"',
        'at = "+10m"\nactor = "counter"\nactor_id = "c-1"\nevent = "expert_takes_over"\n'
        'expect_error = "NotPermitted"\n\n[[steps]]\nat = "+46m"',
    )
    result = run_text(tmp_path, text)
    assert result.passed, result.report()
    versions = [e for e in result.timeline if e.at - result.scenario.start == timedelta(minutes=10)]
    assert versions == []  # the refusal wrote nothing


def test_expected_error_of_another_kind_fails(tmp_path: Path) -> None:
    text = LATE.replace(
        'at = "+46m"',
        'at = "+10m"\nactor = "expert"\nactor_id = "e-1"\nevent = "arrange_mayor_meeting"\n'
        'expect_error = "NotPermitted"\n\n[[steps]]\nat = "+46m"',
    )
    result = run_text(tmp_path, text)
    assert result.failure is not None
    (mismatch,) = result.failure.mismatches
    assert mismatch.what == "expect_error"
    assert mismatch.expected == "NotPermitted"
    assert mismatch.actual.startswith("refused with TransitionNotAllowed: ")
    assert isinstance(result.failure.error, lr.TransitionNotAllowed)


def test_expected_error_on_an_accepted_action_fails(tmp_path: Path) -> None:
    text = LATE.replace(
        'event = "call_expert"', 'event = "call_expert"\nexpect_error = "GuardRefused"'
    )
    result = run_text(tmp_path, text)
    assert result.failure is not None
    (mismatch,) = result.failure.mismatches
    assert mismatch.expected == "counter firing 'call_expert' is refused with GuardRefused"
    assert mismatch.actual == "it was accepted: 'arrived' → 'awaiting_expert'"


def test_an_unexpected_refusal_fails_with_the_engines_message(tmp_path: Path) -> None:
    text = LATE.replace('at = "+51m"', 'at = "+52m"').replace(
        'at = "+46m"',
        'at = "+46m"\n\n[[steps]]\nat = "+50m"\nactor = "expert"\nactor_id = "e-1"\nevent = "close"',
    )
    result = run_text(tmp_path, text)
    assert result.failure is not None
    assert result.failure.index == 2
    (mismatch,) = result.failure.mismatches
    assert (mismatch.what, mismatch.expected) == ("action", "expert fires 'close'")
    assert mismatch.actual.startswith("refused with TransitionNotAllowed: encounter ")
    assert "event 'close' is not allowed in step 'escalated'" in mismatch.actual


def guarded_engine(taskforce: lr.Protocol, reason: str | None, start: datetime) -> lr.Engine:
    return engine_for(
        with_guard(taskforce, "inform_mayor"),
        [GuardPlugin(reason)],
        clock=lr.VirtualClock(start - timedelta(hours=1)),
    )


GUARDED = (
    HEADER
    + """
[[steps]]
at = "+1m"
actor = "counter"
actor_id = "counter-01"
event = "call_expert"

[[steps]]
at = "+20m"
actor = "expert"
actor_id = "expert-01"
event = "expert_takes_over"

[[steps]]
at = "+30m"
actor = "expert"
actor_id = "expert-01"
event = "inform_mayor"
expect_error = "GuardRefused"
state = "with_expert"
allowed = { actor = "expert", events = ["acute_danger"] }
"""
)


def test_guard_refusal_on_a_given_engine(tmp_path: Path, taskforce: lr.Protocol) -> None:
    scenario = load_scenario(write(tmp_path, GUARDED), protocols=[taskforce])
    engine = guarded_engine(taskforce, "the child does not want the mayor told yet", scenario.start)
    result = run_scenario(scenario, engine)
    assert result.passed, result.report()
    assert engine.clock.now() == scenario.start + timedelta(minutes=30)

    allowing = guarded_engine(taskforce, None, scenario.start)
    result = run_scenario(scenario, allowing)
    assert result.failure is not None
    assert (
        result.failure.mismatches[0].actual == "it was accepted: 'with_expert' → 'awaiting_mayor'"
    )


def test_a_given_engine_must_fit_the_scenario(tmp_path: Path, taskforce: lr.Protocol) -> None:
    scenario = load_scenario(write(tmp_path, LATE), protocols=[taskforce])
    system = lr.Engine(protocols=[taskforce], entry_points=False)
    with pytest.raises(lr.ScenarioError, match="scenarios need a VirtualClock"):
        run_scenario(scenario, system)
    late_clock = lr.VirtualClock(scenario.start + timedelta(days=1))
    late = lr.Engine(protocols=[taskforce], clock=late_clock, entry_points=False)
    with pytest.raises(lr.ScenarioError, match="past the scenario's start"):
        run_scenario(scenario, late)
    assert late.store.encounter_ids() == []
    other = evolve(taskforce, id="other")
    wrong = lr.Engine(protocols=[other], clock=lr.VirtualClock(scenario.start), entry_points=False)
    with pytest.raises(lr.ScenarioError, match="does not run 'taskforce'; it runs: other"):
        run_scenario(scenario, wrong)
    assert wrong.store.encounter_ids() == []


def test_steps_without_at_happen_with_the_previous_step(tmp_path: Path) -> None:
    text = LATE.replace('at = "+51m"\n', "")
    scenario = load_scenario(write(tmp_path, text))
    assert scenario.steps[2].at == timedelta(minutes=46)
    assert run_scenario(scenario).passed


def test_single_tables_stand_for_arrays(tmp_path: Path) -> None:
    text = LATE.replace(
        'queued = [{ party = "mayor_staff", event = "expert_overdue" }]',
        'queued = { party = "mayor_staff", event = "expert_overdue" }\n'
        'delivered = { party = "expert", event = "expert_overdue" }\n'
        'deadlines = { step = "escalated", due = "+1h31m" }',
    )
    step = load_scenario(write(tmp_path, text)).steps[1]
    assert step.queued == (NotificationExpectation("mayor_staff", "expert_overdue"),)
    assert step.delivered == (NotificationExpectation("expert", "expert_overdue"),)
    assert step.deadlines is not None
    assert [(d.step, d.due) for d in step.deadlines] == [("escalated", timedelta(minutes=91))]
    assert run_scenario(load_scenario(write(tmp_path, text))).passed


def test_a_json_scenario_runs(tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    path.write_text(
        '{"scenario": {"name": "j", "protocol": "taskforce", "opened_by_id": "emp-0001",'
        ' "start": "2026-03-02T10:00"},'
        ' "steps": [{"at": "+1m", "actor": "counter", "actor_id": "c-1", "event": "call_expert",'
        ' "state": "awaiting_expert"}]}',
        encoding="utf-8",
    )
    assert run_scenario(load_scenario(path)).passed


# -- shipped scenarios and docs ---------------------------------------------------------


def test_scenarios_are_shipped_for_the_reference_protocol() -> None:
    names = {p.name for p in SHIPPED}
    assert {
        "taskforce-happy-path.scenario.toml",
        "taskforce-expert-late.scenario.toml",
        "taskforce-no-expert.scenario.toml",
        "taskforce-acute-danger.scenario.toml",
        "taskforce-refused-handover.scenario.toml",
        "taskforce-mayor-overdue.scenario.toml",
    } <= names


def test_every_shipped_protocol_has_at_least_two_shipped_scenarios() -> None:
    # the protocols of this repository: the core's and those of the plugins under plugins/
    # (not whatever else happens to be installed in the environment)
    shipped = {"taskforce"} | {
        lr.load_protocol(path).id for path in ROOT.glob("plugins/*/src/*/*.toml")
    }
    assert len(shipped) >= 5
    covered = Counter(load_scenario(p).protocol for p in SHIPPED)
    assert {pid: covered[pid] for pid in sorted(shipped) if covered[pid] < 2} == {}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_scenario_passes(path: Path) -> None:
    result = run_scenario(load_scenario(path))
    assert result.passed, result.report()
    assert result.steps_run == len(result.scenario.steps)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_scenario_fails_when_its_last_state_is_wrong(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.definition is not None
    index = max(i for i, step in enumerate(scenario.steps) if step.state is not None)
    right = scenario.steps[index].state
    wrong = next(key for key in scenario.definition.steps if key != right)
    steps = list(scenario.steps)
    steps[index] = evolve(steps[index], state=wrong)
    result = run_scenario(evolve(scenario, steps=steps))
    assert result.failure is not None
    assert result.failure.index == index
    assert [m.what for m in result.failure.mismatches] == ["state"]
    assert result.failure.mismatches[0].actual == repr(right)


def test_the_docs_example_passes(tmp_path: Path) -> None:
    docs = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", docs, flags=re.S)
    assert blocks, "docs/scenarios.md has no toml example"
    for index, block in enumerate(blocks):
        result = run_scenario(load_scenario(write(tmp_path, block, f"doc{index}.scenario.toml")))
        assert result.passed, result.report()


# -- the CLI ------------------------------------------------------------------------------


def test_cli_runs_the_shipped_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "run", str(ROOT / "examples" / "scenarios")]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS  ") == len(SHIPPED)
    assert out.rstrip().endswith(f"{len(SHIPPED)} passed, 0 failed")


def test_cli_failure_prints_the_diff_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, LATE, "good.scenario.toml")
    bad = write(
        tmp_path, LATE.replace('state = "with_expert"', 'state = "closed"'), "bad.scenario.toml"
    )
    assert main(["scenario", "run", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "PASS  expert late" in out
    assert "FAIL  expert late" in out
    assert "    - expected: 'closed'\n    + actual:   'with_expert'" in out
    assert "timeline so far:" in out
    assert out.rstrip().endswith("1 passed, 1 failed")


def test_cli_unusable_file_exits_2_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, LATE, "good.scenario.toml")
    bad = write(
        tmp_path,
        LATE.replace('event = "expert_takes_over"', 'event = "expert_take_over"').replace(
            'at = "+46m"', 'at = "soon"'
        ),
        "bad.scenario.toml",
    )
    assert main(["scenario", "run", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing ran, not even the good file
    assert f"2 problems in {bad}" in captured.err
    assert "$.steps[1].at: invalid time 'soon'" in captured.err
    assert "$.steps[2].event: unknown event 'expert_take_over'" in captured.err
    assert "1 scenario file is unusable; nothing was run" in captured.err


def test_cli_with_no_scenario_files_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scenario", "run", str(tmp_path)]) == 2
    assert "no scenario files found" in capsys.readouterr().err


def test_cli_timeline_of_passing_scenarios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scenario", "run", "--timeline", str(write(tmp_path, LATE))]) == 0
    out = capsys.readouterr().out
    assert re.search(r"expert\s+HANDOVER\s+counter → expert", out)


# -- the pytest plugin ----------------------------------------------------------------------


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # pin the rootdir: a stray setup.py or ini file above the temporary directory must not
    # make its conftest.py a non-root one
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(directory)],
        capture_output=True,
        text=True,
        cwd=directory,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_pytest_collects_scenarios_and_shows_the_diff(tmp_path: Path) -> None:
    write(tmp_path, LATE, "good.scenario.toml")
    write(tmp_path, LATE.replace('state = "with_expert"', 'state = "closed"'), "bad.scenario.toml")
    (tmp_path / "notes.toml").write_text('x = "not a scenario"\n', encoding="utf-8")
    done = run_pytest(tmp_path, "-p", "lastresort.testing")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout
    assert "    - expected: 'closed'\n    + actual:   'with_expert'" in done.stdout
    assert "timeline so far:" in done.stdout
    assert "Traceback" not in done.stdout
    assert "runtest" not in done.stdout  # the diff, not a traceback through the plugin


@pytest.mark.slow
def test_pytest_plugin_from_a_conftest_and_unusable_files(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["lastresort.testing"]\n')
    write(tmp_path, LATE, "good.scenario.toml")
    write(tmp_path, LATE.replace('actor = "expert"', 'actor = "vangnet"'), "bad.scenario.toml")
    done = run_pytest(tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ERROR collecting bad.scenario.toml" in done.stdout
    assert "$.steps[2].actor: unknown party 'vangnet'" in done.stdout
    assert "Traceback" not in done.stdout

    (tmp_path / "bad.scenario.toml").unlink()
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_without_the_plugin_pytest_ignores_scenario_files(tmp_path: Path) -> None:
    write(tmp_path, LATE, "good.scenario.toml")
    done = run_pytest(tmp_path)
    assert done.returncode == 5, done.stdout + done.stderr  # no tests collected


def test_importing_lastresort_does_not_import_pytest() -> None:
    code = (
        "import sys, lastresort, lastresort.simulate, lastresort.testing, lastresort.cli;"
        " print('pytest' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# -- who acts: ids (issue 15) -----------------------------------------------------------


def test_a_scenario_without_ids_is_located(tmp_path: Path) -> None:
    text = LATE.replace('opened_by_id = "emp-0001"\n', "").replace('actor_id = "expert-01"\n', "")
    assert problems_of(tmp_path, text) == [
        "$.scenario.opened_by_id: the pseudonymous id of the person who opens the encounter is"
        ' missing (every actor but the clock carries one), e.g. opened_by_id = "clerk-07"',
        "$.steps[2].actor_id: an action needs the pseudonymous id of the person who fires it"
        ' (every actor but the clock carries one), e.g. actor_id = "clerk-07"; to check that'
        ' an actor without one is refused, add expect_error = "ActorRefused"',
    ]


def test_an_actor_id_of_a_name_is_located_without_quoting_it(tmp_path: Path) -> None:
    text = LATE.replace('actor_id = "expert-01"', 'actor_id = "Anna de Vries"')
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith("$.steps[2].actor_id: an actor id is 1 to 64 letters")
    assert "Vries" not in problems[0]


def test_an_actor_without_an_id_is_refused_and_the_encounter_unchanged(tmp_path: Path) -> None:
    text = LATE.replace(
        'actor = "expert"\nactor_id = "expert-01"\nevent = "expert_takes_over"\n'
        'state = "with_expert"\nresponsible = "expert"',
        'actor = "expert"\nevent = "expert_takes_over"\nexpect_error = "ActorRefused"\n'
        'state = "escalated"\nresponsible = "counter"',
    )
    assert text != LATE
    result = run_text(tmp_path, text)
    assert result.passed, result.failure
