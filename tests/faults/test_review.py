"""Adversarial review of issue #12's merged branches: where they meet.

Each test is a reproduction of an interaction between the deadline, outbox, audit,
privacy and input branches that was developed separately. Deterministic: a
VirtualClock, injected plugins, barriers; no sleeps.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.store.audit import verify
from lastresort.testing import GuardPlugin, pseudonymous
from tests.conftest import START, TASKFORCE
from tests.faults.test_outbox import engine


class Pager:
    """Delivers everything except to ``fail_for`` (always raises)."""

    def __init__(self, *fail_for: str) -> None:
        self.fail_for = set(fail_for)
        self.sent: list[str] = []

    @lr.hookimpl
    def lastresort_deliver(self, notification: lr.Notification) -> str:
        if notification.party in self.fail_for:
            raise ConnectionError("down")
        self.sent.append(notification.key)
        return "ok"


def problems(path: Path) -> list[str]:
    return [str(p) for p in verify(path).problems]


def test_an_escalation_queued_after_the_encounter_moved_on_verifies(tmp_path: Path) -> None:
    """The expert is notified in awaiting_expert; the expert takes over (the encounter
    moves to with_expert) before the pager gives up. The escalation's outbox row
    carries the original step, its NotificationQueued is appended in with_expert."""
    path = tmp_path / "moved.db"
    clock = lr.VirtualClock(START)
    eng = engine(lr.SQLiteStore(path), clock, Pager("expert"), max_attempts=1)
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
    eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    eng.fire(eid, "expert_takes_over", lr.Actor("expert", "expert-1"))
    out = eng.deliver()
    assert "NotificationDeadLettered" in [e.kind for e in out]
    assert [n.party for n in eng.outbox(eid) if n.escalates is not None] == ["counter"]
    assert problems(path) == []


def test_a_dead_letter_after_close_and_purge_verifies(tmp_path: Path) -> None:
    """The closing notification to the mayor's staff fails after the encounter was
    closed and its facts purged: the dead letter and its escalation are appended to
    a purged encounter; the audit still verifies."""
    path = tmp_path / "purged.db"
    clock = lr.VirtualClock(START)
    store = lr.SQLiteStore(path)
    pager = Pager()
    eng = engine(store, clock, pager, max_attempts=1)
    eid = eng.open(
        "taskforce", lr.Actor("counter", "counter-1"), {"age_band": "8-11"}, channel="phone"
    ).id
    for event, actor in [
        ("call_expert", "counter"),
        ("expert_takes_over", "expert"),
        ("inform_mayor", "expert"),
        ("mayor_spoke_with_child", "mayor"),
        ("report_made", "expert"),
        ("close", "expert"),
    ]:
        eng.fire(eid, event, pseudonymous(actor))
        if event != "close":
            eng.deliver()
    pager.fail_for.add("mayor_staff")
    clock.advance(timedelta(days=1))
    assert store.purge_facts(clock.now(), now=clock.now()) == 1
    out = eng.deliver()
    assert "NotificationDeadLettered" in [e.kind for e in out]
    assert eng.get(eid).facts == {}
    assert problems(path) == []


def test_a_re_armed_and_a_deferred_deadline_verify(tmp_path: Path) -> None:
    """A deadline refused by its guard (missed, re-armed under a new id), then one
    deferred by a store error, then fired: the audit verifies after each."""
    text = TASKFORCE.read_text().replace(
        'event = "expert_not_called"\nfrom = ["arrived"]',
        'event = "expert_not_called"\nfrom = ["arrived"]\nguard = "later"',
    )
    assert text != TASKFORCE.read_text()
    src = tmp_path / "taskforce.toml"
    src.write_text(text)
    protocol = lr.load_protocol(src)
    path = tmp_path / "rearm.db"
    clock = lr.VirtualClock(START)
    store = lr.SQLiteStore(path)
    guard = GuardPlugin("not yet", "later")
    eng = lr.Engine(
        protocols=[protocol], plugins=[guard], store=store, clock=clock, entry_points=False
    )
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1"), channel="online").id
    clock.advance(timedelta(minutes=16))
    out = eng.tick()
    assert [e.kind for e in out] == ["DeadlineMissed", "DeadlineScheduled"]
    assert len(eng.deadlines(eid)) == 1
    assert problems(path) == []
    guard.answer = None
    clock.advance(timedelta(minutes=16))
    real = store.commit

    def broken(change: Any) -> Any:
        raise lr.StoreError(problem="disk full")

    store.commit = broken  # type: ignore[method-assign]
    [deferred] = eng.tick()
    assert isinstance(deferred, lr.DeadlineDeferred)
    store.commit = real  # type: ignore[method-assign]
    assert problems(path) == []
    clock.advance(timedelta(minutes=2))
    assert "StepEntered" in [e.kind for e in eng.tick()]
    assert eng.get(eid).state == "awaiting_expert"
    assert problems(path) == []


def test_two_engines_tick_and_deliver_at_once_fire_each_deadline_once(tmp_path: Path) -> None:
    """Two engines on one file, in two threads released by a barrier: one ticks at
    ``now``, the other past the first one's lease (its claims look stale), both
    deliver. Every deadline fires once, every notification is delivered once."""
    path = tmp_path / "race.db"
    clock = lr.VirtualClock(START)
    lease = timedelta(seconds=30)
    stores = [lr.SQLiteStore(path), lr.SQLiteStore(path)]
    pagers = [Pager(), Pager()]
    engines = [
        engine(s, clock, p, deadline_lease=lease) for s, p in zip(stores, pagers, strict=True)
    ]
    ids = [engines[0].open("taskforce", lr.Actor("counter", "counter-1")).id for _ in range(8)]
    for eid in ids:
        engines[0].fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    engines[0].deliver()
    rounds = 4
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait(30)
                now = START + timedelta(minutes=16 + 46 * r) + (lease * 2 if i else timedelta())
                engines[i].tick(now=now)
                engines[i].deliver()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    clock.set(START + timedelta(days=1))
    for eng in engines:
        eng.tick()
        eng.deliver()
    for eid in ids:
        timeline = engines[0].timeline(eid)
        fired = [e for e in timeline if isinstance(e, lr.StepEntered) and e.actor.role == "clock"]
        scheduled = [e.deadline_id for e in timeline if isinstance(e, lr.DeadlineScheduled)]
        assert len(scheduled) == len(set(scheduled))
        assert [e.event for e in fired] == ["expert_overdue", "no_expert_available"]
        keys = [e.key for e in timeline if isinstance(e, lr.NotificationDelivered)]
        assert len(keys) == len(set(keys))
        queued = {e.key for e in timeline if isinstance(e, lr.NotificationQueued)}
        assert set(keys) == queued
    assert problems(path) == []


# -- public entries outside the Engine still escape the error contract -----------------


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: lr.VirtualClock("2026-03-02T10:00"), id="VirtualClock-text"),
        pytest.param(lambda: lr.VirtualClock(START.replace(tzinfo=None)), id="VirtualClock-naive"),
        pytest.param(lambda: lr.VirtualClock(START).advance("45m"), id="advance-text"),
        pytest.param(lambda: lr.VirtualClock(START).advance(45), id="advance-int"),
        pytest.param(
            lambda: lr.VirtualClock(START).advance(timedelta(days=10**9 - 1)), id="advance-huge"
        ),
        pytest.param(lambda: lr.VirtualClock(START).advance(-timedelta(1)), id="advance-back"),
        pytest.param(lambda: lr.VirtualClock(START).set("tomorrow"), id="set-text"),
        pytest.param(
            lambda: lr.VirtualClock(START).set(START.replace(tzinfo=None)), id="set-naive"
        ),
    ],
)
def test_a_virtual_clock_refuses_bad_arguments_with_invalid_argument(call: Any) -> None:
    with pytest.raises(lr.InvalidArgument):
        call()


def test_a_virtual_clock_refusing_a_move_stays_where_it_was() -> None:
    clock = lr.VirtualClock(START)
    for bad in ("45m", timedelta(days=10**9 - 1)):
        with pytest.raises(lr.InvalidArgument):
            clock.advance(bad)  # type: ignore[arg-type]
    assert clock.now() == START


@pytest.mark.parametrize(
    ("path", "anchor"),
    [
        pytest.param(123, None, id="path-int"),
        pytest.param(None, None, id="path-none"),
        pytest.param("store.db", "1:abc", id="anchor-text"),
        pytest.param("store.db", (1,), id="anchor-short"),
        pytest.param("store.db", ("1", "abc"), id="anchor-types"),
    ],
)
def test_audit_verify_refuses_bad_arguments_with_invalid_argument(
    tmp_path: Path, path: Any, anchor: Any
) -> None:
    store = lr.SQLiteStore(tmp_path / "store.db")
    store.close()
    before = (tmp_path / "store.db").read_bytes()
    if isinstance(path, str):
        path = tmp_path / path
    with pytest.raises(lr.InvalidArgument) as caught:
        verify(path, anchor=anchor)
    assert "abc" not in str(caught.value)
    assert (tmp_path / "store.db").read_bytes() == before
