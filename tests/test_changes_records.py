"""The step's records are built through positional constructors (issue 13, a faster
fire): what they make must be exactly what the public classes' constructors make,
and as frozen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

import lastresort as lr
from lastresort.engine import changes
from lastresort.engine.changes import maker
from lastresort.outbox import Notification
from lastresort.protocol.model import Actor, Encounter, FrozenMap
from lastresort.store.base import Change, PendingDeadline
from lastresort.testing import make_engine

NOW = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
ACTOR = Actor.of("counter")
FACTS: dict[str, str | bool] = {"age_band": "12-15", "disclosure": True}


def sample(cls: type) -> dict[str, Any]:
    """A value for every field of ``cls``, none of them at its default."""
    values: dict[str, Any] = {}
    for i, field in enumerate(attrs.fields(cls)):
        name = field.name
        if name in ("at", "due", "opened_at", "created_at", "next_attempt_at", "delivered_at"):
            values[name] = NOW + timedelta(minutes=i)
        elif name == "closed_at" or name == "dead_lettered_at":
            values[name] = NOW + timedelta(hours=i)
        elif name in ("seq", "version", "attempts", "expected_version"):
            values[name] = i + 2
        elif name == "actor":
            values[name] = ACTOR
        elif name == "facts":
            values[name] = FrozenMap({"age_band": "12-15"})
        elif name == "encounter":
            values[name] = Encounter(**sample(Encounter))
        elif name == "events":
            values[name] = (lr.EncounterClosed(**sample(lr.EncounterClosed)),)
        elif name == "schedule":
            values[name] = (PendingDeadline(**sample(PendingDeadline)),)
        elif name == "outbox":
            values[name] = (Notification(**sample(Notification)),)
        elif name == "clear":
            values[name] = ("d1", "d2")
        else:
            values[name] = f"{name}-{i}"
    return values


MADE = [
    (changes._encounter, Encounter),
    (changes._change, Change),
    (changes._deadline, PendingDeadline),
    (changes._note, Notification),
    (changes._step_entered, lr.StepEntered),
    (changes._transferred, lr.ResponsibilityTransferred),
    (changes._scheduled, lr.DeadlineScheduled),
    (changes._cleared, lr.DeadlineCleared),
    (changes._queued, lr.NotificationQueued),
    (changes._closed, lr.EncounterClosed),
    (changes._opened, lr.EncounterOpened),
    (changes._missed_at, lr.DeadlineMissed),
]


@pytest.mark.parametrize(("make", "cls"), MADE, ids=[cls.__name__ for _, cls in MADE])
def test_a_positional_constructor_makes_what_the_class_makes(make: Any, cls: type) -> None:
    values = sample(cls)
    made = make(*values.values())
    built = cls(**values)
    assert type(made) is cls
    assert made == built
    assert hash(made) == hash(built)
    assert repr(made) == repr(built)
    assert attrs.asdict(made, recurse=False) == values
    first = next(iter(values))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(made, first, "changed")
    assert getattr(made, first) == values[first]
    assert not hasattr(made, "__dict__")  # slotted, like the class's own instances


def test_every_record_a_fire_builds_has_a_checked_maker() -> None:
    # a maker that was never compared above would be a record built unchecked
    made = {
        name for name, value in vars(changes).items() if getattr(value, "__name__", "") == "make"
    }
    assert made == {
        "_encounter",
        "_change",
        "_deadline",
        "_note",
        "_step_entered",
        "_transferred",
        "_scheduled",
        "_cleared",
        "_queued",
        "_closed",
        "_opened",
        "_missed_at",
    }


def test_a_class_whose_fields_are_checked_or_converted_has_no_maker() -> None:
    with pytest.raises(TypeError, match="role"):
        maker(Actor)  # validators: a maker would let a BSN in as a role
    with pytest.raises(TypeError, match="facts"):
        maker(Encounter)  # facts are converted unless the caller passes them converted
    with pytest.raises(TypeError, match="events"):
        maker(Change)


def test_the_records_of_a_fire_equal_the_constructors() -> None:
    """End to end: a fire's committed events and snapshot are the public classes,
    equal to records built field by field through their constructors."""
    engine, _ = make_engine()
    encounter = engine.open("taskforce", lr.Actor("counter", "counter-1"), FACTS)
    events = engine.fire(encounter.id, "call_expert", lr.Actor("counter", "counter-1"))
    for event in events:
        rebuilt = type(event)(**attrs.asdict(event, recurse=False))
        assert rebuilt == event
    after = engine.get(encounter.id)
    assert Encounter(**attrs.asdict(after, recurse=False)) == after
    assert after.facts == FACTS
    assert isinstance(after.facts, FrozenMap)


def test_a_class_without_slots_has_no_maker() -> None:
    # the maker writes each field through the slot's descriptor: a dict class has none
    @attrs.frozen(slots=False)
    class Loose:
        a: int

    with pytest.raises(TypeError, match="not a slotted class"):
        maker(Loose)


@pytest.mark.parametrize("facts", [{}, FACTS, FrozenMap(FACTS)])
def test_an_opened_encounter_equals_the_constructors(facts: dict[str, str | bool]) -> None:
    """open builds the Encounter through a maker with the class's own facts converter:
    equal to the constructor's, facts frozen (and shared with equal facts)."""
    engine, _ = make_engine()
    encounter = engine.open("taskforce", lr.Actor("counter", "counter-1"), facts)
    assert Encounter(**attrs.asdict(encounter, recurse=False)) == encounter
    assert isinstance(encounter.facts, FrozenMap)
    assert encounter.facts == facts
    for event in engine.timeline(encounter.id):
        assert type(event)(**attrs.asdict(event, recurse=False)) == event
