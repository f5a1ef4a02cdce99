"""The protocol verifier: safety properties with shortest counterexamples, and
worst-case time bounds.

``verify(protocol)`` checks every property over the protocol's graph (all steps
reachable from the initial step; guards treated as possibly true or false) and
returns a :class:`Report`. The exact rule of each property is in docs/verifier.md;
the graph and the bounds are computed in ``bounds.py``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from attrs import field, frozen
from cattrs.gen import make_dict_unstructure_fn

from .bounds import Bound, Edge, PathStep, ProtocolGraph, goal_bound, graph_problems, order_bound
from .convert import converter, format_duration
from .errors import ProtocolError
from .model import ACUTE_DANGER, CLOCK, PartyKind, Protocol, ProtocolKind, StepKind

__all__ = [
    "ENCOUNTER_ONLY",
    "ORDER_ONLY",
    "RULES",
    "Bound",
    "PathStep",
    "Property",
    "PropertyResult",
    "Report",
    "Violation",
    "verify",
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
    "mayor": "every path to a closing step passes a step tagged 'mayor_involved'",
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
class PropertyResult:
    """The verdict on one property.

    :param name: the property's stable name.
    :param ok: it holds (or does not apply).
    :param message: why it fails, or a short confirmation.
    :param counterexample: the shortest event path from the initial step that
        shows the failure (empty when it holds or is not about a path).
    :param applicable: ``False`` when the property does not apply to this protocol.
    :param rule: the rule checked.
    :param further: the messages of further violations of the same property.
    """

    name: str
    ok: bool
    message: str
    counterexample: tuple[PathStep, ...] = ()
    applicable: bool = True
    rule: str = ""
    further: tuple[str, ...] = ()


@frozen
class Report:
    """What :func:`verify` found for one protocol.

    :param protocol: the protocol's id.
    :param version: its version.
    :param kind: ``encounter`` or ``order``.
    :param results: one result per property, core properties first.
    :param bounds: the worst-case measures (waits for an encounter; the total
        time in force for an order).
    """

    protocol: str
    version: str
    kind: ProtocolKind
    results: tuple[PropertyResult, ...]
    bounds: tuple[Bound, ...]

    @property
    def ok(self) -> bool:
        """Whether every property holds."""
        return all(r.ok for r in self.results)

    def result(self, name: str) -> PropertyResult:
        """The result of property ``name``. :raises KeyError: for an unknown name."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no property {name!r}; known: {', '.join(r.name for r in self.results)}")

    @property
    def failed(self) -> tuple[PropertyResult, ...]:
        """The results that fail."""
        return tuple(r for r in self.results if not r.ok)

    def problems(self) -> list[str]:
        """One readable line per failing property, with its counterexample path."""
        return [
            f"{r.name}: {r.message}"
            + (f"; path: {render_path(r.counterexample)}" if r.counterexample else "")
            for r in self.failed
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data (through the one converter); durations as ``1h45m``."""
        return {
            "protocol": self.protocol,
            "version": self.version,
            "kind": self.kind.value,
            "ok": self.ok,
            "results": [converter.unstructure(r, PropertyResult) for r in self.results],
            "bounds": [
                {**converter.unstructure(b, Bound), "unbounded": b.unbounded, "holds": b.holds}
                for b in self.bounds
            ],
        }

    def to_text(self) -> str:
        """The readable report: each property ✓/✗/–, counterexamples, the bounds."""
        from .cli_check import render_report  # the text lives with the `check` command

        return render_report(self)


def render_path(path: Sequence[PathStep]) -> str:
    """``arrived (counter) --call_expert--> awaiting_expert (counter)``."""
    return " ".join(str(p) for p in path)


# -- the properties ----------------------------------------------------------------

Check = Callable[[ProtocolGraph], Iterator[Violation]]


def _responsibility(g: ProtocolGraph) -> Iterator[Violation]:
    parties = g.protocol.parties
    for key in g.reachable:
        step = g.protocol.steps[key]
        if step.terminal:
            continue
        if step.responsible is None:
            yield Violation(f"step {key!r} has no responsible party", key)
        elif step.responsible not in parties:
            yield Violation(
                f"step {key!r} names {step.responsible!r} as responsible, which is not a party",
                key,
            )


def _calm(e: Edge) -> bool:
    return e.event != ACUTE_DANGER


def _termination(g: ProtocolGraph) -> Iterator[Violation]:
    steps = g.protocol.steps
    into: dict[str, list[str]] = {key: [] for key in steps}
    for key in g.reachable:
        for e in g.out[key]:
            if _calm(e):
                into[e.target].append(key)
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
        trapped = _nearby(g, key, 6)
        names = ", ".join(repr(s) for s in trapped[:5]) + (" and more" if len(trapped) > 5 else "")
        how = (
            f"it can only reach {names} (a trap without an exit)"
            if trapped
            else "its only way out is acute_danger"
            if g.out[key]
            else "it is a dead end"
        )
        yield Violation(
            f"from step {key!r} no terminal step can be reached without acute_danger: {how}", key
        )


def _nearby(g: ProtocolGraph, start: str, limit: int) -> list[str]:
    """Up to ``limit`` steps reachable from ``start`` without acute_danger, nearest first."""
    seen, queue = {start}, deque([start])
    found: list[str] = []
    while queue and len(found) < limit:
        for e in g.out[queue.popleft()]:
            if _calm(e) and e.target not in seen:
                seen.add(e.target)
                found.append(e.target)
                queue.append(e.target)
    return found[:limit]


def _deadlines(g: ProtocolGraph) -> Iterator[Violation]:
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
                yield Violation(
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
        yield Violation(f"the deadline of step {key!r} does not lead on: {why}", key)


def _party_kind(g: ProtocolGraph, role: str | None) -> PartyKind | None:
    party = g.protocol.parties.get(role or "")
    return None if party is None else party.kind


def _acute_danger(g: ProtocolGraph) -> Iterator[Violation]:
    steps = g.protocol.steps
    for key in g.reachable:
        if steps[key].terminal:
            continue
        acute = [e for e in g.out[key] if e.event == ACUTE_DANGER]
        if not acute:
            yield Violation(f"no acute_danger transition leaves step {key!r}", key)
            continue
        for e in acute:
            target = steps[e.target]
            if "emergency" not in target.tags:
                yield Violation(
                    f"acute_danger from {key!r} leads to {e.target!r}, which is not tagged"
                    " 'emergency'",
                    path=g.path_over(e),
                )
            elif _party_kind(g, target.responsible) is not PartyKind.EMERGENCY:
                yield Violation(
                    f"acute_danger from {key!r} leads to {e.target!r}, whose responsible party"
                    f" {target.responsible!r} is not of kind 'emergency'",
                    path=g.path_over(e),
                )
        if all(e.transition.guard is not None for e in acute):
            yield Violation(f"every acute_danger transition from {key!r} has a guard", key)


def _handover(g: ProtocolGraph) -> Iterator[Violation]:
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
                yield Violation(
                    f"{e.event!r} hands the child from {giver!r} to {receiver!r} in {e.target!r}"
                    f" but may be fired by {', '.join(repr(r) for r in wrong)}; only the"
                    f" receiver {receiver!r} (or the clock) may",
                    path=g.path_over(e),
                )


def _passes(tags: set[str], goal: str = "") -> Check:
    """Every path to a closing step (without acute_danger, which is acute-danger's
    to check) or to a step tagged ``goal`` (any path) passes ``tags`` first."""

    def check(g: ProtocolGraph) -> Iterator[Violation]:
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
            yield Violation(
                f"a path reaches {goal or 'closing step'} {path[-1].step!r}"
                f" without passing a step tagged {what}",
                path=path,
            )

    return check


def _clerk_never_closes(g: ProtocolGraph) -> Iterator[Violation]:
    closing = set(g.protocol.closing_steps())
    for key in g.reachable:
        for e in g.out[key]:
            if e.target not in closing or e.event == ACUTE_DANGER:
                continue
            clerks = [r for r in e.transition.by if _party_kind(g, r) is PartyKind.MUNICIPAL_STAFF]
            if clerks:
                yield Violation(
                    f"{e.event!r} into closing step {e.target!r} may be fired by"
                    f" {', '.join(repr(r) for r in clerks)} (municipal_staff) alone",
                    path=g.path_over(e),
                )


def _bound_violation(b: Bound, label: str) -> Violation | None:
    """Why ``b`` fails its requirement, or ``None`` when it holds or nothing is required."""
    if b.requirement is None or b.holds:
        return None
    need = f"{b.requirement_name} {format_duration(b.requirement)}"
    if b.cycle:
        return Violation(
            f"{label} is unbounded ({need}): a cycle {render_path(b.cycle)} can repeat before"
            f" the goal",
            path=(*b.path, *b.cycle[1:]),
        )
    if b.open_step is not None:
        return Violation(
            f"{label} is unbounded ({need}): step {b.open_step!r} has no deadline and its"
            " responsible party no response model",
            path=b.path,
        )
    if not b.reachable:
        return Violation(f"{label}: no step tagged {b.goal!r} can be reached ({need})")
    assert b.worst is not None
    return Violation(f"{label} can be {format_duration(b.worst)}, more than {need}", path=b.path)


def _bounds(bounds: Sequence[Bound], label: str) -> Check:
    def check(_: ProtocolGraph) -> Iterator[Violation]:
        for b in bounds:
            if b.goal == "order_in_force" and b.requirement is None:
                yield Violation("the protocol states no requirements.max_order_duration")
            elif (v := _bound_violation(b, label.format(goal=b.goal))) is not None:
                yield v

    return check


def _order_adult_only(g: ProtocolGraph) -> Iterator[Violation]:
    fact = g.protocol.facts.get("subject")
    initial = g.protocol.initial
    if fact is None:
        yield Violation("the protocol declares no fact 'subject' (allowing only 'adult')", initial)
    elif tuple(fact.values) != ("adult",):
        allowed = "true or false" if not fact.values else ", ".join(repr(v) for v in fact.values)
        yield Violation(f"fact 'subject' allows {allowed}, not only 'adult'", initial)


def _order_mayor_only(g: ProtocolGraph) -> Iterator[Violation]:
    steps = g.protocol.steps
    for key in g.reachable:
        for e in g.out[key]:
            tags = {"extended", "withdrawn"} & set(steps[e.target].tags)
            if not tags:
                continue
            others = [r for r in e.transition.by if _party_kind(g, r) is not PartyKind.MAYOR]
            if others:
                yield Violation(
                    f"{e.event!r} into {e.target!r} ({', '.join(sorted(tags))}) may be fired by"
                    f" {', '.join(repr(r) for r in others)}, who is not the mayor",
                    path=g.path_over(e),
                )


# -- running them ------------------------------------------------------------------


def _resolve(g: ProtocolGraph, v: Violation) -> tuple[PathStep, ...]:
    if v.path or v.step is None or v.step not in g.parent:
        return v.path
    if v.event is not None:
        edge = next((e for e in g.out[v.step] if e.event == v.event), None)
        if edge is not None:
            return g.path_over(edge)
    return g.path(v.step)


def _judge(g: ProtocolGraph, name: str, rule: str, found: Iterable[Violation]) -> PropertyResult:
    items = [(v.message, _resolve(g, v)) for v in found]
    if not items:
        return PropertyResult(name, True, "holds", rule=rule)
    # the shortest counterexample; the first found among equals
    best = min(range(len(items)), key=lambda i: len(items[i][1]) if items[i][1] else 10**9)
    message, path = items[best]
    further = tuple(m for i, (m, _) in enumerate(items) if i != best)
    return PropertyResult(name, False, message, path, rule=rule, further=further)


def _plugin(g: ProtocolGraph, prop: Property) -> PropertyResult:
    try:
        found = list(prop.check(g.protocol))
    except Exception as exc:  # noqa: BLE001 - a crashing check cannot vouch for safety
        return PropertyResult(
            prop.name, False, f"the check raised {type(exc).__name__}: {exc}", rule=prop.rule
        )
    return _judge(g, prop.name, prop.rule, found)


def verify(protocol: Protocol, extra_properties: Iterable[Property] = ()) -> Report:
    """Check every safety property of ``protocol`` and compute its time bounds.

    :param protocol: the protocol (it need not pass :func:`lastresort.validate`;
        only a graph that cannot be built is refused).
    :param extra_properties: further properties, e.g. from plugins'
        ``lastresort_protocol_properties`` hook.
    :returns: a :class:`Report` with one result per property.
    :raises ProtocolError: when the graph is meaningless (unknown steps in
        ``initial``, ``from`` or ``to``, outgoing transitions of a terminal step,
        ``by`` naming nobody or an unknown party); see docs/verifier.md.
    :raises ValueError: when an extra property is not a :class:`Property` or its
        name is already taken.
    """
    extra = list(extra_properties)
    taken = set(RULES)
    for prop in extra:
        if not isinstance(prop, Property):
            raise ValueError(f"expected a lastresort.Property, got {type(prop).__name__}")
        if prop.name in taken:
            raise ValueError(f"property name {prop.name!r} is already taken")
        taken.add(prop.name)
    problems = graph_problems(protocol)
    if problems:
        raise ProtocolError(problems, protocol.id)
    g = ProtocolGraph(protocol)
    req = protocol.requirements
    order = protocol.kind is ProtocolKind.ORDER
    if order:
        cap = order_bound(g, req.max_order_duration)
        bounds: tuple[Bound, ...] = (cap,)
    else:
        bounds = (
            goal_bound(
                g, "child_with_expert", "time until the child is with an expert",
                "max_wait_for_expert", req.max_wait_for_expert,
            ),
            goal_bound(
                g, "mayor_involved", "time until the mayor is involved",
                "max_wait_for_mayor", req.max_wait_for_mayor,
            ),
        )  # fmt: skip
    checks: dict[str, Check] = {
        "responsibility": _responsibility,
        "termination": _termination,
        "deadlines": _deadlines,
        "acute-danger": _acute_danger,
        "handover": _handover,
        "report-before-close": _passes({"reported", "safe_arrangement"}),
        "mayor": _passes({"mayor_involved"}),
        "clerk-never-closes": _clerk_never_closes,
        "time-bounds": _bounds(bounds, "the wait until {goal!r}"),
    }
    if order:
        checks |= {
            "order-adult-only": _order_adult_only,
            "order-consult-first": _passes({"veilig_thuis_consulted"}, "order_in_force"),
            "order-cap": _bounds(bounds, "the total time in force"),
            "order-mayor-only": _order_mayor_only,
        }
    results = []
    for name, check in checks.items():
        why = _not_applicable(protocol, name)
        if why is not None:
            results.append(PropertyResult(name, True, why, applicable=False, rule=RULES[name]))
        else:
            results.append(_judge(g, name, RULES[name], check(g)))
    for prop in extra:
        if protocol.kind not in prop.kinds:
            why = f"not applicable: applies to {', '.join(sorted(k.value for k in prop.kinds))}"
            results.append(PropertyResult(prop.name, True, why, applicable=False, rule=prop.rule))
        else:
            results.append(_plugin(g, prop))
    return Report(protocol.id, protocol.version, protocol.kind, tuple(results), bounds)


def _not_applicable(protocol: Protocol, name: str) -> str | None:
    if protocol.kind is ProtocolKind.ORDER and name in ENCOUNTER_ONLY:
        return "not applicable: an order is not a child's encounter at the counter"
    if name == "report-before-close" and not protocol.requirements.report_before_close:
        return "not applicable: requirements.report_before_close = false"
    if name == "mayor" and not protocol.requirements.mayor_contact:
        return "not applicable: the protocol does not require mayor contact (mayor_contact = false)"
    return None


def _register() -> None:
    for cls in (PathStep, PropertyResult, Bound):
        converter.register_unstructure_hook(
            cls, make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=False)
        )


_register()
