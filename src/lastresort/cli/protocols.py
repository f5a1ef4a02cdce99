"""``lastresort protocols``: list the installed protocols (id, version, kind,
municipality), then every installed plugin left out as broken, with the reason.

Exit codes: 0 every installed plugin loaded; 3 at least one is broken and left out
(the protocols listed still work: see docs/hooks.md, "Broken plugins").
"""

from __future__ import annotations

import argparse
import sys

from ..render.tables import text_table
from ._common import installed

__all__ = ["BROKEN", "register"]

#: the exit code when an installed plugin is broken and left out
BROKEN = 3


def _protocols(args: argparse.Namespace) -> int:
    loaded = installed()
    rows = [("id", "version", "kind", "municipality")]
    for protocol in sorted(loaded.protocols.values(), key=lambda p: p.id):
        rows.append((protocol.id, protocol.version, protocol.kind.value, protocol.municipality))
    print("\n".join(text_table(rows)))
    if not loaded.broken:
        return 0
    count = len(loaded.broken)
    print(
        f"\n{count} broken plugin{'s' * (count != 1)}, left out (the protocols above work):",
        file=sys.stderr,
    )
    for plugin in loaded.broken:
        left = f" (protocols {', '.join(plugin.protocols)})" if plugin.protocols else ""
        print(f"  {plugin.name}{left}: {plugin.stage}", file=sys.stderr)
        for problem in plugin.problems:
            print(f"    - {problem}", file=sys.stderr)
    return BROKEN


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``protocols`` subcommand."""
    p = sub.add_parser(
        "protocols",
        help="list installed protocols (and broken plugins)",
        description="List the installed protocols, then any installed plugin left out as"
        " broken with the reason. Exit 0: all loaded; 3: a plugin is broken.",
    )
    p.set_defaults(run=_protocols)
