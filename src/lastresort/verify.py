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

from collections.abc import Iterable

from .bounds import Bound, PathStep, ProtocolGraph, goal_bound, graph_problems, order_bound
from .bounds import render_path as render_path  # re-exported for cli_check and testing
from .errors import ProtocolError
from .model import Protocol, ProtocolKind
from .properties import (
    ENCOUNTER_ONLY,
    ORDER_ONLY,
    RULES,
    Property,
    Violation,
    core_checks,
    not_applicable,
)
from .properties import Check as Check  # re-exported: it was defined here
from .report import PropertyResult, Report
from .validate import duration_problems

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
        ``by`` naming nobody or an unknown party, a duration longer than 366 days);
        see docs/verifier.md.
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
    problems = graph_problems(protocol) + duration_problems(protocol)
    if problems:
        raise ProtocolError(problems, protocol.id)
    g = ProtocolGraph(protocol)
    req = protocol.requirements
    if protocol.kind is ProtocolKind.ORDER:
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
    results = []
    for name, check in core_checks(protocol, bounds).items():
        why = not_applicable(protocol, name)
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
