"""The verifier stays linear on protocols with thousands of violations (issue #12,
item 10): every violation is counted, a few are shown, and the report's size does
not grow with the protocol. Structural assertions only, never a time: the time per
step is printed by ``benchmarks/bench_verify.py --scaling``."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import lastresort as lr
from lastresort.cli import main

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_verify.py"
NAME = "_lastresort_bench_verify"
PER_DEAD_END = ("responsibility", "termination", "deadlines")


def _bench() -> ModuleType:
    """benchmarks/bench_verify.py (benchmarks/ is not a package)."""
    if (module := sys.modules.get(NAME)) is not None:
        return module
    spec = importlib.util.spec_from_file_location(NAME, BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def dead_ends(n: int) -> dict[str, Any]:
    """The benchmark's protocol: a chain of ``n`` steps, each with a dead end beside it."""
    data: dict[str, Any] = _bench().dead_ends(n)
    return data


@pytest.fixture(scope="module")
def reports() -> dict[int, lr.Report]:
    return {n: lr.verify(lr.load_protocol(dead_ends(n), check=False)) for n in (500, 4000)}


def test_every_dead_end_is_counted_and_five_are_shown(reports: dict[int, lr.Report]) -> None:
    report = reports[4000]
    assert [r.name for r in report.failed] == list(PER_DEAD_END)
    for name in PER_DEAD_END:
        result = report.result(name)
        assert result.violations == 4000
        assert result.shown == 5
        assert len(result.further) == 4
        # the shortest counterexample of all 4000: the dead end beside the initial step
        assert [(p.event, p.step) for p in result.counterexample] == [
            (None, "s0"),
            ("park_0", "d0"),
        ]
        assert "'d0'" in result.message
        # the further messages are the nearest dead ends, in the order found
        assert [m.split("'")[1] for m in result.further] == ["d1", "d2", "d3", "d4"]
    for bound in report.bounds:
        assert bound.ends_total == 4001  # the 4000 dead ends and the closing step
        assert [end[-1].step for end in bound.ends] == ["d0", "d1", "d2", "d3", "d4"]
        assert [len(end) for end in bound.ends] == [2, 3, 4, 5, 6]  # the nearest ends


def test_the_report_does_not_grow_with_the_protocol(reports: dict[int, lr.Report]) -> None:
    small, large = reports[500], reports[4000]
    text, data = large.to_text(), json.dumps(large.to_dict())
    # on main: 4000 dead ends gave every path of every end (n² path points, hundreds of MB)
    assert len(text) < 8_000
    assert len(data) < 16_000

    # 500 or 4000 dead ends: the same report, but for the counts ("4000" is one digit longer)
    # (the counts: the violations, and since the bounds name ends never reaching the
    # tag, "4001 such ends"): with every number masked the two reports are equal
    def masked(s: str) -> str:
        return re.sub(r"\d+", "N", s)

    assert masked(text) == masked(small.to_text())
    assert masked(data) == masked(json.dumps(small.to_dict()))
    assert text.count("4000 violations, 5 shown") == 3
    assert text.count("4001 such ends, 5 shown (the nearest)") == 2
    shown = json.loads(data)["results"]
    assert [(r["name"], r["violations"], r["shown"]) for r in shown if not r["ok"]] == [
        (name, 4000, 5) for name in PER_DEAD_END
    ]


def test_max_examples_sets_how_many_are_shown() -> None:
    protocol = lr.load_protocol(dead_ends(50), check=False)
    one = lr.verify(protocol, max_examples=1)
    assert [(r.violations, r.shown, r.further) for r in one.failed] == [(50, 1, ())] * 3
    assert "50 violations, 1 shown" in one.to_text()
    assert [len(b.ends) for b in one.bounds] == [1, 1]
    every = lr.verify(protocol, max_examples=100)
    assert [(r.violations, r.shown) for r in every.failed] == [(50, 50)] * 3
    assert "violations," not in every.to_text()  # nothing left out, nothing to say
    assert [(len(b.ends), b.ends_total) for b in every.bounds] == [(51, 51)] * 2


@pytest.mark.parametrize("bad", [0, -1, 2.5, "5", True, None])
def test_max_examples_must_be_a_whole_number_of_at_least_one(bad: Any) -> None:
    protocol = lr.load_protocol(dead_ends(3), check=False)
    with pytest.raises(ValueError, match="max_examples must be a whole number of at least 1"):
        lr.verify(protocol, max_examples=bad)


def test_a_holding_property_counts_no_violation(taskforce: lr.Protocol) -> None:
    report = lr.verify(taskforce)
    assert all(r.violations == 0 and r.shown == 0 for r in report.results)
    assert all(b.ends_total == len(b.ends) for b in report.bounds)


def test_a_hub_with_many_ways_in_costs_each_trapped_step_a_bounded_walk() -> None:
    # every step of a trap leads into one hub with many ways out (all within the trap):
    # the message of each trapped step names at most five nearby steps
    data = dead_ends(2)
    text = data["steps"]["s0"]["instructions"]
    hub = {"responsible": "clerk", "kind": "active", "instructions": text}
    data["steps"] |= {f"t{i}": dict(hub) for i in range(200)} | {"hub": dict(hub)}
    data["transitions"] += [
        {"event": "trap", "from": "s0", "to": "t0", "by": "clerk"},
        *({"event": f"in_{i}", "from": f"t{i}", "to": "hub", "by": "clerk"} for i in range(200)),
        *({"event": f"out_{i}", "from": "hub", "to": f"t{i}", "by": "clerk"} for i in range(200)),
    ]
    result = lr.verify(lr.load_protocol(data, check=False)).result("termination")
    assert result.violations == 2 + 201
    assert result.message.startswith("from step 'd0'")
    # in breadth-first order: t0 (the third way out of s0) before d1 (beside s1)
    assert result.further[:2] == (
        "from step 't0' no terminal step can be reached without acute_danger: it can only"
        " reach 'hub', 't1', 't2', 't3', 't4' and more (a trap without an exit)",
        "from step 'd1' no terminal step can be reached without acute_danger:"
        " its only way out is acute_danger",
    )


