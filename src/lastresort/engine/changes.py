"""The change each ``open`` and ``fire`` commits: the new snapshot, the events in
timeline order, the deadlines to schedule and clear, the notifications to queue.

Pure functions of their arguments (no store, no clock, no plugins): the engine
decides *whether* a step is taken; these write down *what* taking it means. They
run on every fire, so they build the records (still the public frozen attrs classes,
equal to what their constructors give) through :func:`maker`'s positional
constructors: building the step's records through attrs' keyword ``__init__`` was
over half of a fire.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import count, repeat
from types import MemberDescriptorType
from typing import Any, cast

import attrs
from attrs import evolve

from ..errors import InvalidArgument
from ..events import (
    DeadlineCleared,
    DeadlineMissed,
    DeadlineScheduled,
    EncounterClosed,
    EncounterOpened,
    Event,
    NotificationQueued,
    ResponsibilityTransferred,
    StepEntered,
)
from ..outbox import Notification
from ..protocol.conversion import format_duration
from ..protocol.model import (
    Actor,
    DeadlineDate,
    Encounter,
    Protocol,
    Step,
    Transition,
    WorkingDays,
)
from ..protocol.workdays import WorkingCalendar, due_after
from ..store.base import Change, PendingDeadline
from ..store.row_codecs import generated

__all__ = ["chosen_latest", "dated", "maker", "opened", "stepped", "unfired"]


def maker(cls: type, trusted: frozenset[str] = frozenset()) -> Callable[..., Any]:
    """A positional constructor of the frozen attrs class ``cls``: ``make(*values)``
    with every field in ``attrs.fields`` order gives what ``cls(**fields)`` gives (an
    equal, equally frozen instance of ``cls`` itself), for about half the cost: one
    positional call and a slot write per field (through the slot's own descriptor),
    without keyword binding.

    It runs no validator or converter, so ``cls`` may have none, except on the
    fields named in ``trusted``, whose values the caller passes already as the
    converter makes them (tests/test_engine.py compares every maker with its class).

    :raises TypeError: for a class it cannot make faithfully (checked once, here).
    """
    fields = attrs.fields(cls)
    names = [a.name for a in fields]
    unsafe = [
        a.name
        for a in fields
        if (a.validator is not None or a.converter is not None) and a.name not in trusted
    ]
    if unsafe or hasattr(cls, "__attrs_post_init__") or not attrs.has(cls):
        raise TypeError(f"{cls.__name__}: fields {unsafe} are checked or converted")
    # each field's slot written through its own member descriptor's bound ``__set__``
    # (what ``object.__setattr__`` finds by name on every call): a third cheaper
    slots = {name: inspect.getattr_static(cls, name, None) for name in names}
    if not all(isinstance(slot, MemberDescriptorType) for slot in slots.values()):
        raise TypeError(f"{cls.__name__}: not a slotted class")
    body = "".join(f"    _set_{name}(self, {name})\n" for name in names)
    source = f"def make({', '.join(names)}):\n    self = _new(_cls)\n{body}    return self\n"
    names_used: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    names_used.update({f"_set_{name}": slot.__set__ for name, slot in slots.items()})
    made: Callable[..., Any] = generated(
        source, "make", f"positional constructor of {cls.__qualname__}", names_used
    )
    return made


# the records a fire builds; Encounter's facts come from the snapshot before (already
# converted), Change's collections are passed as the tuples its converters make
_encounter: Callable[..., Encounter] = maker(Encounter, frozenset({"facts"}))
_change: Callable[..., Change] = maker(Change, frozenset({"events", "schedule", "clear", "outbox"}))
_deadline: Callable[..., PendingDeadline] = maker(PendingDeadline)
_note: Callable[..., Notification] = maker(Notification)
_step_entered: Callable[..., StepEntered] = maker(StepEntered)
_transferred: Callable[..., ResponsibilityTransferred] = maker(ResponsibilityTransferred)
_scheduled: Callable[..., DeadlineScheduled] = maker(DeadlineScheduled)
_cleared: Callable[..., DeadlineCleared] = maker(DeadlineCleared)
_queued: Callable[..., NotificationQueued] = maker(NotificationQueued)
_closed: Callable[..., EncounterClosed] = maker(EncounterClosed)
_opened: Callable[..., EncounterOpened] = maker(EncounterOpened)
_missed_at: Callable[..., DeadlineMissed] = maker(DeadlineMissed)
#: Encounter's own converter of its facts (what its constructor applies), for opened()
_facts = cast(
    "Callable[[Mapping[str, str | bool]], Mapping[str, str | bool]]",
    attrs.fields(Encounter).facts.converter,
)


def opened(
    protocol: Protocol,
    encounter_id: str,
    actor: Actor,
    facts: Mapping[str, str | bool],
    now: datetime,
    channel: str,
    calendar: WorkingCalendar | None = None,
) -> Change:
    """A new encounter in the protocol's initial step: ``EncounterOpened`` and, when
    the step has a deadline, ``DeadlineScheduled`` (numbered from 1)."""
    initial = protocol.initial
    step = protocol.steps[initial]
    # Encounter(id, protocol, protocol_version, state, responsible, facts, version,
    # opened_at, closed_at, channel), its facts converted as its constructor does
    encounter = _encounter(
        encounter_id,
        protocol.id,
        protocol.version,
        initial,
        step.responsible,
        _facts(facts),
        1,
        now,
        None,
        channel,
    )
    seq = count(1)  # a new encounter's timeline starts at 1
    # EncounterOpened(encounter_id, seq, at, actor, protocol, protocol_version, step,
    # responsible, channel)
    events: list[Event] = [
        _opened(
            encounter_id,
            next(seq),
            now,
            actor,
            protocol.id,
            protocol.version,
            initial,
            step.responsible,
            channel,
        )
    ]
    schedule = _schedule(encounter, initial, step, now, actor, events, seq, None, calendar)
    return Change(encounter=encounter, expected_version=None, events=events, schedule=schedule)


def stepped(
    protocol: Protocol,
    steps: Mapping[str, Step],
    encounter: Encounter,
    taken: Transition,
    event: str,
    actor: Actor,
    now: datetime,
    pending: Sequence[PendingDeadline],
    missed: PendingDeadline | None = None,
    first_seq: int = 0,
    due: datetime | None = None,
    calendar: WorkingCalendar | None = None,
) -> Change:
    """``encounter`` takes ``taken`` (fired as ``event`` by ``actor``).

    In timeline order: ``DeadlineMissed`` (when the clock fires ``missed``), a
    ``DeadlineCleared`` for every other ``pending`` deadline (leaving the step
    clears them), ``StepEntered``, ``ResponsibilityTransferred`` on a handover, the
    new step's ``DeadlineScheduled``, a ``NotificationQueued`` per party told, and
    ``EncounterClosed`` in a terminal step.

    :param steps: the protocol's steps (a plain dict is faster than its FrozenMap).
    :param pending: the encounter's pending deadlines.
    :param first_seq: the sequence number of the first event, ``0`` to leave the
        numbering to the store.
    :param due: when the new step's deadline falls, if the engine dated it (a deadline
        counted from an earlier step, chosen or kept); ``None``: ``after`` from ``now``.
    """
    eid = encounter.id
    state = encounter.state
    step_key = taken.target
    target = steps[step_key]
    responsible = target.responsible
    version = encounter.version + 1
    seq = count(first_seq) if first_seq else repeat(0)
    events: list[Event] = []
    cleared = pending
    clear = [d.id for d in cleared]
    if missed is not None:
        events.append(_missed(missed, eid, next(seq), now, actor))
        if missed.id in clear:
            cleared = [d for d in cleared if d.id != missed.id]
            clear.remove(missed.id)
        clear.append(missed.id)
    for deadline in cleared:
        events.append(
            _cleared(
                eid, next(seq), now, actor, deadline.id, deadline.step, deadline.event, deadline.due
            )
        )
    events.append(_step_entered(eid, next(seq), now, actor, event, state, step_key, responsible))
    if responsible != encounter.responsible and responsible is not None:
        events.append(
            _transferred(
                eid, next(seq), now, actor, event, encounter.responsible, responsible, step_key
            )
        )
    terminal = target.terminal
    after = _encounter(
        eid,
        encounter.protocol,
        encounter.protocol_version,
        step_key,
        responsible,
        encounter.facts,  # the snapshot's, converted when it was made
        version,
        encounter.opened_at,
        now if terminal else None,
        encounter.channel,
    )
    schedule = _schedule(after, step_key, target, now, actor, events, seq, due, calendar)
    notes = []
    pid = protocol.id
    for party in taken.notify:
        key = f"{eid}:v{version}:{event}:{party}"
        # Notification(key, encounter_id, protocol, event, step, party, created_at,
        # attempts, next_attempt_at, contact, last_error, delivered_at, dead_lettered_at)
        notes.append(
            _note(key, eid, pid, event, step_key, party, now, 0, now, None, None, None, None)
        )
        events.append(_queued(eid, next(seq), now, actor, key, party, event))
    if terminal:
        events.append(_closed(eid, next(seq), now, actor, step_key))
    return _change(
        after,
        encounter.version,
        tuple(events),
        schedule,
        tuple(clear),
        tuple(notes),
        None if missed is None else missed.id,
    )


def unfired(
    encounter: Encounter,
    step: Step,
    deadline: PendingDeadline,
    now: datetime,
    actor: Actor,
    first_seq: int = 0,
    calendar: WorkingCalendar | None = None,
) -> Change:
    """``deadline``'s event could not fire (a guard refused it, say): it is recorded as
    missed, consumed (so that it never fires twice) and scheduled again, the same
    ``after`` from ``now`` under a new id, so that the encounter, which stays in its
    step, is never left without a deadline. Only its version moves on.

    :param step: the encounter's step (whose deadline is re-armed).
    """
    after = evolve(encounter, version=encounter.version + 1)
    seq = count(first_seq) if first_seq else repeat(0)
    events: list[Event] = [_missed(deadline, encounter.id, next(seq), now, actor)]
    schedule = _schedule(after, encounter.state, step, now, actor, events, seq, None, calendar)
    return Change(
        encounter=after,
        expected_version=encounter.version,
        events=events,
        schedule=schedule,
        clear=[deadline.id],
        consume=deadline.id,
    )


def dated(
    protocol: Protocol,
    encounter: Encounter,
    step_key: str,
    now: datetime,
    until: datetime | None,
    pending: Sequence[PendingDeadline],
    timeline: Callable[[str], Sequence[Event]],
    calendar: WorkingCalendar | None = None,
) -> datetime | None:
    """When the deadline of ``step_key``, about to be entered, falls if it is dated;
    ``None`` for a plain one (``after`` from now) or none.

    - counted ``from`` an earlier step: ``after`` past the encounter's last entry of it;
    - ``until = "chosen"``: ``until``, later than ``now`` and no later than that
      (nor than ``after`` on the calendar in ``until``'s time zone, which across a
      daylight saving change is an hour earlier or later: the earlier holds);
    - ``until = "kept"``: the due moment of the deadline pending in the step left,
      capped by the same latest moment.

    A ``from`` step the encounter never entered counts from its opening (the earliest
    moment it could have been: the cap is never later than the protocol allows).

    :param timeline: reads the encounter's events (only for a dated deadline).
    :raises InvalidArgument: ``until`` given for a deadline that is not chosen, missing
        for one that is, not later than ``now`` or later than the latest moment.
    """
    spec = protocol.steps[step_key].deadline
    chosen = spec is not None and spec.until is DeadlineDate.CHOSEN
    if until is not None and not chosen:
        raise InvalidArgument(
            call="Engine.fire",
            argument="until",
            problem=f"None: step {step_key!r} has no deadline whose date the caller chooses",
        )
    if spec is None or (spec.since is None and spec.until is None):
        return None
    anchor = _anchor(encounter, spec.since, timeline)
    latest = due_after(anchor, spec.after, calendar)
    if spec.until is None:
        return latest
    if spec.until is DeadlineDate.KEPT:
        kept = [d.due for d in pending if d.step == encounter.state]
        return min([*kept, latest])
    if until is None:
        raise InvalidArgument(
            call="Engine.fire",
            argument="until",
            problem=f"a timezone-aware moment: step {step_key!r}'s deadline is a date"
            f" the caller chooses, at the latest {latest.isoformat()}",
        )
    if until.astimezone(UTC) <= now.astimezone(UTC):
        raise InvalidArgument(
            call="Engine.fire",
            argument="until",
            problem=f"later than now ({now.isoformat()}): a deadline in the past would"
            " fall at once",
        )
    zone = until.tzinfo
    assert zone is not None  # checked aware by the engine
    latest = _calendar_cap(latest, anchor, spec.after, zone)
    if until.astimezone(UTC) > latest:
        raise InvalidArgument(
            call="Engine.fire",
            argument="until",
            problem=f"no later than {latest.astimezone(zone).isoformat()}"
            f" ({format_duration(spec.after)} after step {spec.since!r} was entered),"
            f" not {until.isoformat()}",
        )
    return until


def chosen_latest(
    protocol: Protocol,
    encounter: Encounter,
    step_key: str,
    timeline: Callable[[str], Sequence[Event]],
    zone: tzinfo,
    calendar: WorkingCalendar | None = None,
) -> datetime | None:
    """The latest moment, in UTC, that :func:`dated` accepts as ``until`` for entering
    ``step_key`` now when it is given in ``zone``; ``None`` when that step's deadline is
    not a date the caller chooses."""
    spec = protocol.steps[step_key].deadline
    if spec is None or spec.until is not DeadlineDate.CHOSEN:
        return None
    anchor = _anchor(encounter, spec.since, timeline)
    return _calendar_cap(due_after(anchor, spec.after, calendar), anchor, spec.after, zone)


def _anchor(
    encounter: Encounter, since: str | None, timeline: Callable[[str], Sequence[Event]]
) -> datetime:
    """When a deadline counted ``from`` step ``since`` starts: the encounter's last entry
    of that step, else (never entered, or no ``from``) its opening."""
    if since is not None:
        for event in reversed(timeline(encounter.id)):
            if isinstance(event, StepEntered | EncounterOpened) and event.step == since:
                return event.at
    return encounter.opened_at


def _calendar_cap(
    latest: datetime, anchor: datetime, after: timedelta | WorkingDays, zone: tzinfo
) -> datetime:
    # a legal bound such as "four weeks after imposing" may be read as elapsed time or as
    # the calendar in the decision's time zone; across a daylight saving change they are
    # an hour apart, and the earlier one holds under both readings
    if isinstance(after, timedelta):  # working days are counted on the calendar only
        return min(latest, (anchor.astimezone(zone) + after).astimezone(UTC))
    return latest


def _missed(
    deadline: PendingDeadline, encounter_id: str, seq: int, now: datetime, actor: Actor
) -> DeadlineMissed:
    # DeadlineMissed(encounter_id, seq, at, actor, deadline_id, step, event, due)
    return _missed_at(
        encounter_id, seq, now, actor, deadline.id, deadline.step, deadline.event, deadline.due
    )


def _schedule(
    encounter: Encounter,
    step_key: str,
    step: Step,
    now: datetime,
    actor: Actor,
    events: list[Event],
    seq: Iterator[int],
    due: datetime | None = None,
    calendar: WorkingCalendar | None = None,
) -> tuple[PendingDeadline, ...]:
    """Schedule the deadline of ``step`` (entered as ``step_key``), if it has one:
    its :class:`DeadlineScheduled` is appended to ``events``. It is due at ``due``
    when given (the engine dated it), else ``after`` from ``now``: real time for a
    timedelta (never wall-clock arithmetic, which is an hour off across a daylight
    saving change), working days on ``calendar``; either way as a UTC instant."""
    deadline_spec = step.deadline
    if deadline_spec is None:
        return ()
    eid = encounter.id
    did = f"{eid}:v{encounter.version}:{step_key}"
    event = deadline_spec.event
    at = due_after(now, deadline_spec.after, calendar) if due is None else due.astimezone(UTC)
    # PendingDeadline(id, encounter_id, step, event, due)
    deadline = _deadline(did, eid, step_key, event, at)
    # DeadlineScheduled(encounter_id, seq, at, actor, deadline_id, step, event, due)
    events.append(_scheduled(eid, next(seq), now, actor, did, step_key, event, at))
    return (deadline,)
