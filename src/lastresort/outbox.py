"""Outbox notifications: written in the same commit as their step, delivered after.

Delivery is at least once: a notification is handed to the ``lastresort_deliver``
hook until it succeeds, with exponential backoff between failures, at most
``max_attempts`` times; then it is dead-lettered (never handed over again) and
escalated. Its ``key`` is the idempotency key a receiver uses to drop repeats.

A notification is in one of three states, each derivable from the encounter's
hashed timeline: queued (``NotificationQueued``), delivered
(``NotificationDelivered``) or dead-lettered (``NotificationDeadLettered``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar, cast

from attrs import frozen

from .errors import InvalidArgument
from .privacy import exception_kind
from .protocol.model import ACUTE_DANGER, PartyKind, Protocol

__all__ = [
    "ESCALATED",
    "Backoff",
    "DeliveryDeferred",
    "DeliveryRefused",
    "DeliveryTimeout",
    "NotDelivered",
    "Notification",
    "check_delivery_settings",
    "escalation_key",
    "failure_text",
    "hand_over",
    "is_emergency",
    "retry_delay",
]

T = TypeVar("T")

#: what separates a dead-lettered notification's key from the party an escalation
#: of it goes to (``<key>:escalated:<party>``)
ESCALATED = ":escalated:"


def escalation_key(key: str, party: str) -> str:
    """The key of the notification that tells ``party`` that notification ``key``
    could not be delivered."""
    return f"{key}{ESCALATED}{party}"


@frozen(kw_only=True)
class Notification:
    """One message to one party about one event. Ids and names only, no child data.

    :param key: idempotency key, stable across retries (``<encounter>:<seq>:<party>``).
    :param encounter_id: the encounter (a pseudonymous id).
    :param protocol: the protocol id.
    :param event: the event that caused it.
    :param step: the step entered.
    :param party: the role to notify.
    :param created_at: when it was queued.
    :param attempts: failed or claimed delivery attempts so far.
    :param next_attempt_at: not delivered before this moment.
    :param contact: who is on duty for the role (``lastresort_party_directory``),
        set just before each attempt and kept in the outbox after it (delivered,
        failed or dead-lettered): staff's address, never the child's data;
        ``None`` before the first attempt or when no directory knows.
    :param last_error: what failed the last attempt, if any: the exception's class
        name (:func:`failure_text`), never its message.
    :param delivered_at: when it was delivered (``None`` while it is not).
    :param dead_lettered_at: when it was given up on after ``max_attempts``
        failures (``None`` while it is not); it is never handed over again.
    """

    key: str
    encounter_id: str
    protocol: str
    event: str
    step: str
    party: str
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime
    contact: str | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    dead_lettered_at: datetime | None = None

    @property
    def pending(self) -> bool:
        """Whether it still waits for delivery (neither delivered nor dead-lettered)."""
        return self.delivered_at is None and self.dead_lettered_at is None

    @property
    def escalates(self) -> str | None:
        """The key of the dead-lettered notification this one escalates, if it is an
        escalation (see :func:`escalation_key`); an escalation is not escalated again."""
        head, found, _ = self.key.rpartition(ESCALATED)
        return head if found else None


@frozen
class Backoff:
    """Exponential backoff: ``base * factor ** (attempt - 1)``, at most ``cap``."""

    base: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)

    def __attrs_post_init__(self) -> None:
        """:raises InvalidArgument: for a ``base`` or ``cap`` that is not a timedelta in
        (0, 366 days] (the audit relies on no retry waiting longer), or a ``factor``
        that is not a finite number ≥ 1."""
        for name in ("base", "cap"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or not timedelta(0) < value <= MAX_RETRY:
                raise InvalidArgument(
                    call="Backoff",
                    argument=name,
                    problem=f"a timedelta of more than zero and at most {MAX_RETRY.days} days,"
                    f" not {value!r}",
                )
        factor = self.factor
        if (
            isinstance(factor, bool)
            or not isinstance(factor, int | float)
            or not (1 <= factor < float("inf"))
        ):
            raise InvalidArgument(
                call="Backoff", argument="factor", problem=f"a finite number >= 1, not {factor!r}"
            )

    def delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1 for the first failure)."""
        try:
            seconds = self.base.total_seconds() * self.factor ** max(attempt - 1, 0)
            wait = timedelta(seconds=seconds)
        except OverflowError:  # past any cap: a thousand doublings
            return self.cap
        return min(wait, self.cap)


#: the longest wait a :class:`Backoff` may have between attempts
MAX_RETRY = timedelta(days=366)


class DeliveryTimeout(TimeoutError):
    """The ``lastresort_deliver`` hook did not return within the engine's
    ``delivery_timeout``: the attempt counts as failed (the hook's thread may still
    be running, and may still deliver: receivers drop repeats by key)."""


class NotDelivered(LookupError):
    """Every ``lastresort_deliver`` hook returned ``None``: no plugin delivered it."""


#: lastresort's own delivery failures, described in lastresort's own fixed words (a
#: plugin may raise these classes too, with any message)
_OWN_FAILURES: dict[type[BaseException], str] = {
    DeliveryTimeout: "the delivery hook did not return within the delivery timeout",
    NotDelivered: "no plugin delivered it",
}


