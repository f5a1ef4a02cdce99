"""``lastresort scenario run FILES...``: run scenario files, print a verdict per scenario.

Every file is loaded and checked first; if any is unusable, its problems are
printed and nothing runs (exit 2). Otherwise each scenario runs on a fresh engine:
a line per passing scenario, the readable diff and timeline for a failing one,
and exit 1 when any failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..engine.installed import load_installed
from ..errors import ScenarioError
from ..protocol.model import Protocol
from ..render.card import timeline_table
from ..simulate import Scenario, ScenarioResult, load_scenario, run_scenario

__all__ = ["SUFFIX", "find_scenario_files", "register"]

#: Scenario files end with this; directories are searched for them.
SUFFIX = ".scenario.toml"


def find_scenario_files(targets: Iterable[str | Path]) -> list[Path]:
    """The files named, with directories replaced by the ``*.scenario.toml`` files
    below them (sorted). A named file is taken whatever its suffix."""
    found: list[Path] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob(f"*{SUFFIX}") if p.is_file()))
        else:
            found.append(path)
    return found


def _run(args: argparse.Namespace) -> int:
    files = find_scenario_files(args.files)
    if not files:
        print("lastresort: no scenario files found", file=sys.stderr)
        return 2
    protocols: Mapping[str, Protocol] = load_installed().protocols
    scenarios: list[Scenario] = []
    unusable = 0
    for path in files:
        try:
            scenarios.append(load_scenario(path, protocols))
        except ScenarioError as exc:
            unusable += 1
            print(f"lastresort: {exc}", file=sys.stderr)
    if unusable:
        noun = "file is" if unusable == 1 else "files are"
        print(f"lastresort: {unusable} scenario {noun} unusable; nothing was run", file=sys.stderr)
        return 2
    failed = 0
    for scenario in scenarios:
        result = run_scenario(scenario, real_delivery=args.real_delivery)
        if result.passed:
            print(result.report() if not args.timeline else _with_timeline(result))
        else:
            failed += 1
            print(result.report())
    passed = len(scenarios) - failed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def _with_timeline(result: ScenarioResult) -> str:
    table = timeline_table(result.timeline, result.scenario.start)
    return result.summary() + "\n" + "\n".join(f"    {row}" for row in table.splitlines())


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``scenario run`` to the ``lastresort`` command."""
    parser = sub.add_parser("scenario", help="run scenario files in virtual time")
    actions = parser.add_subparsers(dest="scenario_command", required=True, metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="run *.scenario.toml files (directories are searched)",
        description="Run scenario files on the real engine in virtual time, recording"
        " deliveries (nobody is paged) unless --real-delivery. Exit 0 when all"
        " pass, 1 when one fails, 2 when a file is unusable (nothing is run then).",
    )
    run.add_argument("files", nargs="+", metavar="FILES", help="scenario files or directories")
    run.add_argument(
        "--timeline", action="store_true", help="print the timeline of passing scenarios too"
    )
    run.add_argument(
        "--real-delivery",
        action="store_true",
        help="deliver through the installed delivery plugins (they page for real); by"
        " default deliveries are recorded and nobody is sent anything",
    )
    run.set_defaults(run=_run)
