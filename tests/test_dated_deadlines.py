"""Dated deadlines (issue 15): a deadline counted from an earlier step (``from``), a date
the actor chooses (``until = "chosen"``, ``Engine.fire(..., until=)``) or kept from the
step left (``until = "kept"``), each capped by ``after`` past the ``from`` step; the
validation rules that keep them fireable; the order bound that counts a dated step from its
anchor. The huisverbod plugin's tests run the law's case (DST, restart, both stores)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import lastresort as lr
from lastresort.testing import make_engine, snapshot

AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 10, 20, 9, 0, tzinfo=AMS)  # the order crosses the end of summer time
DAY = timedelta(days=1)
TEXT = {"nl": "Doe dit.", "en": "Do this."}


def data() -> dict[str, Any]:
    def step(deadline: dict[str, str] | None = None, *tags: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "responsible": "mayor",
            "kind": "waiting" if deadline else "active",
            "instructions": TEXT,
            "tags": list(tags),
        }
        if deadline:
            out["deadline"] = deadline
        return out

    def move(event: str, source: str, target: str, by: str = "mayor") -> dict[str, Any]:
        return {"event": event, "from": [source], "to": target, "by": [by]}

    return {
        "protocol": {
            "id": "dated",
            "version": "1",
            "municipality": "Test",
            "title": TEXT,
            "initial": "start",
            "kind": "order",
            "source": "tests",
        },
        "parties": {"mayor": {"name": TEXT, "kind": "mayor"}},
        "steps": {
            "start": step(),
            "imposed": step({"after": "1d", "event": "day_one"}, "order_in_force"),
            "running": step({"after": "9d", "event": "ends"}, "order_in_force"),
            "longer": step(
                {"until": "chosen", "after": "28d", "from": "imposed", "event": "longer_ends"},
                "order_in_force",
            ),
            "paused": step(
                {"until": "kept", "after": "28d", "from": "imposed", "event": "paused_ends"}
            ),
            "anchored": step({"after": "10d", "from": "imposed", "event": "anchored_ends"}),
            "done": {"kind": "terminal", "instructions": TEXT},
        },
        "transitions": [
            move("impose", "start", "imposed"),
            move("day_one", "imposed", "running", "clock"),
            move("ends", "running", "done", "clock"),
            move("extend", "running", "longer"),
            move("longer_ends", "longer", "done", "clock"),
            move("pause", "longer", "paused"),
            move("paused_ends", "paused", "done", "clock"),
            move("anchor", "running", "anchored"),
            move("anchor_now", "start", "anchored"),
            move("anchored_ends", "anchored", "done", "clock"),
        ],
        "requirements": {"max_order_duration": "28d", "report_before_close": False},
    }


def engine() -> tuple[lr.Engine, lr.VirtualClock]:
    return make_engine([lr.load_protocol(data())], start=T0)


def imposed(e: lr.Engine, clock: lr.VirtualClock) -> str:
    order = e.open("dated", lr.Actor("mayor", "mayor-1"))
    e.fire(order.id, "impose", lr.Actor("mayor", "mayor-1"))
    clock.advance(DAY)
    e.tick()
    assert e.get(order.id).state == "running"
    return order.id


def test_a_deadline_from_an_earlier_step_counts_from_its_entry() -> None:
    e, clock = engine()
    oid = imposed(e, clock)
    clock.advance(2 * DAY)
    e.fire(oid, "anchor", lr.Actor("mayor", "mayor-1"))
    [pending] = e.deadlines(oid)
    # 10 days after imposing, not 10 days after entering: elapsed time, across the DST end
    assert pending.due == T0.astimezone(UTC) + timedelta(days=10)


def test_a_from_step_never_entered_counts_from_the_opening() -> None:
    e, clock = engine()
    order = e.open("dated", lr.Actor("mayor", "mayor-1"))
    clock.advance(timedelta(hours=5))
    e.fire(order.id, "anchor_now", lr.Actor("mayor", "mayor-1"))
    assert [d.due for d in e.deadlines(order.id)] == [T0.astimezone(UTC) + timedelta(days=10)]


def test_a_kept_deadline_keeps_the_chosen_date() -> None:
    e, clock = engine()
    oid = imposed(e, clock)
    until = T0 + timedelta(days=20)
    e.fire(oid, "extend", lr.Actor("mayor", "mayor-1"), until=until)
    clock.advance(3 * DAY)
    e.fire(oid, "pause", lr.Actor("mayor", "mayor-1"))
    assert e.get(oid).state == "paused"
    assert [d.due for d in e.deadlines(oid)] == [until.astimezone(UTC)]
    clock.set(until)
    e.tick()
    assert e.get(oid).state == "done"


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_the_chosen_date_is_the_deadline_on_both_stores(tmp_path: Any, store: str) -> None:
    clock = lr.VirtualClock(T0)
    kept: lr.Store = lr.MemoryStore() if store == "memory" else lr.SQLiteStore(tmp_path / "d.db")
    e = lr.Engine([lr.load_protocol(data())], store=kept, clock=clock, entry_points=False)
    oid = imposed(e, clock)
    until = datetime(2026, 11, 2, 8, 0, tzinfo=AMS)  # winter time, after the change
    e.fire(oid, "extend", lr.Actor("mayor", "mayor-1"), until=until)
    [pending] = e.deadlines(oid)
    assert pending.due == until
    assert pending.due.utcoffset() == timedelta(0)
    scheduled = [ev for ev in e.timeline(oid) if isinstance(ev, lr.DeadlineScheduled)]
    assert scheduled[-1].due == until
    clock.set(until - timedelta(seconds=1))
    e.tick()
    assert e.get(oid).state == "longer"
    clock.set(until)
    e.tick()
    assert e.get(oid).state == "done"


def test_the_latest_chosen_date_is_the_earlier_of_elapsed_time_and_the_calendar() -> None:
    """Imposed 20 October 09:00 (CEST); summer time ends 25 October. 28 days of elapsed
    time is 17 November 08:00 (CET); on the calendar it is 09:00: the earlier holds."""
    e, clock = engine()
    oid = imposed(e, clock)
    before = snapshot(e, oid)
    elapsed = T0.astimezone(UTC) + timedelta(days=28)
    assert elapsed.astimezone(AMS).hour == 8
    with pytest.raises(lr.InvalidArgument, match=r"no later than 2026-11-17T08:00:00\+01:00"):
        e.fire(
            oid,
            "extend",
            lr.Actor("mayor", "mayor-1"),
            until=datetime(2026, 11, 17, 9, 0, tzinfo=AMS),
        )
    assert snapshot(e, oid) == before
    # a date given in UTC reads the calendar in UTC: the same instant
    with pytest.raises(lr.InvalidArgument):
        e.fire(oid, "extend", lr.Actor("mayor", "mayor-1"), until=elapsed + timedelta(seconds=1))
    e.fire(oid, "extend", lr.Actor("mayor", "mayor-1"), until=elapsed)
    assert [d.due for d in e.deadlines(oid)] == [elapsed]


@pytest.mark.parametrize(
    ("until", "match"),
    [
        (None, "step 'longer'"),
        (T0 + DAY, "later than now"),
        (T0 + timedelta(days=28, hours=1), "no later than"),
        (datetime(2026, 11, 1, 12, 0), "naive"),
        (1_700_000_000, "timezone-aware datetime"),
    ],
)
def test_a_wrong_date_is_refused_and_changes_nothing(until: Any, match: str) -> None:
    e, clock = engine()
    oid = imposed(e, clock)
    before = snapshot(e, oid)
    with pytest.raises(lr.InvalidArgument, match=match) as refused:
        e.fire(oid, "extend", lr.Actor("mayor", "mayor-1"), until=until)
    assert (refused.value.call, refused.value.argument) == ("Engine.fire", "until")
    assert snapshot(e, oid) == before


def test_a_date_for_a_step_that_does_not_take_one_is_refused() -> None:
    e, clock = engine()
    oid = imposed(e, clock)
    before = snapshot(e, oid)
    with pytest.raises(lr.InvalidArgument, match="no deadline whose date the caller chooses"):
        e.fire(oid, "anchor", lr.Actor("mayor", "mayor-1"), until=T0 + timedelta(days=5))
    assert snapshot(e, oid) == before


def test_the_order_bound_counts_a_dated_step_from_its_anchor() -> None:
    """1d + 9d before the extension is entered, then at most 28 days after imposing:
    at most 28 days in force, not 1d + 9d + 28d."""
    report = lr.verify(lr.load_protocol(data()))
    [bound] = [b for b in report.bounds if b.goal == "order_in_force"]
    assert bound.worst == timedelta(days=28)
    assert [p.step for p in bound.path][-1] == "longer"
    assert sum(bound.costs, timedelta(0)) == bound.worst
    tighter = data()
    tighter["requirements"]["max_order_duration"] = "27d"
    assert not lr.verify(lr.load_protocol(tighter)).result("order-cap").ok


def test_time_before_the_anchor_is_counted_on_top() -> None:
    """A step in force before the anchor adds to the dated step's span."""
    d = data()
    d["steps"]["longer"]["deadline"]["from"] = "running"
    bound = next(b for b in lr.verify(lr.load_protocol(d)).bounds if b.goal == "order_in_force")
    assert bound.worst == timedelta(days=29)  # 1d in 'imposed' + 28d from 'running'
    assert sum(bound.costs, timedelta(0)) == bound.worst


