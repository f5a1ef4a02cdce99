"""Shared by the store tests and their child processes: a protocol that can be fired
forever, and the consistency check every store must pass.

Importable as ``tests.store_kit`` from tests and by path from child scripts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import lastresort as lr

START = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))

_TEXT = {"nl": "Blijf bij het kind.", "en": "Stay with the child."}

#: A protocol with a cycle (desk -> room -> desk), a handover and back, deadlines on
#: both cycle steps, notifications, and two terminal steps.
RELAY: dict[str, Any] = {
    "protocol": {
        "id": "relay",
        "version": "1",
        "municipality": "Teststad",
        "title": {"nl": "Estafette", "en": "Relay"},
        "initial": "desk",
        "source": "lastresort store tests",
    },
    "parties": {
        "counter": {"name": {"nl": "Balie", "en": "Counter"}, "kind": "municipal_staff"},
        "expert": {"name": {"nl": "Deskundige", "en": "Expert"}, "kind": "expert"},
        "police": {"name": {"nl": "Politie", "en": "Police"}, "kind": "emergency"},
    },
    "steps": {
        "desk": {
            "responsible": "counter",
            "kind": "active",
            "deadline": {"after": "30m", "event": "desk_timeout"},
            "instructions": _TEXT,
        },
        "room": {
            "responsible": "counter",
            "kind": "waiting",
            "deadline": {"after": "20m", "event": "room_timeout"},
            "instructions": _TEXT,
        },
        "with_expert": {
            "responsible": "expert",
            "kind": "active",
            "tags": ["child_with_expert"],
            "instructions": _TEXT,
        },
        "closed": {"kind": "terminal", "tags": ["safe_arrangement"], "instructions": _TEXT},
        "with_police": {
            "responsible": "police",
            "kind": "terminal",
            "tags": ["emergency"],
            "instructions": _TEXT,
        },
    },
    "transitions": [
        {"event": "go", "from": ["desk"], "to": "room", "by": ["counter"], "notify": ["expert"]},
        {"event": "back", "from": ["room"], "to": "desk", "by": ["counter"]},
        {"event": "desk_timeout", "from": ["desk"], "to": "room", "by": ["clock"]},
        {
            "event": "room_timeout",
            "from": ["room"],
            "to": "desk",
            "by": ["clock"],
            "notify": ["expert"],
        },
        {"event": "take_over", "from": ["desk", "room"], "to": "with_expert", "by": ["expert"]},
        {"event": "hand_back", "from": ["with_expert"], "to": "desk", "by": ["counter"]},
        {"event": "close", "from": ["with_expert"], "to": "closed", "by": ["expert"]},
        {
            "event": "acute_danger",
            "from": "*",
            "to": "with_police",
            "by": ["counter", "expert"],
            "notify": ["police"],
        },
    ],
    "facts": {"age_band": ["0-7", "8-11", "12-15", "16-17"], "disclosure": "bool"},
}

#: event -> the role that fires it (the receiving party for a handover)
ACTOR = {
    "go": "counter",
    "back": "counter",
    "take_over": "expert",
    "hand_back": "counter",
    "close": "expert",
    "acute_danger": "counter",
}


def relay() -> lr.Protocol:
    return lr.load_protocol(RELAY)


def moves(protocol: lr.Protocol, state: str) -> list[str]:
    """Events a person may fire from ``state`` (no deadline events)."""
    return [
        t.event
        for t in protocol.transitions
        if t.event in ACTOR and state in protocol.sources_of(t)
    ]


class Receipts:
    """A delivery plugin that fails every third attempt (so retries are stored)."""

    def __init__(self) -> None:
        self.calls = 0

    @lr.hookimpl
    def lastresort_deliver(self, notification: lr.Notification) -> str:
        self.calls += 1
        if self.calls % 3 == 0:
            raise ConnectionError("pager gateway down")
        return f"receipt-{notification.key}"


def consistency_problems(store: lr.Store, ids: Iterable[str] | None = None) -> list[str]:
    """Everything in ``store`` that is half-stepped, through the public Store API:
    numbering, snapshot state against the timeline, pending deadlines against the
    deadline events."""
    problems = []
    for eid in ids if ids is not None else store.encounter_ids():
        encounter = store.load(eid)
        timeline = store.timeline(eid)
        if [e.seq for e in timeline] != list(range(1, len(timeline) + 1)):
            problems.append(f"{eid}: sequence numbers {[e.seq for e in timeline]}")
        steps = [e for e in timeline if isinstance(e, lr.StepEntered | lr.EncounterOpened)]
        if not steps or steps[-1].step != encounter.state:
            problems.append(f"{eid}: in {encounter.state!r}, timeline says {steps[-1:]}")
        closed = any(isinstance(e, lr.EncounterClosed) for e in timeline)
        if closed != (encounter.closed_at is not None):
            problems.append(f"{eid}: closed_at {encounter.closed_at} but closed event {closed}")
        scheduled = {e.deadline_id: e for e in timeline if isinstance(e, lr.DeadlineScheduled)}
        ended = {
            e.deadline_id for e in timeline if isinstance(e, lr.DeadlineCleared | lr.DeadlineMissed)
        }
        expected = {(d, e.step, e.event, e.due) for d, e in scheduled.items() if d not in ended}
        pending = {(d.id, d.step, d.event, d.due) for d in store.deadlines(eid)}
        if pending != expected:
            problems.append(f"{eid}: pending deadlines {pending} but timeline says {expected}")
        if any(d.step != encounter.state for d in store.deadlines(eid)):
            problems.append(f"{eid}: a pending deadline of another step than {encounter.state}")
    return problems
