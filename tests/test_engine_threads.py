"""The engine from a multi-threaded web server: no lost or duplicated events."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import lastresort as lr

STEPS = [
    ("call_expert", "counter"),
    ("expert_takes_over", "expert"),
    ("inform_mayor", "expert"),
    ("mayor_spoke_with_child", "mayor"),
    ("report_made", "expert"),
    ("close", "expert"),
]


def test_eight_threads_on_two_hundred_encounters(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    class RacyStore(lr.MemoryStore):
        """Yields the GIL between reading and writing, as a real store's I/O does,
        so that threads interleave there."""

        def load(self, encounter_id: str) -> lr.Encounter:
            found = super().load(encounter_id)
            time.sleep(0)
            return found

    engine = lr.Engine(protocols=[taskforce], store=RacyStore(), clock=clock, entry_points=False)
    ids = [engine.open("taskforce", "counter").id for _ in range(200)]
    hot = ids[:8]  # most work goes to a few encounters, as at a busy counter
    returned: list[lr.Event] = []
    losers: list[lr.LastResortError] = []
    attempts = [0]
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(400):
            eid = rng.choice(hot) if rng.random() < 0.5 else rng.choice(ids)
            current = engine.get(eid)
            done = sum(1 for e in engine.timeline(eid) if isinstance(e, lr.StepEntered))
            if done >= len(STEPS):
                continue
            event, actor = STEPS[done]
            with lock:
                attempts[0] += 1
            try:
                events = engine.fire(eid, event, actor, expected_version=current.version)
            except (lr.ConcurrentUpdate, lr.TransitionNotAllowed) as exc:
                with lock:
                    losers.append(exc)
                continue
            with lock:
                returned.extend(events)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    stored = [e for eid in ids for e in engine.timeline(eid)]
    fired = [e for e in stored if e.seq > 2]  # open() wrote seq 1 and 2
    # every event a caller got back is stored exactly once, and nothing else was stored
    assert Counter((e.encounter_id, e.seq) for e in returned) == Counter(
        (e.encounter_id, e.seq) for e in fired
    )
    assert sorted(map(repr, returned)) == sorted(map(repr, fired))
    for eid in ids:
        timeline = engine.timeline(eid)
        assert [e.seq for e in timeline] == list(range(1, len(timeline) + 1))
        entered = [e for e in timeline if isinstance(e, lr.StepEntered)]
        assert [e.event for e in entered] == [s[0] for s in STEPS[: len(entered)]]
        assert engine.get(eid).version == 1 + len(entered)
    # every attempt either committed exactly one step or was refused
    assert attempts[0] == len(losers) + sum(isinstance(e, lr.StepEntered) for e in returned)