def _plugin(check: Any) -> lr.Property:
    return lr.Property("plugin-rule", "a plugin's rule", check)


@pytest.mark.parametrize(
    ("found", "why"),
    [
        (["not a violation"], "it returned a str, not a lastresort.Violation"),
        ([lr.Violation(123)], "a Violation's message is a int, not a str"),  # type: ignore[arg-type]
        (
            [lr.Violation("x", path="s0")],  # type: ignore[arg-type]
            "a Violation's path is not a sequence of lastresort.PathStep",
        ),
    ],
)
def test_a_plugin_check_that_returns_nonsense_fails_its_property(found: Any, why: str) -> None:
    protocol = lr.load_protocol(dead_ends(3), check=False)
    result = lr.verify(protocol, [_plugin(lambda _: found)]).result("plugin-rule")
    assert (result.ok, result.violations) == (False, 1)
    assert result.message == f"the check raised TypeError: {why}"


def test_a_plugin_violation_gets_the_path_over_its_edge() -> None:
    protocol = lr.load_protocol(dead_ends(3), check=False)

    def everywhere(_: lr.Protocol) -> list[lr.Violation]:
        where = [("s2", "park_2"), ("s1", "park_1"), ("gone", "park_0")]
        return [lr.Violation(f"at {k}", step=k, event=e) for k, e in where]

    result = lr.verify(protocol, [_plugin(everywhere)], max_examples=2).result("plugin-rule")
    assert (result.violations, result.message, result.further) == (3, "at s1", ("at s2",))
    assert [(p.event, p.step) for p in result.counterexample] == [
        (None, "s0"),
        ("next_0", "s1"),
        ("park_1", "d1"),
    ]


def _check(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    path = tmp_path / "dead-ends.json"
    path.write_text(json.dumps(dead_ends(1000)))
    code = main(["check", str(path), *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


def test_check_counts_all_and_shows_max_examples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a dead end is a waiting step without a deadline or responsible party: a structural
    # problem too, so check exits 2 (issue 14) and lists them besides the verifier's report
    code, text = _check(tmp_path, capsys, "--max-examples", "2")
    assert code == 2
    assert text.count("1000 violations, 2 shown") == 3
    assert text.count("also:") == 3
    assert text.count("waiting step has no deadline (nothing may wait forever)") == 1000
    code, text = _check(tmp_path, capsys, "--json")
    assert code == 2
    results = json.loads(text)["protocols"][0]["results"]
    assert {r["name"]: (r["violations"], r["shown"]) for r in results if not r["ok"]} == {
        name: (1000, 5) for name in PER_DEAD_END
    }


@pytest.mark.parametrize("bad", ["0", "-3", "many"])
def test_check_refuses_a_bad_max_examples_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        _check(tmp_path, capsys, "--max-examples", bad)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--max-examples: expected a whole number of at least 1" in err
    assert "Traceback" not in err


# -- order-cap: which weighted steps lie on a cycle, in one pass -----------------------


class _Edge:
    def __init__(self, source: str, target: str) -> None:
        self.source, self.target = source, target


class _Graph:
    """What :func:`lastresort.verifier.bounds.on_cycles` reads of a ProtocolGraph: ``out`` and
    ``reachable`` (breadth-first from step ``0``), and a ``search`` to compare with."""

    def __init__(self, n: int, edges: list[tuple[int, int]]) -> None:
        self.out: dict[str, list[_Edge]] = {str(i): [] for i in range(n)}
        for a, b in edges:
            self.out[str(a)].append(_Edge(str(a), str(b)))
        self.reachable = tuple(self.search("0"))

    def search(self, start: str) -> dict[str, None]:
        seen = {start: None}
        queue = [start]
        while queue:
            here = queue.pop(0)
            for e in self.out[here]:
                if e.target not in seen:
                    seen[e.target] = None
                    queue.append(e.target)
        return seen


def test_on_cycles_agrees_with_a_search_from_every_step() -> None:
    """order-cap used to search the whole graph from every ``order_in_force`` step to
    find one on a cycle (quadratic); ``on_cycles`` finds them all in one pass. On 2,000
    random graphs (self-loops, several components) both name the same steps."""
    import random

    from lastresort.verifier.bounds import on_cycles

    rng = random.Random(12)
    for _ in range(2000):
        n = rng.randint(1, 12)
        edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(0, 25))]
        g = _Graph(n, edges)
        slow = {f for f in g.reachable if any(e.target == f for s in g.search(f) for e in g.out[s])}
        assert on_cycles(g) == slow, edges  # type: ignore[arg-type]


def test_on_cycles_takes_a_long_chain_without_recursion() -> None:
    from lastresort.verifier.bounds import on_cycles

    n = 20_000
    chain = _Graph(n, [(i, i + 1) for i in range(n - 1)])
    assert on_cycles(chain) == set()  # type: ignore[arg-type]
    loop = _Graph(n, [(i, (i + 1) % n) for i in range(n)])
    assert len(on_cycles(loop)) == n  # type: ignore[arg-type]
