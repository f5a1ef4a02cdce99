"""``lastresort export --format scxml ID|FILE [--out FILE]``: a protocol as an
interchange document (W3C SCXML 1.0, see docs/interchange.md).

Prints the document, or writes it to ``--out``. Exit codes: 0 done, 2 unusable input
(the problems are printed, never a traceback); nothing is written on a problem.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..render.scxml import to_scxml
from ._common import resolve_protocol

__all__ = ["register"]

#: format -> what writes it
FORMATS = {"scxml": to_scxml}


def _export(args: argparse.Namespace) -> int:
    document = FORMATS[args.format](resolve_protocol(args.protocol))
    if args.out is None:
        sys.stdout.write(document)
        return 0
    target = Path(args.out)
    try:
        target.write_text(document, encoding="utf-8", newline="\n")
    except OSError as exc:
        print(f"lastresort export: cannot write {str(target)!r}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``export`` subcommand."""
    p = sub.add_parser("export", help="write a protocol as an SCXML 1.0 statechart")
    p.add_argument("protocol", help="an installed protocol id or a .toml/.json file")
    p.add_argument(
        "--format",
        choices=sorted(FORMATS),
        required=True,
        help="scxml: W3C SCXML 1.0, what SCXML cannot hold kept in the lastresort namespace",
    )
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of printing")
    p.set_defaults(run=_export)
