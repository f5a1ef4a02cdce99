"""The simulator's own view of the engine's deadlines.

The event loop knows the pending deadlines from the events the engine returns
(not by asking ``next_deadline`` after every step). These tests hold that view
against the store's after every turn of the loop, on every shipped protocol, and
show what it is for: a deadline that could not fire because a plugin raised
(``DeadlineDeferred``) is tried again when its lease runs out, as under a real
scheduler, instead of the loop ticking at the same moment for ever.
"""

from __future__ import annotations

import copy
import zlib
from collections import Counter
from datetime import datetime, timedelta

import pytest

import lastresort as lr
from lastresort.engine.engine import DEFAULT_DEADLINE_LEASE
from lastresort.simulate import SimulationAborted, load_config, monte_carlo, runner

from .conftest import SHIPPED_TASKFORCE
from .test_montecarlo import Recorder, config, tiny


class TooManyTicks(Exception):
    pass


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count ``Engine.tick`` calls, and fail the run at once (rather than hang the
    suite) when the loop ticks 1,000 times in a row without the clock moving."""
    state = {"ticks": 0, "same": 0}
    last: list[datetime | None] = [None]
    original = lr.Engine.tick

    def tick(
        self: lr.Engine, now: datetime | None = None, limit: int | None = None
    ) -> list[lr.Event]:
        state["ticks"] += 1
        at = self.clock.now()
        state["same"] = state["same"] + 1 if at == last[0] else 0
        last[0] = at
        if state["same"] >= 1000:
            raise TooManyTicks(f"ticked {state['same']} times at {at} without the clock moving")
        return original(self, now, limit)

    monkeypatch.setattr(lr.Engine, "tick", tick)
    return state


class Pager:
    """A guard on the clock's escalation whose plugin raises (a pager system that is
    down): ``failures`` times per deadline, or always (``None``)."""

    def __init__(self, failures: int | None) -> None:
        self.failures = failures
        self.calls: dict[str, int] = {}

    @lr.hookimpl
    def lastresort_guard_names(self) -> list[str]:
        return ["pager_up"]

    @lr.hookimpl
    def lastresort_guard(
        self, name: str, encounter: lr.Encounter, event: str, actor: lr.Actor
    ) -> str | None:
        key = f"{encounter.id}:v{encounter.version}"
        seen = self.calls[key] = self.calls.get(key, 0) + 1
        if self.failures is None or seen <= self.failures:
            raise RuntimeError("pager system down")
        return None


def paged() -> lr.Protocol:
    """The tiny protocol with a guarded escalation (``expert_overdue``) and an expert
    slower than the deadlines (2 h), so that the escalation falls due."""
    return tiny(expert="2h", escalation_guard="pager_up")


def test_a_deadline_whose_plugin_always_raises_does_not_hang_the_run(
    ticks: dict[str, int],
) -> None:
    # before: the store's earliest deadline stayed that one, in the past and leased,
    # so the loop ticked at the same moment for ever without moving the clock (the
    # fixture stops such a loop after 1,000 ticks)
    pager = Pager(failures=None)
    result = monte_carlo([paged()], 40, seed=5, config=config(), plugins=[pager])
    k = result.comparison["tiny"]
    assert k.encounters == 40
    # the escalation never fires; it is retried every lease until the expert, who comes
    # 2 h after the call, takes the child over (and clears it): from 30 minutes after
    # the call on, a try a minute (one more when the last try and the expert coincide)
    assert 40 * 90 <= k.deferred <= 40 * 91
    assert k.closed == 40
    assert k.escalated == 0
    assert k.with_expert.share == 1.0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_plugin_that_stays_down_stops_the_run_with_a_clear_error(
    ticks: dict[str, int], workers: int
) -> None:
    # the expert takes 60 days: only the escalation (whose guard always raises) could
    # move the child on; a run that retried it every minute until the end would do
    # millions of ticks, and measure the failure, not the protocol
    with pytest.raises(SimulationAborted) as aborted:
        monte_carlo(
            [tiny(expert="60d", escalation_guard="pager_up")],
            8,
            seed=1,
            config=config(),
            plugins=[Pager(failures=None)],
            workers=workers,
        )
    [problem] = aborted.value.problems
    assert problem.startswith("$.protocols.tiny: deadline sim-0-")
    assert "(expert_overdue in step 'awaiting_expert', due " in problem
    assert f"could not fire in {runner.MAX_DEFERRALS} tries, a lease apart" in problem
    assert ": RuntimeError." in problem
    assert "pager system down" not in problem  # a plugin's message may carry anything
    assert aborted.value.source == "chunk 0 of seed 1"
    assert aborted.value.category is lr.Category.UNAVAILABLE
    if workers == 1:  # bounded work: at most the stuck children's tries, each once
        assert ticks["ticks"] <= 8 * runner.MAX_DEFERRALS + 100


def test_a_deferred_deadline_fires_when_its_lease_runs_out(ticks: dict[str, int]) -> None:
    recorder = Recorder()
    pager = Pager(failures=2)
    result = monte_carlo(
        [paged()], 30, seed=9, config=config(), plugins=[pager, recorder], entry_points=False
    )
    k = result.comparison["tiny"]
    assert k.deferred == 30 * 2
    missed = [
        e
        for _, e in recorder.events
        if isinstance(e, lr.DeadlineMissed) and e.event == "expert_overdue"
    ]
    assert len(missed) == 30
    for event in missed:
        # due, then two failed attempts a lease apart: fired at the third
        assert event.at - event.due == 2 * DEFAULT_DEADLINE_LEASE
    assert k.escalated == 30


# -- the loop's view of the deadlines is the store's -----------------------------------


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Check, at every turn of every chunk's loop, that the deadlines the loop knows
    are exactly the store's pending ones, each at its due moment (or, once deferred,
    at the end of its lease). Yields the number of turns checked."""
    turns = [0]
    original = runner._Run._next_deadline
    original_ticked = runner._Run._ticked
    deferred: dict[str, datetime] = {}

    def ticked(self: runner._Run, events: list[lr.Event], t: float) -> None:
        events = list(events)
        for event in events:
            if isinstance(event, lr.DeadlineDeferred):
                deferred[event.deadline_id] = event.retry_at
            elif isinstance(event, lr.DeadlineMissed | lr.DeadlineCleared):
                deferred.pop(event.deadline_id, None)
        original_ticked(self, events, t)

    def next_deadline(self: runner._Run) -> tuple[float, datetime | None]:
        store = self.engine.store
        pending = {
            d.id: deferred.get(d.id, d.due)
            for eid in store.encounter_ids(open_only=True)
            for d in store.deadlines(eid)
        }
        known = {did: self.start + timedelta(seconds=t) for did, t in self.deadlines.items()}
        assert known.keys() == pending.keys()
        for did, at in pending.items():
            assert abs((known[did] - at).total_seconds()) < 1e-6, did
        t, at = original(self)
        earliest = min(pending.values(), default=None)
        assert at == earliest
        turns[0] += 1
        return t, at

    monkeypatch.setattr(runner._Run, "_next_deadline", next_deadline)
    monkeypatch.setattr(runner._Run, "_ticked", ticked)
    return turns


