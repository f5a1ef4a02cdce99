"""The verifier: each property broken on its own, with its exact shortest
counterexample; the time bounds; the CLI; strict engines; plugin properties."""

from __future__ import annotations

import copy
import itertools
import json
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lastresort as lr
from lastresort.cli import main
from lastresort.cli.check import run_check
from lastresort.testing import assert_protocol_safe

ROOT = Path(__file__).resolve().parent.parent
MINI = Path(__file__).parent / "protocols" / "verify" / "mini.toml"
ENCOUNTER_PROPERTIES = [
    "responsibility",
    "termination",
    "deadlines",
    "acute-danger",
    "handover",
    "report-before-close",
    "mayor",
    "clerk-never-closes",
    "time-bounds",
]
ORDER_PROPERTIES = [
    *ENCOUNTER_PROPERTIES,
    "order-adult-only",
    "order-consult-first",
    "order-cap",
    "order-mayor-only",
]


def P(event: str | None, step: str, party: str | None) -> lr.PathStep:
    return lr.PathStep(event, step, party)


START = P(None, "arrived", "clerk")
TO_WAITING = P("call_expert", "waiting", "clerk")
TO_EXPERT = P("expert_takes_over", "with_expert", "expert")
TO_MAYOR = P("mayor_spoke", "mayor_met", "expert")
TO_REPORTED = P("report_made", "reported", "expert")


def mini() -> dict[str, Any]:
    """The raw data of the mini protocol, to break one piece at a time."""
    return tomllib.loads(MINI.read_text(encoding="utf-8"))


def transition(data: dict[str, Any], event: str) -> dict[str, Any]:
    return next(t for t in data["transitions"] if t["event"] == event)


def load(data: dict[str, Any]) -> lr.Protocol:
    return lr.load_protocol(data, check=False)


def failed(report: lr.Report) -> list[str]:
    return [r.name for r in report.failed]


# -- the reference and the base protocol pass -----------------------------------------


def test_reference_protocol_passes_with_an_expert_bound_of_1h45m(taskforce: lr.Protocol) -> None:
    report = lr.verify(taskforce)
    assert report.ok, report.problems()
    assert [r.name for r in report.results] == ENCOUNTER_PROPERTIES
    expert, mayor = report.bounds
    assert (expert.goal, expert.worst, expert.requirement, expert.holds) == (
        "child_with_expert",
        timedelta(hours=1, minutes=45),
        timedelta(hours=1, minutes=45),
        True,
    )
    assert [p.step for p in expert.path] == [
        "arrived",
        "awaiting_expert",
        "escalated",
        "with_expert",
    ]
    assert expert.costs == (
        timedelta(minutes=15),
        timedelta(minutes=45),
        timedelta(minutes=45),
        timedelta(0),
    )
    assert [end[-1].step for end in expert.ends] == ["with_police"]
    # the mayor's reminder loops: unbounded, but no requirement is stated, so it holds
    assert mayor.worst is None
    assert mayor.unbounded
    assert mayor.holds is None
    assert mayor.cycle == (
        P(None, "awaiting_mayor", "expert"),
        P("mayor_overdue", "awaiting_mayor", "expert"),
    )


def test_mini_protocol_passes_and_is_structurally_valid() -> None:
    protocol = lr.load_protocol(MINI)
    report = lr.verify(protocol)
    assert report.ok, report.problems()
    assert report.problems() == []
    expert, mayor = report.bounds
    assert expert.worst == timedelta(minutes=40)
    assert expert.path == (START, TO_WAITING, TO_EXPERT)
    # with_expert has no deadline: no true worst case, an ESTIMATE with the expert's p90 (50m)
    assert mayor.worst is None
    assert mayor.estimate == timedelta(minutes=90)
    assert mayor.estimated_steps == ("with_expert",)
    assert mayor.holds is None  # mini.toml states no max_wait_for_mayor
    assert mayor.costs == (
        timedelta(minutes=10),
        timedelta(minutes=30),
        timedelta(minutes=50),
        timedelta(0),
    )


# -- each property broken on its own -----------------------------------------------------


def _no_responsible(d: dict[str, Any]) -> None:
    del d["steps"]["mayor_met"]["responsible"]


def _trap(d: dict[str, Any]) -> None:
    for key in ("consulting", "deliberating"):
        d["steps"][key] = {
            "responsible": "expert",
            "kind": "active",
            "instructions": {"nl": "Overleg.", "en": "Deliberate."},
        }
    d["transitions"] += [
        {"event": "consult", "from": ["with_expert"], "to": "consulting", "by": ["expert"]},
        {"event": "ponder", "from": ["consulting"], "to": "deliberating", "by": ["expert"]},
        {"event": "reconsider", "from": ["deliberating"], "to": "consulting", "by": ["expert"]},
    ]


def _waiting_without_deadline(d: dict[str, Any]) -> None:
    del d["steps"]["waiting"]["deadline"]
    # without the deadline the expert's wait has no true worst case either, so a stated
    # max_wait_for_expert would fail time-bounds too (an estimate proves nothing)
    del d["requirements"]["max_wait_for_expert"]


def _acute_gap(d: dict[str, Any]) -> None:
    transition(d, "acute_danger")["from"] = ["arrived", "waiting", "with_expert", "reported"]


