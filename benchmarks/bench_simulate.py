"""Monte Carlo cost per simulated event next to the bare ``Engine.fire`` cost,
measured in the same process on the same protocol; and the throughput of two
worker processes next to one.

Run:  .venv/bin/python benchmarks/bench_simulate.py [--quick]
Targets: Monte Carlo per event <= 1.25x Engine.fire; 2 workers >= 1.8x 1 worker.

A simulated event is one step the engine commits: an ``open``, a ``fire`` or a
deadline fired by ``tick``. The Monte Carlo time is the whole run (arrivals,
party models, the event loop, engine construction per chunk, KPIs), divided by
those events.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import lastresort as lr
from lastresort.simulate import SimulationConfig, load_config, monte_carlo

PROTOCOL_FILE = Path(lr.__file__).parent / "protocols" / "taskforce.toml"
PATH = [
    ("call_expert", "counter"),
    ("expert_takes_over", "expert"),
    ("inform_mayor", "expert"),
    ("mayor_spoke_with_child", "mayor"),
    ("report_made", "expert"),
    ("close", "expert"),
]
#: Children every hour the counter is open; the taskforce policy of the docs.
CONFIG = {
    "chunk": 500,
    "arrivals": {"per_week": 40.0, "hours": [0.0] * 8 + [1.0] * 10 + [0.0] * 6},
    "protocols": {"taskforce": {"policy": {"arrived": {"call_expert": 1.0}}}},
}


def bare_fire(protocol: lr.Protocol, encounters: int) -> float:
    """Seconds per ``Engine.fire`` along the happy path (fires timed, opens not)."""
    clock = lr.VirtualClock(datetime(2026, 3, 2, 10, tzinfo=ZoneInfo("Europe/Amsterdam")))
    engine = lr.Engine(protocols=[protocol], clock=clock, entry_points=False)
    ids = [engine.open(protocol.id, "counter").id for _ in range(encounters)]
    fire = engine.fire
    gc.collect()
    start = time.perf_counter()
    for eid in ids:
        for event, actor in PATH:
            fire(eid, event, actor)
    return (time.perf_counter() - start) / (encounters * len(PATH))


def monte_carlo_event(
    protocol: lr.Protocol, config: SimulationConfig, encounters: int
) -> tuple[float, int]:
    """Seconds per simulated event of a whole one-worker run, and the events."""
    gc.collect()
    start = time.perf_counter()
    result = monte_carlo([protocol], encounters, seed=1, config=config, entry_points=False)
    elapsed = time.perf_counter() - start
    events = result.comparison.protocols[0].events
    return elapsed / events, events


def throughput(
    protocol: lr.Protocol, config: SimulationConfig, encounters: int, workers: int
) -> float:
    """Encounters simulated per second with ``workers`` processes."""
    gc.collect()
    start = time.perf_counter()
    monte_carlo([protocol], encounters, seed=2, config=config, workers=workers, entry_points=False)
    return encounters / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run")
    args = parser.parse_args()
    protocol = lr.load_protocol(PROTOCOL_FILE)
    config = load_config(CONFIG)
    n, repeat, big = (500, 2, 4000) if args.quick else (4000, 5, 20000)
    fires, sims = [], []
    events = 0
    for _ in range(repeat):  # interleaved, so both see the same machine load
        fires.append(bare_fire(protocol, n))
        per_event, events = monte_carlo_event(protocol, config, n)
        sims.append(per_event)
    fire, sim = min(fires), min(sims)
    print(f"protocol {protocol.id}, {n} encounters per run, best of {repeat}")
    print(f"{'bare Engine.fire':<44} {fire * 1e6:>9.2f} us/event")
    print(f"{'Monte Carlo (1 worker), whole run':<44} {sim * 1e6:>9.2f} us/event ({events} events)")
    print(f"Monte Carlo / Engine.fire = {sim / fire:.2f}x (target <= 1.25x)")

    cores = os.cpu_count() or 1
    one = max(throughput(protocol, config, big, 1) for _ in range(2))
    two = max(throughput(protocol, config, big, 2) for _ in range(2))
    print(f"\n{big} encounters; {cores} cores")
    print(f"{'1 worker':<44} {one:>9.0f} encounters/s")
    print(f"{'2 workers (process pool)':<44} {two:>9.0f} encounters/s")
    print(f"2 workers / 1 worker = {two / one:.2f}x (target >= 1.8x)")


if __name__ == "__main__":
    main()
