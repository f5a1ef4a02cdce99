"""``lastresort demo [--protocol ID] [--lang nl|en] [--db PATH]``: run one encounter on a
virtual clock, on a SQLite store, and print its timeline and the audit trail's verdict."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ..clock import VirtualClock
from ..engine.engine import Engine
from ..render.card import timeline_table
from ..scenario.demo import DEMO_START, run_demo
from ..store.audit import verify
from ..store.memory import MemoryStore
from ..store.sqlite import SQLiteStore

__all__ = ["register"]


def _demo(args: argparse.Namespace) -> int:
    # an unknown protocol is refused before --db's file is created: bad input writes nothing
    Engine(store=MemoryStore(), clock=VirtualClock(DEMO_START)).protocol(args.protocol)
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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` subcommand."""
    p = sub.add_parser("demo", help="run one encounter on a virtual clock and print its timeline")
    p.add_argument("--protocol", default="taskforce", help="installed protocol id")
    p.add_argument("--lang", choices=["nl", "en"], default="en")
    p.add_argument("--db", metavar="PATH", help="keep the SQLite store in this file")
    p.set_defaults(run=_demo)
