"""lastresort-huisverbod: the mayor's temporary restraining order as a lastresort protocol.

Under the *Wet tijdelijk huisverbod* the mayor may order an **adult** out of the home for
**10 days** when his presence is a serious and immediate danger (or there is a serious
suspicion of it). In cases of child abuse the mayor **consults Veilig Thuis beforehand**; in
urgent cases the order is given **orally** first; the person removed gives a **contact
address** at once or within **24 hours**; a *hulpofficier van justitie* may impose it under
the mayor's mandate, but **extension** (to a date the mayor chooses, at most **four weeks**
after imposing: ``engine.fire(order_id, "extend", lr.Actor("mayor", "mayor-1"), until=date)``) and **withdrawal**
are the mayor's own; the court can set the order aside or suspend it (its end kept); help
starts for everyone involved during the order.

The protocol is data (``huisverbod.toml``, ``kind = "order"``). This module adds what the data
cannot say:

- the guard ``huisverbod_subject_adult``: Veilig Thuis is consulted, and so an order is
  prepared, only for an encounter opened with the fact ``subject = "adult"`` (the engine
  already refuses any other value; this also refuses a missing one);
- the guard ``huisverbod_urgent``: an oral order only in an urgent case (fact ``urgent``);
- a check that the ``huisverbod`` protocol keeps the law's limits (at most 28 days, an adult
  only, extension and withdrawal by the mayor alone);
- the verifier property ``huisverbod-ten-days``: once imposed, the order ends by the clock
  exactly 10 days later unless the mayor extends or withdraws it;
- :func:`order_ends_at`: when an order in force ends;
- the public desks in the party directory (Veilig Thuis 0800-2000, police 112).

Use it through the ``lastresort`` entry point (installed), or explicitly::

    import lastresort as lr
    import lastresort_huisverbod

    engine = lr.Engine(plugins=[lastresort_huisverbod], entry_points=False)
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta

import lastresort as lr

__all__ = [
    "GUARD_SUBJECT_ADULT",
    "GUARD_URGENT",
    "IMPOSE_EVENTS",
    "INITIAL_PERIOD",
    "MAX_TOTAL",
    "PROPERTY_TEN_DAYS",
    "PROTOCOL_ID",
    "lastresort_guard",
    "lastresort_guard_names",
    "lastresort_party_directory",
    "lastresort_protocol_properties",
    "lastresort_protocols",
    "lastresort_validate_protocol",
    "order_ends_at",
    "protocol",
]

#: The protocol id this plugin provides.
PROTOCOL_ID = "huisverbod"
#: Guard: the order is prepared only against an adult (fact ``subject = "adult"``).
GUARD_SUBJECT_ADULT = "huisverbod_subject_adult"
#: Guard: an oral order only in an urgent case (fact ``urgent = true``).
GUARD_URGENT = "huisverbod_urgent"
#: The verifier property this plugin adds.
PROPERTY_TEN_DAYS = "huisverbod-ten-days"
#: The events that impose the order.
IMPOSE_EVENTS = ("impose", "impose_orally")
#: How long an order holds unless extended (Wet tijdelijk huisverbod art. 2(1)).
INITIAL_PERIOD = timedelta(days=10)
#: The most an order may hold in total, extension included (art. 9: four weeks).
MAX_TOTAL = timedelta(days=28)

_IN_FORCE = "order_in_force"
_CLOCK = "clock"
_MAYORS_OWN = frozenset({"extended", "withdrawn"})

#: Public desks only; a municipality registers its own directory for the mayor and the
#: hulpofficier on duty (an explicitly given plugin is asked first).
_PUBLIC_DESKS: Mapping[str, str] = {
    "veilig_thuis": "Veilig Thuis 0800-2000 (24/7)",
    "police": "112",
}


def _duration(delta: timedelta) -> str:
    """``10d``, ``9d23h``, ``28d``: the protocol file's way of writing a duration."""
    minutes = int(delta.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return "".join(parts) or "0m"


@functools.cache
def protocol() -> lr.Protocol:
    """The ``huisverbod`` protocol, loaded once from the package's ``huisverbod.toml``.

    :raises lastresort.ProtocolError: when the data file is broken (every problem listed).
    """
    return lr.load_packaged_protocol(__name__, "huisverbod.toml")


def _clock_successor(protocol: lr.Protocol, step: str) -> str | None:
    """Where the clock takes an encounter that stays in ``step`` until its deadline."""
    deadline = protocol.steps[step].deadline
    if deadline is None:
        return None
    for transition in protocol.transitions:
        if (
            transition.event == deadline.event
            and _CLOCK in transition.by
            and transition.guard is None
            and step in protocol.sources_of(transition)
        ):
            return transition.target
    return None


def order_ends_at(engine: lr.Engine, encounter_id: str) -> datetime | None:
    """When the order in ``encounter_id`` ends by the clock, if nobody extends or
    withdraws it: the pending deadline of the current step plus the deadlines of the
    steps the clock leads through after it, up to a step where the order is no longer
    in force.

    :param engine: the engine that runs the encounter.
    :param encounter_id: an encounter of an order protocol.
    :returns: the moment, or ``None`` when the order is not (or no longer) in force.
    :raises lastresort.UnknownEncounter: for an unknown id.
    """
    encounter = engine.get(encounter_id)
    protocol = engine.protocol(encounter.protocol)
    if _IN_FORCE not in protocol.steps[encounter.state].tags:
        return None
    pending = [d for d in engine.deadlines(encounter_id) if d.step == encounter.state]
    if not pending:
        return None
    end = pending[0].due
    seen = {encounter.state}
    step = _clock_successor(protocol, encounter.state)
    while step is not None and step not in seen and _IN_FORCE in protocol.steps[step].tags:
        seen.add(step)
        deadline = protocol.steps[step].deadline
        assert deadline is not None  # _clock_successor found a deadline-free step's way out
        end += deadline.after
        step = _clock_successor(protocol, step)
    return end


@lr.hookimpl
def lastresort_protocols() -> Sequence[lr.Protocol]:
    """Provide the ``huisverbod`` protocol."""
    return [protocol()]


@lr.hookimpl
def lastresort_guard_names() -> Sequence[str]:
    """The guards this plugin answers."""
    return [GUARD_SUBJECT_ADULT, GUARD_URGENT]


@lr.hookimpl
def lastresort_guard(name: str, encounter: lr.Encounter) -> str | None:
    """Answer this plugin's guards; ``None`` allows, a string refuses with that reason.

    :param name: the transition's guard.
    :param encounter: the encounter as it is now.
    """
    if name == GUARD_SUBJECT_ADULT and encounter.facts.get("subject") != "adult":
        return (
            "a huisverbod can only be imposed on an adult (Wet tijdelijk huisverbod art. 2(2)):"
            " open the order with the fact subject = 'adult'"
        )
    if name == GUARD_URGENT and encounter.facts.get("urgent") is not True:
        return (
            "an oral order is only for a case so urgent that the order cannot be written"
            " beforehand (art. 2(7)), and this order was not opened with urgent = true:"
            " impose it in writing (impose)"
        )
    return None


@lr.hookimpl
def lastresort_validate_protocol(protocol: lr.Protocol) -> Sequence[str]:
    """Keep the ``huisverbod`` protocol within the law (only for that id).

    - ``[requirements] max_order_duration`` is stated and at most 28 days (art. 9);
    - the fact ``subject`` allows only ``"adult"`` (art. 2(2));
    - every transition into a step tagged ``extended`` or ``withdrawn`` is fired by
      parties of kind ``mayor`` alone (extension and withdrawal cannot be mandated).

    :param protocol: a protocol the engine is about to accept.
    :returns: one problem per broken rule, with its path.
    """
    if protocol.id != PROTOCOL_ID:
        return []
    problems: list[str] = []
    cap = protocol.requirements.max_order_duration
    if cap is None:
        problems.append(
            "$.requirements.max_order_duration: the huisverbod protocol must state it"
            f" (at most {_duration(MAX_TOTAL)}, Wet tijdelijk huisverbod art. 9)"
        )
    elif cap > MAX_TOTAL:
        problems.append(
            f"$.requirements.max_order_duration: {_duration(cap)} is more than the"
            f" {_duration(MAX_TOTAL)} the law allows (art. 9: four weeks after imposing)"
        )
    subject = protocol.facts.get("subject")
    if subject is None or tuple(subject.values) != ("adult",):
        problems.append(
            "$.facts.subject: must allow only 'adult' (a huisverbod is only for an adult,"
            " art. 2(2))"
        )
    for i, transition in enumerate(protocol.transitions):
        target = protocol.steps.get(transition.target)
        if target is None or not _MAYORS_OWN & set(target.tags):
            continue
        others = [
            role
            for role in transition.by
            if (party := protocol.parties.get(role)) is None or party.kind is not lr.PartyKind.MAYOR
        ]
        if others:
            problems.append(
                f"$.transitions[{i}].by: {transition.event!r} into {transition.target!r} is the"
                f" mayor's own decision and cannot be mandated; {others} may not fire it"
            )
    return problems


def _ten_days(protocol: lr.Protocol) -> Iterator[lr.Violation]:
    for transition in protocol.transitions:
        if transition.event not in IMPOSE_EVENTS:
            continue
        step: str | None = transition.target
        total, seen = timedelta(0), set()
        while step is not None and _IN_FORCE in protocol.steps[step].tags:
            deadline = protocol.steps[step].deadline
            if step in seen or deadline is None:
                yield lr.Violation(
                    f"imposed by {transition.event!r}, the order never ends by the clock: step"
                    f" {step!r} {'repeats' if step in seen else 'has no deadline'}",
                    step,
                )
                break
            seen.add(step)
            total += deadline.after
            step = _clock_successor(protocol, step)
        else:
            if total != INITIAL_PERIOD:
                yield lr.Violation(
                    f"imposed by {transition.event!r}, the order ends by the clock after"
                    f" {_duration(total)}, not {_duration(INITIAL_PERIOD)}",
                    transition.sources[0] if transition.sources else None,
                    transition.event,
                )


@lr.hookimpl
def lastresort_protocol_properties(protocol: lr.Protocol) -> Sequence[lr.Property]:
    """The property ``huisverbod-ten-days`` for the ``huisverbod`` protocol."""
    if protocol.id != PROTOCOL_ID:
        return []
    return [
        lr.Property(
            PROPERTY_TEN_DAYS,
            "once imposed, the order ends by the clock exactly 10 days later unless the mayor"
            " extends or withdraws it",
            _ten_days,
            kinds=frozenset({lr.ProtocolKind.ORDER}),
        )
    ]


@lr.hookimpl
def lastresort_party_directory(protocol: lr.Protocol, party: lr.Party) -> str | None:
    """The public desks of the ``huisverbod`` protocol; ``None`` for the other roles."""
    if protocol.id != PROTOCOL_ID:
        return None
    return _PUBLIC_DESKS.get(party.key)
