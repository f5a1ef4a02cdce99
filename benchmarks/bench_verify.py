"""lastresort.verify on a generated 200-step protocol, next to the time to load and
validate the same protocol (the anchor), measured in the same process.

Run:  .venv/bin/python benchmarks/bench_verify.py [--steps 200] [--runs 7]
Target: verify() well under 1 s for 200 steps.

      .venv/bin/python benchmarks/bench_verify.py --scaling [--runs 3]
prints the verifier's time per step on the dead-end protocol (``dead_ends``) of
500 to 4,000 dead ends, next to loading the same protocol (the anchor), and each
size's time per step as a ratio to the smallest's: a linear verifier keeps that
ratio near 1 (it was 5x at 2,000 before issue #12). Ratios only, never a timed
assertion; tests/test_verify_scale.py asserts the report's size.

      .venv/bin/python benchmarks/bench_verify.py --orders [--runs 3]
prints ``order-cap``'s bound (``order_bound``) per step on an order of 250 to 2,000
steps in force that all lead into one shared region (``shared_region``), next to
loading it, and each size's time per step as a ratio to the smallest's: near 1 when
linear (the search it replaced read the region once per step in force: 8x at 2,000).
tests/test_order_bound.py counts the edges read.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import lastresort as lr


def generate(n: int) -> dict[str, Any]:
    """A valid encounter protocol of ``n`` steps that passes every property: a counter
    phase, an expert phase, the mayor, a report; each step branches one to three steps
    ahead, every clerk step has a deadline, every handover is fired by the receiver."""
    text = {"nl": "Doe wat nodig is.", "en": "Do what is needed."}
    parties = {
        "clerk": {"name": {"nl": "Balie", "en": "Clerk"}, "kind": "municipal_staff"},
        "expert": {
            "name": {"nl": "Deskundige", "en": "Expert"},
            "kind": "expert",
            "response": {"median": "10m", "p90": "30m"},
        },
        "mayor": {"name": {"nl": "Burgemeester", "en": "Mayor"}, "kind": "mayor"},
        "police": {"name": {"nl": "Politie", "en": "Police"}, "kind": "emergency"},
    }
    last = n - 2  # the closing step; n - 1 is the emergency step
    expert_from, mayor_from, report_at = n // 4, (3 * n) // 4, last - 1
    steps: dict[str, Any] = {}
    transitions: list[dict[str, Any]] = []

    def who(i: int) -> str:
        return "clerk" if i < expert_from else "expert"

    for i in range(last):
        tags = []
        if i >= expert_from:
            tags.append("child_with_expert")
        if i >= mayor_from:
            tags.append("mayor_involved")
        if i == report_at:
            tags.append("reported")
        step: dict[str, Any] = {"responsible": who(i), "kind": "active", "tags": tags}
        if who(i) == "clerk" or i == mayor_from - 1:  # these wait on others: deadlines
            step["kind"] = "waiting" if i % 2 else "active"
            step["deadline"] = {"after": f"{5 + i % 7}m", "event": f"due_{i}"}
            transitions.append(
                {"event": f"due_{i}", "from": f"s{i}", "to": f"s{i + 1}", "by": "clock"}
            )
        steps[f"s{i}"] = step | {"instructions": text}
        for hop in (1, 2, 3):
            j = i + hop
            if j > last or (i < report_at and j > report_at) or (i < mayor_from <= j and hop > 1):
                continue
            target = f"s{j}" if j < last else "closed"
            receiver = who(j) if j < last else who(i)
            if i == report_at and j == last:
                transitions.append(
                    {"event": "close", "from": f"s{i}", "to": "closed", "by": "expert"}
                )
            elif j < last:
                by = ["mayor"] if (i < mayor_from <= j) else [receiver]
                if who(i) == "clerk" and receiver == "clerk" and hop == 1 and i % 2:
                    continue  # the waiting clerk steps are moved on by the expert or the clock
                transitions.append(
                    {"event": f"go_{i}_{hop}", "from": f"s{i}", "to": target, "by": by}
                )
    steps["closed"] = {"kind": "terminal", "tags": ["safe_arrangement"], "instructions": text}
    steps["with_police"] = {
        "responsible": "police",
        "kind": "terminal",
        "tags": ["emergency"],
        "instructions": text,
    }
    transitions.append(
        {"event": "acute_danger", "from": "*", "to": "with_police", "by": ["clerk", "expert"]}
    )
    return {
        "protocol": {
            "id": "generated",
            "version": "1",
            "municipality": "Benchmark",
            "title": {"nl": "Gegenereerd", "en": "Generated"},
            "initial": "s0",
            "source": "benchmarks/bench_verify.py",
        },
        "parties": parties,
        "steps": steps,
        "transitions": transitions,
        "requirements": {"mayor_contact": True},
    }


def dead_ends(n: int) -> dict[str, Any]:
    """An encounter protocol with ``n`` dead ends, the verifier's worst shape (issue
    #12): a chain ``s0 -> s1 -> ... -> closed`` where every ``s<i>`` may also send the
    child to ``d<i>``, a waiting step with no responsible party, no deadline and no
    way out. Each dead end violates ``responsibility``, ``termination`` and
    ``deadlines`` once (``n`` violations each) and ends both time bounds' paths;
    the dead end ``d<i>`` lies ``i + 1`` events from the initial step, so building
    every counterexample path would cost ``n²``. Everything else holds."""
    text = {"nl": "Doe wat nodig is.", "en": "Do what is needed."}
    parties = {
        "clerk": {"name": {"nl": "Balie", "en": "Clerk"}, "kind": "municipal_staff"},
        "expert": {"name": {"nl": "Deskundige", "en": "Expert"}, "kind": "expert"},
        "police": {"name": {"nl": "Politie", "en": "Police"}, "kind": "emergency"},
    }
    steps: dict[str, Any] = {}
    transitions: list[dict[str, Any]] = []
    for i in range(n):
        tags = ["reported"] if i == 0 else []
        steps[f"s{i}"] = {"responsible": "clerk", "kind": "active", "tags": tags}
        steps[f"d{i}"] = {"kind": "waiting"}
        last = i == n - 1
        transitions.append(
            {
                "event": f"next_{i}",
                "from": f"s{i}",
                "to": "closed" if last else f"s{i + 1}",
                "by": "expert" if last else "clerk",
            }
        )
        transitions.append({"event": f"park_{i}", "from": f"s{i}", "to": f"d{i}", "by": "clerk"})
    steps["closed"] = {"kind": "terminal", "tags": ["safe_arrangement"]}
    steps["with_police"] = {"responsible": "police", "kind": "terminal", "tags": ["emergency"]}
    transitions.append(
        {"event": "acute_danger", "from": "*", "to": "with_police", "by": ["clerk", "expert"]}
    )
    return {
        "protocol": {
            "id": "dead-ends",
            "version": "1",
            "municipality": "Benchmark",
            "title": {"nl": "Doodlopend", "en": "Dead ends"},
            "initial": "s0",
            "source": "benchmarks/bench_verify.py",
        },
        "parties": parties,
        "steps": {key: step | {"instructions": text} for key, step in steps.items()},
        "transitions": transitions,
        "requirements": {"mayor_contact": False},
    }


def shared_region(k: int, m: int) -> dict[str, Any]:
    """An order of ``k`` steps in force one after the other (``w0 -> a0 -> w1 -> ...``),
    each of which may also lead into one shared region of ``m`` steps (a loop) that
    ends in a last, shorter order ``z``: every weighted step's region overlaps every
    other's, the shape that made ``order-cap`` quadratic before issue #12 (a
    search of the region from every step in force). Each ``w<i>`` names its way into
    the region first, so a search from it meets the region before ``a<i>``. The
    longest path passes every ``w<i>``, then the region to ``z``: ``k`` days and 1 h."""
    text = {"nl": "Doe het.", "en": "Do it."}
    mayor = {"responsible": "mayor", "kind": "active", "instructions": text}
    force = mayor | {
        "kind": "waiting",
        "tags": ["order_in_force"],
        "deadline": {"after": "1d", "event": "expires"},
    }
    steps: dict[str, Any] = {"danger": dict(mayor)}
    transitions: list[dict[str, Any]] = [
        {"event": "impose", "from": "danger", "to": "w0", "by": "mayor"}
    ]
    for i in range(k):
        steps[f"w{i}"] = dict(force)
        steps[f"a{i}"] = dict(mayor)
        nxt = f"w{i + 1}" if i + 1 < k else "expired"
        transitions += [
            {"event": f"shared_{i}", "from": f"w{i}", "to": "h0", "by": "mayor"},
            {"event": f"on_{i}", "from": f"w{i}", "to": f"a{i}", "by": "mayor"},
            {"event": f"extend_{i}", "from": f"a{i}", "to": nxt, "by": "mayor"},
        ]
    for j in range(m):
        steps[f"h{j}"] = dict(mayor)
        transitions.append(
            {"event": f"hop_{j}", "from": f"h{j}", "to": f"h{(j + 1) % m}", "by": "mayor"}
        )
    steps["z"] = force | {"deadline": {"after": "1h", "event": "expires"}}
    steps["expired"] = {"kind": "terminal", "instructions": text}
    transitions += [
        {"event": "last", "from": f"h{m - 1}", "to": "z", "by": "mayor"},
        {"event": "expires", "from": "z", "to": "expired", "by": "clock"},
    ]
    return {
        "protocol": {
            "id": "shared-region",
            "version": "1",
            "municipality": "Testdorp",
            "title": {"nl": "Huisverbod", "en": "Restraining order"},
            "initial": "danger",
            "source": "tests",
            "kind": "order",
        },
        "parties": {"mayor": {"name": {"nl": "Burgemeester", "en": "Mayor"}, "kind": "mayor"}},
        "steps": steps,
        "transitions": transitions,
        "facts": {"subject": ["adult"]},
        "requirements": {"max_order_duration": "28d"},
    }


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The best (least disturbed) wall time of ``runs`` runs, in seconds."""
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return min(times)


