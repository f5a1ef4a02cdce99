"""Child of tests/test_multiprocess.py: 1,000 fires on the given encounters of one
store file, each with ``expected_version``; prints one JSON line per attempt.

``python tests/mp_child.py DB SEED IDS_FILE OUT_FILE``; waits for ``go`` on stdin so
that both children start together. Lines written to OUT_FILE:
``{"ok": [eid, expected, [[seq, kind], ...]]}`` or ``{"lost": [eid, expected, actual]}``.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lastresort as lr
from tests.store_kit import START, relay

FIRES = 1000


def main() -> None:
    db, seed, ids_file, out_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ids = json.loads(Path(ids_file).read_text())
    rng = random.Random(seed)
    engine = lr.Engine(
        protocols=[relay()],
        store=lr.SQLiteStore(db),
        clock=lr.VirtualClock(START),
        entry_points=False,
    )
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"
    out = []
    for _ in range(FIRES):
        # half the time one of five hot encounters, so that the two processes collide
        eid = rng.choice(ids[:5]) if rng.random() < 0.5 else rng.choice(ids)
        current = engine.get(eid)
        event = "go" if current.state == "desk" else "back"
        try:
            got = engine.fire(
                eid, event, lr.Actor("counter", "counter-1"), expected_version=current.version
            )
        except lr.ConcurrentUpdate as exc:
            out.append({"lost": [eid, exc.expected, exc.actual]})
            continue
        out.append({"ok": [eid, current.version, [[e.seq, e.kind] for e in got]]})
    Path(out_file).write_text("".join(json.dumps(line) + "\n" for line in out))
    engine.store.close()


if __name__ == "__main__":
    main()
