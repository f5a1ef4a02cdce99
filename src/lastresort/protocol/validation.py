"""Structural checks of a protocol: every problem at once, each with its path.

These are the rules without which a protocol cannot even run; the safety
properties (can a child be left without a responsible adult?) are the
verifier's (``verifier/verification.py``).
"""

from __future__ import annotations

import re
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

import attrs

from ..privacy import (
    CHANNEL,
    FACT_NAME,
    FORBIDDEN_GLUED,
    FORBIDDEN_PARTS,
    FORBIDDEN_WORDS,
    forbidden_fact_term,
)
from .conversion import _key_path, format_duration, suggest
from .cycles import strongly_connected
from .hours import Hours
from .labels import label_problems, text_problems
from .model import (
    ACUTE_DANGER,
    ANY_STEP,
    CLOCK,
    DeadlineDate,
    MayorPromise,
    PartyKind,
    Protocol,
    ProtocolKind,
    Text,
    WorkingDays,
)

__all__ = [
    "FORBIDDEN_FACTS",
    "MAX_DURATION",
    "MAX_WORKING_DAYS",
    "MIN_DEADLINE",
    "duration_problems",
    "validate",
    "zone_problems",
]

#: Every term a fact name may not contain (see :func:`lastresort.privacy.forbidden_fact_term`
#: for how a name is read: as words, after Unicode normalisation).
FORBIDDEN_FACTS = FORBIDDEN_WORDS | FORBIDDEN_PARTS | FORBIDDEN_GLUED


#: The longest duration a protocol may state (a deadline, a response time, a
#: requirement): a year and a day. Longer ones are typing errors, and would make the
#: arithmetic of deadlines and bounds overflow.
MAX_DURATION = timedelta(days=366)
#: The shortest deadline: nobody acts within less, and a clock transition that loops on
#: a shorter one (a reminder) would fire again and again (a message each time)
MIN_DEADLINE = timedelta(minutes=1)


#: The most working days a deadline may state (``250wd``): about a year of working
#: days, so that its longest calendar span stays within the bounds' arithmetic.
MAX_WORKING_DAYS = 250


def zone_problems(protocol: Protocol) -> list[str]:
    """``[protocol] timezone`` when it is not an IANA time zone this machine knows,
    located, with the closest name. Checked even without validation, like
    :func:`duration_problems`: working days could not be counted."""
    zone = protocol.timezone
    if _known_zone(zone):
        return []
    shown = zone if len(zone) <= 64 and zone.isprintable() else zone[:61] + "..."
    return [
        f"$.protocol.timezone: unknown time zone {shown!r}"
        f"{suggest(zone, sorted(zoneinfo.available_timezones()))}; use an IANA name"
        " such as 'Europe/Amsterdam'"
    ]


def _known_zone(name: str) -> bool:
    if not name or len(name) > 64 or name != name.strip():
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def duration_problems(protocol: Protocol) -> list[str]:
    """Every duration of ``protocol`` longer than :data:`MAX_DURATION`, located.

    Checked by :func:`validate`, and by :func:`lastresort.load_protocol` and the
    verifier even without validation: such a protocol can neither be run nor verified.
    """
    found: list[tuple[str, timedelta]] = []
    for key, party in protocol.parties.items():
        if party.response is not None:
            path = f"{_key_path('$.parties', key)}.response"
            found += [
                (f"{path}.median", party.response.median),
                (f"{path}.p90", party.response.p90),
            ]
    working: list[str] = []
    for key, step in protocol.steps.items():
        if step.deadline is None:
            continue
        path = f"{_key_path('$.steps', key)}.deadline.after"
        after = step.deadline.after
        if isinstance(after, WorkingDays):
            if after.count > MAX_WORKING_DAYS:
                working.append(
                    f"{path}: {after} is too long; a deadline is at most {MAX_WORKING_DAYS}wd"
                )
        else:
            found.append((path, after))
    for field in attrs.fields(type(protocol.requirements)):
        value = getattr(protocol.requirements, field.name)
        if isinstance(value, timedelta):
            found.append((f"$.requirements.{field.name}", value))
    return [
        f"{path}: {format_duration(value)} is too long; a protocol duration is at most"
        f" {format_duration(MAX_DURATION)}"
        for path, value in found
        if value > MAX_DURATION
    ] + working


