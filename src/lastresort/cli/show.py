"""``lastresort show ID|FILE [--lang nl|en]``: print a protocol's card."""

from __future__ import annotations

import argparse

from ..render.card import protocol_card
from ._common import resolve_protocol

__all__ = ["register"]


def _show(args: argparse.Namespace) -> int:
    print(protocol_card(resolve_protocol(args.protocol), args.lang))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``show`` subcommand."""
    p = sub.add_parser("show", help="print a protocol's card")
    p.add_argument("protocol", help="an installed protocol id or a .toml/.json file")
    p.add_argument("--lang", choices=["nl", "en"], default="en")
    p.set_defaults(run=_show)
