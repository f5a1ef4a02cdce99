"""The engine from a multi-threaded web server: no lost or duplicated events."""

from __future__ import annotations

import copy
import random
import threading
import time
from collections import Counter
from datetime import timedelta

import lastresort as lr
from lastresort.testing import pseudonymous
from tests.store_kit import RELAY, START

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
    ids = [engine.open("taskforce", lr.Actor("counter", "counter-1")).id for _ in range(200)]
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
                events = engine.fire(
                    eid, event, pseudonymous(actor), expected_version=current.version
                )
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


def test_a_fire_that_sees_a_new_snapshot_also_sees_its_deadlines() -> None:
    """MemoryStore.commit stores the snapshot before it changes the deadlines: a fire
    that loaded the new snapshot meanwhile must read the deadlines after the commit,
    or it would not clear the deadline just scheduled (found in review: a reminder
    re-entering 'room' kept the old 20-minute timer, which then fired early)."""
    spec = copy.deepcopy(RELAY)
    spec["transitions"].append(
        {"event": "remind", "from": ["room"], "to": "room", "by": ["counter"]}
    )
    paused, resume = threading.Event(), threading.Event()

    class Store(lr.MemoryStore):
        # a thread switch at the entry of _drop_deadline, as the interpreter may make
        def _drop_deadline(self, deadline_id: str) -> None:
            if threading.current_thread().name == "first":
                paused.set()
                resume.wait(5)
            super()._drop_deadline(deadline_id)

    clock = lr.VirtualClock(START)
    engine = lr.Engine(
        protocols=[lr.load_protocol(spec)], store=Store(), clock=clock, entry_points=False
    )
    eid = engine.open("relay", lr.Actor("counter", "counter-1")).id
    first = threading.Thread(
        target=engine.fire, args=(eid, "go", lr.Actor("counter", "counter-1")), name="first"
    )
    first.start()
    assert paused.wait(5)
    clock.advance(timedelta(minutes=5))
    second = threading.Thread(
        target=engine.fire, args=(eid, "remind", lr.Actor("counter", "counter-1"))
    )
    second.start()
    time.sleep(0.2)  # it loads version 2 and asks for the deadlines meanwhile
    resume.set()
    first.join()
    second.join()
    assert engine.get(eid).version == 3
    assert [d.due for d in engine.deadlines(eid)] == [START + timedelta(minutes=25)]
    clock.advance(timedelta(minutes=15))
    assert engine.tick() == []  # room's 20 minutes run from the reminder at +5
