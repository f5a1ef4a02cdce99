"""Monte Carlo cost per simulated event next to the bare ``Engine.fire`` cost,
measured in the same process on the same protocol; and the throughput of two
worker processes next to one.

Run:  .venv/bin/python benchmarks/bench_simulate.py [--quick]
Targets: Monte Carlo per event <= 1.25x Engine.fire; 2 workers >= 1.8x 1 worker.

A simulated event is one step the engine commits: an ``open``, a ``fire`` or a
deadline fired by ``tick``. The Monte Carlo time is the whole run (arrivals,
party models, the event loop, engine construction per chunk, KPIs), divided by
those events; single-process costs are CPU time of this process
(``time.process_time``), so that other load on the machine disturbs them less.
Two anchors, both measured in this process, interleaved with the
Monte Carlo runs so that all see the same machine load:

- bare ``Engine.fire``: the happy path of the same protocol, one encounter at a
  time (the ``fire`` calls timed, not the ``open``), on stores as large as the
  simulation's (a fresh engine every chunk);
- replay: exactly the engine calls one Monte Carlo chunk made (``open``,
  ``fire``, ``tick``, ``deadlines``, ``get``, and ``next_deadline`` if it asks;
  same clock moments, same ids),
  made again on a fresh engine without the simulator, under the same conditions
  (the cyclic garbage collector on, as in a one-worker run, which leaves the
  caller's collector alone):
  the engine's share of the run, so ``Monte Carlo - replay`` is what the
  simulator itself adds.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import lastresort as lr
from lastresort.simulate import SimulationConfig, load_config, monte_carlo, runner

PROTOCOL_FILE = Path(lr.__file__).parent / "protocol" / "builtin" / "taskforce.toml"
PATH = [
    ("call_expert", lr.Actor("counter", "counter-1")),
    ("expert_takes_over", lr.Actor("expert", "expert-1")),
    ("arrange_mayor_meeting", lr.Actor("expert", "expert-1")),
    ("mayor_spoke_with_child", lr.Actor("mayor", "mayor-1")),
    ("report_made", lr.Actor("expert", "expert-1")),
    ("close", lr.Actor("expert", "expert-1")),
]
#: Children every hour the counter is open; the taskforce policy of the docs.
CONFIG = {
    "chunk": 500,
    "arrivals": {"per_week": 40.0, "hours": [0.0] * 8 + [1.0] * 10 + [0.0] * 6},
    "protocols": {"taskforce": {"policy": {"arrived": {"call_expert": 1.0}}}},
}


def bare_fire(protocol: lr.Protocol, encounters: int, per_engine: int) -> float:
    """Seconds per ``Engine.fire`` along the happy path, one encounter at a time
    (the fires timed, the opens not), on a fresh engine every ``per_engine``
    encounters: stores as large as the simulation's (one engine per chunk)."""
    spent = 0.0
    gc.collect()
    for first in range(0, encounters, per_engine):
        clock = lr.VirtualClock(datetime(2026, 3, 2, 10, tzinfo=ZoneInfo("Europe/Amsterdam")))
        engine = lr.Engine(protocols=[protocol], clock=clock, entry_points=False)
        fire, open_, now = engine.fire, engine.open, time.process_time
        for _ in range(min(per_engine, encounters - first)):
            eid = open_(protocol.id, lr.Actor("counter", "counter-1")).id
            start = now()
            for event, actor in PATH:
                fire(eid, event, actor)
            spent += now() - start
    return spent / (encounters * len(PATH))


