"""The ``lastresort`` command.

Exit codes: 0 success, 1 a check or scenario failed, 2 unusable input (the
problems are printed, never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..engine.plugins import Hooks, make_plugin_manager
from ..errors import LastResortError, ProtocolError
from ..protocol.files import load_protocol
from ..protocol.model import Protocol
from ..render.card import protocol_card, timeline_table
from .check import register as _register_check
from .docs import register as _register_docs
from .new_plugin import register as _register_new_plugin
from .scenario import register as _register_scenario
from .simulate import register as _register_simulate
from .store import register as _register_store

__all__ = ["installed_protocols", "main", "resolve_protocol"]

Command = Callable[[argparse.Namespace], int]


def installed_protocols() -> dict[str, Protocol]:
    """Every protocol the installed plugins (and the core) provide, by id."""
    return Hooks(make_plugin_manager()).protocols()


def resolve_protocol(target: str) -> Protocol:
    """A protocol by file path (``.toml``/``.json``) or by installed id.

    :raises ProtocolError: for a bad file or an unknown id.
    """
    path = Path(target)
    if path.suffix.lower() in {".toml", ".json"} or path.is_file():
        return load_protocol(path)
    known = installed_protocols()
    if target not in known:
        raise ProtocolError(
            [f"$: unknown protocol {target!r}; installed: {', '.join(sorted(known))}"]
        )
    return known[target]


def _protocols(args: argparse.Namespace) -> int:
    rows = [("id", "version", "kind", "municipality")]
    for protocol in sorted(installed_protocols().values(), key=lambda p: p.id):
        rows.append((protocol.id, protocol.version, protocol.kind.value, protocol.municipality))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _show(args: argparse.Namespace) -> int:
    print(protocol_card(resolve_protocol(args.protocol), args.lang))
    return 0


def _demo(args: argparse.Namespace) -> int:
    import tempfile

    from ..clock import VirtualClock
    from ..engine.engine import Engine
    from ..scenario.demo import DEMO_START, run_demo
    from ..store.audit import verify
    from ..store.sqlite import SQLiteStore

    # the embedded default store: a SQLite file (a throwaway one unless --db is given)
    with tempfile.TemporaryDirectory(prefix="lastresort-demo-") as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "demo.db"
        clock = VirtualClock(DEMO_START)
        with SQLiteStore(path) as store:
            run = run_demo(Engine(store=store, clock=clock), protocol_id=args.protocol, clock=clock)
            protocol = run.engine.protocol(args.protocol)
            encounter = run.engine.get(run.encounter_id)
            print(f"{protocol.title.get(args.lang)} — {protocol.municipality}")
            # the facts stay in the store: nothing of the child is printed or logged
            print(
                f"encounter {encounter.id} (pseudonymous, {len(encounter.facts)} declared"
                f" facts), ended in {encounter.state!r}\n"
            )
            print(timeline_table(run.timeline, run.start))
        report = verify(path)
        kept = f"{path}" if args.db else "a temporary file, removed now; keep one with --db PATH"
        print(
            f"\nstore: SQLite ({kept}); audit trail:"
            f" {'every chain verifies' if report.ok else 'BROKEN: ' + str(report.first)}"
            f" ({report.events} events)"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="lastresort",
        description="The mayor as last resort for abused children: protocols you can run and check.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("protocols", help="list installed protocols")
    p.set_defaults(run=_protocols)

    p = sub.add_parser("show", help="print a protocol's card")
    p.add_argument("protocol", help="an installed protocol id or a .toml/.json file")
    p.add_argument("--lang", choices=["nl", "en"], default="en")
    p.set_defaults(run=_show)

    p = sub.add_parser("demo", help="run one encounter on a virtual clock and print its timeline")
    p.add_argument("--protocol", default="taskforce", help="installed protocol id")
    p.add_argument("--lang", choices=["nl", "en"], default="en")
    p.add_argument("--db", metavar="PATH", help="keep the SQLite store in this file")
    p.set_defaults(run=_demo)

    for register in _EXTENSIONS:
        register(sub)
    return parser


#: Further subcommands, each registering itself on the subparsers.
_EXTENSIONS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = []
_EXTENSIONS.append(_register_scenario)
_EXTENSIONS.append(_register_check)
_EXTENSIONS.append(_register_store)
_EXTENSIONS.append(_register_simulate)
_EXTENSIONS.append(_register_new_plugin)
_EXTENSIONS.append(_register_docs)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
        # the reader (e.g. `| head`) went away: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
