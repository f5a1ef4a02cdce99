"""Child of tests/test_crash.py: fires events in a loop on a store file and prints
the id of every event the engine returned, until it is killed with SIGKILL.

Started once as ``python tests/crash_child.py``, it imports everything and then,
for every line ``run DB SEED MINUTES`` on stdin, forks a worker (so that 200 kills
do not cost 200 interpreter start-ups). ``DB`` is a file, or ``pg:SCHEMA`` for a
PostgresStore on the test server. The worker opens its own store and
engine, prints ``ready PID``, then for every event returned by ``open``, ``fire``,
``tick`` or ``deliver`` prints ``ev ENCOUNTER SEQ KIND``, each line written with
one ``os.write`` after the call returned. When the worker is gone, the parent
prints ``done PID STATUS``.
"""

from __future__ import annotations

import os
import random
import sys
import traceback
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lastresort as lr
from lastresort.testing import pseudonymous
from tests.store_kit import ACTOR, START, Receipts, moves, relay


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def _store(db: str) -> lr.Store:
    """``pg:SCHEMA`` is a PostgresStore on the test server; anything else a file."""
    if db.startswith("pg:"):
        from tests import pg_kit

        return lr.PostgresStore(pg_kit.DSN, schema=db[3:])
    return lr.SQLiteStore(db)


def work(db: str, seed: int, minutes: int, protocol: lr.Protocol) -> None:
    rng = random.Random(seed)
    clock = lr.VirtualClock(START + timedelta(minutes=minutes))
    engine = lr.Engine(
        protocols=[protocol],
        store=_store(db),
        clock=clock,
        plugins=[Receipts()],
        entry_points=False,
    )
    say(f"ready {os.getpid()}")
    ages = ["0-7", "8-11", "12-15", "16-17"]
    while True:
        open_ids = list(engine.store.encounter_ids(open_only=True))
        roll = rng.random()
        events: list[lr.Event] = []
        if roll < 0.1 or len(open_ids) < 4:
            encounter = engine.open(
                "relay", lr.Actor("counter", "counter-1"), facts={"age_band": rng.choice(ages)}
            )
            events = engine.timeline(encounter.id)
        elif roll < 0.85:
            eid = rng.choice(open_ids)
            options = moves(protocol, engine.get(eid).state)
            event = rng.choice([o for o in options if o != "acute_danger"] or options)
            if rng.random() < 0.02:
                event = "acute_danger"
            events = engine.fire(eid, event, pseudonymous(ACTOR[event]))
        elif roll < 0.95:
            clock.advance(timedelta(minutes=rng.choice([5, 10, 20])))
            events = engine.tick()
        else:
            events = engine.deliver()
        for event in events:
            say(f"ev {event.encounter_id} {event.seq} {event.kind}")


def main() -> None:
    protocol = relay()
    say("zygote ready")
    for line in sys.stdin:
        command, db, seed, minutes = line.split()
        assert command == "run"
        pid = os.fork()
        if pid == 0:
            try:
                work(db, int(seed), int(minutes), protocol)
            except Exception:  # noqa: BLE001 - reported to the parent, which fails
                say("error " + traceback.format_exc().replace("\n", " | "))
                os._exit(3)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        say(f"done {pid} {status}")


if __name__ == "__main__":
    main()
