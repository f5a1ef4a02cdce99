"""``lastresort protocols``: list the installed protocols (id, version, kind, municipality)."""

from __future__ import annotations

import argparse

from ..render.tables import text_table
from ._common import installed_protocols

__all__ = ["register"]


def _protocols(args: argparse.Namespace) -> int:
    rows = [("id", "version", "kind", "municipality")]
    for protocol in sorted(installed_protocols().values(), key=lambda p: p.id):
        rows.append((protocol.id, protocol.version, protocol.kind.value, protocol.municipality))
    print("\n".join(text_table(rows)))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``protocols`` subcommand."""
    p = sub.add_parser("protocols", help="list installed protocols")
    p.set_defaults(run=_protocols)