def _clerk_hands_over(d: dict[str, Any]) -> None:
    transition(d, "expert_takes_over")["by"] = ["expert", "clerk"]


def _close_unreported(d: dict[str, Any]) -> None:
    d["transitions"].append(
        {"event": "close_early", "from": ["mayor_met"], "to": "closed", "by": ["expert"]}
    )


def _skip_mayor(d: dict[str, Any]) -> None:
    d["steps"]["reported_early"] = {
        "responsible": "expert",
        "kind": "active",
        "tags": ["child_with_expert", "reported"],
        "instructions": {"nl": "Sluit af.", "en": "Close."},
    }
    d["transitions"].append(
        {"event": "report_first", "from": ["with_expert"], "to": "reported_early", "by": ["expert"]}
    )
    transition(d, "close")["from"] = ["reported", "reported_early"]


def _clerk_closes(d: dict[str, Any]) -> None:
    transition(d, "close")["by"] = ["expert", "clerk"]


def _slow_expert(d: dict[str, Any]) -> None:
    d["steps"]["waiting"]["deadline"]["after"] = "45m"


BROKEN = {
    "responsibility": (
        _no_responsible,
        (START, TO_WAITING, TO_EXPERT, P("mayor_spoke", "mayor_met", None)),
        "step 'mayor_met' has no responsible party",
    ),
    "termination": (
        _trap,
        (START, TO_WAITING, TO_EXPERT, P("consult", "consulting", "expert")),
        "from step 'consulting' no terminal step can be reached without acute_danger:"
        " it can only reach 'deliberating' (a trap without an exit)",
    ),
    "deadlines": (
        _waiting_without_deadline,
        (START, TO_WAITING),
        "step 'waiting' is a waiting step (clock, expert moves it on) but has no deadline",
    ),
    "acute-danger": (
        _acute_gap,
        (START, TO_WAITING, TO_EXPERT, TO_MAYOR),
        "no acute_danger transition leaves step 'mayor_met'",
    ),
    "handover": (
        _clerk_hands_over,
        (START, TO_WAITING, TO_EXPERT),
        "'expert_takes_over' hands the child from 'clerk' to 'expert' in 'with_expert' but may"
        " be fired by 'clerk'; only the receiver 'expert' (or the clock) may",
    ),
    "report-before-close": (
        _close_unreported,
        (START, TO_WAITING, TO_EXPERT, TO_MAYOR, P("close_early", "closed", None)),
        "a path reaches closing step 'closed' without passing a step tagged 'reported' or"
        " 'safe_arrangement'",
    ),
    "mayor": (
        _skip_mayor,
        (
            START,
            TO_WAITING,
            TO_EXPERT,
            P("report_first", "reported_early", "expert"),
            P("close", "closed", None),
        ),
        "a path reaches closing step 'closed' without passing a step tagged 'mayor_involved'",
    ),
    "clerk-never-closes": (
        _clerk_closes,
        (START, TO_WAITING, TO_EXPERT, TO_MAYOR, TO_REPORTED, P("close", "closed", None)),
        "'close' into closing step 'closed' may be fired by 'clerk' (municipal_staff) alone",
    ),
    "time-bounds": (
        _slow_expert,
        (START, TO_WAITING, TO_EXPERT),
        "the wait until 'child_with_expert' can be 55m, more than max_wait_for_expert 40m",
    ),
}


def test_every_encounter_property_has_a_breaking_protocol() -> None:
    assert sorted(BROKEN) == sorted(ENCOUNTER_PROPERTIES)


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_protocol_that_breaks_one_property_fails_that_property_only(name: str) -> None:
    breaker, path, message = BROKEN[name]
    data = mini()
    breaker(data)
    report = lr.verify(load(data))
    assert failed(report) == [name]
    result = report.result(name)
    assert result.counterexample == path
    assert result.message == message
    assert not report.ok


def test_an_undeclared_responsible_party_fails_responsibility_only() -> None:
    data = mini()
    data["steps"]["mayor_met"]["responsible"] = "expret"
    report = lr.verify(load(data))
    assert failed(report) == ["responsibility"]
    result = report.result("responsibility")
    assert result.counterexample == (
        START,
        TO_WAITING,
        TO_EXPERT,
        P("mayor_spoke", "mayor_met", "expret"),
    )
    assert result.message == "step 'mayor_met' names 'expret' as responsible, which is not a party"


def test_a_closing_step_tagged_safe_arrangement_does_not_excuse_a_path_without_one(
    taskforce: lr.Protocol,
) -> None:
    data = lr.dump_protocol(taskforce)
    assert "safe_arrangement" in data["steps"]["closed"]["tags"]
    data["transitions"].append(
        {"event": "close_early", "from": ["mayor_met"], "to": "closed", "by": ["expert"]}
    )
    report = lr.verify(load(data))
    assert failed(report) == ["report-before-close"]
    assert report.result("report-before-close").counterexample == (
        P(None, "arrived", "counter"),
        P("expert_takes_over", "with_expert", "expert"),
        P("inform_mayor", "awaiting_mayor", "expert"),
        P("mayor_spoke_with_child", "mayor_met", "expert"),
        P("close_early", "closed", None),
    )


