"""A protocol's graph, shortest counterexample paths, and worst-case time bounds.

The verifier (``verification.py``) checks the properties (``properties.py``) over this
graph; this module holds the graph itself, its paths (and how they are rendered)
and the two numeric measures: the worst-case time until a goal step
(``child_with_expert``, ``mayor_involved``) and the total time an order is in
force. Everything is deterministic: transitions are visited in file order, so the
same protocol always yields the same paths.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from itertools import pairwise

from attrs import frozen

from ..protocol.cycles import strongly_connected
from ..protocol.model import ACUTE_DANGER, ANY_STEP, CLOCK, Deadline, Protocol, Transition
from ..protocol.workdays import WorkingCalendar, longest_span

__all__ = [
    "Bound",
    "Edge",
    "PathStep",
    "ProtocolGraph",
    "goal_bound",
    "graph_problems",
    "order_bound",
    "render_path",
]

ZERO = timedelta(0)

#: The calendar years over which a working-day deadline (``2wd``) is converted to its
#: longest span in elapsed time: every start in them is tried (Easter, Christmas and
#: King's Day fall on every weekday in ten years). Stated in the report.
WORKING_DAY_HORIZON = range(2026, 2036)

_SPANS: dict[tuple[str, int], timedelta] = {}


def span(protocol: Protocol, deadline: Deadline) -> timedelta:
    """The longest elapsed time ``deadline`` can last: its ``after``, or for working
    days their longest span over :data:`WORKING_DAY_HORIZON` in the protocol's time
    zone (weekends and Dutch public holidays; a plugin's closing days are not known
    to the verifier, see docs/verifier.md)."""
    after = deadline.after
    if isinstance(after, timedelta):
        return after
    key = (protocol.timezone, after.count)
    found = _SPANS.get(key)
    if found is None:
        found = longest_span(after, WorkingCalendar(protocol.timezone), WORKING_DAY_HORIZON)
        _SPANS[key] = found
    return found


@frozen
class PathStep:
    """One point of a counterexample path.

    :param event: the event that led here (``None`` for the initial step).
    :param step: the step entered.
    :param party: the party responsible in that step (``None`` for a terminal step
        without one).
    """

    event: str | None
    step: str
    party: str | None

    def __str__(self) -> str:
        head = self.step if self.event is None else f"--{self.event}--> {self.step}"
        return f"{head} ({self.party or 'nobody'})"


def render_path(path: Sequence[PathStep]) -> str:
    """``arrived (counter) --call_expert--> awaiting_expert (counter)``."""
    return " ".join(str(p) for p in path)


@frozen
class Edge:
    """A transition taken from one particular source step (``*`` expanded)."""

    source: str
    target: str
    transition: Transition
    index: int

    @property
    def event(self) -> str:
        """The transition's event."""
        return self.transition.event