@pytest.mark.parametrize(
    "protocol", ["taskforce", "amsterdam", "rotterdam", "veilig-thuis", "meldcode"]
)
def test_the_loop_knows_exactly_the_stores_pending_deadlines(
    checked: list[int], protocol: str
) -> None:
    monte_carlo([protocol], 120, seed=3, entry_points=True)
    assert checked[0] > 300


def test_the_loop_knows_the_deadlines_of_a_guarded_and_a_failing_protocol(
    checked: list[int],
) -> None:
    monte_carlo([paged()], 30, seed=4, config=config(), plugins=[Pager(failures=1)])
    assert checked[0] > 100


class ClockGuards:
    """Guards on clock and party transitions, decided per encounter and version: some
    pass, some refuse (a deadline refused at tick is re-armed under a new id), and a
    third of the clock's tries raise twice (deferred) before they decide."""

    def __init__(self) -> None:
        self.raised: Counter[tuple[str, int]] = Counter()

    @lr.hookimpl
    def lastresort_guard_names(self) -> list[str]:
        return ["g_a", "g_b", "g_flaky", "g_party_a", "g_party_b"]

    @lr.hookimpl
    def lastresort_guard(
        self, name: str, encounter: lr.Encounter, event: str, actor: lr.Actor
    ) -> str | None:
        x = zlib.crc32(f"{encounter.id}:{encounter.version}".encode())
        if actor.role == "clock" and x % 3 == 0:
            key = (encounter.id, encounter.version)
            self.raised[key] += 1
            if self.raised[key] <= 2:
                raise RuntimeError("down")
        return {
            "g_a": None if x % 3 == 0 else "no",
            "g_b": None if x % 3 == 1 else "no",
            "g_flaky": None if x % 4 == 0 else "not yet",
            "g_party_a": None if x % 2 == 0 else "no",
            "g_party_b": None if x % 5 else "no",
        }.get(name)


def clock_guarded() -> lr.Protocol:
    """The reference protocol with two guarded clock transitions of one event, guarded
    escalations that may refuse (re-armed), guarded party transitions (the loop then
    asks the engine which step was entered) and a working-day deadline."""
    data = copy.deepcopy(lr.dump_protocol(lr.load_protocol(SHIPPED_TASKFORCE)))
    data["protocol"]["id"] = "tf-clockguards"
    data["steps"]["awaiting_mayor"]["deadline"]["after"] = "1wd"
    for t in data["transitions"]:
        if t["event"] == "expert_overdue":
            t["guard"] = "g_a"
        if t["event"] in ("no_expert_available", "mayor_overdue"):
            t["guard"] = "g_flaky"
        if t["event"] == "call_expert":
            t["guard"] = "g_party_a"
    data["transitions"] += [
        {
            "event": "expert_overdue",
            "from": ["awaiting_expert"],
            "to": "with_crisis_service",
            "by": ["clock"],
            "guard": "g_b",
        },
        {
            "event": "call_expert",
            "from": ["arrived"],
            "to": "escalated",
            "by": ["counter"],
            "guard": "g_party_b",
        },
    ]
    return lr.load_protocol(data)


def test_the_loop_knows_the_deadlines_through_clock_guards_rearms_and_deferrals(
    checked: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    kinds: Counter[str] = Counter()
    original = runner._Run._ticked  # the checked fixture's

    def ticked(self: runner._Run, events: list[lr.Event], t: float) -> None:
        events = list(events)
        kinds.update(type(e).__name__ for e in events)
        original(self, events, t)

    monkeypatch.setattr(runner._Run, "_ticked", ticked)
    monte_carlo(
        [clock_guarded()],
        150,
        seed=2,
        config=load_config({"chunk": 50}),
        plugins=[ClockGuards()],
        entry_points=False,
    )
    assert checked[0] > 300
    # the paths ran: deferrals, and re-arms (more deadlines missed than steps entered by ticks)
    assert kinds["DeadlineDeferred"] > 0
    assert kinds["DeadlineMissed"] > kinds["StepEntered"]
