"""``order-cap``'s longest path is found in one pass over the graph (issue #12, "verify
linear"), with exactly the result of the search it replaced.

The search it replaced is copied below (``_old_order_bound``, as it was on main before
this change): on thousands of random order protocols both give equal bounds, worst
case, path, costs, cycle and open step, ties broken alike. The scale tests count the
edges each reads, never a time (``benchmarks/bench_verify.py --orders`` prints times).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import lastresort as lr
from lastresort import (
    Bound,
    Deadline,
    Party,
    PartyKind,
    PathStep,
    Protocol,
    ProtocolKind,
    Requirements,
    Step,
    StepKind,
    Text,
    Transition,
)

# the graph and the bound are not public: the one import from inside the package
from lastresort.verifier.bounds import ZERO, Edge, ProtocolGraph, on_cycles, order_bound
from tests.test_verify_scale import _bench

TEXT = Text("Doe het.", "Do it.")
CAP = timedelta(days=28)


def _old_order_bound(graph: ProtocolGraph, requirement: timedelta | None) -> Bound:
    """``lastresort.verifier.bounds.order_bound`` as it was before this change (a search of the
    region up to the next weighted steps from every weighted step), unchanged."""
    protocol = graph.protocol
    steps = protocol.steps
    tag, what, name = "order_in_force", "total time the order is in force", "max_order_duration"
    force = [s for s in graph.reachable if tag in steps[s].tags]
    if not force:
        return Bound(tag, what, name, requirement, ZERO, False)
    cyclic = on_cycles(graph)  # one pass (not a search from every weighted step)
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

    def between(start: str) -> dict[str, Edge | None]:
        return graph.search(start, node=lambda s: s not in weighted)

    reach = {f: between(f) for f in force}
    # no cycle runs through a weighted step, so the chain of them is acyclic
    best: dict[str, tuple[timedelta, str | None]] = {}
    pending = list(force)
    while pending:
        f = pending.pop()
        if f in best:
            continue
        later = [g for g in reach[f] if g in weighted and g != f]
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
        best[f] = (deadline.after + choice[0], choice[1])
    start = between(protocol.initial)
    first = [f for f in force if f in start]
    top = max(first, key=lambda f: best[f][0])
    path = list(graph.path(top, start))
    here: str | None = top
    while (after := best[here][1] if here is not None else None) is not None:
        assert here is not None
        path.extend(graph.path(after, reach[here])[1:])
        here = after
    costs = tuple(
        d.after if p.step in weighted and (d := steps[p.step].deadline) else ZERO for p in path
    )
    return Bound(tag, what, name, requirement, best[top][0], True, path=tuple(path), costs=costs)


# -- building order protocols without the file format (fast enough for thousands) ------


def _protocol(
    steps: dict[str, Step], edges: list[tuple[str | tuple[str, ...], str]], initial: str
) -> Protocol:
    """An order protocol of ``steps`` and one transition per edge (in that order)."""
    return Protocol(
        id="random-order",
        version="1",
        municipality="Testdorp",
        title=Text("Huisverbod", "Restraining order"),
        initial=initial,
        source="tests",
        parties={"mayor": Party(Text("Burgemeester", "Mayor"), PartyKind.MAYOR)},
        steps=steps,
        transitions=[
            Transition(f"e{i}", (a,) if isinstance(a, str) else a, b, ("mayor",))
            for i, (a, b) in enumerate(edges)
        ],
        requirements=Requirements(max_order_duration=CAP),
        kind=ProtocolKind.ORDER,
    )


def _step(weighted: bool, after: timedelta | None, terminal: bool = False) -> Step:
    if terminal:
        return Step(StepKind.TERMINAL, TEXT, tags=("order_in_force",) if weighted else ())
    deadline = None if after is None else Deadline(after, "expires")
    tags = ("order_in_force",) if weighted else ()
    kind = StepKind.WAITING if deadline is not None else StepKind.ACTIVE
    return Step(kind, TEXT, responsible="mayor", deadline=deadline, tags=tags)


def _random_protocol(rng: random.Random) -> Protocol:
    """A random order protocol: mostly acyclic through the weighted steps (so that the
    longest-path part runs), with cycles among the other steps, parallel transitions,
    self-loops, ``*``, unreachable steps, few distinct deadlines (many ties), now and
    then a zero-length deadline (only ``check=False`` lets one through) or none."""
    n = rng.randint(2, 16)
    names = [f"s{i}" for i in range(n)]
    rng.shuffle(names)  # declaration order differs from the rank order below
    rank = {name: i for i, name in enumerate(sorted(names, key=lambda s: int(s[1:])))}
    share = rng.choice([0.3, 0.5, 0.8])
    lengths = rng.choice(
        [
            [timedelta(days=1)],
            [timedelta(days=1), timedelta(days=2)],
            [timedelta(days=d) for d in (1, 2, 3, 5, 8)],
            [ZERO, timedelta(days=1)],
        ]
    )
    initial = min(names, key=rank.__getitem__) if rng.random() < 0.9 else rng.choice(names)
    terminal = {s for s in names if s != initial and rng.random() < 0.15}
    # a terminal step in force has no deadline: an open step, now and then
    weighted = {s for s in names if rng.random() < (share if s not in terminal else 0.1)}
    steps: dict[str, Step] = {}
    for s in names:
        after = rng.choice(lengths) if rng.random() > 0.02 else None
        steps[s] = _step(s in weighted, after, terminal=s in terminal)
    shape = rng.choice(["dag", "dag", "dag+loops", "any"])
    edges: list[tuple[str | tuple[str, ...], str]] = []
    for _ in range(rng.randint(0, 3 * n)):
        a, b = rng.choice(names), rng.choice(names)
        if shape != "any" and rank[a] > rank[b]:
            a, b = b, a
        if a in terminal:
            continue
        forward = rank[a] < rank[b]
        among_others = a not in weighted and b not in weighted and rng.random() < 0.5
        if shape == "dag" and not forward:
            continue
        if shape == "dag+loops" and not (forward or among_others):
            continue
        edges.append((a, b))
        if rng.random() < 0.1:
            edges.append((a, b))  # a second transition between the same steps
    if rng.random() < 0.05:
        edges.append((("*",), rng.choice(sorted(terminal or set(names)))))
    rng.shuffle(edges)  # file order decides ties
    return _protocol(steps, edges, initial)


def test_order_bound_equals_the_old_search_on_random_order_protocols() -> None:
    rng = random.Random(1212)
    kinds = {"longest": 0, "cycle": 0, "open": 0, "never": 0}
    chains = 0
    for round_ in range(4000):
        protocol = _random_protocol(rng)
        graph = ProtocolGraph(protocol)
        new = order_bound(graph, CAP)
        old = _old_order_bound(ProtocolGraph(protocol), CAP)
        assert new == old, (round_, protocol)
        force = {k for k, step in protocol.steps.items() if "order_in_force" in step.tags}
        kind = (
            "never"
            if not new.reachable
            else "cycle"
            if new.cycle
            else "open"
            if new.open_step
            else "longest"
        )
        kinds[kind] += 1
        chains += kind == "longest" and sum(p.step in force for p in new.path) >= 3
    # every part of order_bound was compared, the longest path most often, and often
    # a path through three or more steps in force
    assert kinds["longest"] > 2000, kinds
    assert min(kinds.values()) > 200, kinds
    assert chains > 300, chains


def _tied(width: int, depth: int) -> Protocol:
    """Layers of equal weighted steps: every path has the same length, so only the
    tie-breaking decides which one is reported."""
    steps: dict[str, Step] = {"start": _step(False, None)}
    edges: list[tuple[str | tuple[str, ...], str]] = []
    previous = ["start"]
    for d in range(depth):
        layer = [f"w{d}_{i}" for i in range(width)]
        gaps = [f"g{d}_{i}" for i in range(width)]
        for w in layer:
            steps[w] = _step(True, timedelta(days=1))
        for g in gaps:
            steps[g] = _step(False, None)
        for p in reversed(previous):
            for i in reversed(range(width)):
                edges.append((p, gaps[i]))
        for i in range(width):
            edges.append((gaps[i], layer[(i + d) % width]))
        previous = layer
    steps["end"] = _step(False, None, terminal=True)
    edges += [(p, "end") for p in previous]
    return _protocol(steps, edges, "start")


@pytest.mark.parametrize(("width", "depth"), [(1, 1), (3, 2), (4, 5), (6, 6)])
def test_equally_long_paths_are_reported_as_before(width: int, depth: int) -> None:
    protocol = _tied(width, depth)
    new = order_bound(ProtocolGraph(protocol), CAP)
    assert new == _old_order_bound(ProtocolGraph(protocol), CAP)
    assert new.worst == timedelta(days=depth)
    assert sum(new.costs, ZERO) == new.worst
    # the first way in file order at each step (edges were declared last gap first)
    assert [p.step for p in new.path][:3] == ["start", f"g0_{width - 1}", f"w0_{width - 1}"]


# -- scale: edges read, counted -------------------------------------------------------


class _Counted(list[Edge]):
    """A step's outgoing edges that count every edge read (iterated or indexed)."""

    def __init__(self, edges: list[Edge], tally: list[int]) -> None:
        super().__init__(edges)
        self.tally = tally

    def __iter__(self) -> Iterator[Edge]:
        for e in super().__iter__():
            self.tally[0] += 1
            yield e

    def __getitem__(self, i: Any) -> Any:
        self.tally[0] += 1
        return super().__getitem__(i)