@frozen
class Bound:
    """A worst-case measure of a protocol, compared with its stated requirement.

    :param goal: the tag measured (``child_with_expert``, ``mayor_involved``) or,
        for an order, ``order_in_force``.
    :param what: what is measured, for people.
    :param requirement_name: the key in ``[requirements]`` it is compared with.
    :param requirement: the stated maximum, or ``None`` when none is stated.
    :param worst: the worst case, or ``None`` when unbounded or never reached (an
        order that is never in force has a worst case of zero).
    :param reachable: whether a goal step can be reached at all.
    :param path: the worst path (bounded); the shortest path to the cycle's first
        step or to ``open_step`` (unbounded).
    :param costs: what each step of ``path`` costs, aligned with ``path``.
    :param cycle: a cycle that makes the measure unbounded (starts and ends at the
        same step), or empty.
    :param open_step: a step that costs an unknown time (no deadline and no
        response model), making the measure unbounded, or ``None``.
    :param ends: for the nearest steps where a path ends without reaching the goal
        (at most ``max_examples`` of :func:`~lastresort.verify`), the shortest path
        there (reported apart; not counted in ``worst``).
    :param ends_total: how many such steps there are (all counted, a few in ``ends``).
    :param estimate: when no true worst case exists because a step on the way has no
        deadline (it may last any time): the longest time with such steps at their
        responsible party's p90 (an ESTIMATE, never a guarantee); else ``None``.
    :param estimated_steps: the steps without a deadline that ``estimate`` counts at p90.
    :param working_days: the steps of ``path`` whose deadline is in working days,
        counted at their longest span over :data:`WORKING_DAY_HORIZON`.
    :param reminders: reminder loops counted once (``requirements.reminders_end_wait``):
        the steps whose own deadline event leads back to them, each costing its deadline
        once (the wait ends when the first reminder fires).
    """

    goal: str
    what: str
    requirement_name: str
    requirement: timedelta | None
    worst: timedelta | None
    reachable: bool
    path: tuple[PathStep, ...] = ()
    costs: tuple[timedelta, ...] = ()
    cycle: tuple[PathStep, ...] = ()
    open_step: str | None = None
    ends: tuple[tuple[PathStep, ...], ...] = ()
    ends_total: int = 0
    estimate: timedelta | None = None
    estimated_steps: tuple[str, ...] = ()
    reminders: tuple[str, ...] = ()
    working_days: tuple[str, ...] = ()

    @property
    def unbounded(self) -> bool:
        """Whether no finite worst case exists (a cycle, a step of unknown cost, or a
        step without a deadline: only an :attr:`estimate` then)."""
        return bool(self.cycle) or self.open_step is not None or bool(self.estimated_steps)

    @property
    def holds(self) -> bool | None:
        """``None`` when no requirement is stated; otherwise whether the true worst
        case is known and within it (an estimate never proves a requirement)."""
        if self.requirement is None:
            return None
        return self.worst is not None and self.worst <= self.requirement


def graph_problems(protocol: Protocol) -> list[str]:
    """Structural problems that make the graph meaningless (unusable input).

    Unknown steps in ``initial``/``from``/``to``, ``from`` naming nothing or mixing
    ``*`` with names, outgoing transitions of a terminal step, ``by`` naming nobody
    or an unknown party, and a party called ``clock``.
    """
    steps, parties = protocol.steps, protocol.parties
    problems: list[str] = []
    if protocol.initial not in steps:
        problems.append(f"$.protocol.initial: unknown step {protocol.initial!r}")
    if CLOCK in parties:
        problems.append("$.parties.clock: 'clock' is reserved for deadline events")
    for i, transition in enumerate(protocol.transitions):
        path = f"$.transitions[{i}]"
        if transition.target not in steps:
            problems.append(f"{path}.to: unknown step {transition.target!r}")
        if not transition.sources:
            problems.append(f"{path}.from: names no step")
        elif ANY_STEP in transition.sources and len(transition.sources) > 1:
            problems.append(f"{path}.from: '*' cannot be combined with step names")
        elif ANY_STEP not in transition.sources:
            for j, source in enumerate(transition.sources):
                if source not in steps:
                    problems.append(f"{path}.from[{j}]: unknown step {source!r}")
                elif steps[source].terminal:
                    problems.append(
                        f"{path}.from[{j}]: terminal step {source!r} cannot have outgoing transitions"
                    )
        if not transition.by:
            problems.append(f"{path}.by: names nobody who may fire it")
        for j, role in enumerate(transition.by):
            if role != CLOCK and role not in parties:
                problems.append(f"{path}.by[{j}]: unknown party {role!r}")
    return problems