@dataclass(frozen=True)
class Figures:
    """What one verifier run measured (times in seconds, best of ``runs``)."""

    steps: int
    edges: int
    properties: int
    bounds: tuple[str, str]
    anchor: float  # load_protocol + validate of the same protocol
    verify: float  # verify() of the valid protocol
    trapped: float  # verify() when nothing can close: every step is a violation
    failing: tuple[str, ...]  # the properties the trapped protocol fails
    runs: int


def measure(steps: int = 200, runs: int = 7) -> Figures:
    """Time the verifier on a generated protocol of ``steps`` steps, next to
    loading and validating the same protocol."""
    data = generate(steps)
    protocol = lr.load_protocol(data)  # valid: load validates it
    report = lr.verify(protocol)
    if not report.ok:
        raise RuntimeError(f"the generated protocol fails the verifier: {report.problems()}")
    edges = sum(len(protocol.sources_of(t)) for t in protocol.transitions)
    anchor = best_of(runs, lambda: lr.load_protocol(data))
    verify = best_of(runs, lambda: lr.verify(protocol))
    # the worst case for the verifier: nothing can close, so every step is a violation
    broken = dict(data, transitions=[t for t in data["transitions"] if t["event"] != "close"])
    trapped = lr.load_protocol(broken, check=False)
    failing = tuple(r.name for r in lr.verify(trapped).failed)
    slow = best_of(runs, lambda: lr.verify(trapped))
    return Figures(
        steps=len(protocol.steps),
        edges=edges,
        properties=len(report.results),
        bounds=(str(report.bounds[0].worst), str(report.bounds[1].worst)),
        anchor=anchor,
        verify=verify,
        trapped=slow,
        failing=failing,
        runs=runs,
    )