def _problems(change: Any) -> list[str]:
    d = copy.deepcopy(data())
    change(d)
    with pytest.raises(lr.ProtocolError) as caught:
        lr.load_protocol(d)
    return list(caught.value.problems)


def test_rule_from_names_a_step() -> None:
    def change(d: dict[str, Any]) -> None:
        d["steps"]["anchored"]["deadline"]["from"] = "imposd"

    assert _problems(change) == [
        "$.steps.anchored.deadline.from: unknown step 'imposd' (did you mean 'imposed'?)"
    ]


def test_rule_until_needs_from() -> None:
    def change(d: dict[str, Any]) -> None:
        del d["steps"]["longer"]["deadline"]["from"]

    [problem] = _problems(change)
    assert problem.startswith("$.steps.longer.deadline.from: a deadline until a chosen date")


def test_rule_the_clock_cannot_choose_a_date() -> None:
    def change(d: dict[str, Any]) -> None:
        d["transitions"][3]["by"] = ["clock"]  # extend
        d["steps"]["running"]["deadline"]["event"] = "extend"
        d["transitions"][2]["event"] = "extend"  # ends

    assert any("the clock cannot choose the date of step 'longer'" in p for p in _problems(change))


def test_rule_kept_needs_a_deadline_to_keep() -> None:
    def change(d: dict[str, Any]) -> None:
        d["transitions"].append(
            {"event": "pause_early", "from": ["start"], "to": "paused", "by": ["mayor"]}
        )

    assert _problems(change) == [
        "$.transitions[10].from: step 'paused' keeps the deadline of the step it is entered"
        " from (until = 'kept'), and ['start'] have none"
    ]