class ProtocolGraph:
    """The steps reachable from the initial step and the transitions between them.

    Guards are treated as possibly true or false: every transition may be taken.
    Build it only for a protocol without :func:`graph_problems`.
    """

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        out: dict[str, list[Edge]] = {key: [] for key in protocol.steps}
        for index, transition in enumerate(protocol.transitions):
            for source in protocol.sources_of(transition):
                out[source].append(Edge(source, transition.target, transition, index))
        self.out: Mapping[str, list[Edge]] = out
        self.parent = self.search(protocol.initial)
        #: reachable steps, in breadth-first order (the initial step first)
        self.reachable: tuple[str, ...] = tuple(self.parent)
        #: the fewest events from the initial step to each reachable step (the
        #: length of its shortest path, known without building the path)
        self.depth: dict[str, int] = {}
        for step, e in self.parent.items():
            self.depth[step] = 0 if e is None else self.depth[e.source] + 1
        self._by_event: dict[tuple[str, str], Edge] | None = None

    def edge(self, step: str, event: str) -> Edge | None:
        """The first edge (file order) for ``event`` that leaves ``step``."""
        if self._by_event is None:  # built once, on first use: O(transitions)
            self._by_event = {}
            for key, edges in self.out.items():
                for e in edges:
                    self._by_event.setdefault((key, e.event), e)
        return self._by_event.get((step, event))

    def party(self, step: str) -> str | None:
        """The responsible party of ``step``."""
        return self.protocol.steps[step].responsible

    def search(
        self,
        start: str,
        node: Callable[[str], bool] = lambda _: True,
        edge: Callable[[Edge], bool] = lambda _: True,
    ) -> dict[str, Edge | None]:
        """Breadth-first search from ``start`` through steps where ``node`` holds
        (a step where it fails is entered but not left), along edges where ``edge``
        holds. :returns: each step reached and the edge it was first reached by."""
        parent: dict[str, Edge | None] = {start: None}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            if here != start and not node(here):
                continue
            for e in self.out[here]:
                if e.target not in parent and edge(e):
                    parent[e.target] = e
                    queue.append(e.target)
        return parent

    def path(
        self, step: str, parent: Mapping[str, Edge | None] | None = None
    ) -> tuple[PathStep, ...]:
        """The path to ``step`` recorded in ``parent`` (default: the shortest path
        from the initial step)."""
        parent = self.parent if parent is None else parent
        edges: list[Edge] = []
        here = step
        while (e := parent[here]) is not None:
            edges.append(e)
            here = e.source
        return self.walk(here, reversed(edges))

    def walk(self, start: str, edges: Iterable[Edge]) -> tuple[PathStep, ...]:
        """The path that starts in ``start`` and follows ``edges``."""
        out = [PathStep(None, start, self.party(start))]
        out.extend(PathStep(e.event, e.target, self.party(e.target)) for e in edges)
        return tuple(out)

    def path_over(self, edge: Edge) -> tuple[PathStep, ...]:
        """The shortest path from the initial step to ``edge.source``, then ``edge``."""
        return (*self.path(edge.source), PathStep(edge.event, edge.target, self.party(edge.target)))

    def first(self, bad: Callable[[str], bool]) -> str | None:
        """The reachable step nearest the initial step for which ``bad`` holds."""
        return next((step for step in self.reachable if bad(step)), None)

    def first_edge(self, bad: Callable[[Edge], bool]) -> Edge | None:
        """The reachable edge whose counterexample path is shortest: the nearest
        source first, then file order."""
        for step in self.reachable:
            for e in self.out[step]:
                if bad(e):
                    return e
        return None

    def avoiding(
        self,
        avoid: Callable[[str], bool],
        goal: Callable[[str], bool],
        edge: Callable[[Edge], bool] = lambda _: True,
    ) -> tuple[PathStep, ...] | None:
        """The shortest path (along edges where ``edge`` holds) to a step where
        ``goal`` holds that passes no step where ``avoid`` holds *before* it (the
        goal step itself does not count), or ``None`` when every path to a goal step
        passes one first."""
        initial = self.protocol.initial
        if goal(initial):
            return self.walk(initial, ())
        if avoid(initial):
            return None
        parent = self.search(initial, node=lambda s: not avoid(s) and not goal(s), edge=edge)
        found = next((s for s in parent if goal(s)), None)
        return None if found is None else self.path(found, parent)

    def cycle_in(self, nodes: set[str], edge: Callable[[Edge], bool]) -> tuple[Edge, ...]:
        """A cycle within ``nodes`` along edges where ``edge`` holds, or ``()``;
        depth-first from the steps in breadth-first order, edges in file order."""
        done: set[str] = set()
        for root in self.reachable:
            if root not in nodes or root in done:
                continue
            stack: list[tuple[str, int]] = [(root, 0)]
            on_stack = {root: 0}  # step -> its position in ``stack``
            trail: list[Edge] = []  # trail[k] leads from stack[k] to stack[k + 1]
            while stack:
                here, i = stack[-1]
                edges = self.out[here]
                if i == len(edges):
                    stack.pop()
                    del on_stack[here]
                    done.add(here)
                    if trail:
                        trail.pop()
                    continue
                stack[-1] = (here, i + 1)
                e = edges[i]
                if e.target not in nodes or e.target in done or not edge(e):
                    continue
                if e.target in on_stack:
                    return (*trail[on_stack[e.target] :], e)
                on_stack[e.target] = len(stack)
                trail.append(e)
                stack.append((e.target, 0))
        return ()