def test_acute_danger_into_a_closing_step_fails_acute_danger_only() -> None:
    data = mini()
    transition(data, "acute_danger")["to"] = "closed"
    report = lr.verify(load(data))
    # the closing paths through acute_danger are acute-danger's finding, not the
    # report, mayor or clerk properties'
    assert failed(report) == ["acute-danger"]
    assert report.result("acute-danger").counterexample == (
        START,
        P("acute_danger", "closed", None),
    )


def test_handover_counterexample_is_the_shortest_of_several_violations() -> None:
    data = mini()
    _clerk_hands_over(data)
    # a second, longer violation: the mayor may hand the child to the police
    d_extra = {"event": "mayor_calls_police", "from": ["mayor_met"], "to": "with_police"}
    data["transitions"].append({**d_extra, "by": ["mayor"]})
    result = lr.verify(load(data)).result("handover")
    assert result.counterexample == (START, TO_WAITING, TO_EXPERT)
    assert result.further == (
        "'mayor_calls_police' hands the child from 'expert' to 'police' in 'with_police' but"
        " may be fired by 'mayor'; only the receiver 'police' (or the clock) may",
    )


def test_deadlines_flags_a_step_whose_transitions_are_all_fired_by_others() -> None:
    data = mini()
    transition(data, "mayor_spoke")["by"] = ["mayor"]
    report = lr.verify(load(data))
    assert failed(report) == ["deadlines"]
    assert report.result("deadlines").counterexample == (START, TO_WAITING, TO_EXPERT)
    assert "waits on others (mayor moves it on)" in report.result("deadlines").message


def test_deadlines_flags_a_deadline_that_does_not_lead_on() -> None:
    data = mini()
    data["steps"]["arrived"]["deadline"]["event"] = "expert_not_caled"
    report = lr.verify(load(data))
    assert failed(report) == ["deadlines"]
    assert report.result("deadlines").counterexample == (START,)
    assert report.result("deadlines").message == (
        "the deadline of step 'arrived' does not lead on: no transition for"
        " 'expert_not_caled' leaves it"
    )


def test_acute_danger_into_a_step_without_an_emergency_party() -> None:
    data = mini()
    data["steps"]["with_police"]["responsible"] = "mayor"
    report = lr.verify(load(data))
    assert failed(report) == ["acute-danger"]
    result = report.result("acute-danger")
    assert result.counterexample == (START, P("acute_danger", "with_police", "mayor"))
    assert "'mayor' is not of kind 'emergency'" in result.message


def test_termination_flags_a_step_whose_only_way_out_is_acute_danger() -> None:
    data = mini()
    data["steps"]["stuck"] = {
        "responsible": "expert",
        "kind": "active",
        "instructions": {"nl": "Wacht.", "en": "Wait."},
    }
    data["transitions"].append(
        {"event": "wait_for_news", "from": "with_expert", "to": "stuck", "by": "expert"}
    )
    report = lr.verify(load(data))
    assert failed(report) == ["termination"]
    result = report.result("termination")
    assert result.counterexample == (
        START,
        TO_WAITING,
        TO_EXPERT,
        P("wait_for_news", "stuck", "expert"),
    )
    assert result.message == (
        "from step 'stuck' no terminal step can be reached without acute_danger:"
        " its only way out is acute_danger"
    )
    assert result.further == ()


def test_termination_counterexample_is_the_nearest_trapped_step() -> None:
    data = mini()
    data["transitions"].remove(transition(data, "report_made"))
    result = lr.verify(load(data)).result("termination")
    # with_expert can only go on to mayor_met, which has no way out but acute_danger
    assert result.counterexample == (START, TO_WAITING, TO_EXPERT)
    assert result.message.endswith("it can only reach 'mayor_met' (a trap without an exit)")
    assert result.further == (
        "from step 'mayor_met' no terminal step can be reached without acute_danger:"
        " its only way out is acute_danger",
    )


# -- time bounds ---------------------------------------------------------------------------


def test_a_reminder_loop_before_the_expert_makes_the_wait_unbounded() -> None:
    data = mini()
    data["transitions"].append(
        {"event": "expert_reminded", "from": ["waiting"], "to": "waiting", "by": ["clock"]}
    )
    data["steps"]["waiting"]["deadline"]["event"] = "expert_reminded"
    report = lr.verify(load(data))
    assert failed(report) == ["time-bounds"]
    expert = report.bounds[0]
    assert expert.worst is None
    assert expert.unbounded
    assert expert.holds is False
    loop = P("expert_reminded", "waiting", "clerk")
    assert expert.cycle == (P(None, "waiting", "clerk"), loop)
    result = report.result("time-bounds")
    assert result.counterexample == (START, TO_WAITING, loop)
    assert "is unbounded (max_wait_for_expert 40m)" in result.message


def test_a_step_of_unknown_cost_makes_the_wait_unbounded() -> None:
    data = mini()
    data["requirements"]["max_wait_for_mayor"] = "2h"
    del data["parties"]["expert"]["response"]  # with_expert has no deadline either
    report = lr.verify(load(data))
    assert failed(report) == ["time-bounds"]
    mayor = report.bounds[1]
    assert mayor.open_step == "with_expert"
    assert mayor.worst is None
    assert mayor.unbounded
    result = report.result("time-bounds")
    assert result.counterexample == (START, TO_WAITING, TO_EXPERT)
    assert result.message == (
        "the wait until 'mayor_involved' is unbounded (max_wait_for_mayor 2h): step"
        " 'with_expert' has no deadline and its responsible party no response model"
    )


