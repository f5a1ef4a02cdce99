"""Engine.fire on MemoryStore next to raw `transitions` (one shared Machine, reused
model), measured in the same process on the same protocol and event path, in CPU
time of the process (``time.process_time``: other load disturbs it less than wall time).

Run:  .venv/bin/python benchmarks/bench_engine.py [--quick]
Target: Engine.fire <= 2.5x raw transitions per event (goal 1.5x).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from transitions import Machine

import lastresort as lr

PROTOCOL_FILE = Path(lr.__file__).parent / "protocol" / "builtin" / "taskforce.toml"
PATH = [
    ("call_expert", lr.Actor("counter", "counter-1")),
    ("expert_takes_over", lr.Actor("expert", "expert-1")),
    ("arrange_mayor_meeting", lr.Actor("expert", "expert-1")),
    ("mayor_spoke_with_child", lr.Actor("mayor", "mayor-1")),
    ("report_made", lr.Actor("expert", "expert-1")),
    ("close", lr.Actor("expert", "expert-1")),
]


#: the clerk who opens the benchmark encounters (every actor but the clock carries an id)
COUNTER = lr.Actor("counter", "counter-1")


def best_of(repeat: int, run: Callable[[], float]) -> float:
    """The best (least disturbed) of ``repeat`` runs, each returning seconds per event."""
    results = []
    for _ in range(repeat):
        gc.collect()
        results.append(run())
    return min(results)


def raw_transitions(protocol: lr.Protocol, encounters: int) -> Callable[[], float]:
    class Model:
        state: str

    model = Model()
    machine = Machine(
        model=model, states=list(protocol.steps), initial=protocol.initial, auto_transitions=False
    )
    for t in protocol.transitions:
        for source in protocol.sources_of(t):
            machine.add_transition(t.event, source, t.target)
    trigger = model.trigger  # type: ignore[attr-defined]

    def run() -> float:
        start = time.process_time()
        for _ in range(encounters):
            model.state = protocol.initial
            for event, _actor in PATH:
                trigger(event)
        return (time.process_time() - start) / (encounters * len(PATH))

    return run


def engine_fire(protocol: lr.Protocol, encounters: int) -> Callable[[], float]:
    clock = lr.VirtualClock(datetime(2026, 3, 2, 10, tzinfo=ZoneInfo("Europe/Amsterdam")))
    engine = lr.Engine(protocols=[protocol], clock=clock, entry_points=False)
    fire = engine.fire

    def run() -> float:
        ids = [engine.open("taskforce", COUNTER).id for _ in range(encounters)]
        start = time.process_time()
        for eid in ids:
            for event, actor in PATH:
                fire(eid, event, actor)
        return (time.process_time() - start) / (encounters * len(PATH))

    return run


def measure(quick: bool = False) -> dict[str, float]:
    """Seconds per event for each contender."""
    protocol = lr.load_protocol(PROTOCOL_FILE)
    n, repeat = (200, 2) if quick else (3000, 5)
    return {
        "raw transitions (shared Machine, reused model)": best_of(
            repeat, raw_transitions(protocol, n)
        ),
        "lastresort Engine.fire (MemoryStore)": best_of(repeat, engine_fire(protocol, n)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run (for make test)")
    args = parser.parse_args()
    results = measure(args.quick)
    raw = results["raw transitions (shared Machine, reused model)"]
    ours = results["lastresort Engine.fire (MemoryStore)"]
    print(f"{'contender':<50} {'us/event':>9} {'ratio to raw':>13}")
    for name, seconds in results.items():
        print(f"{name:<50} {seconds * 1e6:>9.2f} {seconds / raw:>12.2f}x")
    print(f"Engine.fire / raw transitions = {ours / raw:.2f}x (target <= 2.5x, goal 1.5x)")


if __name__ == "__main__":
    main()