@dataclass(frozen=True)
class Scale:
    """The verifier on ``dead_ends(n)`` (times in seconds, best of ``runs``)."""

    dead_ends: int
    size: int  # steps + transitions ('*' expanded)
    anchor: float  # load_protocol(check=False) of the same protocol
    verify: float  # verify() and the text and JSON of its report
    violations: int  # counted by 'termination' (one per dead end)
    report_chars: int  # the text report's length


def scaling(sizes: tuple[int, ...] = (500, 1000, 2000, 4000), runs: int = 3) -> list[Scale]:
    """Time the verifier (and its report) on ever larger dead-end protocols."""
    out = []
    for n in sizes:
        data = dead_ends(n)
        protocol = lr.load_protocol(data, check=False)
        size = len(protocol.steps) + sum(len(protocol.sources_of(t)) for t in protocol.transitions)
        report = lr.verify(protocol)

        def load(d: dict[str, Any] = data) -> None:
            lr.load_protocol(d, check=False)

        def check(p: lr.Protocol = protocol) -> None:
            r = lr.verify(p)
            r.to_text()
            r.to_dict()

        anchor = best_of(runs, load)
        out.append(
            Scale(
                dead_ends=n,
                size=size,
                anchor=anchor,
                verify=best_of(runs, check),
                violations=report.result("termination").violations,
                report_chars=len(report.to_text()),
            )
        )
    return out


