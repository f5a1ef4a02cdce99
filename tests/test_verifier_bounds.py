"""The verifier's bounds (issue 14): a true worst case only where one exists, a
separately labelled estimate where a step has no deadline, an explicit line for paths
that never reach the goal, reminder loops counted once when the protocol says so, and
simulated waits that never exceed a reported true worst case."""

from __future__ import annotations

import json
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lastresort as lr
from lastresort.simulate import monte_carlo
from tests.conftest import SHIPPED_TASKFORCE

MINI = Path(__file__).parent / "protocols" / "verify" / "mini.toml"


def mini(**requirements: Any) -> dict[str, Any]:
    data = tomllib.loads(MINI.read_text(encoding="utf-8"))
    data["requirements"].update(requirements)
    return data


def test_a_p90_step_gives_an_estimate_that_proves_nothing() -> None:
    # the vendor's case: "at most 1h33m ... holds" while the simulator reached 1h38m.
    # with_expert has no deadline: the expert's p90 (50m) is no limit on it
    report = lr.verify(lr.load_protocol(mini(max_wait_for_mayor="2h")))
    mayor = report.bounds[1]
    assert mayor.worst is None
    assert mayor.estimate == timedelta(minutes=90)
    assert mayor.estimated_steps == ("with_expert",)
    assert mayor.holds is False
    assert mayor.unbounded
    assert not report.ok
    assert report.result("time-bounds").message == (
        "the wait until 'mayor_involved' has no true worst case (max_wait_for_mayor 2h):"
        " 'with_expert' may last any time (no deadline); an ESTIMATE with the parties' p90 is"
        " 1h30m, which proves nothing"
    )
    text = report.to_text()
    assert (
        "time until the mayor is involved (mayor_involved): no true worst case ('with_expert'"
        " without a deadline may last any time); ESTIMATE at most 1h30m with the parties' p90;"
        " requirement max_wait_for_mayor 2h: not proven"
    ) in text
    assert "estimated path (each step at its deadline, or its party's p90):" in text
    assert "holds" not in text.split("mayor_involved")[1].split("\n")[0]
    out = json.loads(json.dumps(report.to_dict()))["bounds"][1]
    assert out["worst"] is None
    assert out["estimate"] == "1h30m"
    assert out["estimated_steps"] == ["with_expert"]
    assert out["holds"] is False


def test_a_true_worst_case_stays_a_worst_case() -> None:
    report = lr.verify(lr.load_protocol(mini()))
    expert = report.bounds[0]
    assert expert.worst == timedelta(minutes=40)
    assert expert.estimate is None
    assert expert.estimated_steps == ()
    assert expert.holds is True
    assert "at most 40m; requirement max_wait_for_expert 40m: holds" in report.to_text()
    assert "worst path (each step at its deadline):" in report.to_text()


def test_paths_that_never_reach_the_goal_get_an_explicit_line() -> None:
    report = lr.verify(lr.load_protocol(SHIPPED_TASKFORCE))
    expert, mayor = report.bounds
    assert expert.ends_total >= 1
    text = report.to_text()
    for bound in (expert, mayor):
        head = (
            f"      paths that never reach {bound.goal!r} (they end without it; not counted in"
            " the bound above):"
        )
        assert head in text
        after = text.split(head)[1].splitlines()[1 : 1 + len(bound.ends)]
        assert [line.split("'")[1] for line in after] == [end[-1].step for end in bound.ends]


def _with_reminder(**requirements: Any) -> dict[str, Any]:
    """mini, whose expert is reminded every hour until the mayor has spoken."""
    data = mini(**requirements)
    data["steps"]["with_expert"]["deadline"] = {"after": "1h", "event": "mayor_reminder"}
    data["transitions"].append(
        {"event": "mayor_reminder", "from": ["with_expert"], "to": "with_expert", "by": ["clock"]}
    )
    return data


