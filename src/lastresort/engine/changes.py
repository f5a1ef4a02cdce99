"""The change each ``open`` and ``fire`` commits: the new snapshot, the events in
timeline order, the deadlines to schedule and clear, the notifications to queue.

Pure functions of their arguments (no store, no clock, no plugins): the engine
decides *whether* a step is taken; these write down *what* taking it means. They
run on every fire, so they build records with their constructors and local names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from itertools import count, repeat

from attrs import evolve

from ..clock import instant_after
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
from ..protocol.model import Actor, Encounter, Protocol, Step, Transition
from ..store.base import Change, PendingDeadline

__all__ = ["opened", "stepped", "unfired"]


def opened(
    protocol: Protocol,
    encounter_id: str,
    actor: Actor,
    facts: Mapping[str, str | bool],
    now: datetime,
    channel: str,
) -> Change:
    """A new encounter in the protocol's initial step: ``EncounterOpened`` and, when
    the step has a deadline, ``DeadlineScheduled`` (numbered from 1)."""
    initial = protocol.initial
    step = protocol.steps[initial]
    encounter = Encounter(
        id=encounter_id,
        protocol=protocol.id,
        protocol_version=protocol.version,
        state=initial,
        responsible=step.responsible,
        facts=facts,
        version=1,
        opened_at=now,
        channel=channel,
    )
    seq = count(1)  # a new encounter's timeline starts at 1
    events: list[Event] = [
        EncounterOpened(
            encounter_id=encounter_id,
            seq=next(seq),
            at=now,
            actor=actor,
            protocol=protocol.id,
            protocol_version=protocol.version,
            step=initial,
            responsible=step.responsible,
            channel=channel,
        )
    ]
    schedule = _schedule(encounter, initial, step, now, actor, events, seq)
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
            DeadlineCleared(
                encounter_id=eid,
                seq=next(seq),
                at=now,
                actor=actor,
                deadline_id=deadline.id,
                step=deadline.step,
                event=deadline.event,
                due=deadline.due,
            )
        )
    events.append(
        StepEntered(
            encounter_id=eid,
            seq=next(seq),
            at=now,
            actor=actor,
            event=event,
            from_step=state,
            step=step_key,
            responsible=responsible,
        )
    )
    if responsible != encounter.responsible and responsible is not None:
        events.append(
            ResponsibilityTransferred(
                encounter_id=eid,
                seq=next(seq),
                at=now,
                actor=actor,
                event=event,
                from_party=encounter.responsible,
                to_party=responsible,
                step=step_key,
            )
        )
    terminal = target.terminal
    after = Encounter(  # the constructor, not attrs.evolve: this is the hot path
        id=eid,
        protocol=encounter.protocol,
        protocol_version=encounter.protocol_version,
        state=step_key,
        responsible=responsible,
        facts=encounter.facts,
        version=version,
        opened_at=encounter.opened_at,
        closed_at=now if terminal else None,
        channel=encounter.channel,
    )
    schedule = _schedule(after, step_key, target, now, actor, events, seq)
    notes = []
    for party in taken.notify:
        key = f"{eid}:v{version}:{event}:{party}"
        notes.append(
            Notification(
                key=key,
                encounter_id=eid,
                protocol=protocol.id,
                event=event,
                step=step_key,
                party=party,
                created_at=now,
                next_attempt_at=now,
            )
        )
        events.append(
            NotificationQueued(
                encounter_id=eid,
                seq=next(seq),
                at=now,
                actor=actor,
                key=key,
                party=party,
                event=event,
            )
        )
    if terminal:
        events.append(
            EncounterClosed(encounter_id=eid, seq=next(seq), at=now, actor=actor, step=step_key)
        )
    return Change(
        encounter=after,
        expected_version=encounter.version,
        events=events,
        schedule=schedule,
        clear=clear,
        outbox=notes,
        consume=None if missed is None else missed.id,
    )


def unfired(
    encounter: Encounter,
    step: Step,
    deadline: PendingDeadline,
    now: datetime,
    actor: Actor,
    first_seq: int = 0,
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
    schedule = _schedule(after, encounter.state, step, now, actor, events, seq)
    return Change(
        encounter=after,
        expected_version=encounter.version,
        events=events,
        schedule=schedule,
        clear=[deadline.id],
        consume=deadline.id,
    )


def _missed(
    deadline: PendingDeadline, encounter_id: str, seq: int, now: datetime, actor: Actor
) -> DeadlineMissed:
    return DeadlineMissed(
        encounter_id=encounter_id,
        seq=seq,
        at=now,
        actor=actor,
        deadline_id=deadline.id,
        step=deadline.step,
        event=deadline.event,
        due=deadline.due,
    )


def _schedule(
    encounter: Encounter,
    step_key: str,
    step: Step,
    now: datetime,
    actor: Actor,
    events: list[Event],
    seq: Iterator[int],
) -> tuple[PendingDeadline, ...]:
    """Schedule the deadline of ``step`` (entered as ``step_key``), if it has one:
    its :class:`DeadlineScheduled` is appended to ``events``. It is due ``after`` of
    real time from ``now``, as a UTC instant (never wall-clock arithmetic, which is
    an hour off across a daylight saving change)."""
    deadline_spec = step.deadline
    if deadline_spec is None:
        return ()
    eid = encounter.id
    deadline = PendingDeadline(
        id=f"{eid}:v{encounter.version}:{step_key}",
        encounter_id=eid,
        step=step_key,
        event=deadline_spec.event,
        due=instant_after(now, deadline_spec.after),
    )
    events.append(
        DeadlineScheduled(
            encounter_id=eid,
            seq=next(seq),
            at=now,
            actor=actor,
            deadline_id=deadline.id,
            step=step_key,
            event=deadline.event,
            due=deadline.due,
        )
    )
    return (deadline,)
