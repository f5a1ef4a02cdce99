"""Accountable actors (issue 15): refused attempts are recorded, actors carry ids.

Every refused ``open``/``fire`` of the kinds the engine records (ActorRefused,
NotPermitted, TransitionNotAllowed, GuardRefused, FactsRefused) lands in the refusal
log with who, what, when, why (a code) and which encounter at which version and step,
and nothing else: no facts, no guard reason text, no value that has not an
identifier's form. The encounter's timeline, version and hash chain do not change.
Input errors are not recorded. A failing store never hides the refusal itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

import lastresort as lr
from lastresort.testing import snapshot
from tests import pg_kit
from tests.faults.kit import Fault, FaultyStore
from tests.store_kit import START, relay

CLERK = lr.Actor("counter", "clerk-07")
EXPERT = lr.Actor("expert", "expert-12")
NAME_AND_BSN = "Anna Jansen 123456782"


def make_memory(_: Path) -> lr.Store:
    return lr.MemoryStore()


def make_sqlite(tmp: Path) -> lr.Store:
    return lr.SQLiteStore(tmp / "refusals.db", synchronous="NORMAL")


def make_postgres(_: Path) -> lr.Store:
    return pg_kit.reused_store()


STORES = [
    pytest.param(make_memory, id="memory"),
    pytest.param(make_sqlite, id="sqlite"),
    pytest.param(make_postgres, id="postgres"),
]


class AgeGuard:
    """Refuses ``take_over`` with a reason that names something of the child."""

    @lr.hookimpl
    def lastresort_guard_names(self) -> list[str]:
        return ["age_ok"]

    @lr.hookimpl
    def lastresort_guard(self, name: str) -> str | None:
        return "the child Anna is too young" if name == "age_ok" else None


def guarded() -> lr.Protocol:
    protocol = relay()
    transitions = [
        t if t.event != "take_over" else attrs.evolve(t, guard="age_ok")
        for t in protocol.transitions
    ]
    return attrs.evolve(protocol, transitions=tuple(transitions))


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[lr.Engine]:
    store = request.param(tmp_path)
    clock = lr.VirtualClock(START)
    yield lr.Engine(
        protocols=[guarded()], plugins=[AgeGuard()], store=store, clock=clock, entry_points=False
    )
    store.close()


def opened(engine: lr.Engine) -> str:
    return engine.open("relay", CLERK, facts={"age_band": "8-11", "disclosure": True}).id


def refused(engine: lr.Engine, call: Any, error: type[Exception], eid: str | None) -> lr.Refusal:
    """Make ``call`` refuse with ``error``, check it changed nothing, and return the one
    refusal it recorded."""
    before = None if eid is None else snapshot(engine, eid)
    count = len(engine.refusals(limit=10_000))
    with pytest.raises(error):
        call()
    if eid is not None:
        assert snapshot(engine, eid) == before  # timeline, version, deadlines, outbox
    found = engine.refusals(limit=10_000)
    assert len(found) == count + 1
    return found[-1]


# -- what is recorded ----------------------------------------------------------------------


def test_a_refused_handover_is_recorded_with_who_what_when_why(engine: lr.Engine) -> None:
    eid = opened(engine)
    engine.fire(eid, "go", CLERK)
    entry = refused(engine, lambda: engine.fire(eid, "close", CLERK), lr.TransitionNotAllowed, eid)
    assert entry == lr.Refusal(
        seq=entry.seq,
        at=START.astimezone(UTC),
        actor_role="counter",
        actor_id="clerk-07",
        action="close",
        encounter_id=eid,
        step="room",
        version=2,
        category=lr.Category.CONFLICT,
        reason="TransitionNotAllowed",
        protocol="relay",
    )
    assert entry.at.utcoffset() == timedelta(0)


def test_not_permitted_is_recorded_as_forbidden(engine: lr.Engine) -> None:
    eid = opened(engine)
    entry = refused(
        engine, lambda: engine.fire(eid, "hand_back", EXPERT), lr.TransitionNotAllowed, eid
    )
    assert (entry.reason, entry.category, entry.actor_id) == (
        "TransitionNotAllowed",
        lr.Category.CONFLICT,
        "expert-12",
    )
    entry = refused(
        engine, lambda: engine.fire(eid, "go", lr.Actor("expert", "e-2")), lr.NotPermitted, eid
    )
    assert (entry.reason, entry.category, entry.step, entry.version) == (
        "NotPermitted",
        lr.Category.FORBIDDEN,
        "desk",
        1,
    )


def test_a_guard_refusal_keeps_the_guard_name_not_its_reason(engine: lr.Engine) -> None:
    eid = opened(engine)
    entry = refused(engine, lambda: engine.fire(eid, "take_over", EXPERT), lr.GuardRefused, eid)
    assert entry.reason == "guard:age_ok"
    assert "Anna" not in repr(entry)
    assert "young" not in repr(entry)


def test_an_actor_without_an_id_is_refused_and_recorded_with_none(engine: lr.Engine) -> None:
    eid = opened(engine)
    for anonymous in ("counter", lr.Actor("counter")):
        entry = refused(engine, lambda a=anonymous: engine.fire(eid, "go", a), lr.ActorRefused, eid)
        assert (entry.actor_role, entry.actor_id, entry.reason, entry.category) == (
            "counter",
            None,
            "ActorRefused",
            lr.Category.FORBIDDEN,
        )
    with pytest.raises(lr.ActorRefused, match="carries no id"):
        engine.open("relay", "counter")
    entry = engine.refusals(limit=10_000)[-1]
    assert (entry.action, entry.encounter_id, entry.actor_id, entry.protocol) == (
        "open",
        None,
        None,
        "relay",
    )
    assert engine.get(eid).version == 1
    assert list(engine.store.encounter_ids()) == [eid]  # the refused open stored nothing


def test_the_clock_alone_is_anonymous(engine: lr.Engine) -> None:
    eid = opened(engine)
    entry = refused(engine, lambda: engine.fire(eid, "desk_timeout", "clock"), lr.NotPermitted, eid)
    assert (entry.actor_role, entry.actor_id) == ("clock", None)
    engine.clock.advance(timedelta(minutes=31))  # type: ignore[attr-defined]
    assert any(e.kind == "StepEntered" for e in engine.tick())  # tick fires as the clock


def test_refused_facts_are_recorded_without_the_facts(engine: lr.Engine) -> None:
    entry = refused(
        engine,
        lambda: engine.open("relay", CLERK, facts={"age_band": NAME_AND_BSN}),
        lr.FactsRefused,
        None,
    )
    assert (entry.action, entry.reason, entry.category) == (
        "open",
        "FactsRefused",
        lr.Category.INVALID,
    )
    assert "Jansen" not in repr(entry)
    assert "123456782" not in repr(entry)


def test_a_role_or_event_of_free_text_is_not_kept(engine: lr.Engine) -> None:
    eid = opened(engine)
    entry = refused(engine, lambda: engine.fire(eid, "go", NAME_AND_BSN), lr.ActorRefused, eid)
    assert (entry.actor_role, entry.actor_id) == ("?", None)
    entry = refused(engine, lambda: engine.fire(eid, NAME_AND_BSN, CLERK), lr.LastResortError, eid)
    assert entry.action == "_unreadable"
    for item in engine.refusals():
        assert "Jansen" not in repr(item)
        assert "123456782" not in repr(item)


def test_input_errors_and_races_are_not_recorded(engine: lr.Engine) -> None:
    eid = opened(engine)
    with pytest.raises(lr.UnknownEncounter):
        engine.fire("no-such", "go", CLERK)
    with pytest.raises(lr.UnknownProtocol):
        engine.open("no-such", CLERK)
    with pytest.raises(lr.InvalidArgument):
        engine.fire(eid, "go", 5)  # type: ignore[arg-type]
    with pytest.raises(lr.ChannelRefused):
        engine.open("relay", CLERK, channel="walked in with Anna")
    with pytest.raises(lr.ConcurrentUpdate):
        engine.fire(eid, "go", CLERK, expected_version=7)
    assert engine.refusals() == []


def test_refusals_are_paged_and_filtered_through_the_engine(engine: lr.Engine) -> None:
    first, second = opened(engine), opened(engine)
    for eid in (first, second, first):
        with pytest.raises(lr.TransitionNotAllowed):
            engine.fire(eid, "close", CLERK)
    log = engine.refusals()
    assert [r.seq for r in log] == [1, 2, 3]
    assert [r.encounter_id for r in engine.refusals(encounter_id=first)] == [first, first]
    assert engine.refusals(limit=2) + engine.refusals(after_seq=2) == log
    assert engine.refusals(since=START + timedelta(seconds=1)) == []
    with pytest.raises(lr.InvalidArgument, match="limit"):
        engine.refusals(limit=0)


# -- record_refusal, for embedders ----------------------------------------------------------


def test_an_embedder_records_its_own_refusal_with_the_encounters_step(engine: lr.Engine) -> None:
    eid = opened(engine)
    entry = engine.record_refusal(
        actor=lr.Actor("counter", "clerk-09"),
        action="http:fire",
        category=lr.Category.FORBIDDEN,
        reason="unauthenticated",
        encounter_id=eid,
    )
    assert (entry.seq, entry.step, entry.version, entry.protocol) == (1, "desk", 1, "relay")
    assert engine.refusals() == [entry]
    anonymous = engine.record_refusal(
        actor="counter",
        action="http:open",
        category=lr.Category.FORBIDDEN,
        reason="unauthenticated",
    )
    assert (anonymous.actor_id, anonymous.encounter_id, anonymous.step) == (None, None, None)
    unknown = engine.record_refusal(
        actor=CLERK,
        action="http:get",
        category=lr.Category.NOT_FOUND,
        reason="UnknownEncounter",
        encounter_id="no-such",
    )
    assert (unknown.encounter_id, unknown.step, unknown.version) == ("no-such", None, None)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"reason": "the clerk said Anna Jansen was rude"}, "reason"),
        ({"reason": "x" * 81}, "reason"),
        ({"reason": "bsn123456782"}, "reason"),
        ({"action": "fire at will"}, "action"),
        ({"actor": lr.Actor("counter", "c1").__class__("counter")}, None),
        ({"actor": NAME_AND_BSN}, "actor"),
        ({"actor": 5}, "actor"),
        ({"category": "forbidden"}, "category"),
        ({"encounter_id": "Anna Jansen"}, "encounter_id"),
        ({"protocol": "relay protocol"}, "protocol"),
    ],
)
def test_record_refusal_refuses_what_is_not_a_code_and_writes_nothing(
    engine: lr.Engine, kwargs: dict[str, Any], argument: str | None
) -> None:
    given: dict[str, Any] = {
        "actor": CLERK,
        "action": "http:fire",
        "category": lr.Category.FORBIDDEN,
        "reason": "unauthenticated",
        **kwargs,
    }
    if argument is None:  # an actor without an id is allowed: the caller could not tell
        assert engine.record_refusal(**given).actor_id is None
        return
    with pytest.raises(lr.InvalidArgument) as caught:
        engine.record_refusal(**given)
    assert caught.value.argument == argument
    assert "Jansen" not in str(caught.value)
    assert "123456782" not in str(caught.value)
    assert engine.refusals() == []


# -- a failing store never hides the refusal ----------------------------------------------


@pytest.mark.parametrize("make", STORES)
def test_a_store_that_cannot_record_still_gives_the_refusal(
    make: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inner = make(tmp_path)
    store = FaultyStore(inner, [Fault("record_refusal", 1), Fault("record_refusal", 2)])
    engine = lr.Engine(
        protocols=[relay()], store=store, clock=lr.VirtualClock(START), entry_points=False
    )
    eid = engine.open("relay", CLERK, facts={"age_band": "8-11"}).id
    before = snapshot(engine, eid)
    with caplog.at_level(logging.ERROR, logger="lastresort.engine"):
        with pytest.raises(lr.TransitionNotAllowed):  # the refusal itself, not the StoreError
            engine.fire(eid, "close", CLERK)
        with pytest.raises(lr.FactsRefused):
            engine.open("relay", CLERK, facts={"age_band": NAME_AND_BSN})
    assert snapshot(engine, eid) == before
    assert store.raised == [("record_refusal", 1), ("record_refusal", 2)]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert all("could not be recorded: StoreError" in m for m in messages)
    assert "Jansen" not in " ".join(messages)
    assert "age_band" not in " ".join(messages)
    assert engine.refusals() == []  # nothing half-written
    with pytest.raises(lr.TransitionNotAllowed):  # and once the store works, it is recorded
        engine.fire(eid, "close", CLERK)
    assert [r.reason for r in engine.refusals()] == ["TransitionNotAllowed"]
    store.close()


@pytest.mark.parametrize("make", [STORES[1], STORES[2]])
def test_a_refusal_log_with_its_head_gone_fails_to_record_but_refuses(
    make: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = make(tmp_path)
    engine = lr.Engine(
        protocols=[relay()], store=store, clock=lr.VirtualClock(START), entry_points=False
    )
    eid = engine.open("relay", CLERK).id
    if isinstance(store, lr.PostgresStore):
        with pg_kit.connect() as conn:
            conn.execute(f'DELETE FROM "{store.schema}".refusal_head')
    else:
        import sqlite3

        conn = sqlite3.connect(store.path)
        conn.execute("DELETE FROM refusal_head")
        conn.commit()
        conn.close()
    with (
        caplog.at_level(logging.ERROR, logger="lastresort.engine"),
        pytest.raises(lr.TransitionNotAllowed),
    ):
        engine.fire(eid, "close", CLERK)
    assert "could not be recorded: StoreError" in caplog.text
    assert engine.refusals() == []
    with pytest.raises(lr.StoreError, match="head is missing"):  # a direct call says why
        engine.record_refusal(
            actor=CLERK, action="http:fire", category=lr.Category.FORBIDDEN, reason="x"
        )
    store.close()