def _edges_read(protocol: Protocol, bound: Any) -> tuple[Bound, int, int]:
    """``bound(graph, CAP)``, the edges it read, and the graph's size (reachable
    steps plus their transitions, ``*`` expanded)."""
    graph = ProtocolGraph(protocol)
    tally = [0]
    graph.out = {key: _Counted(edges, tally) for key, edges in graph.out.items()}
    size = len(graph.reachable) + sum(len(graph.out[s]) for s in graph.reachable)
    tally[0] = 0
    result = bound(graph, CAP)
    return result, tally[0], size


def shared_region(k: int, m: int) -> dict[str, Any]:
    """The benchmark's order (``benchmarks/bench_verify.py``): ``k`` steps in force in a
    chain, each of which may also lead into one shared region of ``m`` steps."""
    data: dict[str, Any] = _bench().shared_region(k, m)
    return data


def test_overlapping_regions_are_read_a_bounded_number_of_times() -> None:
    protocol = lr.load_protocol(shared_region(400, 400), check=False)
    new, new_reads, size = _edges_read(protocol, order_bound)
    old, old_reads, _ = _edges_read(protocol, _old_order_bound)
    assert new == old
    # all 400 orders, then the region to the last, shorter one
    assert new.worst == timedelta(days=400, hours=1)
    assert [p.step for p in new.path][:4] == ["danger", "w0", "a0", "w1"]
    assert [p.step for p in new.path][-3:] == ["h398", "h399", "z"]
    # the old search read the shared region once from each of the 400 weighted steps
    assert old_reads > 400 * 400
    assert new_reads < 6 * size
    assert old_reads > 25 * new_reads


