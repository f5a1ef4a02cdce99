"""Engine semantics: permissions, warm handover, deadlines, facts, and errors that change nothing."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

import lastresort as lr
from lastresort.engine.engine import random_id
from lastresort.protocol.model import Actor
from lastresort.testing import pseudonymous, snapshot
from tests.conftest import minutes


def test_open_starts_in_the_initial_step_with_its_deadline(engine: lr.Engine) -> None:
    enc = engine.open(
        "taskforce", lr.Actor("counter", "counter-1"), {"age_band": "8-11", "disclosure": True}
    )
    assert (enc.state, enc.responsible, enc.version) == ("arrived", "counter", 1)
    assert dict(enc.facts) == {"age_band": "8-11", "disclosure": True}
    kinds = [e.kind for e in engine.timeline(enc.id)]
    assert kinds == ["EncounterOpened", "DeadlineScheduled"]
    [deadline] = engine.deadlines(enc.id)
    assert (deadline.step, deadline.event) == ("arrived", "expert_not_called")
    assert deadline.due == enc.opened_at + minutes(15)


def test_encounter_ids_are_random_version_4_uuids(engine: lr.Engine) -> None:
    ids = [engine.open("taskforce", lr.Actor("counter", "counter-1")).id for _ in range(50)]
    ids += [random_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for eid in ids:
        parsed = uuid.UUID(eid)
        assert (parsed.hex, parsed.version, parsed.variant) == (eid, 4, uuid.RFC_4122)
    # every bit that is not the version or the variant varies
    fixed = 0xF000 << 64 | 0xC000 << 48
    ones = zeros = 0
    for eid in ids:
        n = int(eid, 16)
        ones, zeros = ones | n, zeros | ~n
    assert (ones & zeros) | fixed == (1 << 128) - 1


def test_each_step_is_logged_once_at_debug_without_facts(
    engine: lr.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lastresort.engine")
    enc = engine.open(
        "taskforce", lr.Actor("counter", "counter-1"), {"age_band": "12-15", "disclosure": True}
    )
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    lines = [r.getMessage() for r in caplog.records if r.name == "lastresort.engine"]
    assert lines == [
        f"encounter {enc.id} v1: opened in arrived by counter",
        f"encounter {enc.id} v2: arrived --call_expert by counter--> awaiting_expert",
    ]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "lastresort.engine")
    assert "12-15" not in caplog.text
    assert "disclosure" not in caplog.text
    caplog.clear()
    caplog.set_level(logging.INFO, logger="lastresort.engine")
    engine.fire(enc.id, "expert_takes_over", lr.Actor("expert", "expert-1"))
    assert [r for r in caplog.records if r.name == "lastresort.engine"] == []


def test_fire_moves_queues_notifications_and_reschedules(engine: lr.Engine) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    events = engine.fire(enc.id, "call_expert", Actor("counter", "desk-3"))
    assert [e.kind for e in events] == [
        "DeadlineCleared",
        "StepEntered",
        "DeadlineScheduled",
        "NotificationQueued",
    ]
    assert all(e.actor == Actor("counter", "desk-3") for e in events)
    after = engine.get(enc.id)
    assert (after.state, after.version) == ("awaiting_expert", 2)
    [note] = engine.outbox(enc.id)
    assert (note.party, note.event, note.delivered_at) == ("expert", "call_expert", None)
    assert [d.event for d in engine.deadlines(enc.id)] == ["expert_overdue"]


def test_handover_is_accepted_by_the_receiver_only(engine: lr.Engine) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    events = engine.fire(enc.id, "expert_takes_over", lr.Actor("expert", "expert-1"))
    [transfer] = [e for e in events if isinstance(e, lr.ResponsibilityTransferred)]
    assert (transfer.from_party, transfer.to_party) == ("counter", "expert")
    assert engine.get(enc.id).responsible == "expert"


def test_a_handover_fired_by_the_giver_is_refused_and_changes_nothing(
    engine: lr.Engine, taskforce: lr.Protocol
) -> None:
    # a protocol where the counter is (wrongly) listed in `by` of the handover
    transitions = [
        lr.Transition(t.event, t.sources, t.target, (*t.by, "counter"), t.notify, t.guard)
        if t.event == "expert_takes_over"
        else t
        for t in taskforce.transitions
    ]
    from attrs import evolve

    loose = evolve(taskforce, transitions=transitions)
    eng = lr.Engine(protocols=[loose], clock=engine.clock, entry_points=False)
    enc = eng.open("taskforce", lr.Actor("counter", "counter-1"))
    before = snapshot(eng, enc.id)
    with pytest.raises(lr.NotPermitted) as info:
        eng.fire(enc.id, "expert_takes_over", lr.Actor("counter", "counter-1"))
    assert "only the receiving party" in str(info.value)
    assert info.value.allowed == ["expert"]
    assert snapshot(eng, enc.id) == before


def test_transition_not_allowed_names_step_event_and_what_is_allowed(engine: lr.Engine) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    before = snapshot(engine, enc.id)
    with pytest.raises(lr.TransitionNotAllowed) as info:
        engine.fire(enc.id, "report_made", lr.Actor("expert", "expert-1"))
    err = info.value
    assert (err.step, err.event) == ("arrived", "report_made")
    assert err.allowed == ["expert_takes_over", "acute_danger"]
    assert "'report_made' is not allowed in step 'arrived'" in str(err)
    assert snapshot(engine, enc.id) == before


def test_not_permitted_names_actor_event_and_who_may(engine: lr.Engine) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    before = snapshot(engine, enc.id)
    with pytest.raises(lr.NotPermitted) as info:
        engine.fire(enc.id, "call_expert", lr.Actor("mayor", "mayor-1"))
    assert (info.value.actor, info.value.event, info.value.allowed) == (
        "mayor",
        "call_expert",
        ["counter"],
    )
    assert snapshot(engine, enc.id) == before


def test_clock_events_cannot_be_fired_by_people(engine: lr.Engine) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    before = snapshot(engine, enc.id)
    with pytest.raises(lr.NotPermitted):
        engine.fire(enc.id, "expert_not_called", lr.Actor("counter", "counter-1"))
    assert snapshot(engine, enc.id) == before


def test_unknown_encounter_and_protocol(engine: lr.Engine) -> None:
    with pytest.raises(lr.UnknownEncounter, match="nope"):
        engine.fire("nope", "call_expert", lr.Actor("counter", "counter-1"))
    with pytest.raises(lr.UnknownEncounter):
        engine.get("nope")
    with pytest.raises(lr.UnknownProtocol, match="known: taskforce"):
        engine.open("utrecht", lr.Actor("counter", "counter-1"))
    assert engine.store.encounter_ids() == []


def test_concurrent_update_reports_expected_and_actual(engine: lr.Engine) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"), expected_version=1)
    before = snapshot(engine, enc.id)
    with pytest.raises(lr.ConcurrentUpdate) as info:
        engine.fire(enc.id, "expert_takes_over", lr.Actor("expert", "expert-1"), expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert snapshot(engine, enc.id) == before


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ({"name": "Jan"}, "unknown fact 'name'"),
        ({"age_band": "13"}, "fact 'age_band': value not allowed"),
        ({"disclosure": "yes"}, "fact 'disclosure': value not allowed (allowed: true or false)"),
    ],
)
def test_facts_outside_the_declared_ones_are_refused(
    engine: lr.Engine, facts: dict[str, Any], message: str
) -> None:
    with pytest.raises(lr.FactsRefused) as info:
        engine.open("taskforce", lr.Actor("counter", "counter-1"), facts)
    assert message in str(info.value)
    assert "Jan" not in str(info.value)  # never echo a value: it could identify the child
    assert engine.store.encounter_ids() == []


def test_only_a_party_can_open(engine: lr.Engine) -> None:
    with pytest.raises(lr.NotPermitted):
        engine.open("taskforce", lr.Actor("visitor", "visitor-1"))
    assert engine.store.encounter_ids() == []


def test_acute_danger_from_every_non_terminal_step(engine: lr.Engine, clock: Any) -> None:
    protocol = engine.protocol("taskforce")
    paths = {
        "arrived": [],
        "awaiting_expert": [("call_expert", "counter")],
        "with_expert": [("expert_takes_over", "expert")],
        "awaiting_mayor": [("expert_takes_over", "expert"), ("inform_mayor", "expert")],
    }
    for step, path in paths.items():
        enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
        for event, actor in path:
            engine.fire(enc.id, event, pseudonymous(actor))
        assert engine.get(enc.id).state == step
        responsible = protocol.steps[step].responsible
        assert responsible is not None
        engine.fire(enc.id, "acute_danger", pseudonymous(responsible))
        after = engine.get(enc.id)
        assert (after.state, after.responsible) == ("with_police", "police")
        assert after.closed
        assert engine.deadlines(enc.id) == []


def test_deadline_fires_once_as_clock_even_when_the_tick_is_late(
    engine: lr.Engine, clock: lr.VirtualClock
) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    clock.advance(minutes(44))
    assert engine.tick() == []
    clock.advance(minutes(300))  # a very late tick: both chained deadlines are overdue
    events = engine.tick()
    missed = [e for e in events if isinstance(e, lr.DeadlineMissed)]
    assert [m.event for m in missed] == ["expert_overdue"]
    assert all(e.actor.role == "clock" for e in events)
    assert engine.get(enc.id).state == "escalated"
    # the next deadline was scheduled from the moment it fired; a second tick fires it once
    clock.advance(minutes(46))
    second = engine.tick()
    assert [e.event for e in second if isinstance(e, lr.DeadlineMissed)] == ["no_expert_available"]
    assert engine.get(enc.id).state == "with_police"
    assert engine.tick() == []
    kinds = [e.kind for e in engine.timeline(enc.id)]
    assert kinds.count("DeadlineMissed") == 2


def test_leaving_a_step_clears_its_deadline(engine: lr.Engine, clock: lr.VirtualClock) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "expert_takes_over", lr.Actor("expert", "expert-1"))
    assert [d.step for d in engine.deadlines(enc.id)] == ["with_expert"]
    clock.advance(minutes(60))
    assert engine.tick() == []
    assert engine.get(enc.id).state == "with_expert"


def test_tick_with_explicit_now(engine: lr.Engine, clock: lr.VirtualClock) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    events = engine.tick(now=clock.now() + minutes(16))
    assert next(e.kind for e in events) == "DeadlineMissed"
    assert engine.get(enc.id).state == "awaiting_expert"


def test_next_deadline(engine: lr.Engine) -> None:
    assert engine.next_deadline() is None
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    assert engine.next_deadline() == enc.opened_at + minutes(15)


def test_allowed_depends_on_actor(engine: lr.Engine) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    assert engine.allowed(enc.id, "counter") == ["call_expert", "acute_danger"]
    assert engine.allowed(enc.id, "expert") == ["expert_takes_over", "acute_danger"]
    assert engine.allowed(enc.id, "police") == []
    assert engine.allowed(enc.id, "clock") == []


def test_nobody_fires_as_the_clock(engine: lr.Engine) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    before = snapshot(engine, enc.id)
    with pytest.raises(lr.NotPermitted, match="only by tick"):
        engine.fire(enc.id, "expert_not_called", "clock")
    assert snapshot(engine, enc.id) == before


def test_closed_encounter_allows_nothing(engine: lr.Engine) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "acute_danger", lr.Actor("counter", "counter-1"))
    assert engine.allowed(enc.id, "police") == []
    with pytest.raises(lr.TransitionNotAllowed, match="nothing"):
        engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))


def test_actor_id_is_recorded_never_interpreted(engine: lr.Engine) -> None:
    enc = engine.open("taskforce", Actor("counter", "emp-0042"))
    [opened, _] = engine.timeline(enc.id)
    assert opened.actor == Actor("counter", "emp-0042")


def test_encounter_is_frozen(engine: lr.Engine) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"), {"age_band": "8-11"})
    with pytest.raises(AttributeError):
        enc.state = "closed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        enc.facts["age_band"] = "0-7"  # type: ignore[index]


def test_not_allowed_for_an_actor_with_nothing_to_do_does_not_claim_closed(
    engine: lr.Engine,
) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    with pytest.raises(lr.TransitionNotAllowed) as info:
        engine.fire(enc.id, "report_made", lr.Actor("police", "police-1"))
    assert info.value.allowed == []
    assert not info.value.closed
    assert "nothing for this actor" in str(info.value)


def test_a_wrong_sequence_prediction_is_renumbered_by_the_store(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    class Mispredicting(lr.MemoryStore):
        def next_seq(self, encounter_id: str) -> int:
            return super().next_seq(encounter_id) + 5  # as if a delivery raced ahead

    engine = lr.Engine(
        protocols=[taskforce], store=Mispredicting(), clock=clock, entry_points=False
    )
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    events = engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    timeline = engine.timeline(enc.id)
    assert [e.seq for e in timeline] == list(range(1, len(timeline) + 1))
    assert events == timeline[2:]


def test_events_interleaved_with_deliveries_stay_gapless(engine: lr.Engine) -> None:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    engine.deliver()  # appends NotificationDelivered without changing the version
    events = engine.fire(enc.id, "expert_takes_over", lr.Actor("expert", "expert-1"))
    timeline = engine.timeline(enc.id)
    assert [e.seq for e in timeline] == list(range(1, len(timeline) + 1))
    assert events[0].seq == 8


def test_one_actor_is_shared_by_its_events_and_no_facts_share_one_map(engine: lr.Engine) -> None:
    clerk = lr.Actor("counter", "counter-1")
    a = engine.open("taskforce", clerk)
    b = engine.open("taskforce", clerk)
    assert engine.timeline(a.id)[0].actor is engine.timeline(b.id)[0].actor
    assert a.facts is b.facts
    assert dict(a.facts) == {}


def test_equal_facts_share_one_map_and_stay_equal(engine: lr.Engine) -> None:
    a = engine.open(
        "taskforce", lr.Actor("counter", "counter-1"), {"age_band": "8-11", "disclosure": True}
    )
    b = engine.open(
        "taskforce", lr.Actor("counter", "counter-1"), {"disclosure": True, "age_band": "8-11"}
    )
    c = engine.open(
        "taskforce", lr.Actor("counter", "counter-1"), {"age_band": "8-11", "disclosure": False}
    )
    assert a.facts is b.facts
    assert dict(b.facts) == {"disclosure": True, "age_band": "8-11"}
    assert c.facts is not a.facts
    assert dict(c.facts) == {"age_band": "8-11", "disclosure": False}
