"""The service's scheduler: rounds of tick and deliver; a failing round is logged,
counted and retried, never the end of the loop; bad intervals are refused."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.service import Scheduler, SchedulerConfig
from tests.service.kit import make_service


def run_loop(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run(main())`` in a thread of its own: the browser tests' session-wide
    Playwright keeps an event loop running in the main thread, where ``asyncio.run``
    is refused; an exception in the loop is raised here."""
    failed: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failed.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the event loop did not finish in 120 s"
    if failed:
        raise failed[0]


def test_a_round_fires_due_deadlines_and_delivers(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    eid = service.open("counter")["id"]
    scheduler = Scheduler(
        service.engine, SchedulerConfig(tick_interval=0.01, deliver_interval=0.01)
    )
    assert scheduler.tick_once() == 0  # nothing due yet
    service.clock.advance(timedelta(hours=2))
    assert scheduler.tick_once() > 0
    assert service.engine.get(eid).state != "arrived"  # the clock moved it on
    assert scheduler.deliver_once() > 0
    assert all(not n.pending for n in service.engine.outbox(eid))
    service.engine.store.close()


def test_a_failing_round_is_logged_counted_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service(tmp_path)
    service.open("counter")
    service.clock.advance(timedelta(hours=2))
    calls = {"n": 0, "done": 0}
    real_tick = service.engine.tick

    def flaky_tick(*args: object, **kw: object) -> list[lr.Event]:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise lr.StoreError(problem="database is locked")
        fired = real_tick(*args, **kw)  # type: ignore[arg-type]
        calls["done"] += 1
        return fired

    service.engine.tick = flaky_tick  # type: ignore[method-assign]
    scheduler = Scheduler(
        service.engine, SchedulerConfig(tick_interval=0.01, deliver_interval=0.01)
    )

    async def run() -> None:
        scheduler.start()
        for _ in range(6000):  # up to a minute on a loaded machine; usually 3 rounds in 50 ms
            await asyncio.sleep(0.01)
            # a round that went through has returned (not merely begun: stopping the
            # loop does not wait for the round's thread, so that raced the check below)
            if calls["done"] >= 1:
                break
        await scheduler.stop()

    with caplog.at_level(logging.WARNING, logger="lastresort.service.scheduler"):
        run_loop(run)
    assert calls["n"] >= 3  # the loop went on after two failures
    assert scheduler.failures == 2
    assert "tick round failed (StoreError); retrying" in caplog.text
    missed = [
        e for eid in service.engine.store.encounter_ids(open_only=False)
        for e in service.engine.timeline(eid) if isinstance(e, lr.DeadlineMissed)
    ]  # fmt: skip
    assert len(missed) == len({e.deadline_id for e in missed}) >= 1  # each fired once
    service.engine.store.close()


@pytest.mark.parametrize(
    ("kw", "argument"),
    [
        ({"tick_interval": 0}, "tick_interval"),
        ({"deliver_interval": -1}, "deliver_interval"),
        ({"tick_interval": True}, "tick_interval"),
        ({"batch": 0}, "batch"),
        ({"batch": 1.5}, "batch"),
    ],
)
def test_bad_scheduler_settings_are_refused(kw: dict[str, object], argument: str) -> None:
    with pytest.raises(lr.InvalidArgument, match=argument):
        SchedulerConfig(**kw)  # type: ignore[arg-type]


def test_store_faults_in_rounds_are_logged_counted_retried_and_change_no_outcome(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.faults.kit import Fault, FaultyStore

    faulty = FaultyStore(
        lr.SQLiteStore(tmp_path / "faulty.db"),
        faults=[
            Fault("claim_deadlines", 1),  # the first tick round cannot claim
            Fault("commit", 4, when="after"),  # the first fire commits, then "fails"
            Fault("claim_outbox", 1),  # the first delivery round cannot claim
            Fault("delivered", 1, when="after"),  # a delivery is recorded, then "fails"
        ],
    )
    service = make_service(tmp_path, store=faulty)  # type: ignore[arg-type]
    ids = [service.open("counter")["id"] for _ in range(3)]  # commits 1-3
    service.clock.advance(timedelta(hours=2))
    scheduler = Scheduler(
        service.engine, SchedulerConfig(tick_interval=0.01, deliver_interval=0.01, batch=1)
    )

    def settled() -> bool:
        due = faulty.inner.next_due()
        done = due is None or due > service.clock.now()
        return done and not any(n.pending for n in faulty.inner.outbox())

    async def run() -> None:
        scheduler.start()
        for _ in range(1000):
            await asyncio.sleep(0.01)
            if len(faulty.raised) == 4 and settled():
                break
        await scheduler.stop()

    with caplog.at_level(logging.WARNING):
        run_loop(run)
    assert len(faulty.raised) == 4
    assert settled()  # the loops went on after every fault
    # the two claims and the delivery reached the loop; the engine's tick keeps a failed
    # fire to itself (logged, retried after the lease) and goes on with the round
    assert scheduler.failures == 3
    assert "tick round failed (StoreError); retrying" in caplog.text
    assert "deliver round failed (StoreError); retrying" in caplog.text
    assert "could not fire now" in caplog.text
    events = [e for eid in ids for e in service.engine.timeline(eid)]
    fired = [e.deadline_id for e in events if isinstance(e, lr.DeadlineMissed)]
    assert len(fired) == len(set(fired)) >= 3  # each fired once, the faulted one too
    delivered = [e.key for e in events if isinstance(e, lr.NotificationDelivered)]
    assert sorted(delivered) == sorted({n.key for n in faulty.inner.outbox()})  # once each
    faulty.close()


def test_stop_waits_for_a_round_in_progress(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    entered, release, finished = threading.Event(), threading.Event(), []

    def slow_tick(*args: object, **kw: object) -> list[lr.Event]:
        entered.set()
        release.wait(30)
        time.sleep(0.2)  # still working when stop() is awaited
        finished.append("tick")
        return []

    service.engine.tick = slow_tick  # type: ignore[method-assign]
    scheduler = Scheduler(service.engine, SchedulerConfig(tick_interval=0.01))

    async def run() -> None:
        scheduler.start()
        while not entered.is_set():
            await asyncio.sleep(0.005)
        stopping = asyncio.create_task(scheduler.stop())
        await asyncio.sleep(0.05)
        assert not stopping.done()  # the round holds it
        release.set()
        await stopping
        # the round is over before stop() returns: the store may be closed now
        assert finished == ["tick"]

    run_loop(run)
    assert scheduler.failures == 0
    service.engine.store.close()
