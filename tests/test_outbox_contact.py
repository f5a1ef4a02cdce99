"""The outbox keeps the directory's ``contact`` (issue 14): who each notification was
addressed to (``lastresort_party_directory``) stays on its outbox row after delivery,
after a failed attempt and after dead-lettering, on every store, across a restart and
in a file made by the previous version. A contact is staff's address, never the
child's data."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.testing import RecordingDelivery, snapshot
from tests import pg_kit
from tests.store_kit import START
from tests.test_schema_v4 import FIXTURE

CLERK = lr.Actor("counter", "clerk-07")


class Directory:
    """On duty: ``desk:<party>`` for every role but the police (unknown)."""

    @lr.hookimpl
    def lastresort_party_directory(self, party: lr.Party, at: datetime) -> str | None:
        return None if party.key == "police" else f"desk:{party.key}"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], lr.Store]]:
    """Opens the same store again each call (a restart), the previous one closed."""
    opened: list[Any] = []
    kind = request.param
    if kind == "memory":
        memory = lr.MemoryStore()
        made: Callable[[], lr.Store] = lambda: memory  # noqa: E731 - nothing to restart
    elif kind == "sqlite":
        made = lambda: lr.SQLiteStore(tmp_path / "c.db")  # noqa: E731
    else:
        schema = pg_kit.new_schema()
        made = lambda: lr.PostgresStore(pg_kit.DSN, schema=schema)  # noqa: E731

    def again() -> lr.Store:
        for store in opened:
            if hasattr(store, "close"):
                store.close()
        opened.clear()
        opened.append(made())
        return opened[-1]

    yield again
    for store in opened:
        if hasattr(store, "close"):
            store.close()


def engine_on(store: lr.Store, *plugins: object, **kw: Any) -> lr.Engine:
    return lr.Engine(
        store=store,
        clock=lr.VirtualClock(START),
        plugins=[Directory(), *plugins],
        entry_points=False,
        delivery_timeout=None,
        **kw,
    )


def test_contact_is_kept_after_delivery_and_across_a_restart(
    reopen: Callable[[], lr.Store],
) -> None:
    recording = RecordingDelivery()
    engine = engine_on(reopen(), recording)
    eid = engine.open("taskforce", CLERK).id
    engine.fire(eid, "call_expert", CLERK)
    engine.deliver()
    (note,) = engine.outbox(eid)
    assert note.delivered_at is not None
    assert note.contact == "desk:expert"
    # the plugin was handed the same contact
    assert [n.contact for n in recording.delivered] == ["desk:expert"]
    again = engine_on(reopen())
    assert [n.contact for n in again.outbox(eid)] == ["desk:expert"]


def test_contact_is_kept_after_a_failed_attempt_and_a_dead_letter(
    reopen: Callable[[], lr.Store],
) -> None:
    engine = engine_on(reopen(), RecordingDelivery(defer=["expert"]), max_attempts=2)
    eid = engine.open("taskforce", CLERK).id
    engine.fire(eid, "call_expert", CLERK)
    engine.deliver()
    (note,) = engine.outbox(eid)
    assert (note.delivered_at, note.attempts, note.contact) == (None, 1, "desk:expert")
    assert note.last_error == "DeliveryDeferred"
    clock = engine.clock
    assert isinstance(clock, lr.VirtualClock)
    clock.advance(note.next_attempt_at - clock.now())
    engine.deliver()
    dead = next(n for n in engine.outbox(eid) if n.key == note.key)
    assert dead.dead_lettered_at is not None
    assert dead.contact == "desk:expert"
    escalations = [n for n in engine.outbox(eid) if n.escalates == note.key]
    # the escalation is delivered in the same pass, addressed to its own party's desk
    assert [(n.party, n.contact) for n in escalations] == [("counter", "desk:counter")]
    assert all(n.delivered_at is not None for n in escalations)


def test_no_contact_when_the_directory_knows_nobody(taskforce: lr.Protocol) -> None:
    engine = engine_on(lr.MemoryStore(), RecordingDelivery())
    eid = engine.open("taskforce", CLERK).id
    engine.fire(eid, "acute_danger", CLERK)
    engine.deliver()
    police = [n for n in engine.outbox(eid) if n.party == "police"]
    assert police
    assert all(n.delivered_at is not None and n.contact is None for n in police)


@pytest.mark.parametrize("method", ["delivered", "failed", "dead_lettered"])
def test_a_contact_that_is_not_text_is_refused_and_changes_nothing(
    reopen: Callable[[], lr.Store], method: str
) -> None:
    store = reopen()
    engine = engine_on(store)
    eid = engine.open("taskforce", CLERK).id
    engine.fire(eid, "call_expert", CLERK)
    (note,) = engine.outbox(eid)
    before = snapshot(engine, eid)
    at = engine.clock.now()
    calls: dict[str, Callable[[], object]] = {
        "delivered": lambda: store.delivered(
            note.key,
            lr.NotificationDelivered(
                encounter_id=eid,
                at=at,
                actor=lr.Actor("outbox"),
                key=note.key,
                party=note.party,
                receipt="r",
                attempts=1,
            ),
            contact=42,  # type: ignore[arg-type]
        ),
        "failed": lambda: store.failed(note.key, 1, at, "E", contact=b"x"),  # type: ignore[arg-type]
        "dead_lettered": lambda: store.dead_lettered(
            note.key,
            lr.NotificationDeadLettered(
                encounter_id=eid,
                at=at,
                actor=lr.Actor("outbox"),
                key=note.key,
                party=note.party,
                attempts=1,
                error_kind="E",
                emergency=False,
            ),
            contact=["desk"],  # type: ignore[arg-type]
        ),
    }
    with pytest.raises(lr.InvalidArgument, match=f"{method}.*contact"):
        calls[method]()
    assert snapshot(engine, eid) == before


def test_a_file_of_the_previous_version_keeps_contacts_from_now_on(tmp_path: Path) -> None:
    # the outbox.contact column has been in the schema since version 1 (always NULL
    # until now): a previous version's file needs no migration, its rows read None
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(outbox)")]
    old = conn.execute("SELECT key, contact FROM outbox").fetchall()
    conn.close()
    assert "contact" in columns
    assert old
    assert {contact for _, contact in old} == {None}
    store = lr.SQLiteStore(path)  # migrated to the current version
    engine = engine_on(store, RecordingDelivery())
    engine.deliver()  # whatever the old file had pending
    eid = engine.open("taskforce", CLERK).id
    engine.fire(eid, "call_expert", CLERK)
    engine.deliver()
    store.close()
    store = lr.SQLiteStore(path)
    notes = {n.key: n.contact for n in store.outbox()}
    store.close()
    # the old rows read as they were (nobody recorded); the new one keeps its contact
    assert all(notes[key] in (None, f"desk:{key.rsplit(':', 1)[-1]}") for key, _ in old)
    new = [key for key in notes if key.startswith(eid)]
    assert [notes[key] for key in new] == ["desk:expert"]