def test_edges_read_grow_linearly_with_the_protocol() -> None:
    per_element = []
    for n in (250, 1000, 4000):
        protocol = lr.load_protocol(shared_region(n, n), check=False)
        bound, reads, size = _edges_read(protocol, order_bound)
        assert bound.worst == timedelta(days=n, hours=1)
        per_element.append(reads / size)
    # the same edges read per step and transition at 250 and at 4,000 (quadratic: 16x)
    assert max(per_element) < 1.05 * min(per_element), per_element


def test_a_long_chain_of_orders_needs_no_recursion() -> None:
    protocol = lr.load_protocol(shared_region(20_000, 2), check=False)
    bound = order_bound(ProtocolGraph(protocol), CAP)
    assert bound.worst == timedelta(days=20_000, hours=1)
    # danger, w0, then a<i> and w<i+1> for each further order, then h0, h1 and z
    assert len(bound.path) == 2 + 2 * 19_999 + 3


def test_the_orders_benchmark_prints_a_row_per_size(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench()
    rows = bench.order_scaling(sizes=(10, 20), runs=1)
    # 2k + m + 3 steps, 3k + m + 3 transitions
    assert [(r.orders, r.size) for r in rows] == [(10, 76), (20, 146)]
    assert [r.worst for r in rows] == ["10 days, 1:00:00", "20 days, 1:00:00"]
    bench.print_order_scaling(rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["orders", "steps+transitions"]
    assert [line.split()[:2] for line in lines[1:3]] == [["10", "76"], ["20", "146"]]
    assert lines[1].endswith("1.00x")
