"""The protocol verifier: safety properties with shortest counterexamples, and
worst-case time bounds.

``verify(protocol)`` checks every property over the protocol's graph (all steps
reachable from the initial step; guards treated as possibly true or false) and
returns a :class:`Report`. The exact rule of each property is in docs/verifier.md.
This module runs the checks and picks each property's shortest counterexample; the
properties themselves are in ``properties.py``, the report in ``report.py``, the
graph, its paths and the bounds in ``bounds.py``. The names in ``__all__`` (and
``render_path``, ``Check``) are re-exported here, so they still import from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import NoReturn

from attrs import evolve

from ..errors import InvalidArgument, ProtocolError
from ..protocol.model import Protocol, ProtocolKind, WorkingDays
from ..protocol.validation import duration_problems
from .bounds import Bound, PathStep, ProtocolGraph, goal_bound, graph_problems, order_bound
from .bounds import render_path as render_path  # re-exported for cli_check and testing
from .properties import (
    ENCOUNTER_ONLY,
    ORDER_ONLY,
    RULES,
    Finding,
    Property,
    Violation,
    core_checks,
    not_applicable,
)
from .properties import Check as Check  # re-exported: it was defined here
from .report import PropertyResult, Report

__all__ = [
    "ENCOUNTER_ONLY",
    "MAX_EXAMPLES",
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

#: How many violations per property a report shows by default (all are counted).
MAX_EXAMPLES = 5


#: the sort key of a finding that is not about a path: after every one that is
_NO_PATH = 1 << 62


def _length(g: ProtocolGraph, f: Finding) -> int:
    """How many points the path of ``f`` will have, without building it."""
    if f.path:
        return len(f.path)
    if f.edge is not None:
        return g.depth[f.edge.source] + 2
    if f.step is not None and f.step in g.depth:
        return g.depth[f.step] + 1
    return _NO_PATH


def _path(g: ProtocolGraph, f: Finding) -> tuple[PathStep, ...]:
    if f.path:
        return f.path
    if f.edge is not None:
        return g.path_over(f.edge)
    if f.step is not None and f.step in g.depth:
        return g.path(f.step)
    return ()


def _judge(
    g: ProtocolGraph, name: str, rule: str, found: Iterable[Finding], max_examples: int
) -> PropertyResult:
    """The result of one property: every finding counted, the shortest one's path
    built (the first found among equals) and the messages of ``max_examples - 1``
    others (in the order found). Linear in the number of findings."""
    items = list(found)
    if not items:
        return PropertyResult(name, True, "holds", rule=rule)
    best = min(range(len(items)), key=lambda i: _length(g, items[i]))
    others = (f.message for i, f in enumerate(items) if i != best)
    further = tuple(islice(others, max_examples - 1))
    shortest = items[best]
    return PropertyResult(
        name, False, shortest.message, _path(g, shortest), rule=rule, further=further,
        violations=len(items),
    )  # fmt: skip


def _finding(g: ProtocolGraph, v: object) -> Finding:
    """A plugin's :class:`Violation` as a finding; :raises TypeError: for anything else."""
    if not isinstance(v, Violation):
        raise TypeError(f"it returned a {type(v).__name__}, not a lastresort.Violation")
    if not isinstance(v.message, str):
        raise TypeError(f"a Violation's message is a {type(v.message).__name__}, not a str")
    path = tuple(v.path) if isinstance(v.path, Sequence) else v.path
    if not isinstance(path, tuple) or not all(isinstance(p, PathStep) for p in path):
        raise TypeError("a Violation's path is not a sequence of lastresort.PathStep")
    if path or not isinstance(v.step, str) or v.step not in g.depth:
        return Finding(v.message, path=path)
    edge = g.edge(v.step, v.event) if isinstance(v.event, str) else None
    return Finding(v.message, v.step, edge)


def _plugin(g: ProtocolGraph, prop: Property, max_examples: int) -> PropertyResult:
    try:
        found = [_finding(g, v) for v in prop.check(g.protocol)]
    except Exception as exc:  # noqa: BLE001 - a crashing check cannot vouch for safety
        return PropertyResult(
            prop.name, False, f"the check raised {type(exc).__name__}: {exc}", rule=prop.rule,
            violations=1,
        )  # fmt: skip
    return _judge(g, prop.name, prop.rule, found, max_examples)


