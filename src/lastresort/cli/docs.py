"""``lastresort diagram`` and ``lastresort docs``: a protocol's diagram, and its
generated Markdown page.

``lastresort diagram ID|FILE [--format mermaid|dot] [--lang nl|en]`` prints the
diagram; ``lastresort docs ID|FILE [--out DIR]`` prints (or writes
``DIR/<id>.md``) the page; ``lastresort docs --all --out DIR`` writes one page per
installed protocol. Exit codes: 0 done, 2 unusable input (the problems are
printed, never a traceback). Pages are deterministic, so a committed page that
differs from what the generator makes now is stale (``make docs`` remakes them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..engine.installed import load_installed
from ..render.diagram import to_dot, to_mermaid
from ..render.page import page_name, protocol_page
from ._common import Known, resolve_protocol

__all__ = ["register"]

# -- the commands --------------------------------------------------------------------


def _diagram(args: argparse.Namespace) -> int:
    protocol = resolve_protocol(args.protocol)
    draw = to_dot if args.format == "dot" else to_mermaid
    sys.stdout.write(draw(protocol, args.lang))
    return 0


def _refuse(message: str) -> int:
    print(f"lastresort docs: {message}", file=sys.stderr)
    return 2


def _docs(args: argparse.Namespace) -> int:
    if args.all == (args.protocol is not None):
        return _refuse("give one protocol (ID or FILE) or --all, not both or neither")
    if args.all and args.out is None:
        return _refuse("--all writes one page per protocol: give the directory with --out DIR")
    out = Path(args.out) if args.out is not None else None
    if out is not None and out.exists() and not out.is_dir():
        return _refuse(f"--out {str(out)!r} exists and is not a directory")
    installed = load_installed()
    hooks = installed.hooks
    if args.all:
        protocols = [p for _, p in sorted(installed.protocols.items())]
    else:
        protocols = [resolve_protocol(args.protocol, lambda: Known(installed))]
    # every page is made before any file is written: bad input changes nothing
    pages = [
        (
            protocol,
            page_name(protocol),
            protocol_page(protocol, hooks.protocol_properties(protocol)),
        )
        for protocol in protocols
    ]
    if out is None:
        sys.stdout.write(pages[0][2])
        return 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        for _, name, page in pages:
            target = out / name
            same = target.is_file() and target.read_text(encoding="utf-8") == page
            if not same:
                target.write_text(page, encoding="utf-8", newline="\n")
            print(f"{'unchanged' if same else 'wrote'} {target}")
    except OSError as exc:
        return _refuse(f"cannot write the pages to {str(out)!r}: {exc}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``diagram`` and ``docs`` subcommands."""
    p = sub.add_parser(
        "diagram",
        help="print a protocol's diagram (Mermaid or Graphviz DOT)",
        description="Print a protocol as a Mermaid stateDiagram-v2 or a Graphviz DOT digraph."
        " Exit 0: printed; 2: unusable input.",
    )
    p.add_argument("protocol", metavar="ID|FILE", help="an installed protocol id or a file")
    p.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    p.add_argument("--lang", choices=["nl", "en"], default="en")
    p.set_defaults(run=_diagram)

    p = sub.add_parser(
        "docs",
        help="write a protocol's generated Markdown page",
        description="Print a protocol's Markdown page (title, source, diagram, parties,"
        " verifier results and bounds, cards), or write it to DIR/<id>.md with --out;"
        " --all --out DIR writes one page per installed protocol."
        " Exit 0: done; 2: unusable input.",
    )
    p.add_argument(
        "protocol", nargs="?", metavar="ID|FILE", help="an installed protocol id or a file"
    )
    p.add_argument("--all", action="store_true", help="every installed protocol (needs --out)")
    p.add_argument("--out", metavar="DIR", help="write DIR/<id>.md instead of printing")
    p.set_defaults(run=_docs)
