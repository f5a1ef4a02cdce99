"""The readable text of a verifier :class:`~lastresort.Report`: each property ✓/✗/–,
counterexample paths, and the bounds with their worst paths (``Report.to_text()``,
printed by ``lastresort check``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from ..protocol.conversion import format_duration
from ..protocol.model import ProtocolKind
from .bounds import WORKING_DAY_HORIZON, PathStep, render_path

if TYPE_CHECKING:
    from .report import Report

__all__ = ["render_report"]


def _path_lines(path: Sequence[PathStep], costs: Sequence[timedelta] = ()) -> Iterator[str]:
    arrows = ["start" if p.event is None else f"--{p.event}-->" for p in path]
    width = max(map(len, arrows), default=0)
    steps = max((len(p.step) for p in path), default=0)
    for i, p in enumerate(path):
        cost = f"  {format_duration(costs[i])}" if i < len(costs) and costs[i] else ""
        who = f"[{p.party or 'nobody'}]"
        yield f"        {arrows[i].ljust(width)}  {p.step.ljust(steps)}  {who}{cost}".rstrip()


def _lines(report: Report) -> Iterator[str]:
    yield f"protocol {report.protocol} {report.version} ({report.kind.value})"
    width = max(len(r.name) for r in report.results)
    for r in report.results:
        mark = "–" if not r.applicable else "✓" if r.ok else "✗"
        text = r.message if not r.ok or not r.applicable else r.rule
        yield f"  {mark} {r.name.ljust(width)}  {text}"
        if not r.ok and r.counterexample:
            yield "      counterexample (shortest path from the initial step; [responsible]):"
            yield from _path_lines(r.counterexample)
        for more in r.further:
            yield f"      also: {more}"
        if r.violations > r.shown:
            yield (
                f"      {r.violations} violations, {r.shown} shown"
                " (all counted; --max-examples shows more)"
            )
    encounter = report.kind is ProtocolKind.ENCOUNTER
    if report.bounds:
        yield f"  bounds (worst case{'; acute_danger not followed' if encounter else ''}):"
    if any(b.working_days and (b.worst or b.estimate) for b in report.bounds):
        yield (
            f"    (working days at their longest span over {WORKING_DAY_HORIZON.start}-"
            f"{WORKING_DAY_HORIZON.stop - 1}: weekends and Dutch public holidays; closing"
            " days of plugins not included)"
        )
    for b in report.bounds:
        need = (
            f"requirement {b.requirement_name} {format_duration(b.requirement)}:"
            f" {'holds' if b.holds else 'not proven' if b.estimated_steps else 'FAILS'}"
            if b.requirement is not None
            else f"no {b.requirement_name} stated"
        )
        if b.estimated_steps and b.estimate is not None:
            steps = ", ".join(map(repr, b.estimated_steps))
            value = (
                f"no true worst case ({steps} without a deadline may last any time);"
                f" ESTIMATE at most {format_duration(b.estimate)} with the parties' p90"
            )
        elif b.worst is not None:
            value = f"at most {format_duration(b.worst)}" + ("" if b.reachable else " (never)")
            if b.reminders:
                value += f" (reminders in {', '.join(map(repr, b.reminders))} counted once)"
        elif b.cycle:
            value = "unbounded (a cycle can repeat before it)"
        elif b.open_step is not None:
            value = f"unbounded (step {b.open_step!r} has no deadline and no response model)"
        else:
            value = f"never (no step tagged {b.goal!r} can be reached)"
        yield f"    {b.what} ({b.goal}): {value}; {need}"
        if b.cycle:
            yield "      cycle:"
            yield from _path_lines(b.cycle)
        elif b.path and b.estimate:
            yield "      estimated path (each step at its deadline, or its party's p90):"
            yield from _path_lines(b.path, b.costs)
        elif b.path and b.worst:
            yield (
                "      worst path (each step at its deadline):"
                if encounter
                else "      worst path (each step in force until its deadline):"
            )
            yield from _path_lines(b.path, b.costs)
        elif b.path:
            yield "      path:"
            yield from _path_lines(b.path)
        if b.ends_total:
            # the count is on the "such ends" line below (once: the report stays the same
            # size whatever the number of ends)
            yield (
                f"      paths that never reach {b.goal!r} (they end without it; not counted"
                " in the bound above):"
            )
        for end in b.ends:
            yield f"      a path may end without it in {end[-1].step!r}: {render_path(end)}"
        if b.ends_total > len(b.ends):
            yield f"      {b.ends_total} such ends, {len(b.ends)} shown (the nearest)"
    applicable = [r for r in report.results if r.applicable]
    skipped = len(report.results) - len(applicable)
    failed = len(report.failed)
    rest = f" ({skipped} not applicable)" if skipped else ""
    yield (
        f"  result: all {len(applicable)} properties hold{rest}"
        if not failed
        else f"  result: {failed} of {len(applicable)} properties FAIL{rest}"
    )


def render_report(report: Report) -> str:
    """The readable text of a :class:`~lastresort.Report` (``Report.to_text()``)."""
    return "\n".join(_lines(report))
