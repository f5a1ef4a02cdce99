"""A delivery that records instead of paging: for tests and scenario runs.

Re-exported as :class:`lastresort.testing.RecordingDelivery`; the pytest fixture
``recording_delivery`` and scenario runs (unless ``--real-delivery``) make every
engine built meanwhile deliver through one (see :func:`replacing_delivery`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

from attrs import frozen

from ..outbox import DeliveryDeferred, DeliveryRefused, Notification
from .hookspecs import hookimpl
from .plugins import EVERY, replacing_delivery

__all__ = ["RECEIPT", "Attempt", "RecordingDelivery", "Selector", "replacing_delivery"]

#: the receipt a :class:`RecordingDelivery` gives for a notification it delivered
RECEIPT = "recorded"

#: which notifications: the party keys they go to, or a predicate
Selector = Iterable[str] | Callable[[Notification], bool]


@frozen
class Attempt:
    """One notification handed to a :class:`RecordingDelivery`, and what it answered.

    :param notification: as handed over (with ``contact`` and ``attempts`` set).
    :param outcome: ``"delivered"``, ``"refused"`` or ``"deferred"``.
    """

    notification: Notification
    outcome: str


def _matcher(selector: Selector) -> Callable[[Notification], bool]:
    if callable(selector):
        return selector
    parties = frozenset(selector)
    return lambda note: note.party in parties


class RecordingDelivery:
    """A delivery plugin that records every notification it is handed and delivers it
    (receipt ``"recorded"``), unless told to refuse or defer it. Nothing is sent.

    Register it like any plugin (``Engine(plugins=[recording])``; it is asked before
    installed plugins), or let it replace every delivery: the ``recording_delivery``
    fixture, :func:`replacing_delivery`, and scenario runs do.

    :param protocols: the protocols it delivers for (``lastresort_delivers_for``);
        default every protocol.
    :param refuse: notifications to refuse for good (:class:`DeliveryRefused`: they
        are dead-lettered and escalated at once): party keys, or a predicate.
    :param defer: notifications to defer (:class:`DeliveryDeferred` with
        ``retry_after``: they are tried again later): party keys, or a predicate.
    :param retry_after: what a deferral asks for.
    """

    def __init__(
        self,
        protocols: Sequence[str] = (EVERY,),
        *,
        refuse: Selector = (),
        defer: Selector = (),
        retry_after: timedelta = timedelta(minutes=5),
    ) -> None:
        self.protocols = list(protocols)
        self.refuse = _matcher(refuse)
        self.defer = _matcher(defer)
        self.retry_after = retry_after
        #: every notification handed over, with the answer, in order
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()  # delivery may run in a thread of its own

    @property
    def delivered(self) -> list[Notification]:
        """The notifications it delivered, in order."""
        with self._lock:
            return [a.notification for a in self.attempts if a.outcome == "delivered"]

    def to(self, party: str) -> list[Notification]:
        """The notifications delivered to ``party`` (a party key), in order."""
        return [n for n in self.delivered if n.party == party]

    def clear(self) -> None:
        """Forget what was recorded."""
        with self._lock:
            self.attempts.clear()

    @hookimpl
    def lastresort_delivers_for(self) -> list[str]:
        """:attr:`protocols`."""
        return list(self.protocols)

    @hookimpl(tryfirst=True)
    def lastresort_deliver(self, notification: Notification) -> str:
        """Record ``notification``; refuse or defer it when told to, else deliver it.

        :raises DeliveryRefused: for a notification ``refuse`` selects.
        :raises DeliveryDeferred: for a notification ``defer`` selects.
        """
        if self.refuse(notification):
            self._record(notification, "refused")
            raise DeliveryRefused("refused by RecordingDelivery")
        if self.defer(notification):
            self._record(notification, "deferred")
            raise DeliveryDeferred("deferred by RecordingDelivery", retry_after=self.retry_after)
        self._record(notification, "delivered")
        return RECEIPT

    def _record(self, notification: Notification, outcome: str) -> None:
        with self._lock:
            self.attempts.append(Attempt(notification, outcome))

    def __repr__(self) -> str:
        return f"RecordingDelivery(protocols={self.protocols!r}, attempts={len(self.attempts)})"
