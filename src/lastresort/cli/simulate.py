"""``lastresort simulate PROTOCOL... --encounters N --seed S --workers W``: a Monte
Carlo comparison of arrangements, printed as a table (one column per protocol),
as JSON, written as CSV and as a self-contained HTML report.

Exit codes: 0 done; 2 unusable input (an unknown protocol, a bad number, a bad
configuration, a missing plotting extra for ``--report``): the problems are
printed, nothing is simulated and no file is written.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..errors import ProtocolError
from ..protocol.model import Protocol
from ..simulate.config import SimulationConfig, SimulationConfigError, load_config
from ..simulate.montecarlo import monte_carlo
from ..simulate.report import (
    comparison_table,
    defaulted_note,
    html_report,
    require_plotting,
    to_csv,
    to_json,
)
from ._common import installed_protocols, is_file_target, resolve_protocol

__all__ = ["ProgressBar", "register", "run_simulate"]


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _seed(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` subcommand."""
    p = sub.add_parser(
        "simulate",
        help="Monte Carlo comparison of protocols on the same simulated children",
        description=(
            "Simulate many children per protocol on the real engine in virtual time and"
            " compare waiting times, deadline firings, breaches and party load."
            " See docs/simulation.md."
        ),
    )
    p.add_argument(
        "protocols",
        nargs="+",
        metavar="PROTOCOL",
        help="installed protocol ids or .toml/.json files",
    )
    p.add_argument(
        "--encounters",
        type=_count(1),
        default=1000,
        metavar="N",
        help="children who get in, per protocol (default 1000)",
    )
    p.add_argument("--seed", type=_seed, default=0, metavar="S", help="the seed (default 0)")
    p.add_argument(
        "--workers",
        type=_count(1),
        default=1,
        metavar="W",
        help="processes (default 1); the KPIs do not depend on it",
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="simulation configuration (TOML)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--csv", type=Path, metavar="FILE", help="also write the comparison as CSV")
    p.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="also write an HTML report with plots (needs lastresort[report])",
    )
    p.add_argument("--lang", choices=["nl", "en"], default="en")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(run=run_simulate)


class ProgressBar:
    """A progress bar on a stream, redrawn in place: ``[#####.....] 45% 900/2000 3s``."""

    def __init__(self, stream: IO[str], width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.started = time.monotonic()  # display only; never part of a result

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // total
        elapsed = time.monotonic() - self.started
        left = elapsed / done * (total - done) if done else 0.0
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(
            f"\rsimulate [{bar}] {100 * done // total:3d}% {done}/{total}"
            f"  {elapsed:.0f}s, ~{left:.0f}s left "
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _resolve(targets: list[str]) -> list[Protocol]:
    problems: list[str] = []
    found: list[Protocol] = []
    installed = functools.cache(installed_protocols)  # loaded once, and only for an id
    for target in targets:
        try:
            found.append(resolve_protocol(target, installed))
        except ProtocolError as exc:
            if is_file_target(target):
                problems.extend(f"{target}: {p}" for p in exc.problems)
            else:
                problems.extend(p.removeprefix("$: ") for p in exc.problems)
    if problems:
        raise SimulationConfigError(problems=problems)
    return found


def _writable(path: Path | None, option: str) -> list[str]:
    if path is None:
        return []
    if path.is_dir():
        return [f"{option}: {path} is a directory"]
    if not path.parent.is_dir():
        return [f"{option}: the directory {path.parent} does not exist"]
    return []


def run_simulate(args: argparse.Namespace) -> int:
    """Run ``lastresort simulate`` with parsed arguments; return the exit code."""
    problems = _writable(args.csv, "--csv") + _writable(args.report, "--report")
    if problems:
        raise SimulationConfigError(problems=problems)
    if args.report is not None:
        require_plotting()  # before any work: the run may be long
    config = load_config(args.config) if args.config is not None else SimulationConfig()
    protocols = _resolve(args.protocols)
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    result = monte_carlo(
        protocols,
        args.encounters,
        seed=args.seed,
        config=config,
        workers=args.workers,
        progress=ProgressBar(sys.stderr) if show else None,
    )
    if args.json:
        print(to_json(result))
    else:
        print(comparison_table(result.comparison, args.lang))
        print(defaulted_note(result))
    if args.csv is not None:
        with args.csv.open("w", encoding="utf-8", newline="") as out:
            to_csv(result.comparison, out)
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.report is not None:
        args.report.write_text(html_report(result, args.lang), encoding="utf-8")
        print(f"wrote {args.report}", file=sys.stderr)
    return 0
