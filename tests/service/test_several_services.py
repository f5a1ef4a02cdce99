"""Several service processes on one database: two real service processes (uvicorn,
the app and its scheduler, each with its own SQLiteStore on ONE file) work off many
due deadlines and notifications at once; every deadline fires exactly once (one
``DeadlineMissed`` per deadline id in the timelines), every notification is recorded
delivered once and handed to the delivery hook of one process once, and the file
still verifies."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

import lastresort as lr
from lastresort.service import CredentialStore
from lastresort.store.audit import verify
from tests.conftest import SHIPPED_TASKFORCE, START
from tests.service.kit import FACTS
from tests.service.test_serve import _free_port

CHILD = Path(__file__).with_name("serve_child.py")
ENCOUNTERS = 120
CLERK = lr.Actor("counter", "clerk-7")


def _events(store: lr.Store) -> list[lr.Event]:
    return [e for eid in store.encounter_ids() for e in store.timeline(eid)]


def _settled(store: lr.Store, originally_due: set[str]) -> bool:
    events = _events(store)
    fired = {e.deadline_id for e in events if isinstance(e, lr.DeadlineMissed)}
    if not originally_due <= fired:
        return False
    due = store.next_due()
    if due is not None and due <= datetime.now(UTC):
        return False
    return not any(n.pending for n in store.outbox())


def test_two_service_processes_fire_every_deadline_once_and_deliver_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "shared.db"
    # encounters opened in March 2026 by a virtual clock: every deadline they hold is
    # long due by the system clock the services run on
    engine = lr.Engine(
        protocols=[lr.load_protocol(SHIPPED_TASKFORCE)],
        store=lr.SQLiteStore(db),
        clock=lr.VirtualClock(START),
        entry_points=False,
    )
    for i in range(ENCOUNTERS):
        eid = engine.open("taskforce", CLERK, facts=FACTS).id
        if i % 3 == 0:
            engine.fire(eid, "call_expert", CLERK)
    store = engine.store
    originally_due = {d.id for eid in store.encounter_ids() for d in store.deadlines(eid)}
    queued = {n.key for n in store.outbox()}
    assert len(originally_due) >= ENCOUNTERS
    assert queued
    credentials = tmp_path / "creds.json"
    token, _ = CredentialStore(credentials).add(party="counter", actor_id="clerk-7")
    record = tmp_path / "delivered.txt"
    ports = [_free_port(), _free_port()]
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), str(db), str(credentials), str(port), str(record)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 120
        while not _settled(store, originally_due):
            for child in children:
                assert child.poll() is None, child.communicate()[1].decode()
            assert time.monotonic() < deadline, "the services did not settle in 120 s"
            time.sleep(0.2)
        # both are services that answer while their schedulers run
        for port in ports:
            health = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/health",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            assert health.status_code == 200
    finally:
        errors = []
        for child in children:
            child.terminate()
            try:
                _, err = child.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                _, err = child.communicate()
            errors.append(err.decode())
    for child, err in zip(children, errors, strict=True):
        assert child.returncode in (0, -15), err
        assert "Traceback" not in err, err

    events = _events(store)
    fired = Counter(e.deadline_id for e in events if isinstance(e, lr.DeadlineMissed))
    assert originally_due <= set(fired)
    assert [d for d, n in fired.items() if n != 1] == []  # every deadline fired once
    delivered = Counter(e.key for e in events if isinstance(e, lr.NotificationDelivered))
    everything = {n.key for n in store.outbox()}
    assert queued <= everything == set(delivered)
    assert [k for k, n in delivered.items() if n != 1] == []  # recorded delivered once
    calls = [line.split() for line in record.read_text().splitlines()]
    handed = Counter(key for _, key in calls)
    assert set(handed) == everything
    assert [k for k, n in handed.items() if n != 1] == []  # handed to one hook once
    pids = Counter(pid for pid, _ in calls)
    print(f"deliveries per process: {dict(pids)}; deadlines fired: {len(fired)}")
    store.close()
    report = verify(db)
    assert report.ok, report.problems