def _cost(protocol: Protocol, step: str) -> timedelta | None:
    here = protocol.steps[step]
    if here.deadline is not None:
        return span(protocol, here.deadline)
    party = protocol.parties.get(here.responsible or "")
    if party is not None and party.response is not None:
        return party.response.p90
    return None


def _event(protocol: Protocol, step: str) -> str | None:
    deadline = protocol.steps[step].deadline
    return None if deadline is None else deadline.event


def goal_bound(
    graph: ProtocolGraph,
    goal: str,
    what: str,
    requirement_name: str,
    requirement: timedelta | None,
    max_ends: int = 5,
) -> Bound:
    """The worst-case time from opening until the first step tagged ``goal``.

    Each step passed costs its deadline's ``after`` (the clock moves the child on
    at the latest then), or the p90 of its responsible party's response model when
    it has no deadline; ``acute_danger`` is not followed. See docs/verifier.md.
    Linear in the size of the graph: the paths of at most ``max_ends`` ends are built.
    """
    protocol = graph.protocol
    steps = protocol.steps
    is_goal = {k for k, s in steps.items() if goal in s.tags}
    # with reminders_end_wait, a step's own deadline event back into it is a reminder:
    # the wait is counted until the first one fires (the step costs its deadline once)
    reminder_edges = (
        {
            (k, d.event)
            for k, s in steps.items()
            if (d := s.deadline) is not None
            for e in graph.out.get(k, ())
            if e.target == k and e.event == d.event
        }
        if protocol.requirements.reminders_end_wait
        else set()
    )

    def calm(e: Edge) -> bool:
        return e.event != ACUTE_DANGER and (e.source, e.event) not in reminder_edges

    initial = protocol.initial
    if initial in is_goal:
        return Bound(
            goal, what, requirement_name, requirement, ZERO, True, graph.walk(initial, ()), (ZERO,)
        )
    # steps reached before any goal step
    before = graph.search(initial, node=lambda s: s not in is_goal, edge=calm)
    region = [s for s in before if s not in is_goal]
    # of those, the ones from which a goal step can still be reached
    inside = set(region)
    into: dict[str, list[str]] = {}
    for s in region:
        for e in graph.out[s]:
            if calm(e):
                into.setdefault(e.target, []).append(s)
    leads: set[str] = set()
    queue = deque(goal_step for goal_step in is_goal if goal_step in into)
    while queue:
        for s in into.get(queue.popleft(), ()):
            if s in inside and s not in leads:
                leads.add(s)
                queue.append(s)
    # every end counted; only the nearest (``region`` is in breadth-first order) get a path
    all_ends = [s for s in region if steps[s].terminal or not any(calm(e) for e in graph.out[s])]
    ends = tuple(graph.path(s, before) for s in all_ends[:max_ends])
    total = len(all_ends)
    if initial not in leads:
        return Bound(
            goal, what, requirement_name, requirement, None, False, ends=ends, ends_total=total
        )
    cycle = graph.cycle_in(leads, calm)
    if cycle:
        entry = cycle[0].source
        return Bound(
            goal, what, requirement_name, requirement, None, True,
            path=graph.path(entry, before), cycle=graph.walk(entry, cycle), ends=ends,
            ends_total=total,
        )  # fmt: skip
    reminders = tuple(
        s for s in region if s in leads and (s, _event(protocol, s)) in reminder_edges
    )
    open_step = next((s for s in region if s in leads and _cost(protocol, s) is None), None)
    if open_step is not None:
        return Bound(
            goal, what, requirement_name, requirement, None, True,
            path=graph.path(open_step, before), open_step=open_step, ends=ends,
            ends_total=total,
        )  # fmt: skip
    # longest path over the acyclic region, memoised, file order breaks ties
    best: dict[str, tuple[timedelta, Edge | None]] = {}
    order = _topological(graph, leads, calm)
    for s in reversed(order):
        cost = _cost(protocol, s)
        assert cost is not None
        choice: tuple[timedelta, Edge | None] = (timedelta.min, None)
        for e in graph.out[s]:
            if not calm(e):
                continue
            if e.target in is_goal:
                value = ZERO
            elif e.target in leads:
                value = best[e.target][0]
            else:
                continue
            if value > choice[0]:
                choice = (value, e)
        best[s] = (cost + choice[0], choice[1])
    edges: list[Edge] = []
    here = initial
    costs: list[timedelta] = []
    while here not in is_goal:
        costs.append(_cost(protocol, here) or ZERO)
        chosen = best[here][1]
        assert chosen is not None
        edges.append(chosen)
        here = chosen.target
    costs.append(ZERO)
    # a step without a deadline may last any time: only an estimate (its party's p90)
    estimated = tuple(s for s in region if s in leads and steps[s].deadline is None)
    longest = best[initial][0]
    return Bound(
        goal, what, requirement_name, requirement, None if estimated else longest, True,
        path=graph.walk(initial, edges), costs=tuple(costs), ends=ends, ends_total=total,
        estimate=longest if estimated else None, estimated_steps=estimated, reminders=reminders,
    )  # fmt: skip


