"""Child of tests/test_postgres.py: one worker on a shared PostgreSQL store, doing
``OPS`` operations (open, fire with ``expected_version``, tick, deliver) on shared
encounters; appends one JSON line per acknowledged operation to OUT_FILE, flushed
before the next operation starts (so a kill -9 loses no acknowledged line).

``python tests/pg_worker.py DSN SCHEMA SEED IDS_FILE OUT_FILE OPS``; waits for ``go``.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lastresort as lr
from tests.store_kit import START, Receipts, relay


def main() -> None:
    dsn, schema, seed, ids_file, out_file, ops = sys.argv[1:7]
    ids = json.loads(Path(ids_file).read_text())
    rng = random.Random(int(seed))
    clock = lr.VirtualClock(START)
    engine = lr.Engine(
        protocols=[relay()],
        plugins=[Receipts()],
        store=lr.PostgresStore(dsn, schema=schema, synchronous_commit="on"),
        clock=clock,
        entry_points=False,
    )
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"
    with open(out_file, "a") as out:

        def ack(line: object) -> None:
            out.write(json.dumps(line) + "\n")
            out.flush()

        for _ in range(int(ops)):
            roll = rng.random()
            if roll < 0.05:
                enc = engine.open(
                    "relay", lr.Actor("counter", "counter-1"), facts={"age_band": "8-11"}
                )
                ack({"opened": enc.id})
            elif roll < 0.6:
                eid = rng.choice(ids[:4]) if rng.random() < 0.6 else rng.choice(ids)
                current = engine.get(eid)
                event = {"desk": "go", "room": "back"}.get(current.state)
                if event is None:
                    continue
                try:
                    got = engine.fire(
                        eid,
                        event,
                        lr.Actor("counter", "counter-1"),
                        expected_version=current.version,
                    )
                except lr.ConcurrentUpdate as exc:
                    ack({"lost": [eid, exc.expected, exc.actual]})
                    continue
                ack({"ok": [eid, current.version, [[e.seq, e.kind] for e in got]]})
            elif roll < 0.8:
                clock.advance(timedelta(minutes=rng.choice([5, 15, 25])))
                fired = engine.tick()
                ack(
                    {
                        "ticked": [
                            [e.encounter_id, e.seq, e.deadline_id]
                            for e in fired
                            if isinstance(e, lr.DeadlineMissed)
                        ]
                    }
                )
            else:
                done = engine.deliver(limit=5)
                ack(
                    {
                        "delivered": [
                            [e.encounter_id, e.seq, e.key]
                            for e in done
                            if isinstance(e, lr.NotificationDelivered)
                        ]
                    }
                )
    engine.store.close()


if __name__ == "__main__":
    main()
