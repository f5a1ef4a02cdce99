"""The fast row codecs give exactly what the one converter gives: the canonical JSON
the audit trail stores and hashes, and the values read back from rows, for every
event class and for generated values (odd strings, times in any offset, defaults),
including the values they leave to the converter and the rows it refuses."""

from __future__ import annotations

import enum
import json
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lastresort as lr
from lastresort.errors import StoreError
from lastresort.privacy import is_bsn
from lastresort.protocol.model import Actor, Encounter
from lastresort.store.audit import event_json, snapshot_json
from lastresort.store.base import PendingDeadline
from lastresort.store.row_codecs import (
    StoredEvent,
    _event_classes,
    canonical_json,
    dump_event,
    dump_row,
    encounter_canonical_json,
    load_encounter,
    load_plain,
    load_row,
)
from lastresort.store.rows import note_row
from lastresort.store.schema import micros

ZONES = [UTC, ZoneInfo("Europe/Amsterdam"), timezone(timedelta(hours=5, minutes=30))]
times = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.sampled_from(ZONES)
)
texts = st.text() | st.sampled_from(["", "counter", 'a"b\\c', "\u00e9\u4e2d\U0001f600", "\x00\n\t"])
# actors are checked when made (lastresort.privacy): every role and id of the allowed forms
roles = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}", fullmatch=True)
actor_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", fullmatch=True)
actors = st.builds(
    Actor,
    role=roles.filter(lambda r: not is_bsn(r)),
    id=st.none() | actor_ids.filter(lambda i: not is_bsn(i)),
)


def _strategy(kind: Any) -> st.SearchStrategy[Any]:
    options = typing.get_args(kind) if typing.get_origin(kind) is not None else (kind,)
    found = []
    for option in options:
        if option is type(None):
            found.append(st.none())
        elif option is str:
            found.append(texts)
        elif option is bool:  # before int: a bool is an int
            found.append(st.booleans())
        elif option is int:
            found.append(st.integers())
        elif option is datetime:
            found.append(times)
        elif option is Actor:
            found.append(actors)
        else:  # pragma: no cover - a new field type: teach this test about it
            raise AssertionError(f"no strategy for {option!r}")
    return st.one_of(found)


def _instances(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{a.name: _strategy(hints[a.name]) for a in attrs.fields(cls)})


events = st.one_of([_instances(cls) for cls in _event_classes()])


def slow_event_json(event: lr.Event) -> str:
    data = dump_event(event)
    data.pop("seq", None)
    return canonical_json(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_event_json_is_the_converters(event: lr.Event) -> None:
    assert event_json(event) == slow_event_json(event)


facts = st.dictionaries(texts, texts | st.booleans(), max_size=4)
encounters = st.builds(
    Encounter,
    id=texts,
    protocol=texts,
    protocol_version=texts,
    state=texts,
    responsible=st.none() | texts,
    facts=facts,
    version=st.integers(),
    opened_at=times,
    closed_at=st.none() | times,
    channel=texts | st.just("counter"),
)


@settings(max_examples=300)
@given(encounters)
def test_encounter_json_is_the_converters(encounter: Encounter) -> None:
    data = dump_row(encounter)
    expected = (canonical_json(data.pop("facts", {})), canonical_json(data))
    assert encounter_canonical_json(encounter) == expected
    assert snapshot_json(encounter) == expected[1]


class Code(enum.IntEnum):
    ONE = 1


class Name(enum.StrEnum):
    ROOM = "room"


def test_values_that_are_not_plain_are_left_to_the_converter() -> None:
    at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    odd = [
        lr.NotificationDelivered(
            encounter_id="e",
            at=at,
            actor=Actor("outbox"),
            key="k",
            party="p",
            receipt="r",
            attempts=Code.ONE,
        ),
        lr.StepEntered(
            encounter_id="e",
            at=at,
            actor=Actor("counter"),
            event="go",
            from_step="desk",
            step=Name.ROOM,
            responsible=None,
        ),
    ]
    for event in odd:
        assert event_json(event) == slow_event_json(event)
    encounter = Encounter(
        id="e",
        protocol="p",
        protocol_version="1",
        state=Name.ROOM,
        responsible=None,
        facts={"n": Code.ONE},  # type: ignore[dict-item]
        version=1,
        opened_at=at,
    )
    data = dump_row(encounter)
    assert encounter_canonical_json(encounter) == (
        canonical_json(data.pop("facts")),
        canonical_json(data),
    )


def test_a_float_in_an_event_fails_as_the_converter_does() -> None:
    event = lr.StepEntered(
        encounter_id="e",
        at=datetime(2026, 3, 2, tzinfo=UTC),
        actor=Actor("counter"),
        event="go",
        from_step="desk",
        step="room",
        responsible=float("nan"),  # type: ignore[arg-type]
    )
    with pytest.raises(ValueError, match="Out of range float"):
        slow_event_json(event)
    with pytest.raises(ValueError, match="Out of range float"):
        event_json(event)


def encounter_row(encounter: Encounter) -> tuple[Any, ...]:
    data = {**dump_row(encounter)}
    return (
        data["id"],
        data["protocol"],
        data["protocol_version"],
        data["state"],
        data["responsible"],
        canonical_json(data["facts"]),
        data["version"],
        data["opened_at"],
        data.get("closed_at"),
        data.get("channel", "counter"),
    )


@settings(max_examples=300)
@given(encounters)
def test_an_encounter_row_reads_back_as_the_converter_reads_it(encounter: Encounter) -> None:
    row = encounter_row(encounter)
    data = [*row[:5], json.loads(row[5]), *row[6:]]
    slow = load_row(dict(zip(attrs.fields_dict(Encounter), data, strict=True)), Encounter)
    # equal to what the converter reads (a time in a repeated hour of a zone does not
    # compare equal to the same instant at a fixed offset, so not to ``encounter``)
    assert load_encounter(row) == slow
    assert load_encounter(row) == slow  # again, with its facts read before
    assert encounter_row(load_encounter(row)) == row
    purged = load_encounter((*row[:5], None, *row[6:]))
    assert purged == attrs.evolve(slow, facts={})


GOOD = ("e", "p", "1", "desk", None, '{"a":true}', 2, "2026-03-02T10:00:00+01:00", None, "counter")


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, 7),
        (3, None),
        (4, 5),
        (5, '{"a":1.5}'),
        (5, '{"a":null}'),
        (5, '["a"]'),
        (5, '{"a":{"b":true}}'),
        (6, "2"),
        (6, True),
        (7, "yesterday"),
        (7, "2026-03-02T10:00:00"),
        (8, "2026-03-02T10:00:00"),
        (8, 12),
        (9, None),
    ],
)
def test_a_bad_encounter_row_is_refused_as_the_converter_refuses_it(
    index: int, value: object
) -> None:
    row = list(GOOD)
    row[index] = value
    data = [*row[:5], json.loads(row[5]), *row[6:]]
    with pytest.raises(StoreError) as slow:
        load_row(dict(zip(attrs.fields_dict(Encounter), data, strict=True)), Encounter)
    with pytest.raises(StoreError) as fast:
        load_encounter(row)
    assert str(fast.value) == str(slow.value)


