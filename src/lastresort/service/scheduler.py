"""The service's background work: fire due deadlines (``Engine.tick``) and push the
outbox (``Engine.deliver``) at intervals.

Safe with several service processes on one database: the store claims each due
deadline and each notification with a lease before it is fired or delivered, so a
deadline fires once and a live worker never delivers a notification another holds
(see docs/guarantees.md); the scheduler adds no coordination of its own. A round that
fails (the store unavailable) is logged and retried at the next interval: a failure
never stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from attrs import field, frozen
from starlette.concurrency import run_in_threadpool

from ..engine.engine import Engine
from ..errors import InvalidArgument

__all__ = ["Scheduler", "SchedulerConfig"]

log = logging.getLogger("lastresort.service.scheduler")


def _interval(_: object, attribute: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.01 <= value <= 3600:
        raise InvalidArgument(
            call="SchedulerConfig",
            argument=getattr(attribute, "name", "interval"),
            problem="a number of seconds from 0.01 to 3600",
        )


def _batch(_: object, attribute: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise InvalidArgument(
            call="SchedulerConfig",
            argument=getattr(attribute, "name", "batch"),
            problem="a whole number from 1 to 10000",
        )


@frozen(kw_only=True)
class SchedulerConfig:
    """How often the scheduler works and how much per round.

    :param tick_interval: seconds between rounds of firing due deadlines.
    :param deliver_interval: seconds between rounds of delivery.
    :param batch: at most this many deadlines (and notifications) per round; a full
        round is followed at once by another.
    """

    tick_interval: float = field(default=1.0, validator=_interval)
    deliver_interval: float = field(default=1.0, validator=_interval)
    batch: int = field(default=200, validator=_batch)


class Scheduler:
    """Runs ``tick`` and ``deliver`` on an engine until stopped."""

    def __init__(self, engine: Engine, config: SchedulerConfig | None = None) -> None:
        self.engine = engine
        self.config = config or SchedulerConfig()
        self._tasks: list[asyncio.Task[None]] = []
        #: rounds that failed (the store unavailable, a plugin bug): logged, retried
        self.failures = 0

    def tick_once(self) -> int:
        """One round of firing due deadlines; the number of events it committed."""
        return len(self.engine.tick(limit=self.config.batch))

    def deliver_once(self) -> int:
        """One round of delivery; the number of events it committed."""
        return len(self.engine.deliver(limit=self.config.batch))

    async def _loop(self, work: str, interval: float) -> None:
        once = self.tick_once if work == "tick" else self.deliver_once
        while True:
            try:
                done = await run_in_threadpool(once)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - logged and retried: the loop never stops
                self.failures += 1
                log.warning("scheduler %s round failed (%s); retrying", work, type(exc).__name__)
                done = 0
            if done < self.config.batch:
                await asyncio.sleep(interval)

    def start(self) -> None:
        """Start both loops on the running event loop."""
        self._tasks = [
            asyncio.create_task(self._loop("tick", self.config.tick_interval)),
            asyncio.create_task(self._loop("deliver", self.config.deliver_interval)),
        ]

    async def stop(self) -> None:
        """Stop both loops (a round in progress finishes in its thread)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks = []
