"""``lastresort check [ID|FILE ...] [--json] [--max-examples N]``: run the verifier
(the report's text is :mod:`lastresort.verifier.text`).

Exit codes: 0 every property of every protocol holds; 1 a property fails;
2 unusable input (an unknown id, an unreadable or malformed file, or a graph that
cannot be built); the problems are printed, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence
from typing import Any

from attrs import frozen

from ..engine.plugins import Hooks, make_plugin_manager
from ..errors import LastResortError, ProtocolError
from ..protocol.model import Protocol
from ..protocol.validation import validate
from ..verifier.text import render_report
from ..verifier.verification import MAX_EXAMPLES, Report, verify
from ._common import resolve_protocol

__all__ = ["register", "run_check"]


@frozen
class Outcome:
    """What ``check`` found for one target: a report, or why the input is unusable.

    :param target: the id or file as given (or the id of an installed protocol).
    :param report: the verifier's report, when the input was usable.
    :param validation: structural problems outside the safety properties (they
        do not change the exit code; the engine refuses the protocol for them).
    :param problems: why the input is unusable (empty when it was usable).
    """

    target: str
    report: Report | None = None
    validation: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def code(self) -> int:
        """2 unusable, 1 a property fails, 0 all hold."""
        if self.report is None:
            return 2
        return 0 if self.report.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data."""
        if self.report is None:
            return {"target": self.target, "usable": False, "problems": list(self.problems)}
        return {
            "target": self.target,
            "usable": True,
            **self.report.to_dict(),
            "validation": list(self.validation),
        }


def _checked(target: str, protocol: Protocol, hooks: Hooks, max_examples: int) -> Outcome:
    try:
        report = verify(protocol, hooks.protocol_properties(protocol), max_examples=max_examples)
    except ProtocolError as exc:
        return Outcome(target, problems=tuple(exc.problems))
    validation = [*validate(protocol), *hooks.validate_protocol(protocol)]
    return Outcome(target, report, tuple(dict.fromkeys(validation)))


def run_check(targets: Sequence[str], max_examples: int = MAX_EXAMPLES) -> list[Outcome]:
    """Verify each target (an installed protocol id, or a ``.toml``/``.json`` file
    loaded without validation); with no targets, every installed protocol.

    :param max_examples: the most violations shown per property (all are counted).

    :raises ProtocolError: when the installed plugins' protocols cannot be loaded.
    :raises PluginLoadError: when a plugin cannot be registered.
    """
    hooks = Hooks(make_plugin_manager())
    if not targets:
        return [
            _checked(pid, p, hooks, max_examples) for pid, p in sorted(hooks.protocols().items())
        ]
    installed = functools.cache(hooks.protocols)  # loaded once, and only for an id
    out = []
    for target in targets:
        try:
            protocol = resolve_protocol(target, installed, check=False)
        except ProtocolError as exc:
            out.append(Outcome(target, problems=tuple(exc.problems)))
            continue
        out.append(_checked(target, protocol, hooks, max_examples))
    return out


def _command(args: argparse.Namespace) -> int:
    try:
        outcomes = run_check(args.targets, args.max_examples)
    except LastResortError as exc:
        problems = exc.problems if isinstance(exc, ProtocolError) else [str(exc)]
        if args.json:
            print(json.dumps({"ok": False, "exit_code": 2, "problems": problems}, indent=2))
        else:
            print(f"lastresort check: {exc}", file=sys.stderr)
        return 2
    code = max((o.code for o in outcomes), default=0)
    if args.json:
        data = {
            "ok": code == 0,
            "exit_code": code,
            "protocols": [o.to_dict() for o in outcomes],
        }
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return code
    printed = False
    for outcome in outcomes:
        if outcome.report is None:
            count = len(outcome.problems)
            print(
                f"{outcome.target}: unusable input ({count} problem{'s' * (count != 1)}):",
                file=sys.stderr,
            )
            for problem in outcome.problems:
                print(f"  - {problem}", file=sys.stderr)
            continue
        print(("\n" if printed else "") + render_report(outcome.report))
        printed = True
        if outcome.validation:
            print(
                "  other structural problems (validation, not safety properties; they do not"
                " change the exit code, but an Engine refuses the protocol until they are fixed):"
            )
            for problem in outcome.validation:
                print(f"    - {problem}")
    return code


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``check`` subcommand."""
    p = sub.add_parser(
        "check",
        help="verify protocols' safety properties and time bounds",
        description="Verify safety properties with shortest counterexamples, and worst-case"
        " waiting times. Exit 0: all hold; 1: a property fails; 2: unusable input.",
    )
    p.add_argument(
        "targets",
        nargs="*",
        metavar="ID|FILE",
        help="installed protocol ids or .toml/.json files (default: every installed protocol)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON report for machines")
    p.add_argument(
        "--max-examples",
        type=_at_least_one,
        default=MAX_EXAMPLES,
        metavar="N",
        help=f"show at most N violations per property; all are counted (default {MAX_EXAMPLES})",
    )
    p.set_defaults(run=_command)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value