@settings(max_examples=200)
@given(_instances(PendingDeadline))
def test_a_deadline_row_reads_back_as_the_converter_reads_it(deadline: PendingDeadline) -> None:
    data = dump_row(deadline)
    row = tuple(data[a.name] for a in attrs.fields(PendingDeadline))
    fast = load_plain(PendingDeadline, row)
    assert fast == load_row(data, PendingDeadline)
    assert dump_row(fast) == data


@pytest.mark.parametrize(
    "row",
    [
        ("d", "e", "desk", "timeout", "2026-03-02T10:00:00"),
        ("d", "e", "desk", "timeout", "soon"),
        ("d", None, "desk", "timeout", "2026-03-02T10:00:00+00:00"),
        ("d", "e", 3, "timeout", "2026-03-02T10:00:00+00:00"),
    ],
)
def test_a_bad_deadline_row_is_refused_as_the_converter_refuses_it(row: tuple[Any, ...]) -> None:
    names = [a.name for a in attrs.fields(PendingDeadline)]
    with pytest.raises(StoreError) as slow:
        load_row(dict(zip(names, row, strict=True)), PendingDeadline)
    with pytest.raises(StoreError) as fast:
        load_plain(PendingDeadline, row)
    assert str(fast.value) == str(slow.value)


def test_every_event_class_has_the_fast_codec() -> None:
    # a new event class with a field type the fast codec does not know would silently
    # take the slow path: say so here, so that someone teaches it (or decides not to)
    from lastresort.store.row_codecs import _canonical_fields

    slow = [cls.__name__ for cls in _event_classes() if not _canonical_fields(cls, "seq", True).ok]
    assert slow == []
    assert StoredEvent is not None


@settings(max_examples=200)
@given(_instances(lr.Notification))
def test_an_outbox_row_holds_what_the_converter_writes(note: lr.Notification) -> None:
    data = dump_row(note)
    defaults = {"attempts": 0, "contact": None, "last_error": None, "delivered_at": None}
    columns = [a.name for a in attrs.fields(lr.Notification)]
    written = [data.get(name, defaults.get(name)) for name in columns]
    row = note_row(note)
    assert [v for i, v in enumerate(row) if i not in (7, 10)] == written
    assert row[7] == micros(note.created_at)
    assert row[10] == micros(note.next_attempt_at)


def test_a_traceback_through_generated_code_shows_the_generated_line() -> None:
    """Issue 13: the generated writers' source is registered in linecache, so that
    tracebacks, debuggers and inspect show the line that ran."""
    import inspect
    import linecache
    import traceback

    from lastresort.store.row_codecs import _canonical_fields

    class Exploding:
        """Reads like a StepEntered until one field blows up inside the writer."""

        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(f"no {name}")

    write = _canonical_fields(lr.StepEntered, "seq", True).write
    with pytest.raises(RuntimeError) as caught:
        write(Exploding())
    frames = traceback.extract_tb(caught.value.__traceback__)
    generated = [f for f in frames if f.filename.startswith("<lastresort generated")]
    assert len(generated) == 1, [f.filename for f in frames]
    [frame] = generated
    assert "StepEntered" in frame.filename
    assert frame.line is not None
    assert frame.line.startswith("return '{' + (")  # the generated line's text
    assert "value.encounter_id" in frame.line
    text = "".join(traceback.format_exception(caught.value))
    assert "return '{' + (" in text
    assert inspect.getsource(write).startswith("def write(value):")
    linecache.checkcache()  # a cache check keeps it (no file to compare with)
    assert linecache.getline(frame.filename, 2).strip().startswith("return '{' + (")
