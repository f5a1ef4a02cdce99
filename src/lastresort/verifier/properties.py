"""The safety properties: the core ones and the :class:`Property` a plugin adds.

Each core property is a check over a protocol's graph (``bounds.py``) that yields
every :class:`Finding`; :data:`RULES` states its rule, and docs/verifier.md the
exact rule of each. ``verification.py`` runs the checks and turns what they find into a
report (``report.py``). Each check is linear in the size of the graph (steps plus
transitions): it visits every step and edge a bounded number of times and builds
no path (a :class:`Finding` names its step or edge; the report builds the paths of
the few it shows).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence

from attrs import field, frozen

from ..protocol.conversion import format_duration
from ..protocol.model import (
    ACUTE_DANGER,
    CLOCK,
    MayorPromise,
    PartyKind,
    Protocol,
    ProtocolKind,
    StepKind,
)
from .bounds import Bound, Edge, PathStep, ProtocolGraph, render_path

__all__ = [
    "ENCOUNTER_ONLY",
    "ORDER_ONLY",
    "RULES",
    "Check",
    "Finding",
    "Property",
    "Violation",
    "core_checks",
    "not_applicable",
]

#: Every core property and its rule, in the order they are reported.
RULES: dict[str, str] = {
    "responsibility": "every reachable non-terminal step has exactly one responsible party",
    "termination": "from every reachable step a terminal step is reachable without acute_danger",
    "deadlines": "every step that waits on another party has a deadline whose event leads on",
    "acute-danger": "from every non-terminal step acute_danger leads, in one transition, to an"
    " emergency step held by an emergency party",
    "handover": "a transition that changes the responsible party is fired only by the receiver"
    " (or the clock, or acute_danger)",
    "report-before-close": "every path to a closing step passes a step tagged 'reported' or"
    " 'safe_arrangement'",
    "mayor": "every path to a closing step informs a party of kind mayor or passes a step"
    " tagged 'mayor_involved' (mayor = 'informed'), or passes 'mayor_involved' (mayor = 'met')",
    "clerk-never-closes": "no party of kind municipal_staff may fire a transition into a closing step",
    "time-bounds": "the worst-case waits for an expert and for the mayor are within the stated"
    " requirements",
    "order-adult-only": "the order is only imposed on an adult (fact 'subject' allows only 'adult')",
    "order-consult-first": "every path to a step tagged 'order_in_force' passes a step tagged"
    " 'veilig_thuis_consulted'",
    "order-cap": "the order is in force at most requirements.max_order_duration in total",
    "order-mayor-only": "only parties of kind mayor fire transitions into steps tagged 'extended'"
    " or 'withdrawn'",
}
#: Properties that apply to encounters only; for an order they are "not applicable".
ENCOUNTER_ONLY = frozenset(
    {"acute-danger", "report-before-close", "mayor", "clerk-never-closes", "time-bounds"}
)
#: Properties checked for ``kind = "order"`` protocols only.
ORDER_ONLY = frozenset({"order-adult-only", "order-consult-first", "order-cap", "order-mayor-only"})

_BOTH = frozenset(ProtocolKind)


@frozen
class Violation:
    """One way a property fails, as a property's check reports it.

    Give the counterexample as an explicit ``path``, or name the ``step`` (and
    optionally the ``event`` fired from it) and the verifier finds the shortest
    path from the initial step.

    :param message: what is wrong, for people.
    :param step: the step where it shows.
    :param event: the event, fired from ``step``, that shows it.
    :param path: an explicit counterexample path.
    """

    message: str
    step: str | None = None
    event: str | None = None
    path: tuple[PathStep, ...] = ()


@frozen
class Property:
    """A safety property a plugin adds (through ``lastresort_protocol_properties``
    or ``verify(..., extra_properties=...)``).

    :param name: a stable name, unique among all properties.
    :param rule: the rule in one line, for reports.
    :param check: returns every :class:`Violation` (none when it holds).
    :param kinds: the protocol kinds it applies to; for others it is reported as
        not applicable.
    """

    name: str
    rule: str
    check: Callable[[Protocol], Iterable[Violation]]
    kinds: frozenset[ProtocolKind] = field(default=_BOTH, converter=frozenset)


@frozen
class Finding:
    """A violation as the verifier holds it until the report is built: its path is
    not built yet (only the few shown get one, so a protocol with thousands of
    violations costs time linear in its size, not in the sum of their paths).

    :param message: what is wrong, for people.
    :param step: the step where it shows; its path is the shortest from the initial step.
    :param edge: the edge (from a reachable step) that shows it; its path is the
        shortest path to ``edge.source``, then the edge.
    :param path: an explicit path (bounds, plugins' explicit paths).
    """

    message: str
    step: str | None = None
    edge: Edge | None = None
    path: tuple[PathStep, ...] = ()


# -- the properties ----------------------------------------------------------------

#: A core property's check: every violation it finds in a protocol's graph.
Check = Callable[[ProtocolGraph], Iterator[Finding]]


def _responsibility(g: ProtocolGraph) -> Iterator[Finding]:
    parties = g.protocol.parties
    for key in g.reachable:
        step = g.protocol.steps[key]
        if step.terminal:
            continue
        if step.responsible is None:
            yield Finding(f"step {key!r} has no responsible party", key)
        elif step.responsible not in parties:
            yield Finding(
                f"step {key!r} names {step.responsible!r} as responsible, which is not a party",
                key,
            )


def _calm(e: Edge) -> bool:
    return e.event != ACUTE_DANGER


def _termination(g: ProtocolGraph) -> Iterator[Finding]:
    steps = g.protocol.steps
    into: dict[str, list[str]] = {key: [] for key in steps}
    # each step's distinct calm successors, in file order (what _nearby walks)
    ahead: dict[str, list[str]] = {}
    for key in g.reachable:
        ahead[key] = list(dict.fromkeys(e.target for e in g.out[key] if _calm(e)))
        for target in ahead[key]:
            into[target].append(key)
    can_end = {key for key in g.reachable if steps[key].terminal}
    queue = deque(can_end)
    while queue:
        for source in into[queue.popleft()]:
            if source not in can_end:
                can_end.add(source)
                queue.append(source)
    for key in g.reachable:
        if key in can_end:
            continue
        trapped = _nearby(ahead, key, 6)
        names = ", ".join(repr(s) for s in trapped[:5]) + (" and more" if len(trapped) > 5 else "")
        how = (
            f"it can only reach {names} (a trap without an exit)"
            if trapped
            else "its only way out is acute_danger"
            if g.out[key]
            else "it is a dead end"
        )
        yield Finding(
            f"from step {key!r} no terminal step can be reached without acute_danger: {how}", key
        )


def _nearby(ahead: dict[str, list[str]], start: str, limit: int) -> list[str]:
    """Up to ``limit`` steps reachable from ``start`` along ``ahead`` (distinct
    successors), nearest first. It stops at ``limit``, and since ``seen`` stays that
    small, each step it leaves costs at most ``limit`` looks: a bounded cost per
    trapped step, however many transitions leave the steps it passes."""
    seen, queue = {start}, deque([start])
    found: list[str] = []
    while queue and len(found) < limit:
        for target in ahead[queue.popleft()]:
            if target not in seen:
                seen.add(target)
                found.append(target)
                queue.append(target)
                if len(found) == limit:
                    break
    return found


def _deadlines(g: ProtocolGraph) -> Iterator[Finding]:
    for key in g.reachable:
        step = g.protocol.steps[key]
        if step.terminal:
            continue
        calm = [e for e in g.out[key] if _calm(e)]
        if step.deadline is None:
            # without a known responsible party this is responsibility's finding, not ours
            known = step.responsible in g.protocol.parties
            others = known and calm and all(step.responsible not in e.transition.by for e in calm)
            if step.kind is StepKind.WAITING or others:
                who = sorted({r for e in calm for r in e.transition.by})
                why = "is a waiting step" if step.kind is StepKind.WAITING else "waits on others"
                yield Finding(
                    f"step {key!r} {why} ({', '.join(who) or 'nobody'} moves it on) but has no"
                    " deadline",
                    key,
                )
            continue
        event = step.deadline.event
        leaving = [e for e in g.out[key] if e.event == event]
        by_clock = [e for e in leaving if CLOCK in e.transition.by]
        if not leaving:
            why = f"no transition for {event!r} leaves it"
        elif not by_clock:
            why = f"the transition for {event!r} does not name 'clock' in its 'by'"
        elif all(e.transition.guard is not None for e in by_clock):
            why = f"every transition for {event!r} has a guard, which may refuse"
        else:
            continue
        yield Finding(f"the deadline of step {key!r} does not lead on: {why}", key)


def _party_kind(g: ProtocolGraph, role: str | None) -> PartyKind | None:
    party = g.protocol.parties.get(role or "")
    return None if party is None else party.kind


def _acute_danger(g: ProtocolGraph) -> Iterator[Finding]:
    steps = g.protocol.steps
    for key in g.reachable:
        if steps[key].terminal:
            continue
        acute = [e for e in g.out[key] if e.event == ACUTE_DANGER]
        if not acute:
            yield Finding(f"no acute_danger transition leaves step {key!r}", key)
            continue
        for e in acute:
            target = steps[e.target]
            if "emergency" not in target.tags:
                yield Finding(
                    f"acute_danger from {key!r} leads to {e.target!r}, which is not tagged"
                    " 'emergency'",
                    edge=e,
                )
            elif _party_kind(g, target.responsible) is not PartyKind.EMERGENCY:
                yield Finding(
                    f"acute_danger from {key!r} leads to {e.target!r}, whose responsible party"
                    f" {target.responsible!r} is not of kind 'emergency'",
                    edge=e,
                )
        if all(e.transition.guard is not None for e in acute):
            yield Finding(f"every acute_danger transition from {key!r} has a guard", key)


def _handover(g: ProtocolGraph) -> Iterator[Finding]:
    parties = g.protocol.parties
    for key in g.reachable:
        giver = g.party(key)
        for e in g.out[key]:
            receiver = g.party(e.target)
            # a step without a declared responsible party is responsibility's finding
            if e.event == ACUTE_DANGER or giver not in parties or receiver not in parties:
                continue
            if giver == receiver:
                continue
            wrong = [r for r in e.transition.by if r not in {receiver, CLOCK}]
            if wrong:
                yield Finding(
                    f"{e.event!r} hands the child from {giver!r} to {receiver!r} in {e.target!r}"
                    f" but may be fired by {', '.join(repr(r) for r in wrong)}; only the"
                    f" receiver {receiver!r} (or the clock) may",
                    edge=e,
                )


def _passes(tags: set[str], goal: str = "") -> Check:
    """Every path to a closing step (without acute_danger, which is acute-danger's
    to check) or to a step tagged ``goal`` (any path) passes ``tags`` first."""

    def check(g: ProtocolGraph) -> Iterator[Finding]:
        steps = g.protocol.steps
        ends = (
            {k for k, s in steps.items() if goal in s.tags}
            if goal
            else set(g.protocol.closing_steps())
        )
        path = g.avoiding(
            lambda s: bool(tags & set(steps[s].tags)),
            ends.__contains__,
            (lambda _: True) if goal else _calm,
        )
        if path is not None:
            what = " or ".join(repr(t) for t in sorted(tags))
            yield Finding(
                f"a path reaches {goal or 'closing step'} {path[-1].step!r}"
                f" without passing a step tagged {what}",
                path=path,
            )

    return check


def _mayor_informed(g: ProtocolGraph) -> Iterator[Finding]:
    """Every path to a closing step (without acute_danger) fires a transition that
    notifies a party of kind mayor, or passes a step tagged ``mayor_involved`` before
    the closing step. The transition into the closing step counts: it is fired, and
    its notifications queued, in the same commit."""
    steps = g.protocol.steps
    mayors = {k for k, p in g.protocol.parties.items() if p.kind is PartyKind.MAYOR}
    closing = set(g.protocol.closing_steps())
    path = g.avoiding(
        lambda s: "mayor_involved" in steps[s].tags,
        closing.__contains__,
        lambda e: _calm(e) and not mayors & set(e.transition.notify),
    )
    if path is not None:
        yield Finding(
            f"a path reaches closing step {path[-1].step!r} without informing the mayor: no"
            " transition on it notifies a party of kind mayor"
            + (f" ({', '.join(sorted(mayors))})" if mayors else " (the protocol declares none)")
            + " and it passes no step tagged 'mayor_involved'",
            path=path,
        )


def _mayor(protocol: Protocol) -> Check:
    if protocol.requirements.mayor_promise is MayorPromise.INFORMED:
        return _mayor_informed
    return _passes({"mayor_involved"})


def _clerk_never_closes(g: ProtocolGraph) -> Iterator[Finding]:
    closing = set(g.protocol.closing_steps())
    for key in g.reachable:
        for e in g.out[key]:
            if e.target not in closing or e.event == ACUTE_DANGER:
                continue
            clerks = [r for r in e.transition.by if _party_kind(g, r) is PartyKind.MUNICIPAL_STAFF]
            if clerks:
                yield Finding(
                    f"{e.event!r} into closing step {e.target!r} may be fired by"
                    f" {', '.join(repr(r) for r in clerks)} (municipal_staff) alone",
                    edge=e,
                )


def _bound_violation(b: Bound, label: str) -> Finding | None:
    """Why ``b`` fails its requirement, or ``None`` when it holds or nothing is required."""
    if b.requirement is None or b.holds:
        return None
    need = f"{b.requirement_name} {format_duration(b.requirement)}"
    if b.cycle:
        return Finding(
            f"{label} is unbounded ({need}): a cycle {render_path(b.cycle)} can repeat before"
            f" the goal",
            path=(*b.path, *b.cycle[1:]),
        )
    if b.open_step is not None:
        return Finding(
            f"{label} is unbounded ({need}): step {b.open_step!r} has no deadline and its"
            " responsible party no response model",
            path=b.path,
        )
    if b.estimated_steps:
        assert b.estimate is not None
        steps = ", ".join(map(repr, b.estimated_steps))
        return Finding(
            f"{label} has no true worst case ({need}): {steps} may last any time (no"
            f" deadline); an ESTIMATE with the parties' p90 is {format_duration(b.estimate)},"
            " which proves nothing",
            path=b.path,
        )
    if not b.reachable:
        return Finding(f"{label}: no step tagged {b.goal!r} can be reached ({need})")
    assert b.worst is not None
    return Finding(f"{label} can be {format_duration(b.worst)}, more than {need}", path=b.path)


def _bounds(bounds: Sequence[Bound], label: str) -> Check:
    def check(_: ProtocolGraph) -> Iterator[Finding]:
        for b in bounds:
            if b.goal == "order_in_force" and b.requirement is None:
                yield Finding("the protocol states no requirements.max_order_duration")
            elif (v := _bound_violation(b, label.format(goal=b.goal))) is not None:
                yield v

    return check


def _order_adult_only(g: ProtocolGraph) -> Iterator[Finding]:
    fact = g.protocol.facts.get("subject")
    initial = g.protocol.initial
    if fact is None:
        yield Finding("the protocol declares no fact 'subject' (allowing only 'adult')", initial)
    elif tuple(fact.values) != ("adult",):
        allowed = "true or false" if not fact.values else ", ".join(repr(v) for v in fact.values)
        yield Finding(f"fact 'subject' allows {allowed}, not only 'adult'", initial)


def _order_mayor_only(g: ProtocolGraph) -> Iterator[Finding]:
    steps = g.protocol.steps
    for key in g.reachable:
        for e in g.out[key]:
            tags = {"extended", "withdrawn"} & set(steps[e.target].tags)
            if not tags:
                continue
            others = [r for r in e.transition.by if _party_kind(g, r) is not PartyKind.MAYOR]
            if others:
                yield Finding(
                    f"{e.event!r} into {e.target!r} ({', '.join(sorted(tags))}) may be fired by"
                    f" {', '.join(repr(r) for r in others)}, who is not the mayor",
                    edge=e,
                )


# -- which run ---------------------------------------------------------------------


def core_checks(protocol: Protocol, bounds: Sequence[Bound]) -> dict[str, Check]:
    """The check of every core property of ``protocol``, in the order they are reported.

    :param protocol: the protocol; an order gets the order properties too.
    :param bounds: its worst-case measures, which ``time-bounds`` and ``order-cap``
        compare with the requirements.
    """
    checks: dict[str, Check] = {
        "responsibility": _responsibility,
        "termination": _termination,
        "deadlines": _deadlines,
        "acute-danger": _acute_danger,
        "handover": _handover,
        "report-before-close": _passes({"reported", "safe_arrangement"}),
        "mayor": _mayor(protocol),
        "clerk-never-closes": _clerk_never_closes,
        "time-bounds": _bounds(bounds, "the wait until {goal!r}"),
    }
    if protocol.kind is ProtocolKind.ORDER:
        checks |= {
            "order-adult-only": _order_adult_only,
            "order-consult-first": _passes({"veilig_thuis_consulted"}, "order_in_force"),
            "order-cap": _bounds(bounds, "the total time in force"),
            "order-mayor-only": _order_mayor_only,
        }
    return checks


def not_applicable(protocol: Protocol, name: str) -> str | None:
    """Why core property ``name`` does not apply to ``protocol``, or ``None`` when it does."""
    if protocol.kind is ProtocolKind.ORDER and name in ENCOUNTER_ONLY:
        return "not applicable: an order is not a child's encounter at the counter"
    if name == "report-before-close" and not protocol.requirements.report_before_close:
        return "not applicable: requirements.report_before_close = false"
    if name == "mayor" and protocol.requirements.mayor_promise is None:
        return (
            "not applicable: the protocol makes no promise about the mayor (no requirements.mayor)"
        )
    return None