def test_an_unreachable_goal_fails_only_when_a_requirement_is_stated() -> None:
    data = mini()
    for key in ("with_expert", "mayor_met", "reported"):
        data["steps"][key]["tags"].remove("child_with_expert")
    report = lr.verify(load(data))
    assert failed(report) == ["time-bounds"]
    assert report.bounds[0].reachable is False
    assert report.result("time-bounds").message == (
        "the wait until 'child_with_expert': no step tagged 'child_with_expert' can be reached"
        " (max_wait_for_expert 40m)"
    )
    del data["requirements"]["max_wait_for_expert"]
    report = lr.verify(load(data))
    assert report.ok
    assert report.bounds[0].holds is None
    assert report.bounds[0].worst is None


def test_bounds_without_requirements_are_reported_and_hold() -> None:
    data = mini()
    _slow_expert(data)
    del data["requirements"]["max_wait_for_expert"]
    report = lr.verify(load(data))
    assert report.ok
    assert report.bounds[0].worst == timedelta(minutes=55)
    assert report.bounds[0].holds is None


# -- not applicable ------------------------------------------------------------------------


def test_mayor_and_report_rules_are_not_applicable_when_not_required() -> None:
    data = mini()
    _skip_mayor(data)
    _close_unreported(data)
    data["requirements"]["mayor_contact"] = False
    data["requirements"]["report_before_close"] = False
    report = lr.verify(load(data))
    assert report.ok
    for name in ("mayor", "report-before-close"):
        assert not report.result(name).applicable
        assert report.result(name).message.startswith("not applicable")
    assert "– mayor" in report.to_text()


# -- orders --------------------------------------------------------------------------------


def order(cap: str | None = "28d", **edits: Any) -> lr.Protocol:
    data: dict[str, Any] = {
        "protocol": {
            "id": "order",
            "version": "1",
            "municipality": "Testdorp",
            "title": {"nl": "Huisverbod", "en": "Restraining order"},
            "initial": "danger",
            "source": "tests",
            "kind": "order",
        },
        "parties": {
            "mayor": {"name": {"nl": "Burgemeester", "en": "Mayor"}, "kind": "mayor"},
            "officer": {"name": {"nl": "Hulpofficier", "en": "Officer"}, "kind": "emergency"},
        },
        "steps": {
            "danger": {"responsible": "mayor", "kind": "active"},
            "consulted": {
                "responsible": "mayor",
                "kind": "active",
                "tags": ["veilig_thuis_consulted"],
            },
            "in_force": {
                "responsible": "mayor",
                "kind": "waiting",
                "deadline": {"after": "10d", "event": "expires"},
                "tags": ["order_in_force"],
            },
            "extended": {
                "responsible": "mayor",
                "kind": "waiting",
                "deadline": {"after": "18d", "event": "expires"},
                "tags": ["order_in_force", "extended"],
            },
            "expired": {"kind": "terminal"},
            "withdrawn": {"kind": "terminal", "tags": ["withdrawn"]},
        },
        "transitions": [
            {"event": "consult", "from": "danger", "to": "consulted", "by": "mayor"},
            {"event": "impose", "from": "consulted", "to": "in_force", "by": ["mayor", "officer"]},
            {"event": "extend", "from": "in_force", "to": "extended", "by": "mayor"},
            {"event": "expires", "from": ["in_force", "extended"], "to": "expired", "by": "clock"},
            {
                "event": "withdraw",
                "from": ["in_force", "extended"],
                "to": "withdrawn",
                "by": "mayor",
            },
        ],
        "facts": {"subject": ["adult"]},
        "requirements": {"max_order_duration": cap} if cap else {},
    }
    for step in data["steps"].values():
        step["instructions"] = {"nl": "Doe het.", "en": "Do it."}
    for edit in edits.values():
        edit(data)
    return load(data)


def test_an_order_passes_and_encounter_rules_are_not_applicable() -> None:
    report = lr.verify(order())
    assert report.ok, report.problems()
    assert [r.name for r in report.results] == ORDER_PROPERTIES
    not_applicable = [r.name for r in report.results if not r.applicable]
    assert not_applicable == [
        "acute-danger",
        "report-before-close",
        "mayor",
        "clerk-never-closes",
        "time-bounds",
    ]
    (cap,) = report.bounds
    assert cap.worst == timedelta(days=28)
    assert [p.step for p in cap.path] == ["danger", "consulted", "in_force", "extended"]
    assert cap.costs == (timedelta(0), timedelta(0), timedelta(days=10), timedelta(days=18))
    text = report.to_text()
    assert "– time-bounds          not applicable: an order is not a child's encounter" in text
    assert "total time the order is in force (order_in_force): at most 28d;" in text
    assert "result: all 8 properties hold (5 not applicable)" in text


def _minor(d: dict[str, Any]) -> None:
    d["facts"]["subject"] = ["adult", "minor"]


def _urgent(d: dict[str, Any]) -> None:
    d["transitions"].append(
        {"event": "impose_now", "from": "danger", "to": "in_force", "by": "mayor"}
    )


