"""Two processes x 1,000 fires on the same 50 encounters of one SQLite file, each
fire with ``expected_version``: no event is lost or duplicated, every stored event
was returned to exactly one caller, and every loser got ``ConcurrentUpdate``.
Meanwhile this process verifies the audit trail, which must hold at every moment."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.store.audit import verify
from tests.store_kit import START, consistency_problems, relay

pytestmark = pytest.mark.slow  # see pyproject.toml: make test runs it; -m 'not slow' skips

CHILD = Path(__file__).with_name("mp_child.py")
FIRES = 1000


def test_two_processes_on_fifty_encounters(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    engine = lr.Engine(
        protocols=[relay()],
        store=lr.SQLiteStore(db),
        clock=lr.VirtualClock(START),
        entry_points=False,
    )
    ids = [engine.open("relay", lr.Actor("counter", "counter-1")).id for _ in range(50)]
    opening = {eid: len(engine.timeline(eid)) for eid in ids}
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(ids))
    outs = {seed: tmp_path / f"child-{seed}.jsonl" for seed in (1, 2)}
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), str(db), str(seed), str(ids_file), str(outs[seed])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    audits = 0
    while any(child.poll() is None for child in children):
        report = verify(db)  # a consistent view while both write
        assert report.ok, [str(p) for p in report.problems]
        audits += 1
        time.sleep(0.05)
    results = []
    for seed, child in zip((1, 2), children, strict=True):
        child.communicate(timeout=120)
        assert child.returncode == 0
        results.append([json.loads(line) for line in outs[seed].read_text().splitlines()])

    won: Counter[str] = Counter()
    returned: dict[tuple[str, int], str] = {}
    versions: set[tuple[str, int]] = set()
    losers = []
    for lines in results:
        assert len(lines) == FIRES  # every attempt either committed or lost
        for line in lines:
            if "ok" in line:
                eid, expected, events = line["ok"]
                won[eid] += 1
                assert (eid, expected) not in versions  # one winner per version
                versions.add((eid, expected))
                for seq, kind in events:
                    assert (eid, seq) not in returned  # never returned twice
                    returned[(eid, seq)] = kind
            else:
                losers.append(line["lost"])
    assert losers, "the two processes never collided"
    for eid, expected, actual in losers:
        assert expected < actual
        assert (eid, expected) in versions  # someone else did commit from that version

    for eid in ids:
        timeline = engine.timeline(eid)
        assert engine.get(eid).version == 1 + won[eid]
        assert sum(isinstance(e, lr.StepEntered) for e in timeline) == won[eid]
        stored = {(eid, e.seq): e.kind for e in timeline if e.seq > opening[eid]}
        mine = {key: kind for key, kind in returned.items() if key[0] == eid}
        assert stored == mine  # every stored event returned to exactly one caller
    assert consistency_problems(engine.store) == []
    assert verify(db).ok
    assert audits > 0
    engine.store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    store = lr.SQLiteStore(tmp_path / "fork.db")
    engine = lr.Engine(
        protocols=[relay()], store=store, clock=lr.VirtualClock(START), entry_points=False
    )
    eid = engine.open(
        "relay", lr.Actor("counter", "counter-1")
    ).id  # the parent's connection exists now

    def child() -> None:
        engine.fire(
            eid, "go", lr.Actor("counter", "counter-1")
        )  # the same store object, in another process
        store.close()

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(30)
    assert process.exitcode == 0
    assert engine.get(eid).state == "room"  # the parent's connection still works
    assert verify(tmp_path / "fork.db").ok


def _claim_all(path: str, kind: str, now_iso: str, out: Any, start: Any) -> None:
    """In a child: claim in small batches until nothing is left; send back the ids."""
    from datetime import datetime, timedelta

    store = lr.SQLiteStore(path)
    now = datetime.fromisoformat(now_iso)
    start.wait()
    taken: list[str] = []
    while True:
        if kind == "deadlines":
            batch = [d.id for d in store.claim_deadlines(now, timedelta(hours=1), limit=3)]
        else:
            batch = [n.key for n in store.claim_outbox(now, timedelta(hours=1), limit=3)]
        if not batch:
            break
        taken.extend(batch)
        time.sleep(0.002)  # a real worker delivers what it claimed before claiming more
    store.close()
    out.send(taken)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("kind", ["deadlines", "outbox"])
def test_two_workers_never_claim_the_same_row(tmp_path: Path, kind: str) -> None:
    from datetime import timedelta

    db = tmp_path / "claims.db"
    clock = lr.VirtualClock(START)
    engine = lr.Engine(
        protocols=[relay()], store=lr.SQLiteStore(db), clock=clock, entry_points=False
    )
    for _ in range(150):
        eid = engine.open("relay", lr.Actor("counter", "counter-1")).id
        engine.fire(
            eid, "go", lr.Actor("counter", "counter-1")
        )  # queues a notification; schedules a deadline
    expected = (
        {d.id for eid in engine.store.encounter_ids() for d in engine.deadlines(eid)}
        if kind == "deadlines"
        else {n.key for n in engine.outbox()}
    )
    assert len(expected) == 150
    now = (clock.now() + timedelta(hours=2)).isoformat()
    context = multiprocessing.get_context("fork")
    pipes = [context.Pipe(duplex=False) for _ in range(2)]
    start = context.Barrier(2, timeout=30)
    workers = [
        context.Process(target=_claim_all, args=(str(db), kind, now, send, start))
        for _, send in pipes
    ]
    for worker in workers:
        worker.start()
    for receive, _ in pipes:
        assert receive.poll(60), "a worker sent nothing (it failed: see its stderr)"
    claimed = [receive.recv() for receive, _ in pipes]
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert all(claimed)  # both workers took part
    assert not set(claimed[0]) & set(claimed[1])  # never the same row twice
    assert len(claimed[0]) + len(claimed[1]) == len(expected)
    assert set(claimed[0]) | set(claimed[1]) == expected
    engine.store.close()
