"""Outbox notifications: written in the same commit as their step, delivered after.

Delivery is at least once: a notification is handed to the ``lastresort_deliver``
hook until it succeeds, with exponential backoff between failures. Its ``key`` is
the idempotency key a receiver uses to drop repeats.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from attrs import frozen

__all__ = ["Backoff", "Notification"]


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
        set just before delivery.
    :param last_error: the type and message of the last failure, if any.
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


@frozen
class Backoff:
    """Exponential backoff: ``base * factor ** (attempt - 1)``, at most ``cap``."""

    base: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)

    def delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1 for the first failure)."""
        seconds = self.base.total_seconds() * self.factor ** max(attempt - 1, 0)
        return min(timedelta(seconds=seconds), self.cap)