def _long(d: dict[str, Any]) -> None:
    d["steps"]["extended"]["deadline"]["after"] = "20d"


def _officer_extends(d: dict[str, Any]) -> None:
    transition(d, "extend")["by"] = ["mayor", "officer"]


D = P(None, "danger", "mayor")
C = P("consult", "consulted", "mayor")
F = P("impose", "in_force", "mayor")
ORDER_BROKEN = {
    "order-adult-only": (_minor, (D,), "fact 'subject' allows 'adult', 'minor', not only 'adult'"),
    "order-consult-first": (
        _urgent,
        (D, P("impose_now", "in_force", "mayor")),
        "a path reaches order_in_force 'in_force' without passing a step tagged"
        " 'veilig_thuis_consulted'",
    ),
    "order-cap": (
        _long,
        (D, C, F, P("extend", "extended", "mayor")),
        "the total time in force can be 30d, more than max_order_duration 28d",
    ),
    "order-mayor-only": (
        _officer_extends,
        (D, C, F, P("extend", "extended", "mayor")),
        "'extend' into 'extended' (extended) may be fired by 'officer', who is not the mayor",
    ),
}


@pytest.mark.parametrize("name", list(ORDER_BROKEN))
def test_an_order_that_breaks_one_order_property_fails_that_property_only(name: str) -> None:
    breaker, path, message = ORDER_BROKEN[name]
    report = lr.verify(order(edit=breaker))
    assert failed(report) == [name]
    assert report.result(name).counterexample == path
    assert report.result(name).message == message


def test_order_cap_fails_without_a_stated_maximum_and_on_a_cycle() -> None:
    report = lr.verify(order(cap=None))
    assert failed(report) == ["order-cap"]
    assert report.result("order-cap").message == (
        "the protocol states no requirements.max_order_duration"
    )

    def again(d: dict[str, Any]) -> None:
        d["transitions"].append(
            {"event": "extend", "from": "extended", "to": "extended", "by": "mayor"}
        )

    report = lr.verify(order(edit=again))
    assert failed(report) == ["order-cap"]
    extended = P("extend", "extended", "mayor")
    assert report.result("order-cap").counterexample == (D, C, F, extended, extended)


def test_order_adult_only_fails_without_a_subject_fact() -> None:
    def no_subject(d: dict[str, Any]) -> None:
        del d["facts"]["subject"]

    report = lr.verify(order(edit=no_subject))
    assert failed(report) == ["order-adult-only"]


# -- unusable input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda d: d["protocol"].update(initial="nowhere"), "$.protocol.initial: unknown step"),
        (lambda d: transition(d, "close").update(to="closd"), "$.transitions[6].to: unknown step"),
        (
            lambda d: transition(d, "close").update({"from": ["reportd"]}),
            "$.transitions[6].from[0]: unknown step 'reportd'",
        ),
        (
            lambda d: transition(d, "close").update(by=["experd"]),
            "$.transitions[6].by[0]: unknown party 'experd'",
        ),
        (
            lambda d: transition(d, "close").update({"from": ["closed"]}),
            "terminal step 'closed' cannot have outgoing transitions",
        ),
    ],
)
def test_a_meaningless_graph_is_refused_with_its_problems(edit: Any, problem: str) -> None:
    data = mini()
    edit(data)
    protocol = load(data)
    before = copy.deepcopy(lr.dump_protocol(protocol))
    with pytest.raises(lr.ProtocolError) as info:
        lr.verify(protocol)
    assert any(problem in p for p in info.value.problems), info.value.problems
    assert lr.dump_protocol(protocol) == before


# -- report formats ------------------------------------------------------------------------


def test_text_report_shows_marks_counterexample_and_bounds() -> None:
    data = mini()
    _clerk_hands_over(data)
    text = lr.verify(load(data)).to_text()
    assert "✗ handover" in text
    assert "✓ termination" in text
    assert re.search(r"--expert_takes_over-->\s+with_expert\s+\[expert\]", text)
    assert "at most 40m; requirement max_wait_for_expert 40m: holds" in text
    assert "result: 1 of 9 properties FAIL" in text


def test_to_dict_is_json_and_complete() -> None:
    data = mini()
    data["requirements"]["max_wait_for_mayor"] = "2h"
    _close_unreported(data)
    out = json.loads(json.dumps(lr.verify(load(data)).to_dict()))
    assert out["ok"] is False
    assert [r["name"] for r in out["results"]] == ENCOUNTER_PROPERTIES
    result = out["results"][5]
    assert result["ok"] is False
    assert result["applicable"] is True
    assert result["counterexample"][0] == {"event": None, "step": "arrived", "party": "clerk"}
    assert out["bounds"][0]["worst"] == "40m"
    assert out["bounds"][0]["holds"] is True
    assert out["bounds"][1]["requirement"] == "2h"


def test_problems_name_property_and_path() -> None:
    data = mini()
    _clerk_closes(data)
    (problem,) = lr.verify(load(data)).problems()
    assert problem.startswith("clerk-never-closes: 'close' into closing step 'closed'")
    assert problem.endswith("--report_made--> reported (expert) --close--> closed (nobody)")


# -- the CLI -------------------------------------------------------------------------------