@dataclass(frozen=True)
class OrderScale:
    """``order-cap``'s bound on ``shared_region(n, n)`` (times in seconds, best of ``runs``)."""

    orders: int  # steps in force (and as many steps in the shared region)
    size: int  # steps + transitions
    anchor: float  # load_protocol(check=False) of the same protocol
    bound: float  # ProtocolGraph + order_bound
    worst: str


def order_scaling(
    sizes: tuple[int, ...] = (250, 500, 1000, 2000), runs: int = 3
) -> list[OrderScale]:
    """Time ``order_bound`` on ever larger orders whose steps in force share one region."""
    from lastresort.verifier.bounds import ProtocolGraph, order_bound

    out = []
    for n in sizes:
        data = shared_region(n, n)
        protocol = lr.load_protocol(data, check=False)
        size = len(protocol.steps) + len(protocol.transitions)
        cap = protocol.requirements.max_order_duration

        def load(d: dict[str, Any] = data) -> None:
            lr.load_protocol(d, check=False)

        def bound(p: lr.Protocol = protocol, c: timedelta | None = cap) -> None:
            order_bound(ProtocolGraph(p), c)

        worst = order_bound(ProtocolGraph(protocol), cap).worst
        out.append(OrderScale(n, size, best_of(runs, load), best_of(runs, bound), str(worst)))
    return out


def print_order_scaling(rows: list[OrderScale]) -> None:
    first = rows[0]
    print("orders  steps+transitions  load µs/elt  bound µs/elt  bound÷load  per elt ÷ first")
    for r in rows:
        per = r.bound / r.size
        print(
            f"{r.orders:6,}  {r.size:17,}  {r.anchor / r.size * 1e6:11.2f}"
            f"  {per * 1e6:12.2f}  {r.bound / r.anchor:9.2f}x"
            f"  {per / (first.bound / first.size):14.2f}x"
        )
    print("worst case:", ", ".join(r.worst for r in rows))


def print_scaling(rows: list[Scale]) -> None:
    first = rows[0]
    print("dead ends  steps+transitions  load µs/elt  check µs/elt  check÷load  per elt ÷ first")
    for r in rows:
        per = r.verify / r.size
        print(
            f"{r.dead_ends:9,}  {r.size:17,}  {r.anchor / r.size * 1e6:11.2f}"
            f"  {per * 1e6:12.2f}  {r.verify / r.anchor:9.2f}x"
            f"  {per / (first.verify / first.size):14.2f}x"
        )
    print("violations counted:", ", ".join(f"{r.violations:,}" for r in rows))
    print("text report (chars):", ", ".join(f"{r.report_chars:,}" for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--scaling", action="store_true", help="time per step, 500-4000 dead ends")
    parser.add_argument("--orders", action="store_true", help="order-cap, 250-2000 orders")
    args = parser.parse_args()
    if args.orders:
        print_order_scaling(order_scaling(runs=args.runs))
        return
    if args.scaling:
        print_scaling(scaling(runs=args.runs))
        return
    f = measure(args.steps, args.runs)
    print(f"protocol: {f.steps} steps, {f.edges} transitions (with '*' expanded)")
    print(f"bounds: expert {f.bounds[0]}, mayor {f.bounds[1]}")
    print(f"anchor  load_protocol + validate: {f.anchor * 1000:8.2f} ms (best of {f.runs})")
    what = f"verify ({f.properties} properties + bounds):"
    print(f"        {what} {f.verify * 1000:8.2f} ms (best of {f.runs})")
    print(f"ratio   verify / load+validate: {f.verify / f.anchor:.2f}x")
    trapped = f"verify, every step trapped ({', '.join(f.failing)}):"
    print(f"        {trapped} {f.trapped * 1000:8.2f} ms")
    print(f"ratio   trapped verify / load+validate: {f.trapped / f.anchor:.2f}x")
    print(f"target  verify < 1 s: {'met' if max(f.verify, f.trapped) < 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
