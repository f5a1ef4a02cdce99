"""Profiles of lastresort's hot paths, to see why a target of benchmarks/run.py is
missed: cProfile (functions by own time) of ``Engine.fire``, ``Engine.open`` with
100,000 open, a durable ``fire`` on SQLiteStore, a Monte Carlo run; and tracemalloc
(bytes by source line) of what an open encounter keeps in a MemoryStore.

Run:  .venv/bin/python benchmarks/profiles.py fire|open|memory|sqlite|simulate [--top N] [--quick]
      (or benchmarks/run.py --profile WHAT)
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import linecache
import pstats
import shutil
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import bench_engine
import bench_simulate
import bench_store
from common import FACTS, engine, table

import lastresort as lr
from lastresort.testing import pseudonymous

PROFILES = ("fire", "open", "memory", "sqlite", "simulate")


#: the clerk who opens the benchmark encounters (every actor but the clock carries an id)
COUNTER = lr.Actor("counter", "counter-1")


def memory_profile(n: int, top: int) -> None:
    """Print where the memory an open encounter keeps is allocated (tracemalloc,
    grouped by source line), per encounter."""
    eng = engine()
    clock = eng.clock
    assert isinstance(clock, lr.VirtualClock)
    eng.open("taskforce", COUNTER, FACTS)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(n):
            clock.advance(timedelta(seconds=1))
            eng.open("taskforce", COUNTER, FACTS)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    stats = [s for s in after.compare_to(before, "lineno") if s.size_diff > 0]
    total = sum(s.size_diff for s in stats)
    print(f"tracemalloc of {n:,} opens: {total / n:,.0f} B per open encounter, by source line")
    print(
        "(a block CPython reuses from a free list keeps the line that first allocated it:"
        " the total is exact, a line's share may belong to a later object)"
    )
    table(
        f"the {top} largest",
        ("allocated at", "B per encounter", "blocks per encounter"),
        [
            (where(s.traceback[0]), f"{s.size_diff / n:,.1f}", f"{s.count_diff / n:.2f}")
            for s in stats[:top]
            if s.size_diff >= n / 10  # at least 0.1 B per encounter
        ],
    )


def where(frame: tracemalloc.Frame) -> str:
    """``file:line  source`` with the file relative to the package or the stdlib."""
    name = frame.filename
    for marker in ("/src/", "/lib/python"):
        if marker in name:
            name = name.split(marker, 1)[1]
    code = linecache.getline(frame.filename, frame.lineno).strip()
    return f"{name}:{frame.lineno}  {code[:60]}"


def profile(what: str, top: int, quick: bool) -> None:
    """Print the ``top`` functions by own time while ``what`` runs under cProfile
    (``memory``: the allocations of an open encounter, by source line)."""
    if what == "memory":
        memory_profile(2000 if quick else 20_000, top)
        return
    path = bench_engine.PATH
    small = 10 if quick else 1
    work: Callable[[], object]
    if what == "fire":
        eng = engine()
        ids = [eng.open("taskforce", COUNTER, FACTS).id for _ in range(3000 // small)]

        def work() -> None:
            for eid in ids:
                for event, actor in path:
                    eng.fire(eid, event, pseudonymous(actor))

    elif what == "open":
        eng = engine()
        for _ in range(100_000 // small):
            eng.open("taskforce", COUNTER, FACTS)

        def work() -> None:
            for _ in range(10_000 // small):
                eng.open("taskforce", COUNTER, FACTS)

    elif what == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="lastresort-profile-"))
        store = lr.SQLiteStore(folder / "profile.db", synchronous="NORMAL")
        work = bench_store.engine_fire(store, 3000 // small)

    else:
        protocol = lr.load_protocol(bench_simulate.PROTOCOL_FILE)
        config = bench_simulate.load_config(bench_simulate.CONFIG)

        def work() -> None:
            bench_simulate.monte_carlo_run(protocol, config, 4000 // small)

    profiler = cProfile.Profile()
    try:
        profiler.runcall(work)
    finally:
        if what == "sqlite":
            store.close()
            shutil.rmtree(folder, ignore_errors=True)
    print(f"cProfile of {what}: the {top} functions with the most own time")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=PROFILES)
    parser.add_argument("--top", type=int, default=25, help="how many lines to list")
    parser.add_argument("--quick", action="store_true", help="a small run")
    args = parser.parse_args()
    profile(args.what, args.top, args.quick)


if __name__ == "__main__":
    main()
