"""Frozen event records: the timeline of an encounter.

Every event has the encounter id, a sequence number (gapless per encounter,
assigned by the store at commit), the time and the actor. Events carry step,
party and event names only: never anything about the child.
"""

from __future__ import annotations

from datetime import datetime

from attrs import frozen

from .protocol.model import Actor

__all__ = [
    "DeadlineCleared",
    "DeadlineDeferred",
    "DeadlineMissed",
    "DeadlineScheduled",
    "EncounterClosed",
    "EncounterOpened",
    "Event",
    "NotificationDeadLettered",
    "NotificationDelivered",
    "NotificationQueued",
    "ObserverFailed",
    "ResponsibilityTransferred",
    "StepEntered",
]


@frozen(kw_only=True)
class Event:
    """Base of every event.

    :param encounter_id: the encounter it belongs to.
    :param seq: its place in the encounter's timeline (1, 2, 3, ...); ``0`` before commit.
    :param at: when it happened (the engine's clock).
    :param actor: who caused it (``clock`` for deadlines, ``outbox`` for deliveries).
    """

    encounter_id: str
    seq: int = 0
    at: datetime
    actor: Actor

    @property
    def kind(self) -> str:
        """The event's class name, e.g. ``StepEntered``."""
        return type(self).__name__


@frozen(kw_only=True)
class EncounterOpened(Event):
    """A child arrived: the encounter exists, in the protocol's initial step."""

    protocol: str
    protocol_version: str
    step: str
    responsible: str | None
    channel: str


@frozen(kw_only=True)
class StepEntered(Event):
    """``event`` moved the encounter from ``from_step`` to ``step``."""

    event: str
    from_step: str
    step: str
    responsible: str | None


@frozen(kw_only=True)
class ResponsibilityTransferred(Event):
    """Responsibility for the child moved from one party to another (a handover)."""

    event: str
    from_party: str | None
    to_party: str | None
    step: str


@frozen(kw_only=True)
class DeadlineScheduled(Event):
    """Entering ``step`` scheduled its deadline: ``event`` fires at ``due``."""

    deadline_id: str
    step: str
    event: str
    due: datetime


@frozen(kw_only=True)
class DeadlineMissed(Event):
    """The deadline fell due while the encounter was still in ``step``; the clock fires ``event``."""

    deadline_id: str
    step: str
    event: str
    due: datetime


@frozen(kw_only=True)
class DeadlineCleared(Event):
    """The encounter left ``step`` before its deadline (or the deadline fired)."""

    deadline_id: str
    step: str
    event: str
    due: datetime


@frozen(kw_only=True)
class DeadlineDeferred(Event):
    """A due deadline could not fire now: the store failed (or a plugin raised)
    while firing it. It stays pending and is claimed again at ``retry_at`` (when the
    tick's lease runs out). Returned by ``tick`` and logged; not stored.

    :param error: the error's class and, for lastresort's own errors, its message.
    """

    deadline_id: str
    step: str
    event: str
    due: datetime
    error: str
    retry_at: datetime


@frozen(kw_only=True)
class NotificationQueued(Event):
    """A notification to ``party`` was put in the outbox in the same commit as its step."""

    key: str
    party: str
    event: str


@frozen(kw_only=True)
class NotificationDelivered(Event):
    """The notification ``key`` was delivered (``attempts`` tries; ``receipt`` from the hook)."""

    key: str
    party: str
    receipt: str
    attempts: int


@frozen(kw_only=True)
class EncounterClosed(Event):
    """The encounter reached the terminal step ``step``."""

    step: str


@frozen(kw_only=True)
class ObserverFailed(Event):
    """An observer (``lastresort_on_event``) raised after a commit. Returned to the
    caller and logged; not stored, and the committed step stands."""

    plugin: str
    error: str
    observed_seq: int


@frozen(kw_only=True)
class NotificationDeadLettered(Event):
    """The notification ``key`` to ``party`` failed ``attempts`` times and is given up:
    it is never handed over again. ``error_kind`` is the exception type of the last
    failure (``DeliveryTimeout`` when the hook did not return in time), never its
    text. ``emergency`` is true when the notification was for an ``emergency`` party
    (the police), for a step tagged ``emergency`` or for ``acute_danger``. The
    escalation this dead letter causes follows in the same commit as
    ``NotificationQueued`` events (see docs/guarantees.md, "Outbox")."""

    key: str
    party: str
    attempts: int
    error_kind: str
    emergency: bool
