"""How a ``lastresort_deliver`` hook tells the outbox what kind of failure it met
(issue 16): :class:`lastresort.DeliveryRefused` (retrying cannot help: dead-letter
now, and escalate) and :class:`lastresort.DeliveryDeferred` (retry, not before the
receiver's ``Retry-After``, within the backoff's cap). Both stores."""

from __future__ import annotations

from datetime import timedelta

import pytest

import lastresort as lr
from lastresort.store.audit import verify
from tests.conftest import START
from tests.faults.test_outbox import engine, store

__all__ = ["store"]  # the fixture, imported for pytest


class Receiver:
    """Raises ``error`` for the police, delivers to everyone else."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    @lr.hookimpl
    def lastresort_deliver(self, notification: lr.Notification) -> str:
        if notification.party == "police":
            self.calls += 1
            raise self.error
        return "ok"


def acute(eng: lr.Engine) -> str:
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
    eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    eng.fire(eid, "acute_danger", lr.Actor("counter", "counter-1"))
    return eid


def police(eng: lr.Engine, eid: str) -> lr.Notification:
    return next(n for n in eng.outbox(eid) if n.party == "police")


def test_a_refused_delivery_is_dead_lettered_at_once_and_escalated(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    receiver = Receiver(lr.DeliveryRefused("HTTP 404 from the receiver"))
    eng = engine(store, clock, receiver)  # max_attempts 5: a plain error would be retried
    eid = acute(eng)
    state = eng.get(eid)
    out = eng.deliver()
    [dead] = [e for e in out if isinstance(e, lr.NotificationDeadLettered)]
    assert (dead.party, dead.attempts, dead.error_kind, dead.emergency) == (
        "police",
        1,
        "DeliveryRefused",
        True,
    )
    note = police(eng, eid)
    assert note.dead_lettered_at is not None
    assert note.attempts == 1
    escalation = next(n for n in eng.outbox(eid) if n.escalates == note.key)
    assert escalation.party == "counter"
    assert escalation.delivered_at is not None
    clock.advance(timedelta(hours=2))
    assert eng.deliver() == []
    assert receiver.calls == 1  # never handed over again
    assert eng.get(eid) == state
    if isinstance(store, lr.SQLiteStore):
        assert verify(store.path).ok


def test_a_refused_escalation_is_dead_lettered_without_escalating_again(
    store: lr.Store,
) -> None:
    class RefuseAll:
        @lr.hookimpl
        def lastresort_deliver(self, notification: lr.Notification) -> str:
            raise lr.DeliveryRefused("HTTP 410")

    clock = lr.VirtualClock(START)
    eng = engine(store, clock, RefuseAll())
    eid = acute(eng)
    eng.deliver()
    assert all(n.dead_lettered_at is not None for n in eng.outbox(eid))
    assert sum(n.escalates is not None for n in eng.outbox(eid)) > 0
    assert not [n for n in eng.outbox(eid) if n.escalates and ":escalated:" in n.escalates]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (timedelta(minutes=10), timedelta(minutes=10)),  # longer than the 30 s backoff
        (timedelta(seconds=1), timedelta(seconds=30)),  # shorter: the backoff holds
        (timedelta(days=3), timedelta(hours=1)),  # past the cap: the cap holds
        (None, timedelta(seconds=30)),  # no Retry-After: the backoff
    ],
)
def test_a_deferred_delivery_is_retried_not_before_retry_after_within_the_cap(
    store: lr.Store, retry_after: timedelta | None, expected: timedelta
) -> None:
    clock = lr.VirtualClock(START)
    receiver = Receiver(lr.DeliveryDeferred("HTTP 503", retry_after=retry_after))
    eng = engine(store, clock, receiver)
    eid = acute(eng)
    eng.deliver()
    note = police(eng, eid)
    assert note.attempts == 1
    assert note.dead_lettered_at is None
    assert note.next_attempt_at == clock.now() + expected
    assert note.last_error is not None
    assert note.last_error.startswith("DeliveryDeferred")
    clock.advance(expected - timedelta(seconds=1))
    eng.deliver()
    assert receiver.calls == 1  # not before
    clock.advance(timedelta(seconds=1))
    eng.deliver()
    assert receiver.calls == 2


def test_a_deferred_delivery_still_counts_towards_max_attempts(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    receiver = Receiver(lr.DeliveryDeferred("HTTP 429", retry_after=timedelta(seconds=5)))
    eng = engine(store, clock, receiver, max_attempts=3)
    eid = acute(eng)
    for _ in range(6):
        eng.deliver()
        clock.advance(timedelta(hours=2))
    note = police(eng, eid)
    assert (note.attempts, note.dead_lettered_at is not None) == (3, True)
    assert receiver.calls == 3


@pytest.mark.parametrize("bad", [5, -1.0, "60", timedelta(seconds=-1), timedelta(0)])
def test_a_bad_retry_after_is_refused_naming_it(bad: object) -> None:
    with pytest.raises(lr.InvalidArgument, match="retry_after"):
        lr.DeliveryDeferred("HTTP 503", retry_after=bad)  # type: ignore[arg-type]


def test_both_are_delivery_signals_not_errors_of_lastresort() -> None:
    # like DeliveryTimeout: raised by a hook to the outbox, never by lastresort to a caller
    for signal in (lr.DeliveryRefused, lr.DeliveryDeferred):
        assert issubclass(signal, Exception)
        assert not issubclass(signal, lr.LastResortError)
    assert lr.DeliveryDeferred("x", retry_after=timedelta(seconds=3)).retry_after == timedelta(
        seconds=3
    )
