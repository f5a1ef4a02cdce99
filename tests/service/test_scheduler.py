"""The service's scheduler: rounds of tick and deliver; a failing round is logged,
counted and retried, never the end of the loop; bad intervals are refused."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest

import lastresort as lr
from lastresort.service import Scheduler, SchedulerConfig
from tests.service.kit import make_service


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
    calls = {"n": 0}
    real_tick = service.engine.tick

    def flaky_tick(*args: object, **kw: object) -> list[lr.Event]:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise lr.StoreError(problem="database is locked")
        return real_tick(*args, **kw)  # type: ignore[arg-type]

    service.engine.tick = flaky_tick  # type: ignore[method-assign]
    scheduler = Scheduler(
        service.engine, SchedulerConfig(tick_interval=0.01, deliver_interval=0.01)
    )

    async def run() -> None:
        scheduler.start()
        for _ in range(6000):  # up to a minute on a loaded machine; usually 3 rounds in 50 ms
            await asyncio.sleep(0.01)
            if calls["n"] >= 3:
                break
        await scheduler.stop()

    with caplog.at_level(logging.WARNING, logger="lastresort.service.scheduler"):
        asyncio.run(run())
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