def _topological(graph: ProtocolGraph, nodes: set[str], edge: Callable[[Edge], bool]) -> list[str]:
    """``nodes`` (acyclic along ``edge``) in topological order."""
    indegree = {n: 0 for n in nodes}
    for n in nodes:
        for e in graph.out[n]:
            if edge(e) and e.target in nodes:
                indegree[e.target] += 1
    queue = deque(n for n in graph.reachable if n in nodes and indegree[n] == 0)
    order: list[str] = []
    while queue:
        n = queue.popleft()
        order.append(n)
        for e in graph.out[n]:
            if edge(e) and e.target in nodes:
                indegree[e.target] -= 1
                if indegree[e.target] == 0:
                    queue.append(e.target)
    return order


def components(graph: ProtocolGraph) -> list[list[str]]:
    """The strongly connected components of the reachable steps, each listed after
    every component it leads to (Tarjan's order: reverse topological). Without
    recursion, linear in steps plus transitions."""
    targets = {key: [e.target for e in edges] for key, edges in graph.out.items()}
    return strongly_connected(graph.reachable, targets.__getitem__)


def _on_cycles(graph: ProtocolGraph, parts: Iterable[list[str]]) -> set[str]:
    """The steps of ``parts`` (:func:`components`) that lie on a cycle."""
    found: set[str] = set()
    for part in parts:
        if len(part) > 1:
            found.update(part)
        elif any(e.target == part[0] for e in graph.out[part[0]]):
            found.add(part[0])
    return found


def on_cycles(graph: ProtocolGraph) -> set[str]:
    """The reachable steps that lie on a cycle (a strongly connected component of more
    than one step, or a step with a transition to itself): Tarjan's algorithm, without
    recursion, linear in steps plus transitions."""
    return _on_cycles(graph, components(graph))