def failure_text(exc: BaseException) -> str:
    """What is kept of a failed delivery attempt (in ``last_error``, and logged): the
    class name of what was raised (:func:`~lastresort.privacy.exception_kind`), and
    for lastresort's own failures a fixed description. Never the exception's
    message: a plugin's could hold anything, a child's name or BSN included."""
    kind = exception_kind(exc)
    own = _OWN_FAILURES.get(type(exc))
    return kind if own is None else f"{kind}: {own}"


def hand_over(call: Callable[[], T], timeout: float | None) -> T:
    """``call()``, in a daemon thread when ``timeout`` is set: its result, or what it
    raised; :class:`DeliveryTimeout` when it has not returned after ``timeout``
    seconds (the thread is left to finish on its own, so a hanging hook never
    holds the caller, nor the process at exit).

    :param timeout: seconds, or ``None`` to call in this thread without a limit.
    """
    if timeout is None:
        return call()
    box: list[tuple[bool, Any]] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append((True, call()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who decides
            box.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=run, name="lastresort-deliver", daemon=True).start()
    if not done.wait(timeout):
        raise DeliveryTimeout(f"the delivery hook did not return within {timeout} s")
    ok, value = box[0]
    if ok:
        return cast(T, value)
    raise value


class DeliveryRefused(Exception):
    """Raised by a ``lastresort_deliver`` hook when retrying cannot help: the receiver
    refused the notification for good (an HTTP 4xx other than 408 and 429, say). The
    outbox dead-letters it at once, after this one attempt, and escalates it like any
    dead letter (``error_kind`` is ``"DeliveryRefused"``, or the subclass's name).

    Like :class:`DeliveryTimeout`, a signal about a delivery, not an error lastresort
    raises to its caller (so not a :class:`~lastresort.LastResortError`). Its message
    must carry no data about the child (a status code and a party are fine)."""


class DeliveryDeferred(Exception):
    """Raised by a ``lastresort_deliver`` hook for a failure that may pass (HTTP 5xx,
    408, 429, a timeout, a refused connection) when the receiver said when to try again
    (``Retry-After``). The attempt counts as failed, as any other exception does; the
    next one is not before ``retry_after``, nor before the engine's :class:`Backoff`
    delay, and never later than the backoff's ``cap`` (a child's notification does not
    wait longer because a receiver asks). ``max_attempts`` still bounds the attempts.

    :param retry_after: the receiver's wait, a positive :class:`~datetime.timedelta`,
        or ``None`` when it gave none (then this is just a transient failure).
    :raises InvalidArgument: for a ``retry_after`` that is not ``None`` or a positive
        timedelta.
    """

    def __init__(self, message: str, *, retry_after: timedelta | None = None) -> None:
        if retry_after is not None and (
            not isinstance(retry_after, timedelta) or retry_after <= timedelta(0)
        ):
            raise InvalidArgument(
                call="DeliveryDeferred",
                argument="retry_after",
                problem=f"None or a timedelta of more than zero, not {type(retry_after).__name__}",
            )
        self.retry_after = retry_after
        super().__init__(message)


def retry_delay(backoff: Backoff, attempt: int, exc: BaseException) -> timedelta:
    """The wait after failed attempt ``attempt``: the backoff's delay, or a
    :class:`DeliveryDeferred`'s ``retry_after`` when that is longer, at most the cap."""
    delay = backoff.delay(attempt)
    if isinstance(exc, DeliveryDeferred) and exc.retry_after is not None:
        delay = min(max(delay, exc.retry_after), backoff.cap)
    return delay


def is_emergency(note: Notification, protocol: Protocol | None) -> bool:
    """Whether ``note`` is about an emergency: for a party of kind ``emergency`` (the
    police), about a step tagged ``emergency`` or about ``acute_danger``; when the
    engine does not run its protocol it cannot tell, and assumes so."""
    if protocol is None or note.event == ACUTE_DANGER:
        return True
    party = protocol.parties.get(note.party)
    step = protocol.steps.get(note.step)
    return (party is not None and party.kind is PartyKind.EMERGENCY) or (
        step is not None and "emergency" in step.tags
    )


def check_delivery_settings(
    timeout: float | None, lease: timedelta, max_attempts: int
) -> tuple[float | None, timedelta, int]:
    """The delivery settings of an :class:`~lastresort.Engine`, checked.

    :raises InvalidArgument: (a :class:`ValueError` too) naming the setting out of
        range."""

    def refuse(argument: str, problem: str) -> NoReturn:
        raise InvalidArgument(call="Engine", argument=argument, problem=problem)

    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout < float("inf")
    ):
        refuse("delivery_timeout", f"None or a number of seconds > 0, not {timeout!r}")
    if not isinstance(lease, timedelta) or not timedelta(0) < lease <= MAX_RETRY:
        refuse(
            "delivery_lease",
            f"a positive timedelta of at most {MAX_RETRY.days} days, not {lease!r}",
        )
    if timeout is not None and lease.total_seconds() <= timeout:
        refuse(
            "delivery_lease",
            f"longer than delivery_timeout ({lease} is not longer than {timeout} s),"
            " or another worker takes a notification over while it is being delivered",
        )
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        refuse("max_attempts", f"a whole number >= 1, not {max_attempts!r}")
    return (None if timeout is None else float(timeout)), lease, max_attempts
