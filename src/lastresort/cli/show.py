"""``lastresort show ID|FILE [--lang nl|en|TAG --catalogue FILE]``: print a protocol's card,
entirely in one language (a further language with its message catalogue)."""

from __future__ import annotations

import argparse

from ..render.card import protocol_card
from ..render.catalogue import SHIPPED_LANGUAGES, load_catalogue
from ._common import resolve_protocol

__all__ = ["register"]


def _show(args: argparse.Namespace) -> int:
    if args.lang not in SHIPPED_LANGUAGES and args.catalogue is None:
        # a usage error, as an unknown option is: the command line itself is wrong
        args.show_parser.error(
            f"--lang: one of {', '.join(SHIPPED_LANGUAGES)}, or a further language"
            " with --catalogue FILE"
        )
    catalogue = None
    if args.catalogue is not None:
        catalogue = load_catalogue(args.catalogue, args.lang)
    print(protocol_card(resolve_protocol(args.protocol), args.lang, catalogue=catalogue))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``show`` subcommand."""
    p = sub.add_parser("show", help="print a protocol's card")
    p.add_argument("protocol", help="an installed protocol id or a .toml/.json file")
    p.add_argument(
        "--lang",
        default="en",
        help="nl or en; a further language (e.g. fy) with --catalogue",
    )
    p.add_argument(
        "--catalogue",
        metavar="FILE",
        help="the message catalogue of a further language (a TOML file with the keys of"
        " lastresort/render/messages/en.toml)",
    )
    p.set_defaults(run=_show, show_parser=p)