#: Step, party and event names: what TOML allows as a bare key. This also keeps out
#: ``*`` and ``=``, which the transitions library reads as "every state" and "same state".
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def _name_problem(name: str, path: str, what: str) -> list[str]:
    if _NAME.match(name):
        return []
    return [f"{path}: {what} {name!r} is not a plain name (use letters, digits, '_' and '-')"]


def _twice(names: Iterable[str], path: str) -> list[str]:
    seen: set[str] = set()
    found = []
    for j, name in enumerate(names):
        if name in seen:
            found.append(f"{path}[{j}]: {name!r} is named twice")
        seen.add(name)
    return found


def _text_problems(text: Text, path: str) -> list[str]:
    return text_problems(text, path)


def validate(
    protocol: Protocol,
    extra: Iterable[Callable[[Protocol], Iterable[str]]] = (),
    *,
    broken: Mapping[str, Any] | None = None,
) -> list[str]:
    """Check a protocol's structure; return every problem (empty when it is sound).

    :param extra: further checks (plugins' ``lastresort_validate_protocol``), each
        returning problem strings.
    :param broken: used by :func:`load_protocol` when parts failed to load, so that
        references to them are not reported a second time.
    """
    broken = broken or {}
    broken_steps: set[str] = set(broken.get("steps", ()))
    broken_parties: set[str] = set(broken.get("parties", ()))
    transitions_complete = not broken.get("transitions", False)
    index_map: list[int] = list(broken.get("transition_index", range(len(protocol.transitions))))
    problems: list[str] = []
    add = problems.append
    steps, parties = protocol.steps, protocol.parties
    known_steps = set(steps) | broken_steps
    known_parties = set(parties) | broken_parties
    # a section that could not be read at all: references into it cannot be judged
    steps_unreadable = bool(broken.get("all_steps"))
    parties_unreadable = bool(broken.get("all_parties"))
    # suggestions also offer the names of parts that failed to load
    step_names = [*steps, *sorted(k for k in broken_steps if isinstance(k, str))]
    party_names = [*parties, *sorted(k for k in broken_parties if isinstance(k, str))]

    dangling: list[str] = []  # paths of transitions' references to steps that do not exist

    def step_ref(key: str, path: str) -> bool:
        if key in known_steps:
            return key in steps
        if path.startswith("$.transitions"):
            dangling.append(path)
        if not steps_unreadable:
            add(f"{path}: unknown step {key!r}{suggest(key, step_names)}")
        return False

    def party_ref(key: str, path: str, allow_clock: bool = False) -> None:
        if allow_clock and key == CLOCK:
            return
        if key not in known_parties and not parties_unreadable:
            add(f"{path}: unknown party {key!r}{suggest(key, party_names)}")

    # -- header
    for field in ("id", "version", "municipality", "source"):
        if not str(getattr(protocol, field)).strip():
            add(f"$.protocol.{field}: must not be empty")
    problems.extend(_text_problems(protocol.title, "$.protocol.title"))
    initial_ok = not broken.get("initial") and step_ref(protocol.initial, "$.protocol.initial")
    if initial_ok and steps[protocol.initial].terminal:
        add(f"$.protocol.initial: initial step {protocol.initial!r} is terminal")

    # -- parties
    for key, party in parties.items():
        path = _key_path("$.parties", key)
        problems.extend(_name_problem(key, path, "party key"))
        if len(key) > 64:
            add(f"{path}: a party key is at most 64 characters (it is an actor's role)")
        if key == CLOCK:
            add(f"{path}: 'clock' is reserved for deadline events and cannot be a party")
        problems.extend(_text_problems(party.name, f"{path}.name"))
        try:
            Hours.parse(party.hours)
        except ValueError as exc:
            add(f"{path}.hours: {exc}")
        if party.response is not None and party.response.p90 < party.response.median:
            add(
                f"{path}.response: p90 ({format_duration(party.response.p90)}) is below"
                f" the median ({format_duration(party.response.median)})"
            )
        if not 0.0 <= party.no_show <= 1.0:
            add(f"{path}.no_show: must be between 0 and 1, got {party.no_show}")
        if party.capacity is not None and party.capacity < 1:
            add(f"{path}.capacity: must be at least 1, got {party.capacity}")

    # -- steps
    for key, step in steps.items():
        path = _key_path("$.steps", key)
        problems.extend(_name_problem(key, path, "step key"))
        problems.extend(_text_problems(step.instructions, f"{path}.instructions"))
        if step.responsible is not None:
            party_ref(step.responsible, f"{path}.responsible")
        elif not step.terminal:
            add(f"{path}: non-terminal step has no responsible party")
        if step.deadline is not None:
            if step.terminal:
                add(f"{path}.deadline: a terminal step cannot have a deadline")
            after = step.deadline.after
            if (after.count if isinstance(after, WorkingDays) else after.total_seconds()) <= 0:
                add(f"{path}.deadline.after: must be longer than zero")
            elif isinstance(after, timedelta) and after < MIN_DEADLINE:
                add(
                    f"{path}.deadline.after: must be at least {format_duration(MIN_DEADLINE)},"
                    f" not {format_duration(after)}: nobody can act on a shorter deadline, and"
                    " a clock transition that loops on it would fire again and again"
                )
        elif step.kind.value == "waiting":
            add(f"{path}: waiting step has no deadline (nothing may wait forever)")

    problems.extend(duration_problems(protocol))
    problems.extend(zone_problems(protocol))
    problems.extend(label_problems(protocol, index_map))

    # -- requirements
    for field in attrs.fields(type(protocol.requirements)):
        value = getattr(protocol.requirements, field.name)
        if isinstance(value, timedelta) and value <= timedelta(0):
            add(f"$.requirements.{field.name}: must be longer than zero")
    req = protocol.requirements
    if req.mayor_contact and req.mayor is MayorPromise.INFORMED:
        add(
            "$.requirements.mayor_contact: true (deprecated, read as mayor = 'met') contradicts"
            " mayor = 'informed'; remove mayor_contact"
        )

    # -- channels
    if not protocol.channels:
        add("$.protocol.channels: names no channel (leave it out for the default channels)")
    for j, channel in enumerate(protocol.channels):
        if not CHANNEL.fullmatch(channel):
            add(
                f"$.protocol.channels[{j}]: channel {channel!r} is not a short slug (a lowercase"
                " letter, then up to 31 lowercase letters, digits, '_' or '-')"
            )
    problems.extend(_twice(protocol.channels, "$.protocol.channels"))

    # -- facts
    for key in protocol.facts:
        path = _key_path("$.facts", key)
        if not FACT_NAME.fullmatch(key):
            add(
                f"{path}: fact name {key!r} is not a plain name (a lowercase letter, then up to"
                " 63 lowercase letters, digits, '_' or '-')"
            )
        term = forbidden_fact_term(key)
        if term is not None:
            add(
                f"{path}: may not be declared: it reads as {term!r}, and an encounter never"
                " holds a child's name, BSN, address, contact details or free text"
            )

    # -- transitions
    outgoing: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for position, transition in enumerate(protocol.transitions):
        i = index_map[position] if position < len(index_map) else position
        path = f"$.transitions[{i}]"
        if not transition.event.strip():
            add(f"{path}.event: must not be empty")
        else:
            problems.extend(_name_problem(transition.event, f"{path}.event", "event"))
        target_ok = step_ref(transition.target, f"{path}.to")
        if not transition.sources:
            add(f"{path}.from: names no step")
        sources: list[str] = []
        if ANY_STEP in transition.sources:
            if len(transition.sources) > 1:
                add(f"{path}.from: '*' cannot be combined with step names")
            sources = list(protocol.sources_of(transition))
        else:
            for j, source in enumerate(transition.sources):
                if step_ref(source, f"{path}.from[{j}]"):
                    if steps[source].terminal:
                        add(
                            f"{path}.from[{j}]: terminal step {source!r} cannot have outgoing transitions"
                        )
                    else:
                        sources.append(source)
        for source in dict.fromkeys(sources):  # a step named twice is reported below
            outgoing[source].append((i, transition))
        for key, names in (
            ("from", transition.sources),
            ("by", transition.by),
            ("notify", transition.notify),
        ):
            problems.extend(_twice(names, f"{path}.{key}"))
        if not transition.by:
            add(f"{path}.by: names nobody who may fire it")
        for j, role in enumerate(transition.by):
            party_ref(role, f"{path}.by[{j}]", allow_clock=True)
        for j, role in enumerate(transition.notify):
            party_ref(role, f"{path}.notify[{j}]")
        if transition.guard is not None and not transition.guard.strip():
            add(f"{path}.guard: must not be empty")
        if transition.event == ACUTE_DANGER and target_ok:
            target = steps[transition.target]
            if "emergency" not in target.tags:
                add(
                    f"{path}.to: acute_danger must lead to a step tagged 'emergency', not {transition.target!r}"
                )
            resp = parties.get(target.responsible or "")
            unjudgeable = parties_unreadable or target.responsible in broken_parties
            if not unjudgeable and (resp is None or resp.kind is not PartyKind.EMERGENCY):
                add(
                    f"{path}.to: acute_danger must lead to a step whose responsible party is"
                    f" of kind 'emergency' (step {transition.target!r} has {target.responsible!r})"
                )

    # two transitions for one event from one step need distinct guards
    for source, items in outgoing.items():
        for event, candidates in _by_event(items).items():
            indices = [i for i, _ in candidates]
            named = [t.guard for _, t in candidates]
            if len(indices) > 1 and (None in named or len(set(named)) < len(named)):
                add(
                    f"$.transitions[{indices[1]}]: event {event!r} from step {source!r} is"
                    f" also defined by $.transitions[{indices[0]}] without distinct guards"
                )

    # acute danger from every non-terminal step
    covered = {s for s, items in outgoing.items() if any(t.event == ACUTE_DANGER for _, t in items)}
    missing = [k for k, s in steps.items() if not s.terminal and k not in covered]
    encounter_kind = protocol.kind is ProtocolKind.ENCOUNTER and not broken.get("kind")
    # a transition from an unknown step (a typo) may be the one that covers a step
    dangling_from = any(".from[" in path for path in dangling)
    if missing and transitions_complete and encounter_kind and not dangling_from:
        add(
            "$.transitions: acute_danger does not cover step(s) "
            + ", ".join(repr(k) for k in missing)
            + ' (add a transition with from = "*")'
        )

    # deadlines lead on
    for key, step in steps.items():
        if step.deadline is None or not transitions_complete or dangling_from:
            continue
        leaving = [t for _, t in outgoing.get(key, []) if t.event == step.deadline.event]
        if not leaving:
            add(
                f"{_key_path('$.steps', key)}.deadline.event: no transition for"
                f" {step.deadline.event!r} leaves step {key!r}"
            )
        elif not any(CLOCK in t.by for t in leaving):
            add(
                f"{_key_path('$.steps', key)}.deadline.event: the transition for {step.deadline.event!r}"
                " must name 'clock' in its 'by'"
            )

    if transitions_complete:
        problems.extend(_dated_problems(protocol, outgoing))

    # every step reachable from the initial step; a transition to or from an unknown step
    # (a typo) may be the one that reaches it, so unreachable steps would be follow-on problems
    if initial_ok and transitions_complete and not broken_steps and not dangling:
        reached = {protocol.initial}
        frontier = [protocol.initial]
        while frontier:
            here = frontier.pop()
            for _, transition in outgoing.get(here, []):
                if transition.target in steps and transition.target not in reached:
                    reached.add(transition.target)
                    frontier.append(transition.target)
        for key in steps:
            if key not in reached:
                add(
                    f"{_key_path('$.steps', key)}: no transition reaches this step"
                    f" from {protocol.initial!r}"
                )

    for check in extra:
        problems.extend(check(protocol))
    return problems