def verify(
    protocol: Protocol,
    extra_properties: Iterable[Property] = (),
    *,
    max_examples: int = MAX_EXAMPLES,
) -> Report:
    """Check every safety property of ``protocol`` and compute its time bounds.

    Time and report size are linear in the size of the protocol's graph (steps plus
    transitions): every violation is counted, but only ``max_examples`` per property
    are shown, and only the shortest gets its counterexample path.

    :param protocol: the protocol (it need not pass :func:`lastresort.validate`;
        only a graph that cannot be built is refused).
    :param extra_properties: further properties, e.g. from plugins'
        ``lastresort_protocol_properties`` hook.
    :param max_examples: the most violations shown per property (the shortest
        counterexample and the messages of ``max_examples - 1`` more), and the most
        paths in each bound's ``ends``; at least 1.
    :returns: a :class:`Report` with one result per property.
    :raises ProtocolError: when the graph is meaningless (unknown steps in
        ``initial``, ``from`` or ``to``, outgoing transitions of a terminal step,
        ``by`` naming nobody or an unknown party, a duration longer than 366 days);
        see docs/verifier.md.
    :raises InvalidArgument: (a :class:`ValueError` too) when ``protocol`` is not a
        :class:`Protocol`, an extra property is not a :class:`Property` or its name is
        already taken, or ``max_examples`` is not a whole number of at least 1.
    """

    def refuse(argument: str, problem: str) -> NoReturn:
        raise InvalidArgument(call="verify", argument=argument, problem=problem)

    if not isinstance(protocol, Protocol):
        refuse("protocol", f"a lastresort.Protocol, not {type(protocol).__name__}")
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        refuse("max_examples", f"a whole number of at least 1, not {max_examples!r}")
    if isinstance(extra_properties, str | bytes) or not isinstance(extra_properties, Iterable):
        refuse("extra_properties", f"properties, not {type(extra_properties).__name__}")
    extra = list(extra_properties)
    taken = set(RULES)
    for prop in extra:
        if not isinstance(prop, Property):
            refuse(
                "extra_properties", f"lastresort.Property objects, not one {type(prop).__name__}"
            )
        if prop.name in taken:
            refuse("extra_properties", f"properties of new names ({prop.name!r} is already taken)")
        taken.add(prop.name)
    problems = graph_problems(protocol) + duration_problems(protocol)
    if problems:
        raise ProtocolError(problems=problems, source=protocol.id)
    g = ProtocolGraph(protocol)
    req = protocol.requirements
    if protocol.kind is ProtocolKind.ORDER:
        cap = order_bound(g, req.max_order_duration)
        bounds: tuple[Bound, ...] = (cap,)
    else:
        bounds = (
            goal_bound(
                g, "child_with_expert", "time until the child is with an expert",
                "max_wait_for_expert", req.max_wait_for_expert, max_examples,
            ),
            goal_bound(
                g, "mayor_involved", "time until the mayor is involved",
                "max_wait_for_mayor", req.max_wait_for_mayor, max_examples,
            ),
        )  # fmt: skip
    bounds = tuple(_with_working_days(protocol, b) for b in bounds)
    results = []
    for name, check in core_checks(protocol, bounds).items():
        why = not_applicable(protocol, name)
        if why is not None:
            results.append(PropertyResult(name, True, why, applicable=False, rule=RULES[name]))
        else:
            results.append(_judge(g, name, RULES[name], check(g), max_examples))
    for prop in extra:
        if protocol.kind not in prop.kinds:
            why = f"not applicable: applies to {', '.join(sorted(k.value for k in prop.kinds))}"
            results.append(PropertyResult(prop.name, True, why, applicable=False, rule=prop.rule))
        else:
            results.append(_plugin(g, prop, max_examples))
    return Report(protocol.id, protocol.version, protocol.kind, tuple(results), bounds)


def _with_working_days(protocol: Protocol, bound: Bound) -> Bound:
    """``bound`` with the steps of its path whose deadline counts working days."""
    found = tuple(
        dict.fromkeys(
            p.step
            for p in bound.path
            if (d := protocol.steps[p.step].deadline) is not None
            and isinstance(d.after, WorkingDays)
        )
    )
    return evolve(bound, working_days=found) if found else bound
