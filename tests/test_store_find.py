"""The work-queue query ``Store.find``, part of the store contract: run against
MemoryStore, SQLiteStore and PostgresStore alike.

Every answer is compared with a brute-force filter of the whole store (random
queries over a population with several protocols, steps, parties, closed encounters,
deadlines in other UTC offsets and ids that sort differently by code point than by
case); every refusal is checked to change nothing.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import lastresort as lr
from lastresort.store import Change
from tests.store_kit import START
from tests.test_store_contract import STORES, at, everything

NEW_YORK = ZoneInfo("America/New_York")
#: ids whose order is bytewise (the SQL stores') and by code point (Python's) alike,
#: but not by case or by locale
IDS = ["A-1", "a-0", "a-1", "a-10", "a-2", "b", "Z", "z-9", "é-1", "ø", "ä", "~"]
PROTOCOLS = ["relay", "taskforce"]
STEPS = ["desk", "room", "with_expert"]
PARTIES = ["counter", "expert", None]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[lr.Store]:
    made: lr.Store = request.param(tmp_path)
    yield made
    made.close()


def put(
    store: lr.Store,
    eid: str,
    *,
    protocol: str = "relay",
    state: str = "desk",
    responsible: str | None = "counter",
    closed: bool = False,
    due: list[datetime] = (),  # type: ignore[assignment]
) -> lr.Encounter:
    made = lr.Encounter(
        id=eid,
        protocol=protocol,
        protocol_version="1",
        state=state,
        responsible=responsible,
        facts={"age_band": "8-11"},
        version=1,
        opened_at=START,
        closed_at=at(5) if closed else None,
    )
    event = lr.EncounterOpened(
        encounter_id=eid,
        at=START,
        actor=lr.Actor("counter", "c-1"),
        protocol=protocol,
        protocol_version="1",
        step=state,
        responsible=responsible,
        channel="counter",
    )
    schedule = [
        lr.PendingDeadline(id=f"{eid}:d{i}", encounter_id=eid, step=state, event="t", due=d)
        for i, d in enumerate(due)
    ]
    store.commit(Change(encounter=made, expected_version=None, events=[event], schedule=schedule))
    return made


def populate(store: lr.Store, seed: int) -> None:
    rng = random.Random(seed)
    for eid in IDS:
        put(
            store,
            eid,
            protocol=rng.choice(PROTOCOLS),
            state=rng.choice(STEPS),
            responsible=rng.choice(PARTIES),
            closed=rng.random() < 0.25,
            # dues in New York time and in Amsterdam time: compared by instant
            due=[
                at(rng.choice([-30, 0, 30, 90])).astimezone(rng.choice([NEW_YORK, UTC]))
                for _ in range(rng.choice([0, 0, 1, 2]))
            ],
        )


def expected(store: lr.Store, **kw: Any) -> list[str]:
    """The ids ``find(**kw)`` must give, by brute force over the whole store."""

    def allowed(value: Any) -> set[Any] | None:
        if value is None:
            return None
        return {value} if isinstance(value, str) else set(value)

    protocol, state, responsible = (
        allowed(kw.get(k)) for k in ("protocol", "state", "responsible")
    )
    out = []
    for eid in sorted(store.encounter_ids()):
        e = store.load(eid)
        if kw.get("open_only", True) and e.closed:
            continue
        if kw.get("after") is not None and eid <= kw["after"]:
            continue
        if protocol is not None and e.protocol not in protocol:
            continue
        if state is not None and e.state not in state:
            continue
        if responsible is not None and e.responsible not in responsible:
            continue
        if kw.get("overdue_at") is not None:
            late = any(d.due <= kw["overdue_at"] for d in store.deadlines(eid))
            if late != kw.get("overdue", True):
                continue
        out.append(eid)
    return out[: kw.get("limit", 50)]


def random_query(rng: random.Random) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for name, values in (("protocol", PROTOCOLS), ("state", STEPS), ("responsible", PARTIES)):
        pick = rng.random()
        if pick < 0.3:
            kw[name] = rng.choice([v for v in values if v is not None])
        elif pick < 0.45:
            kw[name] = rng.sample([v for v in values if v is not None], k=rng.choice([0, 1, 2]))
    if rng.random() < 0.5:
        kw["overdue_at"] = at(rng.choice([-30, 0, 30, 200])).astimezone(
            rng.choice([NEW_YORK, UTC, START.tzinfo])
        )
        kw["overdue"] = rng.random() < 0.6
    if rng.random() < 0.3:
        kw["open_only"] = False
    if rng.random() < 0.3:
        kw["after"] = rng.choice(IDS)
    kw["limit"] = rng.choice([1, 2, 3, 50])
    return kw


@pytest.mark.parametrize("seed", range(3))
def test_find_gives_what_a_brute_force_filter_gives(store: lr.Store, seed: int) -> None:
    populate(store, seed)
    rng = random.Random(seed)
    for _ in range(150):
        kw = random_query(rng)
        assert [e.id for e in store.find(**kw)] == expected(store, **kw), kw


def test_a_found_encounter_equals_the_loaded_one(store: lr.Store) -> None:
    populate(store, 7)
    found = store.find(open_only=False, limit=100)
    assert [e.id for e in found] == sorted(IDS)
    assert found == [store.load(e.id) for e in found]


def test_pages_cover_every_match_once_in_id_order(store: lr.Store) -> None:
    populate(store, 1)
    seen: list[str] = []
    after = None
    while True:
        page = store.find(open_only=False, after=after, limit=2)
        assert len(page) <= 2
        seen += [e.id for e in page]
        if len(page) < 2:
            break
        after = page[-1].id
    assert seen == sorted(IDS)


def test_defaults_are_open_encounters_first_50(store: lr.Store) -> None:
    for i in range(60):
        put(store, f"e{i:02d}", closed=i % 3 == 0)
    found = [e.id for e in store.find()]
    assert found == [f"e{i:02d}" for i in range(60) if i % 3][:50]
    assert len(found) == 40


def test_overdue_counts_a_deadline_due_at_that_very_instant(store: lr.Store) -> None:
    due = at(10)
    put(store, "late", due=[due.astimezone(NEW_YORK)])
    put(store, "later", due=[due + timedelta(microseconds=1)])
    put(store, "none")
    assert [e.id for e in store.find(overdue_at=due.astimezone(UTC))] == ["late"]
    assert [e.id for e in store.find(overdue_at=due, overdue=False)] == ["later", "none"]
    assert [e.id for e in store.find(overdue_at=due + timedelta(microseconds=1))] == [
        "late",
        "later",
    ]


def test_overdue_follows_the_deadlines_as_they_change(store: lr.Store) -> None:
    put(store, "e1", due=[at(0)])
    assert [e.id for e in store.find(overdue_at=at(1))] == ["e1"]
    moved = lr.Encounter(
        id="e1",
        protocol="relay",
        protocol_version="1",
        state="room",
        responsible="expert",
        facts={},
        version=2,
        opened_at=START,
    )
    store.commit(Change(encounter=moved, expected_version=1, events=[], clear=["e1:d0"]))
    assert store.find(overdue_at=at(1)) == []
    assert [e.id for e in store.find(overdue_at=at(1), overdue=False)] == ["e1"]
    assert [e.id for e in store.find(responsible="expert", state="room")] == ["e1"]
    assert store.find(responsible="counter") == []


def test_an_empty_selection_matches_nothing(store: lr.Store) -> None:
    put(store, "e1")
    assert store.find(protocol=[]) == []
    assert store.find(responsible=frozenset()) == []
    assert [e.id for e in store.find(protocol=["relay", "other"])] == ["e1"]


BAD: list[tuple[dict[str, Any], str]] = [
    ({"protocol": 3}, "protocol"),
    ({"protocol": [b"relay"]}, "protocol"),
    ({"protocol": {"relay": 1}}, "protocol"),
    ({"state": b"desk"}, "state"),
    ({"responsible": [None]}, "responsible"),
    ({"overdue_at": datetime(2026, 3, 2, 10, 0)}, "overdue_at"),
    ({"overdue_at": "2026-03-02T10:00:00+01:00"}, "overdue_at"),
    ({"overdue": False}, "overdue"),
    ({"overdue": 1, "overdue_at": START}, "overdue"),
    ({"open_only": None}, "open_only"),
    ({"after": 5}, "after"),
    ({"limit": 0}, "limit"),
    ({"limit": -1}, "limit"),
    ({"limit": True}, "limit"),
    ({"limit": 2**63}, "limit"),
    ({"limit": "50"}, "limit"),
]


@pytest.mark.parametrize(("kwargs", "argument"), BAD, ids=[a for _, a in BAD])
def test_a_bad_argument_is_refused_naming_it_and_changes_nothing(
    store: lr.Store, kwargs: dict[str, Any], argument: str
) -> None:
    populate(store, 2)
    before = everything(store)
    with pytest.raises(lr.InvalidArgument) as caught:
        store.find(**kwargs)
    assert (caught.value.call, caught.value.argument) == ("find", argument)
    assert caught.value.category == lr.Category.INVALID
    assert "relay" not in str(caught.value)  # never the value given
    assert everything(store) == before


def test_a_positional_argument_is_refused(store: lr.Store) -> None:
    with pytest.raises(TypeError):
        store.find("relay")  # type: ignore[misc]


def test_sqlite_answers_a_party_s_queue_from_its_index(tmp_path: Path) -> None:
    store = lr.SQLiteStore(tmp_path / "q.db")
    for i in range(30):
        put(store, f"e{i:02d}", responsible="expert" if i % 10 == 0 else "counter")
    assert [e.id for e in store.find(responsible="expert", limit=2)] == ["e00", "e10"]
    store.close()
    conn = sqlite3.connect(tmp_path / "q.db")
    from lastresort.store.queries import check_find, find_query

    sql, args = find_query(check_find("find", responsible="expert"), "?")
    plan = " ".join(str(r) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
    conn.close()
    assert "encounters_queue" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # no sort: the index gives the id order
