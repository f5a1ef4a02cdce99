"""Random events by random actors with random clock jumps: the invariants hold after every step."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import lastresort as lr
from lastresort.protocol.model import ACUTE_DANGER
from lastresort.testing import pseudonymous, snapshot
from tests.conftest import TASKFORCE

PROTOCOL = lr.load_protocol(TASKFORCE)
EVENTS = sorted({t.event for t in PROTOCOL.transitions})
ROLES = [*PROTOCOL.parties, "clock", "stranger"]
START = datetime(2026, 3, 6, 17, 30, tzinfo=ZoneInfo("Europe/Amsterdam"))


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = lr.VirtualClock(START)
        self.engine = lr.Engine(protocols=[PROTOCOL], clock=self.clock, entry_points=False)
        self.ids: list[str] = []

    @rule(
        facts=st.fixed_dictionaries(
            {},
            optional={"age_band": st.sampled_from(["0-7", "12-15"]), "disclosure": st.booleans()},
        )
    )
    def open(self, facts: dict[str, Any]) -> None:
        self.ids.append(self.engine.open("taskforce", lr.Actor("counter", "counter-1"), facts).id)

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), event=st.sampled_from(EVENTS), role=st.sampled_from(ROLES))
    def fire(self, data: st.DataObject, event: str, role: str) -> None:
        eid = data.draw(st.sampled_from(self.ids))
        before = snapshot(self.engine, eid)
        allowed = self.engine.allowed(eid, role)
        try:
            events = self.engine.fire(eid, event, pseudonymous(role))
        except lr.LastResortError:
            assert event not in allowed
            assert snapshot(self.engine, eid) == before, "a refused call changed something"
            return
        assert event in allowed
        assert role != "clock", "only tick() fires as the clock"
        assert events
        assert events[0].seq == len(before[1]) + 1
        if before[0].responsible != self.engine.get(eid).responsible and event != ACUTE_DANGER:
            after = self.engine.get(eid)
            assert role in {after.responsible, "clock"} or after.responsible is None

    @rule(minutes=st.integers(min_value=0, max_value=600))
    def jump(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        self.engine.tick()

    @rule()
    def deliver(self) -> None:
        self.engine.deliver()

    @invariant()
    def invariants(self) -> None:
        for eid in self.ids:
            enc = self.engine.get(eid)
            step = PROTOCOL.steps[enc.state]
            # exactly one responsible party in every non-terminal step
            if not step.terminal:
                assert enc.responsible is not None
                assert enc.responsible == step.responsible
            assert enc.closed == step.terminal
            # no deadline of a step the encounter left; the current step's is pending,
            # and every deadline that fell due has been fired by the last tick
            pending = self.engine.deadlines(eid)
            assert all(d.step == enc.state for d in pending)
            assert len(pending) == (1 if step.deadline else 0)
            assert all(d.due > self.clock.now() for d in pending)
            # gapless timeline
            timeline = self.engine.timeline(eid)
            assert [e.seq for e in timeline] == list(range(1, len(timeline) + 1))


TestEngineMachine = EngineMachine.TestCase
TestEngineMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