def order_bound(graph: ProtocolGraph, requirement: timedelta | None) -> Bound:
    """The most time an order can be in force in total: the largest sum of the
    deadlines of steps tagged ``order_in_force`` along any path (every transition
    followed). A cycle through such a step, or such a step without a deadline,
    makes it unbounded.

    Linear in steps plus transitions when every deadline is longer than zero (as
    :func:`~lastresort.validate` demands); see docs/verifier.md. Of equally long
    paths it reports the one a breadth-first search (transitions in file order)
    meets first: from the initial step, the first step in force it can reach with the
    most time ahead, then from each the first later one (see ``between``).
    """
    protocol = graph.protocol
    steps = protocol.steps
    tag, what, name = "order_in_force", "total time the order is in force", "max_order_duration"
    force = [s for s in graph.reachable if tag in steps[s].tags]
    if not force:
        return Bound(tag, what, name, requirement, ZERO, False)
    parts = components(graph)
    cyclic = _on_cycles(graph, parts)  # one pass (not a search from every weighted step)
    for f in force:
        if f not in cyclic:
            continue
        parent = graph.search(f)
        back = next((e for s in parent for e in graph.out[s] if e.target == f), None)
        if back is not None:
            return Bound(
                tag, what, name, requirement, None, True,
                path=graph.path(f),
                cycle=(*graph.path(back.source, parent), PathStep(back.event, f, graph.party(f))),
            )  # fmt: skip
    for f in force:
        if steps[f].deadline is None:
            return Bound(tag, what, name, requirement, None, True, path=graph.path(f), open_step=f)
    weighted = set(force)

    def between(
        start: str, edge: Callable[[Edge], bool] = lambda _: True
    ) -> dict[str, Edge | None]:
        """The steps reached from ``start`` before (and including) the next weighted
        steps, breadth-first, along edges where ``edge`` holds."""
        return graph.search(start, node=lambda s: s not in weighted, edge=edge)

    # a step whose deadline counts from an earlier step ("from") ends at most its
    # ``after`` past that step's entry, whatever the order spent in force meanwhile:
    # such protocols take the search below (a search from each step in force)
    dated = {
        f: d.since for f in force if (d := steps[f].deadline) is not None and d.since is not None
    }
    if dated:
        return _dated_order_bound(graph, requirement, force, dated, between)

    # No cycle runs through a weighted step: each is a component of its own. In one
    # pass over the components, each after those it leads to:
    #   best[f]  the most time in force from entering weighted step f on;
    #   later[f] the most of that for a weighted step reached from f before any other
    #            (ZERO when none), so best[f] = f's deadline + later[f];
    #   ahead[s] for a step s not weighted, the most best[g] of a weighted step g
    #            reached from s before any other (None when none is).
    best: dict[str, timedelta] = {}
    later: dict[str, timedelta] = {}
    ahead: dict[str, timedelta | None] = {}

    def value(step: str) -> timedelta | None:
        return best[step] if step in weighted else ahead[step]

    for part in parts:
        if part[0] in weighted:  # a component of its own, without a transition to itself
            f = part[0]
            most = ZERO
            for e in graph.out[f]:
                v = value(e.target)
                if v is not None and v > most:
                    most = v
            deadline = steps[f].deadline
            assert deadline is not None
            later[f] = most
            best[f] = span(protocol, deadline) + most
            continue
        members = set(part) if len(part) > 1 else ()
        found: timedelta | None = None
        for s in part:
            for e in graph.out[s]:
                if e.target in members or e.target == s:
                    continue
                v = value(e.target)
                if v is not None and (found is None or v > found):
                    found = v
        for s in part:
            ahead[s] = found
    start = between(protocol.initial)
    first = [f for f in force if f in start]
    top = max(first, key=best.__getitem__)
    path = list(graph.path(top, start))
    here = top
    # Each next weighted step: the first, breadth-first from ``here``, of those with
    # the most time ahead. Only steps that lead to one are searched; the search meets
    # them in the order (and by the edges) a search of all would. A step not weighted
    # leads to one for one ``here`` at most, as the time ahead falls along the chain
    # by each deadline (> 0): the searches are linear together.
    while (most := later[here]) > ZERO:

        def leads(e: Edge, most: timedelta = most) -> bool:
            return value(e.target) == most

        parent = between(here, leads)
        after = next(g for g in parent if g in weighted and g != here)
        path.extend(graph.path(after, parent)[1:])
        here = after
    costs = tuple(
        span(protocol, d) if p.step in weighted and (d := steps[p.step].deadline) else ZERO
        for p in path
    )
    return Bound(tag, what, name, requirement, best[top], True, path=tuple(path), costs=costs)