def _dated_problems(protocol: Protocol, outgoing: Mapping[str, list[tuple[int, Any]]]) -> list[str]:
    """Rules of deadlines counted from an earlier step (``from``) or dated (``until``).

    - ``from`` names a step; ``until`` needs ``from`` (the latest moment counts from it);
    - a ``chosen`` date is given by the caller, so no clock transition enters the step;
    - a ``kept`` deadline keeps the one pending in the step left, so every step a
      transition enters it from has a deadline;
    - the clock transition leaving a dated step has no guard (a refused one would be
      re-armed, and a dated deadline has no "same again from now");
    - no dated steps form a cycle of their own deadlines' clock transitions (see
      :func:`_clock_cycle_problems`);
    - the transitions of one event from one step all enter steps with a ``chosen`` date,
      or none does: the caller gives the date (or none) before a guard picks among them.
    """
    problems: list[str] = []
    steps = protocol.steps
    for key, step in steps.items():
        deadline = step.deadline
        if deadline is None or (deadline.since is None and deadline.until is None):
            continue
        path = f"{_key_path('$.steps', key)}.deadline"
        if deadline.since is not None and deadline.since not in steps:
            problems.append(
                f"{path}.from: unknown step {deadline.since!r}{suggest(deadline.since, steps)}"
            )
        if deadline.until is not None and deadline.since is None:
            problems.append(
                f"{path}.from: a deadline until a {deadline.until.value} date needs 'from',"
                " the step whose entry its latest moment ('after') counts from"
            )
        for i, transition in enumerate(protocol.transitions):
            if transition.target != key:
                continue
            if deadline.until is DeadlineDate.CHOSEN and CLOCK in transition.by:
                problems.append(
                    f"$.transitions[{i}].by: the clock cannot choose the date of step"
                    f" {key!r}'s deadline (until = 'chosen')"
                )
            if deadline.until is DeadlineDate.KEPT:
                bare = [
                    s
                    for s in protocol.sources_of(transition)
                    if s in steps and steps[s].deadline is None
                ]
                if bare:
                    problems.append(
                        f"$.transitions[{i}].from: step {key!r} keeps the deadline of the step"
                        f" it is entered from (until = 'kept'), and {bare} have none"
                    )
        for i, transition in outgoing.get(key, []):
            if transition.event == deadline.event and transition.guard is not None:
                problems.append(
                    f"$.transitions[{i}].guard: the deadline of step {key!r} counts from"
                    " an earlier step or is dated, so its clock transition cannot have a guard"
                )
    problems.extend(_clock_cycle_problems(protocol, outgoing))
    problems.extend(_chosen_agreement_problems(protocol, outgoing))
    return problems


