"""The Store contract: one suite, run against MemoryStore, SQLiteStore and PostgresStore alike.

Every refusal is checked to change nothing (the whole store compared before and
after), and a differential test drives both stores with the same random
operations and compares every answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

import lastresort as lr
from lastresort.store import Change
from lastresort.testing import pseudonymous
from tests import pg_kit
from tests.store_kit import ACTOR, START, Receipts, consistency_problems, moves, relay

LEASE = timedelta(minutes=1)


def make_memory(_: Path) -> lr.Store:
    return lr.MemoryStore()


def make_sqlite(tmp: Path) -> lr.Store:
    return lr.SQLiteStore(tmp / "contract.db", synchronous="NORMAL")


def make_postgres(_: Path) -> lr.Store:
    return pg_kit.reused_store()  # one schema per test, emptied per use


STORES = [
    pytest.param(make_memory, id="memory"),
    pytest.param(make_sqlite, id="sqlite"),
    pytest.param(make_postgres, id="postgres"),
]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[lr.Store]:
    made: lr.Store = request.param(tmp_path)
    yield made
    made.close()


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def encounter(eid: str = "e1", version: int = 1, state: str = "desk", **kw: Any) -> lr.Encounter:
    return lr.Encounter(
        id=eid,
        protocol="relay",
        protocol_version="1",
        state=state,
        responsible=kw.pop("responsible", "counter"),
        facts=kw.pop("facts", {"age_band": "8-11"}),
        version=version,
        opened_at=START,
        **kw,
    )


def opened(eid: str = "e1") -> lr.Event:
    return lr.EncounterOpened(
        encounter_id=eid,
        at=START,
        actor=lr.Actor("counter"),
        protocol="relay",
        protocol_version="1",
        step="desk",
        responsible="counter",
        channel="counter",
    )


def entered(eid: str, step: str, minutes: float = 1) -> lr.Event:
    return lr.StepEntered(
        encounter_id=eid,
        at=at(minutes),
        actor=lr.Actor("counter", id="desk-2"),
        event="go",
        from_step="desk",
        step=step,
        responsible="counter",
    )


def deadline(eid: str, name: str, minutes: float, step: str = "desk") -> lr.PendingDeadline:
    return lr.PendingDeadline(
        id=f"{eid}:{name}", encounter_id=eid, step=step, event="desk_timeout", due=at(minutes)
    )


def note(eid: str, party: str, minutes: float = 0) -> lr.Notification:
    return lr.Notification(
        key=f"{eid}:{party}",
        encounter_id=eid,
        protocol="relay",
        event="go",
        step="room",
        party=party,
        created_at=at(minutes),
        next_attempt_at=at(minutes),
    )


def new(store: lr.Store, eid: str = "e1", **kw: Any) -> list[lr.Event]:
    return store.commit(
        Change(encounter=encounter(eid), expected_version=None, events=[opened(eid)], **kw)
    )


def everything(store: lr.Store) -> dict[str, Any]:
    """The whole observable state of a store, for before == after checks."""
    ids = list(store.encounter_ids())
    return {
        "ids": ids,
        "open": list(store.encounter_ids(open_only=True)),
        "encounters": [store.load(i) for i in ids],
        "timelines": [store.timeline(i) for i in ids],
        "deadlines": [store.deadlines(i) for i in ids],
        "outbox": store.outbox(),
        "next_due": store.next_due(),
        "refusals": store.refusals(limit=10_000),
    }


# -- commit -------------------------------------------------------------------------


def test_commit_numbers_events_and_stores_the_snapshot(store: lr.Store) -> None:
    first = new(store)
    assert [e.seq for e in first] == [1]
    second = store.commit(
        Change(
            encounter=encounter(version=2, state="room"),
            expected_version=1,
            events=[entered("e1", "room"), entered("e1", "room", 2)],
        )
    )
    assert [e.seq for e in second] == [2, 3]
    assert store.timeline("e1") == first + second
    assert store.load("e1") == encounter(version=2, state="room")
    assert store.load("e1").facts == {"age_band": "8-11"}
    assert list(store.encounter_ids()) == ["e1"]


def test_encounter_ids_keep_insertion_order_and_drop_closed_from_open(store: lr.Store) -> None:
    for eid in ["b", "c", "a"]:
        new(store, eid)
    store.commit(
        Change(
            encounter=encounter("c", 2, "closed", responsible=None, closed_at=at(5)),
            expected_version=1,
            events=[],
        )
    )
    assert list(store.encounter_ids()) == ["b", "c", "a"]
    assert list(store.encounter_ids(open_only=True)) == ["a", "b"]
    assert store.load("c").closed_at == at(5)


def test_a_new_encounter_that_exists_is_a_concurrent_update(store: lr.Store) -> None:
    new(store)
    before = everything(store)
    with pytest.raises(lr.ConcurrentUpdate) as caught:
        new(store, schedule=[deadline("e1", "x", 5)], outbox=[note("e1", "expert")])
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert everything(store) == before


def test_a_stale_version_is_refused_and_writes_nothing(store: lr.Store) -> None:
    new(store, schedule=[deadline("e1", "d1", 30)])
    store.commit(Change(encounter=encounter(version=2), expected_version=1, events=[]))
    before = everything(store)
    with pytest.raises(lr.ConcurrentUpdate) as caught:
        store.commit(
            Change(
                encounter=encounter(version=2, state="room"),
                expected_version=1,
                events=[entered("e1", "room")],
                schedule=[deadline("e1", "d2", 20, "room")],
                clear=["e1:d1"],
                outbox=[note("e1", "expert")],
            )
        )
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert "reload it and try again" in str(caught.value)
    assert everything(store) == before


def test_an_update_of_an_unknown_encounter_writes_nothing(store: lr.Store) -> None:
    new(store)
    before = everything(store)
    with pytest.raises(lr.UnknownEncounter):
        store.commit(
            Change(encounter=encounter("nope", 2), expected_version=1, events=[opened("nope")])
        )
    assert everything(store) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            Change(encounter=encounter(version=3), expected_version=1, events=[]),
            "a change from version 1 must carry version 2, not 3",
        ),
        (
            Change(encounter=encounter(version=2), expected_version=1, events=[opened("other")]),
            "event 0 of the change belongs to encounter other",
        ),
        (
            Change(
                encounter=encounter(version=2),
                expected_version=1,
                events=[],
                schedule=[deadline("other", "d", 5)],
            ),
            "deadline 0 of the change belongs to encounter other",
        ),
        (
            Change(
                encounter=encounter(version=2),
                expected_version=1,
                events=[],
                outbox=[note("other", "expert")],
            ),
            "notification 0 of the change belongs to encounter other",
        ),
    ],
)
def test_a_change_that_does_not_hold_together_is_refused(
    store: lr.Store, change: Change, message: str
) -> None:
    new(store)
    before = everything(store)
    with pytest.raises(lr.StoreError, match=message):
        store.commit(change)
    assert everything(store) == before


def test_unknown_encounters_are_reported(store: lr.Store) -> None:
    with pytest.raises(lr.UnknownEncounter, match="'ghost'"):
        store.load("ghost")
    with pytest.raises(lr.UnknownEncounter):
        store.timeline("ghost")
    assert store.deadlines("ghost") == []
    assert store.outbox("ghost") == []


# -- deadlines ------------------------------------------------------------------------


def test_deadlines_are_scheduled_cleared_and_ordered_by_instant(store: lr.Store) -> None:
    # 09:40 UTC is 10:40 in Amsterdam: as text it would sort first, as an instant it is between
    utc_earlier = lr.PendingDeadline(
        id="e1:z",
        encounter_id="e1",
        step="desk",
        event="desk_timeout",
        due=at(40).astimezone(UTC),
    )
    new(store, schedule=[deadline("e1", "b", 50), utc_earlier, deadline("e1", "a", 30)])
    assert [d.id for d in store.deadlines("e1")] == ["e1:a", "e1:z", "e1:b"]
    assert store.next_due() == at(30)
    store.commit(
        Change(encounter=encounter(version=2), expected_version=1, events=[], clear=["e1:a"])
    )
    assert [d.id for d in store.deadlines("e1")] == ["e1:z", "e1:b"]
    assert store.next_due() == at(40)
    assert store.deadlines("e1")[0] == utc_earlier


def test_claim_deadlines_takes_due_ones_once_within_the_lease(store: lr.Store) -> None:
    new(store, schedule=[deadline("e1", "b", 10), deadline("e1", "a", 10), deadline("e1", "c", 60)])
    assert store.claim_deadlines(at(5), LEASE) == []
    claimed = store.claim_deadlines(at(20), LEASE, limit=1)
    assert [d.id for d in claimed] == ["e1:a"]
    assert [d.id for d in store.claim_deadlines(at(20), LEASE)] == ["e1:b"]
    assert store.claim_deadlines(at(20.5), LEASE) == []  # both leased
    assert [d.id for d in store.claim_deadlines(at(21), LEASE)] == ["e1:a", "e1:b"]  # expired
    assert store.next_due() == at(10)  # claimed deadlines stay pending until cleared
    store.release_deadline("e1:a")
    assert [d.id for d in store.deadlines("e1")] == ["e1:b", "e1:c"]
    store.release_deadline("e1:never")  # releasing an unknown deadline is a no-op
    assert [d.id for d in store.claim_deadlines(at(100), LEASE)] == ["e1:b", "e1:c"]


def test_rescheduling_a_deadline_replaces_it_and_its_lease(store: lr.Store) -> None:
    new(store, schedule=[deadline("e1", "a", 10)])
    assert len(store.claim_deadlines(at(10), timedelta(hours=1))) == 1
    store.commit(
        Change(
            encounter=encounter(version=2),
            expected_version=1,
            events=[],
            schedule=[deadline("e1", "a", 15)],
        )
    )
    assert store.deadlines("e1") == [deadline("e1", "a", 15)]
    assert store.claim_deadlines(at(15), LEASE) == [deadline("e1", "a", 15)]


def test_next_due_is_none_without_deadlines(store: lr.Store) -> None:
    assert store.next_due() is None
    new(store, schedule=[deadline("e1", "a", 10)])
    store.release_deadline("e1:a")
    assert store.next_due() is None


# -- outbox ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [-1, 1.5, True, "2"])
def test_a_claim_limit_that_is_not_a_count_is_refused_and_claims_nothing(
    store: lr.Store, limit: Any
) -> None:
    new(store, schedule=[deadline("e1", "d", 1)], outbox=[note("e1", "expert")])
    before = everything(store)
    with pytest.raises(ValueError, match=r"limit must be None or a whole number >= 0"):
        store.claim_deadlines(at(5), LEASE, limit)
    with pytest.raises(ValueError, match=r"limit must be None or a whole number >= 0"):
        store.claim_outbox(at(5), LEASE, limit)
    assert everything(store) == before
    assert [d.id for d in store.claim_deadlines(at(5), LEASE, 0)] == []
    assert [d.id for d in store.claim_deadlines(at(5), LEASE, 1)] == ["e1:d"]
    assert [n.key for n in store.claim_outbox(at(5), LEASE, 1)] == ["e1:expert"]


def test_outbox_claims_oldest_first_and_hides_claimed_ones(store: lr.Store) -> None:
    new(store, outbox=[note("e1", "police", 2), note("e1", "expert", 0), note("e1", "mayor", 0)])
    first = store.claim_outbox(at(5), LEASE, limit=2)
    assert [n.key for n in first] == ["e1:expert", "e1:mayor"]
    assert first[0] == note("e1", "expert", 0)  # as it was before the claim
    assert [n.key for n in store.claim_outbox(at(5), LEASE)] == ["e1:police"]
    assert store.claim_outbox(at(5.5), LEASE) == []
    assert [n.key for n in store.claim_outbox(at(6), LEASE)] == [
        "e1:expert",
        "e1:mayor",
        "e1:police",
    ]


def test_failed_and_delivered_are_recorded(store: lr.Store) -> None:
    new(store, outbox=[note("e1", "expert")])
    store.failed("e1:expert", 1, at(3), "ConnectionError: pager down")
    assert store.claim_outbox(at(2), LEASE) == []
    [failed] = store.outbox("e1")
    assert (failed.attempts, failed.next_attempt_at, failed.last_error) == (
        1,
        at(3),
        "ConnectionError: pager down",
    )
    event = store.delivered(
        "e1:expert",
        lr.NotificationDelivered(
            encounter_id="e1",
            at=at(4),
            actor=lr.Actor("outbox"),
            key="e1:expert",
            party="expert",
            receipt="r-1",
            attempts=2,
        ),
    )
    assert event.seq == 2
    assert store.timeline("e1")[-1] == event
    assert store.load("e1").version == 1  # a delivery does not change the encounter
    [done] = store.outbox()
    assert (done.delivered_at, done.attempts, done.contact) == (at(4), 2, None)
    assert store.claim_outbox(at(100), LEASE) == []


def test_outbox_of_one_encounter(store: lr.Store) -> None:
    new(store, "a", outbox=[note("a", "expert")])
    new(store, "b", outbox=[note("b", "expert"), note("b", "police")])
    assert [n.key for n in store.outbox("b")] == ["b:expert", "b:police"]
    assert [n.key for n in store.outbox()] == ["a:expert", "b:expert", "b:police"]


@pytest.mark.parametrize("call", ["delivered", "failed", "wrong-encounter"])
def test_unknown_notification_keys_are_refused(store: lr.Store, call: str) -> None:
    new(store, outbox=[note("e1", "expert")])
    new(store, "e2")
    before = everything(store)
    delivery = lr.NotificationDelivered(
        encounter_id="e2",
        at=at(1),
        actor=lr.Actor("outbox"),
        key="e1:expert",
        party="expert",
        receipt="r",
        attempts=1,
    )
    calls: dict[str, Callable[[], object]] = {
        "delivered": lambda: store.delivered("nope", delivery),
        "failed": lambda: store.failed("nope", 1, at(2), "x"),
        "wrong-encounter": lambda: store.delivered("e1:expert", delivery),
    }
    with pytest.raises(lr.StoreError, match=r"'nope'|belongs to encounter e1"):
        calls[call]()
    assert everything(store) == before


# -- the engine on both stores --------------------------------------------------------


def drive(store: lr.Store, seed: int, steps: int = 120) -> list[Any]:
    """Random engine work on ``store``; returns every answer (for comparing stores)."""
    rng = random.Random(seed)
    protocol = relay()
    counter = iter(range(10**6))
    clock = lr.VirtualClock(START)
    engine = lr.Engine(
        protocols=[protocol],
        store=store,
        clock=clock,
        plugins=[Receipts()],
        entry_points=False,
        ids=lambda: f"enc-{next(counter):03d}",
    )
    answers: list[Any] = []
    for _ in range(steps):
        roll = rng.random()
        open_ids = list(engine.store.encounter_ids(open_only=True))
        if roll < 0.15 or not open_ids:
            answers.append(
                engine.open("relay", lr.Actor("counter", "counter-1"), facts={"age_band": "12-15"})
            )
        elif roll < 0.75:
            eid = rng.choice(open_ids)
            event = rng.choice([*moves(protocol, engine.get(eid).state), "close", "go"])
            try:
                answers.append(engine.fire(eid, event, pseudonymous(ACTOR[event])))
            except lr.LastResortError as exc:
                answers.append(type(exc).__name__)
        elif roll < 0.9:
            clock.advance(timedelta(minutes=rng.choice([5, 15, 25])))
            answers.append(engine.tick())
        else:
            answers.append(engine.deliver())
    for eid in engine.store.encounter_ids():
        answers.append((engine.get(eid), engine.timeline(eid), engine.deadlines(eid)))
    answers.append((engine.outbox(), engine.next_deadline()))
    assert consistency_problems(engine.store) == []
    return answers


@pytest.mark.parametrize("seed", range(4))
def test_memory_and_sqlite_give_the_same_answers(tmp_path: Path, seed: int) -> None:
    memory, sqlite = lr.MemoryStore(), make_sqlite(tmp_path)
    try:
        assert drive(memory, seed) == drive(sqlite, seed)
    finally:
        sqlite.close()


@pytest.mark.parametrize("seed", range(2))
def test_memory_and_postgres_give_the_same_answers(tmp_path: Path, seed: int) -> None:
    memory, postgres = lr.MemoryStore(), make_postgres(tmp_path)
    try:
        assert drive(memory, seed) == drive(postgres, seed)
    finally:
        postgres.close()


def test_the_demo_runs_the_same_on_both_stores(tmp_path: Path) -> None:
    from lastresort.scenario.demo import DEMO_START, run_demo

    def run(store: lr.Store) -> list[lr.Event]:
        clock = lr.VirtualClock(DEMO_START)
        counter = iter(range(100))
        engine = lr.Engine(
            store=store, clock=clock, entry_points=False, ids=lambda: f"demo-{next(counter)}"
        )
        return list(run_demo(engine, "taskforce", clock).timeline)

    assert run(lr.MemoryStore()) == run(make_sqlite(tmp_path)) == run(make_postgres(tmp_path))


def test_both_stores_satisfy_the_protocol(tmp_path: Path) -> None:
    for make in (make_memory, make_sqlite, make_postgres):
        made: Callable[[Path], lr.Store] = make
        assert isinstance(made(tmp_path), lr.Store)


def test_times_come_back_as_the_same_instant(store: lr.Store) -> None:
    moment = datetime(2026, 7, 1, 12, 0, 0, 123456, tzinfo=UTC)
    store.commit(
        Change(
            encounter=encounter(version=1),
            expected_version=None,
            events=[opened()],
            schedule=[
                lr.PendingDeadline(
                    id="d", encounter_id="e1", step="desk", event="desk_timeout", due=moment
                )
            ],
        )
    )
    [back] = store.deadlines("e1")
    assert back.due == moment
    assert back.due.utcoffset() == timedelta(0)


def moved_on(store: lr.Store, eid: str, version: int, **kw: Any) -> list[lr.Event]:
    """Commit ``eid``'s next version (``version``) with no events: only ``kw``'s
    deadlines and notifications change."""
    return store.commit(
        Change(encounter=encounter(eid, version), expected_version=version - 1, events=[], **kw)
    )


def test_many_rescheduled_deadlines_keep_next_due_and_claims_right(store: lr.Store) -> None:
    # more churn than MemoryStore's heap tolerates before it compacts itself
    new(store, "a", schedule=[deadline("a", "v1", 5000)])
    new(store, "b", schedule=[deadline("b", "x", 2500)])
    for version in range(2, 1400):
        moved_on(
            store,
            "a",
            version,
            clear=[f"a:v{version - 1}"],
            schedule=[deadline("a", f"v{version}", 5000 - version)],
        )
    assert [d.id for d in store.deadlines("a")] == ["a:v1399"]
    assert store.next_due() == at(2500)
    assert [d.id for d in store.claim_deadlines(at(3600), timedelta(hours=2))] == ["b:x"]
    assert [d.id for d in store.claim_deadlines(at(3601), LEASE)] == ["a:v1399"]
    store.release_deadline("b:x")
    assert store.next_due() == at(3601)
    store.release_deadline("a:v1399")
    assert store.next_due() is None
    assert store.claim_deadlines(at(10_000), LEASE) == []


def test_churn_without_ticks_or_deliveries_is_claimed_right_afterwards(store: lr.Store) -> None:
    # MemoryStore indexes new deadlines and notifications by time only when a claim or
    # next_due needs it: changes in between must all be seen, in the order of time
    new(store, "a", schedule=[deadline("a", "d", 30)], outbox=[note("a", "expert", 4)])
    for version in range(2, 2600):  # past the size at which new deadlines are folded in
        moved_on(  # the same deadline id, moved back and forth; a notification put again
            store,
            "a",
            version,
            clear=["a:d"] if version % 7 == 0 else [],
            schedule=[deadline("a", "d", 30 - version % 5)],
            outbox=[note("a", "expert", 4 + version % 3), note("a", f"p{version}", 9)],
        )
    store.failed("a:p2599", 1, at(1), "TimeoutError")  # due again earlier than its creation
    assert [d.due for d in store.deadlines("a")] == [at(30 - 2599 % 5)]
    assert store.next_due() == at(26)
    assert store.claim_deadlines(at(25.9), LEASE) == []
    assert [d.id for d in store.claim_deadlines(at(26), LEASE)] == ["a:d"]
    assert [n.key for n in store.claim_outbox(at(3), timedelta(hours=1))] == ["a:p2599"]
    claimed = store.claim_outbox(at(8.9), LEASE)
    assert [(n.key, n.next_attempt_at) for n in claimed] == [("a:expert", at(4 + 2599 % 3))]
    assert len(store.claim_outbox(at(9), LEASE)) == 2597  # every other party, once


def test_memory_store_indexes_stay_bounded_without_ticks() -> None:
    store = lr.MemoryStore()
    new(store, "a", schedule=[deadline("a", "v1", 50)])
    for version in range(2, 20_000):
        moved_on(
            store,
            "a",
            version,
            clear=[f"a:v{version - 1}"],
            schedule=[deadline("a", f"v{version}", 50)],
        )
    # one live deadline: what the store keeps for ordering by time must not grow
    # with the deadlines scheduled and cleared meanwhile (here 20,000)
    kept = len(store._due) + len(store._due_new)
    assert kept <= 5000, kept
    assert [d.id for d in store.claim_deadlines(at(50), LEASE)] == ["a:v19999"]


def test_memory_store_first_claim_after_a_burst_of_opens_pushes_at_most_a_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the heaps are kept up to date by the commits, a batch at a time: the first tick
    # (claim_deadlines, next_due) or deliver (claim_outbox) after many opens pushes at
    # most one batch under the lock, not every deadline opened since (O(new) at 1M opens)
    from lastresort.store import memory

    store = lr.MemoryStore()
    opened = 5000
    for i in range(opened):
        new(
            store,
            f"e{i}",
            schedule=[deadline(f"e{i}", "d", 60 + i / 100)],
            outbox=[note(f"e{i}", "expert", 30 + i / 100)],
        )
    pushes: list[object] = []
    real = memory.heapq.heappush

    def counted(heap: list[Any], item: Any) -> None:
        pushes.append(item)
        real(heap, item)

    monkeypatch.setattr(memory.heapq, "heappush", counted)
    assert store.next_due() == at(60)
    assert len(pushes) < memory._INDEX_BATCH
    pushes.clear()
    assert [d.id for d in store.claim_deadlines(at(60.005), LEASE)] == ["e0:d"]
    assert len(pushes) < memory._INDEX_BATCH
    pushes.clear()
    assert [n.key for n in store.claim_outbox(at(30.005), LEASE)] == ["e0:expert"]
    assert len(pushes) < memory._INDEX_BATCH + 2  # the batch, the found one, its new lease
    pushes.clear()
    # and nothing is missed: every deadline and notification comes due in time order
    claimed = store.claim_deadlines(at(60 + opened / 100), LEASE)
    assert [d.id for d in claimed] == [f"e{i}:d" for i in range(opened)]  # e0: lease ran out
    notes = store.claim_outbox(at(30 + opened / 100), LEASE)
    assert [n.key for n in notes] == [f"e{i}:expert" for i in range(opened)]


# -- the refusal log ------------------------------------------------------------------


def refusal(minutes: float = 0, eid: str | None = "e1", **kw: Any) -> lr.Refusal:
    values: dict[str, Any] = {
        "at": at(minutes).astimezone(UTC),
        "actor_role": "counter",
        "actor_id": "emp-0042",
        "action": "take_over",
        "encounter_id": eid,
        "step": "desk",
        "version": 1,
        "category": lr.Category.FORBIDDEN,
        "reason": "NotPermitted",
        "protocol": "relay",
    }
    values.update(kw)
    return lr.Refusal(**values)


def test_refusals_are_numbered_in_order_and_read_back_equal(store: lr.Store) -> None:
    first = store.record_refusal(refusal(1))
    second = store.record_refusal(refusal(2, eid=None, action="open", step=None, version=None))
    third = store.record_refusal(refusal(3, eid="e2", actor_id=None, reason="guard:age_ok"))
    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert store.refusals() == [first, second, third]
    assert first == attrs.evolve(refusal(1), seq=1)
    assert first.at == at(1)
    assert first.actor_id == "emp-0042"
    assert first.step == "desk"
    assert third.actor_id is None
    assert third.reason == "guard:age_ok"


def test_refusals_are_filtered_and_paged(store: lr.Store) -> None:
    made = [store.record_refusal(refusal(i, eid=f"e{i % 2}")) for i in range(7)]
    assert store.refusals(encounter_id="e1") == [r for r in made if r.encounter_id == "e1"]
    assert store.refusals(since=at(5)) == made[5:]
    page1 = store.refusals(limit=3)
    page2 = store.refusals(limit=3, after_seq=page1[-1].seq)
    page3 = store.refusals(limit=3, after_seq=page2[-1].seq)
    assert page1 + page2 + page3 == made
    assert store.refusals(after_seq=7) == []
    # since compares instants, whatever the offset given
    assert store.refusals(since=at(5).astimezone(UTC)) == made[5:]


def test_a_refusal_changes_no_encounter(store: lr.Store) -> None:
    new(store, "e1")
    before = everything(store)
    store.record_refusal(refusal(1))
    after = everything(store)
    assert after.pop("refusals") != before.pop("refusals")
    assert after == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor_id", "Jan de Vries"),
        ("actor_id", "111222333"),
        ("actor_role", "Jan Jansen"),
        ("reason", "the child said her name is X"),
        ("reason", "code123456789"),
        ("action", ""),
        ("encounter_id", "a b"),
        ("step", "in de kamer"),
        ("protocol", "x y"),
        ("version", 0),
        ("category", "forbidden"),
        ("at", datetime(2026, 1, 1)),
    ],
)
def test_a_refusal_of_a_wrong_form_is_refused_and_writes_nothing(
    store: lr.Store, field: str, value: Any
) -> None:
    store.record_refusal(refusal(0))
    before = everything(store)
    with pytest.raises(lr.InvalidArgument) as caught:
        store.record_refusal(refusal(1, **{field: value}))
    assert caught.value.argument == field
    if isinstance(value, str) and value:
        assert value not in str(caught.value)  # never quoted: it could name a child
    assert everything(store) == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"limit": None},
        {"limit": "5"},
        {"after_seq": -1},
        {"after_seq": "1"},
        {"since": datetime(2026, 1, 1)},
        {"encounter_id": 5},
    ],
)
def test_a_refusal_query_of_a_wrong_form_is_refused(store: lr.Store, kwargs: Any) -> None:
    with pytest.raises(lr.InvalidArgument) as caught:
        store.refusals(**kwargs)
    assert caught.value.argument == next(iter(kwargs))


def test_record_refusal_refuses_what_is_not_a_refusal(store: lr.Store) -> None:
    with pytest.raises(lr.InvalidArgument, match="a Refusal, not dict"):
        store.record_refusal({"reason": "x"})  # type: ignore[arg-type]
    assert store.refusals() == []