class _Recorder(lr.Engine):
    """An Engine that notes every call the simulator makes (for the replay)."""

    calls: ClassVar[list[list[tuple[Any, ...]]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[tuple[Any, ...]] = []
        self.ids: list[str] = []
        _Recorder.calls.append(self.log)

    def open(self, *args: Any, **kwargs: Any) -> lr.Encounter:
        encounter = super().open(*args, **kwargs)
        self.log.append(("open", self.clock.now(), args, kwargs, encounter.id))
        return encounter

    def fire(self, *args: Any, **kwargs: Any) -> list[lr.Event]:
        self.log.append(("fire", self.clock.now(), args, kwargs))
        return super().fire(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> list[lr.Event]:
        self.log.append(("tick", self.clock.now(), args, kwargs))
        return super().tick(*args, **kwargs)

    def next_deadline(self) -> datetime | None:
        self.log.append(("next_deadline", self.clock.now(), (), {}))
        return super().next_deadline()

    def deadlines(self, *args: Any, **kwargs: Any) -> list[lr.PendingDeadline]:
        self.log.append(("deadlines", self.clock.now(), args, kwargs))
        return super().deadlines(*args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> lr.Encounter:
        self.log.append(("get", self.clock.now(), args, kwargs))
        return super().get(*args, **kwargs)


def record(protocol: lr.Protocol, config: SimulationConfig, encounters: int) -> list[Any]:
    """The engine calls of a one-worker run, per chunk."""
    _Recorder.calls = []
    runner.Engine = _Recorder  # type: ignore[misc]
    try:
        monte_carlo([protocol], encounters, seed=1, config=config, entry_points=False)
    finally:
        runner.Engine = lr.Engine  # type: ignore[misc]
    return _Recorder.calls


def replay(protocol: lr.Protocol, config: SimulationConfig, calls: list[Any]) -> float:
    """Seconds to make the recorded engine calls again, without the simulator
    (with the collector on, as in the run)."""
    start_at = config.start
    gc.collect()
    spent = 0.0
    for log in calls:
        ids = iter([c[4] for c in log if c[0] == "open"])
        clock = lr.VirtualClock(start_at)
        started = time.process_time()
        engine = lr.Engine(
            protocols=[protocol],
            store=lr.MemoryStore(),
            clock=clock,
            entry_points=False,
            ids=ids.__next__,
        )
        for name, at, args, kwargs, *_ in log:
            if at > clock.now():
                clock.set(at)
            getattr(engine, name)(*args, **kwargs)
        del engine
        spent += time.process_time() - started
    return spent


def monte_carlo_run(
    protocol: lr.Protocol, config: SimulationConfig, encounters: int
) -> tuple[float, int]:
    """Seconds of a whole one-worker run, and its simulated events."""
    gc.collect()
    start = time.process_time()
    result = monte_carlo([protocol], encounters, seed=1, config=config, entry_points=False)
    elapsed = time.process_time() - start
    return elapsed, result.comparison.protocols[0].events


def throughput(
    protocol: lr.Protocol, config: SimulationConfig, encounters: int, workers: int
) -> float:
    """Encounters simulated per second (wall clock) with ``workers`` processes."""
    gc.collect()
    start = time.perf_counter()
    monte_carlo([protocol], encounters, seed=2, config=config, workers=workers, entry_points=False)
    return encounters / (time.perf_counter() - start)


@dataclass(frozen=True)
class Figures:
    """What one run measured: seconds per simulated event (CPU time, best of
    ``repeat``) and encounters per second (wall clock) with one and two workers."""

    encounters: int  # per single-process run
    events: int  # simulated events in one such run
    repeat: int
    fire: float  # bare Engine.fire
    replay: float  # the recorded engine calls, without the simulator
    monte_carlo: float  # the whole one-worker run
    big: int  # encounters per throughput run
    one: float
    two: float
    cores: int


def measure(quick: bool = False) -> Figures:
    """Monte Carlo per-event cost next to its anchors, and 1- and 2-worker throughput."""
    protocol = lr.load_protocol(PROTOCOL_FILE)
    config = load_config(CONFIG)
    n, repeat, big = (500, 2, 4000) if quick else (4000, 7, 20000)
    calls = record(protocol, config, n)
    fires, sims, replays = [], [], []
    events = 0
    for _ in range(repeat):  # interleaved, so all see the same machine load
        fires.append(bare_fire(protocol, n, config.chunk))
        elapsed, events = monte_carlo_run(protocol, config, n)
        sims.append(elapsed / events)
        replays.append(replay(protocol, config, calls) / events)
    one = two = 0.0
    for _ in range(2):  # interleaved too
        one = max(one, throughput(protocol, config, big, 1))
        two = max(two, throughput(protocol, config, big, 2))
    return Figures(
        encounters=n,
        events=events,
        repeat=repeat,
        fire=min(fires),
        replay=min(replays),
        monte_carlo=min(sims),
        big=big,
        one=one,
        two=two,
        cores=os.cpu_count() or 1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run")
    args = parser.parse_args()
    f = measure(args.quick)
    fire, sim, again = f.fire, f.monte_carlo, f.replay
    print(
        f"protocol taskforce, {f.encounters} encounters per run, {f.events} events, best of {f.repeat}"
    )
    print(f"{'bare Engine.fire (happy path)':<44} {fire * 1e6:>9.2f} us/event")
    print(f"{'replay of the same engine calls':<44} {again * 1e6:>9.2f} us/event")
    print(f"{'Monte Carlo (1 worker), whole run':<44} {sim * 1e6:>9.2f} us/event")
    print(f"Monte Carlo / Engine.fire = {sim / fire:.2f}x (target <= 1.25x)")
    print(f"Monte Carlo / replay      = {sim / again:.2f}x (what the simulator adds)")
    print(f"\n{f.big} encounters; {f.cores} cores")
    print(f"{'1 worker':<44} {f.one:>9.0f} encounters/s")
    print(f"{'2 workers (process pool)':<44} {f.two:>9.0f} encounters/s")
    print(f"2 workers / 1 worker = {f.two / f.one:.2f}x (target >= 1.8x)")


if __name__ == "__main__":
    main()