def write(tmp_path: Path, data: dict[str, Any], name: str = "p.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_cli_check_reference_exits_0_and_prints_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "taskforce"]) == 0
    out = capsys.readouterr().out
    assert "✓ responsibility" in out
    assert "at most 1h45m; requirement max_wait_for_expert 1h45m: holds" in out


def test_cli_check_toml_file_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(MINI)]) == 0
    assert "result: all 9 properties hold" in capsys.readouterr().out


def test_cli_check_broken_file_exits_1_with_counterexample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = mini()
    _trap(data)
    assert main(["check", write(tmp_path, data)]) == 1
    out = capsys.readouterr().out
    assert "✗ termination" in out
    assert re.search(r"--consult-->\s+consulting\s+\[expert\]", out)


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (None, "cannot read file"),
        ("[protocol\nid = ", "invalid TOML"),
        ("[protocol]\nid = 'x'\n", "required key missing"),
    ],
)
def test_cli_check_unusable_file_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expect: str
) -> None:
    path = tmp_path / "bad.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unusable input" in err
    assert expect in err
    assert "Traceback" not in err


def test_cli_check_meaningless_graph_and_unknown_id_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = mini()
    transition(data, "close")["to"] = "closd"
    assert main(["check", write(tmp_path, data), "no-such-protocol"]) == 2
    err = capsys.readouterr().err
    assert "$.transitions[6].to: unknown step 'closd'" in err
    assert "unknown protocol 'no-such-protocol'" in err


def test_cli_check_exit_code_is_the_worst_of_all_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = mini()
    _clerk_closes(data)
    assert main(["check", "taskforce", write(tmp_path, data)]) == 1
    out = capsys.readouterr().out
    assert "protocol taskforce" in out
    assert "protocol mini" in out