def test_rule_no_guard_on_a_dated_clock_transition() -> None:
    def change(d: dict[str, Any]) -> None:
        d["transitions"][4]["guard"] = "later"  # longer_ends

    assert any(
        p.startswith("$.transitions[4].guard: the deadline of step 'longer'")
        for p in _problems(change)
    )


def test_rule_a_dated_deadline_does_not_lead_its_clock_back_into_its_step() -> None:
    # a reminder that loops: on re-entry the deadline would count from the same entry of
    # 'imposed' (already past): due at once, fired at once, again, at every tick
    def change(d: dict[str, Any]) -> None:
        d["transitions"][9]["to"] = "anchored"  # anchored_ends: anchored -> anchored

    assert _problems(change) == [
        "$.transitions[9].to: the deadline of step 'anchored' counts from an earlier step or"
        " is kept, and its clock transition leads back into it: on re-entry it counts from a"
        " moment already past, falls due at once or too soon, and fires again and again;"
        " count it from the step's own entry (a plain 'after') or lead the clock elsewhere"
    ]


@pytest.mark.parametrize(
    "deadline",
    [
        {"until": "kept", "after": "28d", "from": "imposed", "event": "paused_ends"},
        # from itself: on re-entry, its last entry is the previous one
        {"after": "10d", "from": "paused", "event": "paused_ends"},
    ],
    ids=["kept", "from-itself"],
)
def test_rule_a_kept_or_self_counted_deadline_does_not_loop_either(
    deadline: dict[str, str],
) -> None:
    def change(d: dict[str, Any]) -> None:
        d["steps"]["paused"]["deadline"] = deadline
        d["transitions"][6]["to"] = "paused"  # paused_ends: paused -> paused

    [problem] = _problems(change)
    assert problem.startswith("$.transitions[6].to: the deadline of step 'paused'")


