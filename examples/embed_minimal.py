"""The smallest embedding of lastresort: what a counter-desk screen needs.

Run it:  .venv/bin/python examples/embed_minimal.py

In production use ``store=lr.SQLiteStore("lastresort.db")`` and the default
``SystemClock``; here a virtual clock lets the example show a missed deadline
without waiting 45 minutes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import lastresort as lr


class PrintDelivery:
    """A delivery plugin: in real life a pager, SMS gateway or ZGW notification."""

    @lr.hookimpl
    def lastresort_delivers_for(self) -> list[str]:
        return ["taskforce"]  # the protocols it delivers for; ["*"] for every one

    @lr.hookimpl
    def lastresort_deliver(self, notification: lr.Notification) -> str:
        print(f"  -> notify {notification.party}: {notification.event} (key {notification.key})")
        return "printed"


def main() -> None:
    clock = lr.VirtualClock(datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam")))
    engine = lr.Engine(plugins=[PrintDelivery()], clock=clock)

    # who acts: a role and a pseudonymous staff id (never a name); only the clock is anonymous
    clerk, expert = lr.Actor("counter", "clerk-07"), lr.Actor("expert", "expert-12")

    # a child asks for the mayor at the counter: only declared facts, never a name or BSN
    child = engine.open("taskforce", actor=clerk, facts={"age_band": "12-15"})
    print(
        f"opened {child.id} in {child.state!r}; counter may: {engine.allowed(child.id, 'counter')}"
    )

    engine.fire(child.id, "call_expert", actor=clerk)
    engine.deliver()

    clock.advance(timedelta(minutes=50))  # the expert is late
    for event in engine.tick():
        if isinstance(event, lr.DeadlineMissed):
            print(f"deadline missed: {event.event}")
    engine.deliver()

    engine.fire(child.id, "expert_takes_over", actor=expert)  # the receiver accepts
    engine.deliver()

    now = engine.get(child.id)
    print(f"now in {now.state!r}, responsible: {now.responsible}")
    for event in engine.timeline(child.id):
        print(f"{event.seq:>3} {event.at:%H:%M} {event.actor.role:<8} {event.kind}")


if __name__ == "__main__":
    main()