def test_cli_check_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = mini()
    _acute_gap(data)
    bad = str(tmp_path / "missing.toml")
    assert main(["check", "--json", write(tmp_path, data), "taskforce", bad]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert out["exit_code"] == 2
    broken, reference, missing = out["protocols"]
    # the acute-danger gap is a structural problem too: the report is there, but the
    # protocol is unusable (issue 14: check FILE is as strict as check ID)
    assert broken["usable"] is False
    assert broken["ok"] is False
    failing = [r for r in broken["results"] if not r["ok"]]
    assert [r["name"] for r in failing] == ["acute-danger"]
    assert [p["step"] for p in failing[0]["counterexample"]] == [
        "arrived",
        "waiting",
        "with_expert",
        "mayor_met",
    ]
    # validation also notices the gap, located in the file; alone it makes the exit code 2
    assert any(
        re.match(r".*p\.json:1:\d+: \$\.transitions: acute_danger does not cover", p)
        for p in broken["problems"]
    )
    assert main(["check", write(tmp_path, data)]) == 2
    capsys.readouterr()
    assert reference["ok"] is True
    assert reference["bounds"][0]["worst"] == "1h45m"
    assert missing == {
        "target": bad,
        "usable": False,
        "problems": missing["problems"],
        "warnings": [],  # labels (merged on main) adds every target's label warnings
    }
    assert "cannot read file" in missing["problems"][0]


def test_check_without_targets_checks_every_installed_protocol_and_all_pass() -> None:
    outcomes = {o.target: o for o in run_check([])}
    assert "taskforce" in outcomes
    # every shipped protocol (the reference and each installed plugin's) must be safe
    unsafe = {
        target: o.problems or (o.report.problems() if o.report else [])
        for target, o in outcomes.items()
        if o.code != 0
    }
    assert unsafe == {}


# -- strict engines, testing helper, plugin properties ---------------------------------------


def test_strict_engine_refuses_an_unsafe_protocol_and_lax_engine_runs_it(
    clock: lr.VirtualClock,
) -> None:
    data = mini()
    _clerk_hands_over(data)
    unsafe = lr.load_protocol(data)  # structurally valid
    with pytest.raises(lr.ProtocolError) as info:
        lr.Engine(protocols=[unsafe], clock=clock, entry_points=False, strict=True)
    (problem,) = info.value.problems
    assert problem.startswith("protocol 'mini': unsafe: handover: 'expert_takes_over'")
    engine = lr.Engine(protocols=[unsafe], clock=clock, entry_points=False)
    assert "mini" in engine.protocols


def test_strict_engine_accepts_the_reference(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    engine = lr.Engine(protocols=[taskforce], clock=clock, entry_points=False, strict=True)
    assert engine.open("taskforce", lr.Actor("counter", "counter-1")).state == "arrived"


def test_assert_protocol_safe(taskforce: lr.Protocol) -> None:
    report = assert_protocol_safe(taskforce)
    assert report.bounds[0].worst == timedelta(hours=1, minutes=45)
    data = mini()
    _trap(data)
    with pytest.raises(AssertionError) as info:
        assert_protocol_safe(load(data))
    text = str(info.value)
    assert "fails 1 safety property" in text
    assert "✗ termination" in text
    assert "counterexample: arrived (clerk) --call_expert--> waiting (clerk)" in text
    data["protocol"]["initial"] = "nowhere"
    with pytest.raises(AssertionError, match="unusable"):
        assert_protocol_safe(load(data))


def reports_held_by(role: str) -> lr.Property:
    def check(protocol: lr.Protocol) -> list[lr.Violation]:
        return [
            lr.Violation(f"{key!r} is not held by {role!r}", step=key)
            for key, step in protocol.steps.items()
            if "reported" in step.tags and step.responsible != role
        ]

    return lr.Property(f"reports-by-{role}", f"reports are made by the {role}", check)


BY_EXPERT = reports_held_by("expert")  # holds for mini
BY_MAYOR = reports_held_by("mayor")  # fails for mini


class PropertiesPlugin:
    def __init__(self, *props: lr.Property) -> None:
        self.props = props

    @lr.hookimpl
    def lastresort_protocol_properties(self, protocol: lr.Protocol) -> list[lr.Property]:
        return list(self.props) if protocol.id == "mini" else []


def test_lastresort_protocol_properties_are_checked_by_strict_engines_and_helpers(
    clock: lr.VirtualClock, taskforce: lr.Protocol
) -> None:
    protocol = lr.load_protocol(MINI)
    plugin = PropertiesPlugin(BY_MAYOR)
    with pytest.raises(lr.ProtocolError) as info:
        lr.Engine(
            protocols=[protocol, taskforce],
            plugins=[plugin],
            clock=clock,
            entry_points=False,
            strict=True,
        )
    assert info.value.problems == [
        "protocol 'mini': unsafe: reports-by-mayor: 'reported' is not held by 'mayor'; path:"
        " arrived (clerk) --call_expert--> waiting (clerk) --expert_takes_over--> with_expert"
        " (expert) --mayor_spoke--> mayor_met (expert) --report_made--> reported (expert)"
    ]
    with pytest.raises(AssertionError, match="reports-by-mayor"):
        assert_protocol_safe(protocol, plugins=[plugin])
    # the plugin only speaks about 'mini'
    report = assert_protocol_safe(taskforce, plugins=[plugin])
    assert "reports-by-mayor" not in [r.name for r in report.results]
    assert lr.verify(protocol, [BY_EXPERT]).result("reports-by-expert").ok


def test_lastresort_protocol_properties_name_clashes_are_refused(clock: lr.VirtualClock) -> None:
    protocol = lr.load_protocol(MINI)
    clash = evolve(BY_MAYOR, name="termination")
    with pytest.raises(lr.PluginLoadError, match="'termination' is already taken") as hooked:
        lr.Engine(
            protocols=[protocol],
            plugins=[PropertiesPlugin(clash)],
            clock=clock,
            entry_points=False,
            strict=True,
        )
    with pytest.raises(ValueError, match="already taken") as passed:
        lr.verify(protocol, [BY_EXPERT, BY_EXPERT])
    # the plugin is at fault through the hook, the caller's argument in verify: both invalid
    assert hooked.value.plugin is not None
    assert isinstance(passed.value, lr.InvalidArgument)
    assert passed.value.argument == "extra_properties"
    assert hooked.value.category is passed.value.category is lr.Category.INVALID


def test_lastresort_protocol_properties_that_raise_are_a_plugin_error() -> None:
    class Broken:
        @lr.hookimpl
        def lastresort_protocol_properties(self) -> list[lr.Property]:
            raise RuntimeError("no properties today")

    protocol = lr.load_protocol(MINI)
    with pytest.raises(lr.PluginLoadError, match="'mini': RuntimeError: no properties today"):
        assert_protocol_safe(protocol, plugins=[Broken()])


def test_extra_properties_crash_kind_and_pass() -> None:
    protocol = lr.load_protocol(MINI)

    def crash(_: lr.Protocol) -> list[lr.Violation]:
        raise RuntimeError("boom")

    orders_only = lr.Property("orders-only", "x", crash, kinds=[lr.ProtocolKind.ORDER])
    report = lr.verify(
        protocol, [BY_EXPERT, lr.Property("crashes", "never crashes", crash), orders_only]
    )
    assert report.result("reports-by-expert").ok
    crashed = report.result("crashes")
    assert not crashed.ok
    assert crashed.message == "the check raised RuntimeError: boom"
    assert not report.result("orders-only").applicable
    assert report.result("orders-only").ok
    assert failed(report) == ["crashes"]


# -- docs ----------------------------------------------------------------------------------


def test_docs_python_blocks_run(capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "docs" / "verifier.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    namespace: dict[str, object] = {"__name__": "docs"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/verifier.md[block {i}]", "exec"), namespace)
    assert "1h45m" in capsys.readouterr().out


def test_docs_list_every_property_with_its_rule() -> None:
    from lastresort.verifier.verification import RULES

    text = (ROOT / "docs" / "verifier.md").read_text(encoding="utf-8")
    for name in RULES:
        assert f"### `{name}`" in text, name


# -- generated protocols never crash the verifier -----------------------------------------


@st.composite
def protocols(draw: st.DrawFn) -> lr.Protocol:
    n = draw(st.integers(2, 9))
    keys = [f"s{i}" for i in range(n)]
    roles = ["clerk", "expert", "mayor"]
    kinds = {"clerk": "municipal_staff", "expert": "expert", "mayor": "mayor"}
    parties: dict[str, Any] = {r: {"name": {"nl": r, "en": r}, "kind": kinds[r]} for r in roles} | {
        "police": {"name": {"nl": "p", "en": "p"}, "kind": "emergency"}
    }
    if draw(st.booleans()):
        parties["expert"]["response"] = {"median": "10m", "p90": "30m"}
    tag_pool = ["child_with_expert", "mayor_involved", "reported", "safe_arrangement"]
    steps: dict[str, Any] = {}
    terminal = set(draw(st.sets(st.sampled_from(keys[1:]), max_size=2)))
    transitions: list[dict[str, Any]] = []
    for i, key in enumerate(keys):
        step: dict[str, Any] = {
            "kind": "terminal" if key in terminal else draw(st.sampled_from(["active", "waiting"])),
            "tags": draw(st.lists(st.sampled_from(tag_pool), unique=True, max_size=2)),
            "instructions": {"nl": "x", "en": "x"},
        }
        if key not in terminal or draw(st.booleans()):
            step["responsible"] = draw(st.sampled_from(roles))
        if key not in terminal and draw(st.booleans()):
            after = draw(st.integers(1, 90))
            step["deadline"] = {"after": f"{after}m", "event": f"due{i}"}
            target = draw(st.sampled_from(keys))
            transitions.append({"event": f"due{i}", "from": key, "to": target, "by": "clock"})
        steps[key] = step
    steps["emergency"] = {
        "kind": "terminal",
        "responsible": "police",
        "tags": ["emergency"],
        "instructions": {"nl": "x", "en": "x"},
    }
    for j in range(draw(st.integers(0, 2 * n))):
        source = draw(st.sampled_from([k for k in keys if k not in terminal]))
        transitions.append(
            {
                "event": f"e{j}",
                "from": source,
                "to": draw(st.sampled_from(keys)),
                "by": draw(st.lists(st.sampled_from(roles), min_size=1, max_size=2, unique=True)),
                **({"guard": "g"} if draw(st.booleans()) else {}),
            }
        )
    if draw(st.booleans()):
        transitions.append({"event": "acute_danger", "from": "*", "to": "emergency", "by": roles})
    data = {
        "protocol": {
            "id": "gen",
            "version": "1",
            "municipality": "x",
            "title": {"nl": "x", "en": "x"},
            "initial": keys[0],
            "source": "x",
            "kind": draw(st.sampled_from(["encounter", "order"])),
        },
        "parties": parties,
        "steps": steps,
        "transitions": transitions,
        "requirements": {
            "mayor_contact": draw(st.booleans()),
            "max_wait_for_expert": f"{draw(st.integers(1, 300))}m",
        },
    }
    return load(data)


def _is_path(protocol: lr.Protocol, path: tuple[lr.PathStep, ...]) -> bool:
    if not path:
        return True
    if path[0] != lr.PathStep(None, protocol.initial, protocol.steps[protocol.initial].responsible):
        return False
    for before, after in itertools.pairwise(path):
        if not any(
            t.event == after.event
            and t.target == after.step
            and before.step in protocol.sources_of(t)
            for t in protocol.transitions
        ):
            return False
        if after.party != protocol.steps[after.step].responsible:
            return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protocols())