def _dated_order_bound(
    graph: ProtocolGraph,
    requirement: timedelta | None,
    force: Sequence[str],
    dated: Mapping[str, str],
    between: Callable[[str], dict[str, Edge | None]],
) -> Bound:
    """:func:`order_bound` for a protocol with a step in force whose deadline counts
    from an earlier step (``from``): the chains of steps in force never run through
    such a step; it is counted from its anchor instead. Searches ``between`` from each
    step in force, so quadratic where the regions overlap (see docs/verifier.md)."""
    protocol = graph.protocol
    steps = protocol.steps
    tag, what, name = "order_in_force", "total time the order is in force", "max_order_duration"
    weighted = set(force)
    reach = {f: between(f) for f in force}
    # the chains below never run through a dated step; it is counted from its anchor
    # no cycle runs through a weighted step, so the chain of them is acyclic
    best: dict[str, tuple[timedelta, str | None]] = {}
    pending = list(force)
    while pending:
        f = pending.pop()
        if f in best:
            continue
        later = [g for g in reach[f] if g in weighted and g != f and g not in dated]
        missing = [g for g in later if g not in best]
        if missing:
            pending.append(f)
            pending.extend(missing)
            continue
        deadline = steps[f].deadline
        assert deadline is not None
        choice: tuple[timedelta, str | None] = (ZERO, None)
        for g in later:
            if best[g][0] > choice[0]:
                choice = (best[g][0], g)
        best[f] = (span(protocol, deadline) + choice[0], choice[1])
    start = between(protocol.initial)
    first = [f for f in force if f in start]
    before = _time_before(graph, force, reach, start, {a for a in dated.values()})
    top = max(first, key=lambda f: best[f][0]) if first else None
    worst = best[top][0] if top is not None else ZERO
    anchored: tuple[str, str] | None = None
    for g, anchor in dated.items():
        total = before.get(anchor, (ZERO, None))[0] + best[g][0]
        if total > worst or top is None:
            worst, anchored = total, (g, anchor)
    path: list[PathStep] = []
    costs_list: list[timedelta] = []
    if anchored is None:
        assert top is not None
        path = list(graph.path(top, start))
        here: str | None = top
    else:
        g, anchor = anchored
        chain = [anchor]  # the weighted steps before the anchor, latest first
        while (prior := before.get(chain[-1], (ZERO, None))[1]) is not None:
            chain.append(prior)
        chain.reverse()
        path = list(graph.path(chain[0], start if chain[0] in start else None))
        for a, b in pairwise(chain):
            path.extend(graph.path(b, reach[a])[1:])
        path.extend(graph.path(g, graph.search(anchor))[1:])
        here = g
    while (after := best[here][1] if here is not None else None) is not None:
        assert here is not None
        path.extend(graph.path(after, reach[here])[1:])
        here = after
    weighted_costs = {
        f: span(protocol, d) for f in weighted if (d := steps[f].deadline) is not None
    }
    if anchored is not None:
        g, anchor = anchored
        # between the anchor's entry and the dated step's end, the dated step's bound
        # is the whole cost (counted on the dated step)
        inside = False
        for p in path:
            if p.step == anchor:
                inside = True
            costs_list.append(
                ZERO
                if inside and p.step != g
                else (weighted_costs.get(p.step, ZERO) if p.step in weighted else ZERO)
            )
            if p.step == g:
                inside = False
    else:
        costs_list = [weighted_costs.get(p.step, ZERO) for p in path]
    costs = tuple(costs_list)
    return Bound(tag, what, name, requirement, worst, True, path=tuple(path), costs=costs)


def _time_before(
    graph: ProtocolGraph,
    force: Sequence[str],
    reach: Mapping[str, Mapping[str, Edge | None]],
    start: Mapping[str, Edge | None],
    targets: set[str],
) -> dict[str, tuple[timedelta, str | None]]:
    """For each of ``targets``: the longest an order can have been in force before it
    enters that step (the sum of the deadlines of the in-force steps on the way), and
    the in-force step just before it on that way (``None``: none)."""
    steps = graph.protocol.steps
    into: dict[str, list[str]] = {}
    for f in force:
        for g in reach[f]:
            if g != f:
                into.setdefault(g, []).append(f)
    memo: dict[str, tuple[timedelta, str | None]] = {}
    pending = list(targets)
    while pending:
        x = pending.pop()
        if x in memo:
            continue
        sources = into.get(x, [])
        missing = [p for p in sources if p not in memo]
        if missing:
            pending.append(x)
            pending.extend(missing)
            continue
        choice: tuple[timedelta, str | None] = (ZERO, None)
        for p in sources:
            deadline = steps[p].deadline
            assert deadline is not None
            total = memo[p][0] + span(graph.protocol, deadline)
            if total > choice[0]:
                choice = (total, p)
        memo[x] = choice
    return {x: memo[x] for x in targets}
