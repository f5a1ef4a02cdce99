"""Fault-injection kit: a store that fails where it is told to, and helpers to try
every call site of a scripted scenario in turn.

:class:`FaultyStore` wraps any :class:`lastresort.Store` and counts every call per
method. A :class:`Fault` makes the ``nth`` call of one method raise (``before``: the
inner store is not called, nothing happens; ``after``: the inner call happens and
its result is lost, as when a connection drops after the commit). An action runs a
callable at a call site instead (to let another worker in at that very moment).

:func:`call_sites` runs a scenario once without faults and lists every
``(method, nth)`` it made: fail each in turn to try every call site.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Literal

from attrs import field, frozen

import lastresort as lr

Site = tuple[str, int]

#: Store methods that change or read durable state (``close`` is left alone).
METHODS = frozenset(
    {
        "load",
        "commit",
        "timeline",
        "deadlines",
        "claim_deadlines",
        "next_due",
        "release_deadline",
        "claim_outbox",
        "delivered",
        "failed",
        "outbox",
        "encounter_ids",
        "next_seq",
        "record_refusal",
        "refusals",
    }
)


def _store_error(site: Site) -> BaseException:
    return lr.StoreError(problem=f"injected fault at call {site[1]} of {site[0]}")


@frozen
class Fault:
    """Raise ``error(site)`` at the ``nth`` call of ``method``."""

    method: str
    nth: int = 1
    when: Literal["before", "after"] = "before"
    error: Callable[[Site], BaseException] = field(default=_store_error)


class FaultyStore:
    """A store that delegates to ``inner`` and fails or acts at chosen call sites.

    :param faults: the faults to inject.
    :param actions: a callable to run at a call site, before the inner call.
    :ivar calls: every call made, as ``(method, nth)``, in order.
    :ivar raised: the call sites where a fault was raised.
    """

    def __init__(
        self,
        inner: Any,
        faults: list[Fault] | tuple[Fault, ...] = (),
        actions: Mapping[Site, Callable[[], object]] | None = None,
    ) -> None:
        self.inner = inner
        self.faults = {(f.method, f.nth): f for f in faults}
        self.actions = dict(actions or {})
        self.counts: Counter[str] = Counter()
        self.calls: list[Site] = []
        self.raised: list[Site] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name not in METHODS:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] += 1
            site = (name, self.counts[name])
            self.calls.append(site)
            action = self.actions.pop(site, None)
            if action is not None:
                action()
            fault = self.faults.get(site)
            if fault is not None and fault.when == "before":
                self.raised.append(site)
                raise fault.error(site)
            result = target(*args, **kwargs)
            if fault is not None:
                self.raised.append(site)
                raise fault.error(site)
            return result

        return call

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"FaultyStore({self.inner!r})"


def call_sites(run: Callable[[FaultyStore], object], make_store: Callable[[], Any]) -> list[Site]:
    """Every ``(method, nth)`` call that ``run`` makes on a fault-free store."""
    store = FaultyStore(make_store())
    try:
        run(store)
    finally:
        store.close()
    return list(store.calls)