@pytest.mark.slow
def test_generated_protocols_never_crash_and_counterexamples_are_real_paths(
    protocol: lr.Protocol,
) -> None:
    report = lr.verify(protocol)
    names = ORDER_PROPERTIES if protocol.kind is lr.ProtocolKind.ORDER else ENCOUNTER_PROPERTIES
    assert [r.name for r in report.results] == names
    for result in report.results:
        if result.ok:
            assert result.counterexample == ()
        assert _is_path(protocol, result.counterexample), result
    for bound in report.bounds:
        assert _is_path(protocol, bound.path)
        if bound.worst is not None and bound.path:
            assert sum(bound.costs, timedelta(0)) == bound.worst
    json.dumps(report.to_dict())
    assert report.to_text()


def _distances(protocol: lr.Protocol) -> dict[str, int]:
    """Fewest events from the initial step to each reachable step (an independent BFS)."""
    dist = {protocol.initial: 0}
    frontier = [protocol.initial]
    while frontier:
        nxt = []
        for here in frontier:
            for t in protocol.transitions:
                if here in protocol.sources_of(t) and t.target not in dist:
                    dist[t.target] = dist[here] + 1
                    nxt.append(t.target)
        frontier = nxt
    return dist


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protocols())
def test_generated_counterexamples_are_as_short_as_any(protocol: lr.Protocol) -> None:
    report = lr.verify(protocol)
    dist = _distances(protocol)
    steps = protocol.steps
    # responsibility: the nearest reachable non-terminal step without a responsible party
    bad = [k for k in dist if not steps[k].terminal and steps[k].responsible is None]
    result = report.result("responsibility")
    assert result.ok == (not bad)
    if bad:
        assert len(result.counterexample) - 1 == min(dist[k] for k in bad)
    # handover: the nearest source of a transition fired by someone other than the receiver
    lengths = [
        dist[s] + 1
        for t in protocol.transitions
        if t.event != "acute_danger"
        for s in protocol.sources_of(t)
        if s in dist
        and steps[s].responsible is not None
        and steps[t.target].responsible not in (None, steps[s].responsible)
        and set(t.by) - {steps[t.target].responsible, "clock"}
    ]
    result = report.result("handover")
    assert result.ok == (not lengths)
    if lengths:
        assert len(result.counterexample) == min(lengths) + 1
