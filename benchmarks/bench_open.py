"""Engine.open on a MemoryStore holding 1k, 10k and 100k open encounters, and the
memory one open encounter keeps (tracemalloc), next to the Encounter record alone.

Also the first ``Engine.tick`` after a burst of opens (nothing due yet), next to the
tick after it: the store's index of what falls due must not make the first one pay
for every deadline opened since.

Run:  .venv/bin/python benchmarks/bench_open.py [--quick]
Targets: opening with 100k open <= 1.2x opening with 1k open; <= 1 KB per open encounter;
the first tick after 1M opens < 50 ms.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

from common import FACTS, engine

import lastresort as lr

#: the clerk who opens the benchmark encounters (every actor but the clock carries an id)
COUNTER = lr.Actor("counter", "counter-1")


def open_costs(sizes: Sequence[int], batch: int, rounds: int) -> dict[int, float]:
    """Seconds per ``Engine.open`` on a MemoryStore holding ``size`` open encounters
    (each with its pending deadline), best of ``rounds`` batches of ``batch`` opens;
    the engines take turns so that machine load hits every size alike."""
    engines = {}
    for size in sizes:
        eng = engine()
        clock = eng.clock
        assert isinstance(clock, lr.VirtualClock)
        for i in range(size):
            if i % 100 == 0:
                clock.advance(timedelta(seconds=1))  # deadlines spread out, as in real life
            eng.open("taskforce", COUNTER, FACTS)
        engines[size] = eng
    best = dict.fromkeys(sizes, float("inf"))
    for _ in range(rounds):
        for size, eng in engines.items():
            open_ = eng.open
            gc.collect()
            start = time.process_time()
            for _ in range(batch):
                open_("taskforce", COUNTER, FACTS)
            best[size] = min(best[size], (time.process_time() - start) / batch)
    return best


def traced(work: Callable[[], object], n: int) -> float:
    """Bytes of memory still held after ``work`` (traced by tracemalloc), per item of ``n``."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = work()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return (after - before) / n


def bytes_per_open(n: int) -> tuple[float, float]:
    """(bytes the MemoryStore grows per opened encounter, bytes of the Encounter record alone).

    The store's growth is everything an open encounter keeps: the record, its
    timeline (EncounterOpened, DeadlineScheduled), its pending deadline and every
    index entry. Each encounter gets its own moment (as with a real clock)."""
    eng = engine()
    clock = eng.clock
    assert isinstance(clock, lr.VirtualClock)
    eng.open("taskforce", COUNTER, FACTS)  # first-use caches are not per encounter

    def open_many() -> None:
        for _ in range(n):
            clock.advance(timedelta(seconds=1))
            eng.open("taskforce", COUNTER, FACTS)

    store = traced(open_many, n)
    sample = eng.get(eng.store.encounter_ids()[0])

    def records() -> list[lr.Encounter]:
        return [
            lr.Encounter(
                id=uuid.uuid4().hex,
                protocol=sample.protocol,
                protocol_version=sample.protocol_version,
                state=sample.state,
                responsible=sample.responsible,
                facts=dict(FACTS),
                version=1,
                opened_at=clock.advance(timedelta(seconds=1)),
            )
            for _ in range(n)
        ]

    return store, traced(records, n)


def first_tick(opens: int) -> tuple[float, float]:
    """(seconds of the first ``Engine.tick`` after ``opens`` opens on a MemoryStore, of
    the tick after it), in CPU time; no deadline is due yet at either tick."""
    eng = engine()
    clock = eng.clock
    assert isinstance(clock, lr.VirtualClock)
    open_ = eng.open
    for i in range(opens):
        if i % 100 == 0:
            clock.advance(timedelta(milliseconds=10))  # deadlines spread out, none due
        open_("taskforce", COUNTER, FACTS)
    gc.collect()
    start = time.process_time()
    assert eng.tick() == []
    first = time.process_time() - start
    start = time.process_time()
    assert eng.tick() == []
    return first, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run")
    args = parser.parse_args()
    sizes = (1000, 10_000, 20_000) if args.quick else (1000, 10_000, 100_000)
    costs = open_costs(sizes, 100 if args.quick else 200, 3 if args.quick else 7)
    for size, cost in costs.items():
        ratio = cost / costs[sizes[0]]
        print(f"Engine.open with {size:>7,} open: {cost * 1e6:6.2f} us ({ratio:.2f}x)")
    store, record = bytes_per_open(2000 if args.quick else 20_000)
    print(f"bytes per open encounter: {store:,.0f} (the store's growth), {record:,.0f} (record)")
    opens = 25_000 if args.quick else 1_000_000
    first, second = first_tick(opens)
    print(
        f"first Engine.tick after {opens:,} opens: {first * 1e3:.2f} ms"
        f" (the next tick: {second * 1e3:.3f} ms; goal < 50 ms)"
    )


if __name__ == "__main__":
    main()
