"""The work queue: one page of "open encounters the expert holds" from ``Store.find``
(indexed) next to what the service did before it (every open id, each encounter
loaded and filtered in Python), on SQLiteStore with growing numbers of open
encounters, one in twenty held by the expert.

Printed: the time of a page of 50 both ways, the ratio, and how the indexed page
grows with the open encounters (it should not: about the page, not the store).

Run:  .venv/bin/python benchmarks/bench_queue.py [--quick]
Goal: a page from ``find`` with 20x the open encounters <= 1.5x the time of the
smaller store.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import PROTOCOL, START  # the same protocol as the store benchmark

import lastresort as lr

PAGE = 50


def fill(store: lr.SQLiteStore, n: int) -> None:
    """``n`` open encounters, every twentieth held by the expert, written in bulk."""
    data = copy.deepcopy(PROTOCOL)
    data["steps"]["room"]["responsible"] = "expert"  # "go" hands over to the expert,
    data["transitions"][0]["by"] = ["expert"]  # who accepts it (a handover's rule)
    protocol = lr.load_protocol(data)
    engine = lr.Engine(protocols=[protocol], store=store, clock=lr.VirtualClock(START))
    clerk, expert = lr.Actor("counter", "c-1"), lr.Actor("expert", "x-1")
    for i in range(n):
        eid = engine.open("bench", clerk, facts={}).id
        if i % 20 == 0:
            engine.fire(eid, "go", expert)  # to the expert's step


def old_way(store: lr.SQLiteStore, party: str) -> list[lr.Encounter]:
    out = []
    for eid in sorted(store.encounter_ids(open_only=True)):
        encounter = store.load(eid)
        if encounter.responsible == party:
            out.append(encounter)
            if len(out) == PAGE:
                break
    return out


def best(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(quick: bool, sizes: tuple[int, ...] | None = None) -> list[tuple[int, float, float]]:
    """(open encounters, seconds per page from ``find``, seconds per page by scanning)
    for each size of store (the first is the anchor)."""
    if sizes is None:
        sizes = (1000, 20_000) if quick else (1000, 20_000, 100_000)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            store = lr.SQLiteStore(Path(tmp) / f"q{n}.db", synchronous="NORMAL")
            fill(store, n)
            party = "expert"
            found = store.find(responsible=party, limit=PAGE)
            assert len(found) == PAGE
            assert [e.id for e in found] == [e.id for e in old_way(store, party)]
            fast = best(lambda s=store, p=party: s.find(responsible=p, limit=PAGE), 20)
            slow = best(lambda s=store, p=party: old_way(s, p), 3)
            rows.append((n, fast, slow))
            store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows = measure(args.quick)
    print(f"{'open encounters':>16} {'find (ms)':>10} {'scan (ms)':>10} {'scan/find':>10}")
    for n, fast, slow in rows:
        print(f"{n:>16,} {fast * 1e3:>10.2f} {slow * 1e3:>10.1f} {slow / fast:>9.0f}x")
    base = rows[0][1]
    for n, fast, _ in rows[1:]:
        print(f"find with {n:,} open / with {rows[0][0]:,} open: {fast / base:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