def _by_event(items: list[tuple[int, Any]]) -> dict[str, list[tuple[int, Any]]]:
    """One step's outgoing ``(index, transition)`` pairs, by event, in file order."""
    found: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for i, transition in items:
        found[transition.event].append((i, transition))
    return found


def _chosen_agreement_problems(
    protocol: Protocol, outgoing: Mapping[str, list[tuple[int, Any]]]
) -> list[str]:
    """The transitions of one event from one step enter steps with a ``chosen`` date
    all, or none (the caller gives the date, or none, before a guard picks)."""
    steps = protocol.steps

    def chosen(key: str) -> bool:
        deadline = steps[key].deadline if key in steps else None
        return deadline is not None and deadline.until is DeadlineDate.CHOSEN

    problems = []
    for source, items in outgoing.items():
        for event, candidates in _by_event(items).items():
            asks = {chosen(t.target) for _, t in candidates}
            if len(asks) > 1:
                i = next(i for i, t in candidates if not chosen(t.target))
                dated = sorted({t.target for _, t in candidates if chosen(t.target)})
                other = sorted({t.target for _, t in candidates if not chosen(t.target)})
                problems.append(
                    f"$.transitions[{i}].to: event {event!r} from step {source!r} enters"
                    f" {dated}, whose deadline date the caller chooses, and {other}, whose"
                    " deadline date nobody chooses: the caller gives a date (or none) before"
                    " a guard picks the transition, so all of them must ask for one, or none"
                )
    return problems