def test_reminder_loops_are_unbounded_unless_the_protocol_says_so() -> None:
    plain = lr.verify(lr.load_protocol(_with_reminder(max_wait_for_mayor="2h"))).bounds[1]
    assert plain.cycle  # with_expert --mayor_reminder--> with_expert
    assert plain.worst is None
    assert plain.reminders == ()
    assert plain.holds is False
    protocol = lr.load_protocol(_with_reminder(max_wait_for_mayor="2h", reminders_end_wait=True))
    assert protocol.requirements.reminders_end_wait is True
    assert lr.dump_protocol(protocol)["requirements"]["reminders_end_wait"] is True
    report = lr.verify(protocol)
    once = report.bounds[1]
    assert once.cycle == ()
    assert once.reminders == ("with_expert",)
    # arrived 10m + waiting 30m + with_expert until its first reminder 1h: a true worst case
    assert once.worst == timedelta(hours=1, minutes=40)
    assert once.costs == (
        timedelta(minutes=10),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(0),
    )
    assert once.holds is True
    assert report.ok, report.problems()
    assert "at most 1h40m (reminders in 'with_expert' counted once)" in report.to_text()


def test_a_cycle_that_is_no_reminder_stays_unbounded() -> None:
    data = _with_reminder(reminders_end_wait=True)
    # the reminder leads elsewhere and back: not a step's own deadline back into it
    data["steps"]["with_expert"]["deadline"]["event"] = "expert_overdue_again"
    data["transitions"][-1].update(event="expert_overdue_again", to="waiting")
    bound = lr.verify(lr.load_protocol(data)).bounds[1]
    assert bound.cycle
    assert bound.reminders == ()


def test_reminders_end_wait_must_be_a_boolean() -> None:
    data = lr.dump_protocol(lr.load_protocol(SHIPPED_TASKFORCE))
    data.setdefault("requirements", {})["reminders_end_wait"] = "yes"
    with pytest.raises(lr.ProtocolError) as info:
        lr.load_protocol(data)
    assert info.value.problems[0].startswith("$.requirements.reminders_end_wait: expected true")


def test_working_days_are_bounded_at_their_longest_span_and_labelled() -> None:
    data = mini()
    data["steps"]["waiting"]["deadline"]["after"] = "1wd"
    data["requirements"]["max_wait_for_expert"] = "5d10m"
    report = lr.verify(lr.load_protocol(data))
    expert = report.bounds[0]
    # arrived costs 10m; 1wd can last 5 days (the Thursday before Good Friday, 00:00)
    assert expert.worst == timedelta(days=5, minutes=10)
    assert expert.working_days == ("waiting",)
    assert expert.holds is True
    assert "working days at their longest span over 2026-2035" in report.to_text()


# -- simulated waits never exceed a reported true worst case --------------------------


def _shipped() -> list[lr.Protocol]:
    engine = lr.Engine()
    return [p for p in engine.protocols.values() if p.kind is lr.ProtocolKind.ENCOUNTER]


SHIPPED = _shipped()


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(index=st.integers(min_value=0, max_value=len(SHIPPED) - 1), seed=st.integers(0, 2**16))
def test_simulated_waits_never_exceed_a_true_worst_case(index: int, seed: int) -> None:
    protocol = SHIPPED[index]
    expert, mayor = lr.verify(protocol).bounds
    result = monte_carlo([protocol], 60, seed=seed, entry_points=True)
    (kpis,) = result.comparison.protocols
    for bound, wait in ((expert, kpis.with_expert), (mayor, kpis.mayor)):
        if bound.worst is not None and wait.max is not None:
            assert wait.max <= bound.worst.total_seconds() / 60 + 1e-9, (protocol.id, bound.goal)


def test_the_reference_protocols_simulated_expert_wait_stays_within_its_worst_case() -> None:
    protocol = lr.load_protocol(SHIPPED_TASKFORCE)
    expert = lr.verify(protocol).bounds[0]
    assert expert.worst == timedelta(hours=1, minutes=45)  # a true worst case, all deadlines
    result = monte_carlo([protocol], 300, seed=7, entry_points=False)
    wait = result.comparison.protocols[0].with_expert
    assert wait.max is not None  # the comparison below is not vacuous
    assert wait.max <= 105