def test_rule_dated_steps_do_not_lead_round_into_each_other() -> None:
    def change(d: dict[str, Any]) -> None:
        d["transitions"][9]["to"] = "paused"  # anchored_ends: anchored -> paused
        d["transitions"][6]["to"] = "anchored"  # paused_ends: paused -> anchored

    [problem] = _problems(change)
    assert problem.startswith(
        "$.transitions[6].to: the deadlines of steps 'paused', 'anchored' count from an"
        " earlier step or are kept, and their clock transitions lead round into each other"
    )


def test_a_cycle_is_allowed_when_a_step_counts_from_another_step_of_it() -> None:
    # 'paused' counts from 'anchored', which the cycle re-enters: every round starts later
    d = copy.deepcopy(data())
    d["steps"]["paused"]["deadline"] = {"after": "10d", "from": "anchored", "event": "paused_ends"}
    d["transitions"][9]["to"] = "paused"  # anchored_ends: anchored -> paused
    d["transitions"][6]["to"] = "anchored"  # paused_ends: paused -> anchored
    d["transitions"].append({"event": "stop", "from": ["paused"], "to": "done", "by": ["mayor"]})
    protocol = lr.load_protocol(d)
    assert protocol.steps["paused"].deadline is not None


def test_a_plain_deadline_may_loop_its_clock_back_into_its_step() -> None:
    # the shipped reminders: counted from each entry, a loop moves the deadline on
    taskforce = lr.Engine().protocol("taskforce")
    loops = [t for t in taskforce.transitions if t.target in taskforce.sources_of(t)]
    assert any("clock" in t.by for t in loops)


def test_rule_one_event_from_one_step_asks_for_a_date_everywhere_or_nowhere() -> None:
    # a guard picks between 'longer' (the caller chooses its date) and 'anchored' (nobody
    # does) only after the caller has given a date or none: one of them always fails
    def change(d: dict[str, Any]) -> None:
        d["transitions"][3]["guard"] = "long_allowed"  # extend: running -> longer
        d["transitions"].append(
            {
                "event": "extend",
                "from": ["running"],
                "to": "anchored",
                "by": ["mayor"],
                "guard": "short_allowed",
            }
        )

    assert _problems(change) == [
        "$.transitions[10].to: event 'extend' from step 'running' enters ['longer'], whose"
        " deadline date the caller chooses, and ['anchored'], whose deadline date nobody"
        " chooses: the caller gives a date (or none) before a guard picks the transition, so"
        " all of them must ask for one, or none"
    ]


def test_unknown_until_value_is_refused_with_its_path() -> None:
    def change(d: dict[str, Any]) -> None:
        d["steps"]["longer"]["deadline"]["until"] = "whenever"

    [problem] = _problems(change)
    assert problem.startswith("$.steps.longer.deadline.until:")


def test_a_dated_deadline_round_trips_through_the_file_format() -> None:
    protocol = lr.load_protocol(data())
    assert protocol.steps["longer"].deadline == lr.Deadline(
        timedelta(days=28), "longer_ends", until=lr.DeadlineDate.CHOSEN, since="imposed"
    )
    dumped = lr.dump_protocol(protocol)
    assert lr.load_protocol(dumped) == protocol
    assert dumped["steps"]["longer"]["deadline"] == {
        "after": "28d",
        "event": "longer_ends",
        "until": "chosen",
        "from": "imposed",
    }


def test_a_clock_that_jumps_past_the_chosen_date_fires_it_once() -> None:
    e, clock = engine()
    oid = imposed(e, clock)
    until = T0 + timedelta(days=12)
    e.fire(oid, "extend", lr.Actor("mayor", "mayor-1"), until=until)
    clock.advance(timedelta(days=60))
    fired = [ev for ev in e.tick() if isinstance(ev, lr.StepEntered)]
    assert [(ev.event, ev.step) for ev in fired] == [("longer_ends", "done")]
    assert e.tick() == []
    missed = [
        ev
        for ev in e.timeline(oid)
        if isinstance(ev, lr.DeadlineMissed) and ev.event == "longer_ends"
    ]
    assert [m.due for m in missed] == [until]  # recorded with the date it was due
    assert e.get(oid).closed_at == clock.now()  # fired at tick time, once