def _clock_cycle_problems(
    protocol: Protocol, outgoing: Mapping[str, list[tuple[int, Any]]]
) -> list[str]:
    """Dated steps whose deadlines' clock transitions lead round in a cycle.

    A dated deadline (``from`` a step, or ``kept``) does not count from the moment its
    step is entered. When its own clock transition leads back into the step (a
    reminder that loops, say), or round through other such steps, the deadline of the
    step entered is counted from the same moment as before (or keeps the one that just
    fell due): it is due at once, fires at once, and again, without end: a message to
    the parties at every tick and a scheduler that never catches up. A cycle is safe
    when one of its steps counts ``from`` another step of the cycle (not itself), whose
    entry in that round moves the moment on; a step that counts ``from`` itself counts
    from its previous entry, so it does not.
    """
    steps = protocol.steps

    def dated(key: str) -> bool:
        d = steps[key].deadline
        return d is not None and (d.since is not None or d.until is DeadlineDate.KEPT)

    # the clock transitions of each dated step's own deadline, into a dated step
    edges: dict[str, list[tuple[int, str]]] = {}
    for key in steps:
        deadline = steps[key].deadline
        if deadline is None or not dated(key):
            continue
        edges[key] = [
            (i, t.target)
            for i, t in outgoing.get(key, [])
            if t.event == deadline.event and CLOCK in t.by and t.target in steps and dated(t.target)
        ]
    problems = []
    for component in _cycles(edges):
        members = set(component)
        moving = [
            key
            for key in component
            if (d := steps[key].deadline) is not None
            and d.until is not DeadlineDate.KEPT
            and d.since in members
            and d.since != key
        ]
        if moving:
            continue
        first = component[0]
        i = next(i for i, target in edges[first] if target in members)
        names = ", ".join(repr(k) for k in component)
        problems.append(
            f"$.transitions[{i}].to: the deadlines of steps {names} count from an earlier"
            " step or are kept, and their clock transitions lead round into each other: on"
            " re-entry a deadline counts from a moment already past, falls due at once or too soon,"
            " and fires again and again; count one of"
            " them from its own entry (a plain 'after') or lead the clock elsewhere"
            if len(component) > 1
            else f"$.transitions[{i}].to: the deadline of step {first!r} counts from an"
            " earlier step or is kept, and its clock transition leads back into it: on"
            " re-entry it counts from a moment already past, falls due at once or too soon, and"
            " fires again and again; count it from the"
            " step's own entry (a plain 'after') or lead the clock elsewhere"
        )
    return problems


def _cycles(edges: Mapping[str, list[tuple[int, str]]]) -> list[list[str]]:
    """The strongly connected components of ``edges`` that hold a cycle (more than one
    step, or a step with an edge to itself), each in the order its steps were declared."""
    order = list(edges)
    position = {key: n for n, key in enumerate(order)}
    targets = {key: [t for _, t in out if t in edges] for key, out in edges.items()}
    found = [
        sorted(component, key=position.__getitem__)
        for component in strongly_connected(order, targets.__getitem__)
        if len(component) > 1 or component[0] in targets[component[0]]
    ]
    return sorted(found, key=lambda c: position[c[0]])
