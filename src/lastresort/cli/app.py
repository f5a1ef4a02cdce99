"""The ``lastresort`` command.

Exit codes (docs/cli.md): 0 success, 1 a check, scenario or audit found problems,
2 unusable input or usage (the problems are printed, never a traceback), 141 standard
output closed early.

Each subcommand lives in its own module of :mod:`lastresort.cli`, imported only
when that subcommand runs: ``lastresort --help`` and ``lastresort show`` do not pay
for the simulator, the verifier or the store. :data:`COMMANDS` names each
subcommand's module and its one-line help (a test checks that every module
registers the same help).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from ..errors import LastResortError, ProtocolError

__all__ = ["COMMANDS", "build_parser", "main"]

Command = Callable[[argparse.Namespace], int]

#: the exit code when the reader of standard output went away (128 + SIGPIPE)
EXIT_BROKEN_PIPE = 141

#: subcommand -> (module of lastresort.cli that registers it, its one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "protocols": ("protocols", "list installed protocols (and broken plugins)"),
    "show": ("show", "print a protocol's card"),
    "demo": ("demo", "run one encounter on a virtual clock and print its timeline"),
    "scenario": ("scenario", "run scenario files in virtual time"),
    "check": ("check", "verify protocols' safety properties and time bounds"),
    "schema": ("schema", "print the JSON Schema of the protocol file format"),
    "audit": ("store", "check the hash-chained audit trail of a store file"),
    "purge": (
        "store",
        "remove the facts of encounters closed longer ago than the retention period",
    ),
    "simulate": ("simulate", "Monte Carlo comparison of protocols on the same simulated children"),
    "new-plugin": ("new_plugin", "write a working plugin skeleton for a municipality"),
    "diagram": ("docs", "print a protocol's diagram (Mermaid or Graphviz DOT)"),
    "docs": ("docs", "write a protocol's generated Markdown page"),
    "export": ("export", "write a protocol as an SCXML 1.0 statechart"),
    "serve": (
        "serve",
        "run the HTTP service (JSON API and scheduler) over the installed protocols",
    ),
    "credentials": ("serve", "make, list or revoke the service's API tokens"),
}


def _requested(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the top level takes no option with a value)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(commands: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The argument parser: the subcommands in ``commands`` fully (their modules are
    imported), every other one by name and help only."""
    parser = argparse.ArgumentParser(
        prog="lastresort",
        description="The mayor as last resort for abused children: protocols you can run and check.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = {COMMANDS[name][0] for name in commands}
    registered: set[str] = set()
    for name, (module, help_text) in COMMANDS.items():
        if module in registered:
            continue
        if module in wanted:
            importlib.import_module(f"{__package__}.{module}").register(sub)
            registered.add(module)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit code."""
    args_in = sys.argv[1:] if argv is None else list(argv)
    command = _requested(args_in)
    parser = build_parser([command] if command is not None else [])
    args = parser.parse_args(args_in)
    run: Command = args.run
    try:
        return run(args)
    except ProtocolError as exc:
        print(f"lastresort: {exc}", file=sys.stderr)
        return 2
    except LastResortError as exc:
        print(f"lastresort: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: stop quietly, as Unix tools do, with the
        # shell's code for a pipe's death (128 + SIGPIPE), not 1, which means "check failed"
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
