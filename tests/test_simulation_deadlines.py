"""The simulator's own view of the engine's deadlines.

The event loop knows the pending deadlines from the events the engine returns
(not by asking ``next_deadline`` after every step). These tests hold that view
against the store's after every turn of the loop, on every shipped protocol, and
show what it is for: a deadline that could not fire because a plugin raised
(``DeadlineDeferred``) is tried again when its lease runs out, as under a real
scheduler, instead of the loop ticking at the same moment for ever.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

import lastresort as lr
from lastresort.engine.engine import DEFAULT_DEADLINE_LEASE
from lastresort.simulate import MonteCarloResult, monte_carlo, runner

from .test_montecarlo import Recorder, config, tiny


def within(seconds: float, call: Any) -> Any:
    """``call()``'s result, or a failed test if it has not returned after ``seconds``
    (a loop that never ends must fail the suite, not hang it)."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["result"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the simulation did not finish within {seconds} s")
    if "error" in out:
        raise out["error"]
    return out["result"]


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


def test_a_deadline_whose_plugin_always_raises_does_not_hang_the_run() -> None:
    # before: the store's earliest deadline stayed that one, in the past and leased,
    # so the loop ticked at the same moment for ever without moving the clock
    pager = Pager(failures=None)
    result: MonteCarloResult = within(
        120, lambda: monte_carlo([paged()], 40, seed=5, config=config(), plugins=[pager])
    )
    k = result.comparison["tiny"]
    assert k.encounters == 40
    # the escalation never fires; it is retried every lease until the expert, who comes
    # 2 h after the call, takes the child over (and clears it): from 30 minutes after
    # the call on, a try a minute (one more when the last try and the expert coincide)
    assert 40 * 90 <= k.deferred <= 40 * 91
    assert k.closed == 40
    assert k.escalated == 0
    assert k.with_expert.share == 1.0


def test_a_deferred_deadline_fires_when_its_lease_runs_out() -> None:
    recorder = Recorder()
    pager = Pager(failures=2)
    result = within(
        120,
        lambda: monte_carlo(
            [paged()], 30, seed=9, config=config(), plugins=[pager, recorder], entry_points=False
        ),
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
